"""Search spaces, and (later) the supernet, search strategies and data loading."""
