"""The profiler agent's side of the loop: the HTTP client that registers a device, pulls tasks,
measures them with a profiler backend and posts the results in the background."""
