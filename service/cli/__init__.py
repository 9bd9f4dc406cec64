"""The `hwnas` command line: `main.py` builds the parser; one module per group of commands, each
parsing arguments and printing while the library does the work."""
