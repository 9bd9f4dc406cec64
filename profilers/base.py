"""The profiler backend interface and its registry (name → backend class)."""

from __future__ import annotations

import os
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lut.measurement import Measurement
from lut.opspec import OpSpec
from profilers.protocol import MeasureProtocol

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

PROFILER_VERSION = "1"


class BackendUnavailable(RuntimeError):
    """The runtime cannot run on this machine; the message says why."""


class ProfilerBackend(ABC):
    """Times OpSpec micro-models and whole networks in one runtime.

    Subclasses build the runtime's model from a torch module (caching converted files under
    `cache_dir`, keyed by OpSpec hash or a caller's key) and time it with `profilers.protocol`.
    """

    name: ClassVar[str]
    layout: ClassVar[str] = "NCHW"  # layout of the micro-models' input and output
    default_device: ClassVar[str] = "cpu"  # used when the caller passes no device
    supports_drift_reference: ClassVar[bool] = False  # MeasureProtocol.drift_reference

    def __init__(
        self,
        *,
        threads: int = 1,
        precision: str = "fp32",
        cache_dir: Path,
        protocol: MeasureProtocol | None = None,
        device: str | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.precision = precision
        self.cache_dir = Path(cache_dir) / self.name
        self.protocol = protocol or MeasureProtocol()
        self.device = device or self.default_device
        if self.protocol.drift_reference and not self.supports_drift_reference:
            raise ValueError(f"the {self.name} backend cannot measure with a drift reference")
        # The reference's nominal latency; set by `use_drift_reference` (from the device's
        # fixed costs) or measured with the fixed costs of a new LUT.
        self.drift_reference_ms: float | None = None

    def use_drift_reference(self, nominal_ms: float | None) -> None:
        """Measure from now on in the unit of a LUT whose reference took `nominal_ms`: every run
        paired with a reference run (None: no reference, plain timings)."""
        if nominal_ms is not None and not self.supports_drift_reference:
            raise ValueError(f"the {self.name} backend cannot measure with a drift reference")
        self.protocol = replace(self.protocol, drift_reference=nominal_ms is not None)
        self.drift_reference_ms = nominal_ms

    def measure_drift_reference(self) -> float:
        """Time the reference model alone; its median becomes the nominal latency."""
        raise NotImplementedError(f"the {self.name} backend has no drift reference")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None if the runtime can run here, else one line saying why not."""
        return None

    @abstractmethod
    def runtime_version(self) -> str: ...

    @abstractmethod
    def provider(self) -> str:
        """Execution provider / delegate, e.g. CPUExecutionProvider, XNNPACK, cuda."""

    @abstractmethod
    def measure_op(self, spec: OpSpec) -> Measurement:
        """Latency (and peak memory where known) of one OpSpec as a stand-alone micro-model."""

    @abstractmethod
    def measure_module(
        self, module: nn.Module, example: torch.Tensor, *, cache_key: str
    ) -> Measurement:
        """End-to-end latency of a whole network with one input like `example` (NCHW)."""

    def fingerprint(self) -> dict[str, Any]:
        """What makes this backend's timings comparable: host, runtime, provider, threads."""
        return {
            "backend": self.name,
            "runtime_version": self.runtime_version(),
            "provider": self.provider(),
            "threads": self.threads,
            "precision": self.precision,
            "cpu_model": cpu_model(),
            "cpu_cores": os.cpu_count() or 0,
            "machine": platform.machine(),
            "system": platform.system(),
            "accelerator": accelerator_name(self.device),
            "profiler_version": PROFILER_VERSION,
        }


_REGISTRY: dict[str, type[ProfilerBackend]] = {}


def register_backend(name: str) -> Callable[[type[ProfilerBackend]], type[ProfilerBackend]]:
    def decorator(cls: type[ProfilerBackend]) -> type[ProfilerBackend]:
        if name in _REGISTRY:
            raise ValueError(f"profiler backend {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def backend_names() -> list[str]:
    _load_backends()
    return sorted(_REGISTRY)


def get_backend_class(name: str) -> type[ProfilerBackend]:
    _load_backends()
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; valid: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_backend(name: str, **kwargs: Any) -> ProfilerBackend:
    """Instantiate a backend; raise BackendUnavailable with the reason if it cannot run here."""
    cls = get_backend_class(name)
    reason = cls.unavailable_reason()
    if reason:
        raise BackendUnavailable(f"backend {name!r} cannot run here: {reason}")
    return cls(**kwargs)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def accelerator_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _load_backends() -> None:
    import profilers.backends  # noqa: F401  (registers the built-in backends)
