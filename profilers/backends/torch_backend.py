"""PyTorch eager backend: the module itself under `torch.inference_mode`, on the CPU with a fixed
intra-op thread count, or on a CUDA device timed with CUDA events."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lut.measurement import Measurement
from profilers.backends.module_timing import ModuleTimingBackend
from profilers.base import BackendUnavailable, register_backend
from profilers.export import check_cache_key, check_eval_mode
from profilers.memory import track_peak_memory
from profilers.protocol import pinned_to_cores, time_runs, wall_timer

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


@register_backend("torch")
class TorchBackend(ModuleTimingBackend):
    """Nothing to convert, so nothing is cached: `cache_key` only labels the measurement.

    Peak memory is what one forward pass adds (activations and workspace; the weights exist
    before it): RSS growth on the CPU, the CUDA caching allocator's peak on a GPU.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.precision not in ("fp32", "fp16"):
            raise ValueError(f"torch backend measures fp32 or fp16, not {self.precision!r}")
        if self.is_cuda:
            import torch

            if not torch.cuda.is_available():
                raise BackendUnavailable("device='cuda' but torch sees no CUDA GPU")
        elif self.device != "cpu":
            raise ValueError(f"torch backend runs on 'cpu' or 'cuda[:N]', not {self.device!r}")
        elif self.precision != "fp32":
            raise ValueError("torch backend measures fp16 on CUDA devices only")

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def runtime_version(self) -> str:
        import torch

        cuda = f" (CUDA {torch.version.cuda})" if self.is_cuda else ""
        return f"{torch.__version__}{cuda}"

    def provider(self) -> str:
        return "cuda" if self.is_cuda else "cpu"

    def measure_module(
        self, module: nn.Module, example: torch.Tensor, *, cache_key: str
    ) -> Measurement:
        check_eval_mode(module)
        if self.is_cuda or self.precision != "fp32":
            module = copy.deepcopy(module)  # moving or casting must not change the caller's module
        return self._measure(module, example, check_cache_key(cache_key))

    def _measure(self, module: nn.Module, example: torch.Tensor, key: str) -> Measurement:
        import torch

        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        module = module.to(device=self.device, dtype=dtype)
        inputs = example.detach().to(device=self.device, dtype=dtype).contiguous()

        def forward() -> object:
            return module(inputs)

        with (
            pinned_to_cores(self.threads) as cpus,
            _torch_threads(self.threads),
            torch.inference_mode(),
        ):
            with track_peak_memory(self.device) as memory:
                forward()
            timer = self._cuda_timer(forward) if self.is_cuda else wall_timer(forward)
            return time_runs(
                timer,
                self.protocol,
                peak_memory_bytes=memory.bytes,
                extra={
                    "backend": self.name,
                    "provider": self.provider(),
                    "threads": self.threads,
                    "cpus": cpus,
                    "peak_memory_method": memory.method,
                    "model_key": key,
                    "timer": "cuda-events" if self.is_cuda else "wall",
                },
            )

    def _cuda_timer(self, forward: Callable[[], object]) -> Callable[[], float]:
        """Device time between two events around the call (milliseconds), synchronised."""
        import torch

        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def timed() -> float:
            start.record()
            forward()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return timed


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count is process-wide: set it for the block, then restore it."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
