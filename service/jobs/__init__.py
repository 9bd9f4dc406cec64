"""Search jobs: the jobs table is the queue (claim with a lease, heartbeat, reclaim), the state
machine, events, the worker loop and the pipeline of stages."""
