"""The base of backends that time a torch module themselves (torch, TensorRT, the MCU firmware):
an op is its micro-model, a network is checked for eval mode and a safe cache key, and both go
to the subclass's `_measure`."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

from lut.measurement import Measurement
from lut.opspec import OpSpec
from profilers.base import ProfilerBackend
from profilers.export import check_cache_key, check_eval_mode, op_model

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


class ModuleTimingBackend(ProfilerBackend):
    """`measure_op` and `measure_module` through one `_measure(module, example, key)`."""

    def measure_op(self, spec: OpSpec) -> Measurement:
        module, example = op_model(spec)
        return self._measure(module, example, spec.key)

    def measure_module(
        self, module: nn.Module, example: torch.Tensor, *, cache_key: str
    ) -> Measurement:
        check_eval_mode(module)
        return self._measure(module, example, check_cache_key(cache_key))

    @abstractmethod
    def _measure(self, module: nn.Module, example: torch.Tensor, key: str) -> Measurement:
        """Time `module` on inputs like `example`; `key` names its cached artefacts."""
