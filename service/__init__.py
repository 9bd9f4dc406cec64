"""The hwnas front ends: the `hwnas` command line, the REST service, its job workers and the
profiler agents."""
