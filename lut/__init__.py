"""Latency lookup tables: OpSpecs, devices, measurements, their database, and the predictor.

Never imports torch at module import time."""
