"""The hwnas front ends: the `hwnas` command line (and, later, the REST service)."""
