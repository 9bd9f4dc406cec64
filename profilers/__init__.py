"""Profiler backends (one per runtime) and the measuring protocol that times OpSpecs on a device."""
