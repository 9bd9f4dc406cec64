"""ONNX Runtime's timer: `InferenceSession.run` on the CPU execution provider (or the CUDA one with
device="cuda", input and output bound on the GPU); an op's LUT entry from its kernel times."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lut.measurement import Measurement
from lut.predictor import KERNEL_TIMING
from profilers.memory import PeakMemory
from profilers.protocol import pinned_to_cores, time_runs, wall_timer
from profilers.timers.base import FileTimer, fit_input
from profilers.timers.ort_kernels import block_ms_per_run, kernel_ms_per_run, timed_runs_only

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
KERNEL_TIMING_MIN_MS = 0.1


class OrtUnavailable(RuntimeError):
    """The requested execution provider is not in this onnxruntime build."""


class OrtFileTimer(FileTimer):
    """Each measurement opens a session with `threads` intra-op threads, one inter-op thread,
    sequential execution and all graph optimisations, and times `session.run` on a pre-allocated
    input, as a deployment calls it. (IOBinding would cut the per-call overhead, ~5.5 → ~2.8 µs on
    an x86 core, but the predictor models that overhead as a fixed cost anyway, and `run` is what
    deployed code calls.)"""

    name = "onnxruntime"
    suffix = ".onnx"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.is_cuda:
            import onnxruntime as ort

            if CUDA_PROVIDER not in ort.get_available_providers():
                raise OrtUnavailable(
                    f"{CUDA_PROVIDER} is not available in this onnxruntime build "
                    f"(has: {', '.join(ort.get_available_providers())}); "
                    "install onnxruntime-gpu on a machine with CUDA"
                )
        elif self.device != "cpu":
            raise ValueError(
                f"onnxruntime backend runs on 'cpu' or 'cuda[:N]', not {self.device!r}"
            )

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "the Python package 'onnxruntime' is not installed"
        return None

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def runtime_version(self) -> str:
        import onnxruntime as ort

        return str(ort.__version__)

    def provider(self) -> str:
        return CUDA_PROVIDER if self.is_cuda else CPU_PROVIDER

    def memory_tracker(self) -> AbstractContextManager[PeakMemory]:
        # ORT's CUDA allocations are invisible to a process's RSS on the host: none there.
        return nullcontext(PeakMemory()) if self.is_cuda else super().memory_tracker()

    def measure_op_file(
        self, path: Path, example: Any = None, *, extra: dict[str, Any] | None = None
    ) -> Measurement:
        """Whole timed runs of the micro-model, like whole networks. On the CPU, an op whose run
        takes at least KERNEL_TIMING_MIN_MS is timed again by its summed kernel times from ORT's
        profiler, which leaves out the call overhead and the layout reorders (NCHWc) a
        stand-alone model adds; the profiler counts whole microseconds, too coarse below that."""
        wall = self.time_file(path, example, extra=extra)
        if self.is_cuda or wall.median_ms < KERNEL_TIMING_MIN_MS:
            return wall
        runs = self.profiled_runs(path, example, extra=extra)
        samples = [k * f for k, f in zip(kernel_ms_per_run(runs.profile), runs.scale, strict=True)]
        if not any(samples):
            raise RuntimeError(f"ORT's profile of {path.name} has no kernel events")
        return Measurement.from_samples(
            samples,
            warmup=runs.wall.warmup,
            peak_memory_bytes=runs.peak_memory_bytes,
            extra={**runs.extra, "timing": KERNEL_TIMING},
        )

    def profile_blocks_file(self, path: Path, example: Any = None) -> list[dict[int, float]]:
        """Per timed run of a whole network file (an exported `nn.Sequential` of blocks), each
        block's kernel time in ms (`ort_kernels.block_ms_per_run`), in the LUT's unit (scaled by
        the drift reference run beside it, when the LUT has one). CPU only."""
        if self.is_cuda:
            raise ValueError("per-block kernel times need ORT's CPU profiler, not CUDA")
        runs = self.profiled_runs(path, example)
        per_run = block_ms_per_run(runs.profile)
        return [
            {b: ms * f for b, ms in blocks.items()}
            for blocks, f in zip(per_run, runs.scale, strict=True)
        ]

    def profiled_runs(
        self, path: Path, example: Any = None, *, extra: dict[str, Any] | None = None
    ) -> ProfiledRuns:
        """The protocol's timed runs of `path` in a profiling session: its profile cut to the
        timed runs, each run's drift-reference scale (1 without one) and what a measurement
        records beside its samples."""
        with pinned_to_cores(self.threads) as cpus, tempfile.TemporaryDirectory() as tmp:
            self.warm_up_runtime()
            with self.memory_tracker() as memory:
                run_once = self.load(path, example, profile_prefix=str(Path(tmp) / "ort"))
                run_once()
            reference = self.drift_reference()
            wall = time_runs(wall_timer(run_once), self.protocol, reference=reference)
            profile = json.loads(Path(run_once.end_profiling()).read_text())  # type: ignore[attr-defined]
        profile = timed_runs_only(profile, wall.n)
        scale = [1.0] * wall.n
        if reference is not None:  # each run scaled by the reference run beside it
            pairs = wall.extra["drift_reference"]
            scale = [reference.nominal_ms / ref for ref in pairs["reference_ms"]]
        recorded = {
            **self.measurement_extra(cpus, memory, path),
            **(extra or {}),
            "wall_median_ms": wall.median_ms,
            "protocol": self.protocol.to_dict(),
            **({"drift_reference": wall.extra["drift_reference"]} if reference else {}),
        }
        return ProfiledRuns(wall, profile, scale, memory.bytes, recorded)

    def load(
        self, path: Path, example: Any = None, profile_prefix: str | None = None
    ) -> Callable[[], object]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        providers: list[Any] = [CPU_PROVIDER]
        if self.is_cuda:
            providers = [(CUDA_PROVIDER, {"device_id": self._device_index()})]
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        model_input = session.get_inputs()[0]
        array = fit_input(example, model_input.shape, numpy_dtype(model_input.type))
        input_name = model_input.name
        if not self.is_cuda:
            feed = {input_name: array}
            run = _Run(lambda: session.run(None, feed))
            run.end_profiling = session.end_profiling  # type: ignore[attr-defined]
            return run
        # Input and output stay on the GPU so host transfers are not part of the op's cost;
        # run_with_iobinding synchronises the device before returning, so wall time is GPU time.
        binding = session.io_binding()
        device_input = ort.OrtValue.ortvalue_from_numpy(array, "cuda", self._device_index())
        binding.bind_ortvalue_input(input_name, device_input)
        for output in session.get_outputs():
            binding.bind_output(output.name, "cuda", self._device_index())

        def run_bound(keep_alive: object = device_input) -> object:  # the binding needs the input
            return session.run_with_iobinding(binding)

        return run_bound

    def _device_index(self) -> int:
        _, _, index = self.device.partition(":")
        return int(index) if index else 0


def numpy_dtype(onnx_type: str) -> str:
    """ORT's 'tensor(float)', 'tensor(uint8)', ... as a numpy dtype name."""
    name = onnx_type.removeprefix("tensor(").removesuffix(")")
    return {"float": "float32", "double": "float64", "float16": "float16"}.get(name, name)


class _Run:
    """A callable inference that also carries its session's `end_profiling`."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.call = call

    def __call__(self) -> object:
        return self.call()


@dataclass(frozen=True)
class ProfiledRuns:
    wall: Measurement
    profile: list[dict[str, Any]]
    scale: list[float]
    peak_memory_bytes: int | None
    extra: dict[str, Any]
