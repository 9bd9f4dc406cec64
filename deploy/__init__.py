"""Deployable models: stand-alone child networks, export, quantisation, verification, model cards."""
