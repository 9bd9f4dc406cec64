"""Where converted models (ONNX / TFLite micro-models and networks) are cached on this machine."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from platformdirs import user_data_dir


def hwnas_home(environ: Mapping[str, str] | None = None) -> Path:
    """HWNAS_HOME, or the user's data directory."""
    env = os.environ if environ is None else environ
    return Path(env.get("HWNAS_HOME") or user_data_dir("hwnas", appauthor=False)).expanduser()


def model_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """HWNAS_CACHE_DIR, or `$HWNAS_HOME/cache`. A converted file depends only on its op (or
    network) and the converter, so one cache can serve several homes and devices: conversions
    (seconds each with torch's ONNX exporter or litert-torch) are most of a LUT's profiling time."""
    env = os.environ if environ is None else environ
    if env.get("HWNAS_CACHE_DIR"):
        return Path(env["HWNAS_CACHE_DIR"]).expanduser()
    return hwnas_home(env) / "cache"
