"""Search spaces as data, their architecture-string grammar, and the torch blocks they build."""
