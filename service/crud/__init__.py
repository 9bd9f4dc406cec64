"""Reading and writing the service's rows, one module per resource: jobs (the jobs table is the
queue: claim with a lease, heartbeat, reclaim), datasets, agents and their tasks, device access."""
