"""The HTTP API: one router per resource in `routes/`, the dependency aliases in `deps.py`."""
