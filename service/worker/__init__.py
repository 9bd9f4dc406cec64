"""The job worker: the state machine, the pipeline of stages (those that wait on profiler agents
included) and the loop that claims jobs and runs them."""
