"""Sub-commands of the `hwnas` command line, one module per group."""
