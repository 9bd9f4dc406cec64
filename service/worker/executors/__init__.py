"""Where a job's search units run: in the worker's own process (the embedded default, the
pipeline's own calls), or as Ray tasks on a cluster (`ray_executor`, only with HWNAS_RAY_ADDRESS
set; nothing else imports Ray)."""
