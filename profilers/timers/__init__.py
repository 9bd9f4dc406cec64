"""Timing model files in a runtime with the shared protocol, without torch: what a thin agent
runs on a target and what the converting backends delegate to (one timer per runtime)."""

from __future__ import annotations

from profilers.timers.base import FileTimer

# runtime name → the timer module and class name, and the file format it times; imported on use,
# so a machine holds only the runtimes it measures with.
_TIMERS = {
    "onnxruntime": ("profilers.timers.ort", "OrtFileTimer"),
    "litert": ("profilers.timers.litert", "LiteRTFileTimer"),
}
FILE_FORMATS = {"onnxruntime": "onnx", "litert": "tflite"}


def timer_names() -> list[str]:
    return sorted(_TIMERS)


def timer_class(name: str) -> type[FileTimer]:
    import importlib

    if name not in _TIMERS:
        raise ValueError(f"no file timer for runtime {name!r}; valid: {', '.join(sorted(_TIMERS))}")
    module, cls = _TIMERS[name]
    found: type[FileTimer] = getattr(importlib.import_module(module), cls)
    return found


__all__ = ["FILE_FORMATS", "FileTimer", "timer_class", "timer_names"]
