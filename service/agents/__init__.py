"""Profiler agents: the agent and task tables, the task queue, the job stages that wait on agents
(profiling, measuring on the target) and the `hwnas agent` client loop."""
