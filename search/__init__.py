"""Search spaces, the supernet, search strategies, the cost model, data loading and the search run."""
