"""LiteRT's timer: `Interpreter.invoke` with the default delegates (XNNPACK for float models), as
a phone's or an ARM board's CPU runs a `.tflite` file."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.quiet import silenced
from profilers.timers.base import FileTimer, fit_input


class LiteRTFileTimer(FileTimer):
    """Each measurement opens an interpreter with `num_threads=threads` and times `invoke()` on an
    input set once. 4-D inputs and outputs of micro-models are channel-last (NHWC), as LiteRT
    models are deployed; 2-D ones (pool and linear outputs, linear inputs) stay as they are."""

    name = "litert"
    suffix = ".tflite"
    layout = "NHWC"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.device != "cpu":
            raise ValueError(f"litert backend runs on the CPU (XNNPACK), not {self.device!r}")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("ai_edge_litert") is None:
            return "the Python package 'ai-edge-litert' is not installed"
        return None

    def runtime_version(self) -> str:
        return importlib.metadata.version("ai-edge-litert")

    def provider(self) -> str:
        return "XNNPACK"

    def load(self, path: Path, example: Any = None) -> Callable[[], object]:
        from ai_edge_litert.interpreter import Interpreter

        with silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(model_path=str(path), num_threads=self.threads)
            interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        array = fit_input(example, detail["shape"], detail["dtype"], detail["quantization"])
        interpreter.set_tensor(detail["index"], array)
        return interpreter.invoke
