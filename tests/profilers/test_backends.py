"""Profiler backends on their real runtimes: ONNX Runtime, LiteRT and torch here, TensorRT and
CUDA where present (skipped with the reason otherwise)."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lut.opspec import OpSpec
from profilers.backends.converted import ConvertedModelBackend
from profilers.base import (
    BackendUnavailable,
    ProfilerBackend,
    backend_names,
    create_backend,
    get_backend_class,
)
from profilers.memory import RSS_METHOD
from profilers.protocol import QUICK
from search.spaces.base import space_from_string

# Every registered backend that runs here (a new one is tested for free), and those of them that
# time a converted file. The mcu backend counts instructions on an emulated board, not host
# time and memory: tests/profilers/mcu tests it, sharing one firmware build.
CPU_BACKENDS = [
    n for n in backend_names() if n != "mcu" and get_backend_class(n).unavailable_reason() is None
]
CONVERTING = [n for n in CPU_BACKENDS if issubclass(get_backend_class(n), ConvertedModelBackend)]
FINGERPRINT_FIELDS = {"backend", "runtime_version", "provider", "threads", "precision", "cpu_model"}
SPACE = space_from_string("fbnet-tiny")


def _pick_specs() -> list[OpSpec]:
    """A conv (stem), a grouped strided mbconv (channel shuffle), the pool and the linear head."""
    specs = SPACE.distinct_opspecs()
    wanted = [
        lambda s: s.op == "conv",
        lambda s: s.op == "mbconv" and s.groups > 1 and s.stride == 2,
        lambda s: s.op == "pool",
        lambda s: s.op == "linear",
    ]
    return [next(s for s in specs if match(s)) for match in wanted]


SPECS = _pick_specs()


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ProfilerBackend]]:
    """One instance per CPU backend, sharing a cache for the whole module (conversions are slow)."""
    cache = tmp_path_factory.mktemp("profiler-cache")
    yield {name: create_backend(name, cache_dir=cache, protocol=QUICK) for name in CPU_BACKENDS}


def test_registry_holds_the_five_backends() -> None:
    assert backend_names() == ["litert", "mcu", "onnxruntime", "tensorrt", "torch"]


def test_unknown_backend_is_a_value_error_listing_valid_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid: litert, mcu, onnxruntime, tensorrt, torch"):
        create_backend("tflite-gpu", cache_dir=tmp_path)


@pytest.mark.parametrize("name", backend_names())
def test_every_backend_runs_here_or_says_why(name: str) -> None:
    reason = get_backend_class(name).unavailable_reason()
    assert reason is None or (isinstance(reason, str) and reason.strip() and "\n" not in reason)


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_fingerprint_fields(name: str, backends: dict[str, ProfilerBackend]) -> None:
    fingerprint = backends[name].fingerprint()
    assert set(fingerprint) >= FINGERPRINT_FIELDS
    assert fingerprint["backend"] == name
    assert fingerprint["threads"] == 1
    assert fingerprint["runtime_version"]


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_identity_spec_is_rejected(name: str, backends: dict[str, ProfilerBackend]) -> None:
    identity = OpSpec(op="skip", in_channels=16, out_channels=16, height=8, width=8)
    with pytest.raises(ValueError, match="identity"):
        backends[name].measure_op(identity)


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_bad_cache_key_and_training_mode_are_rejected(
    name: str, backends: dict[str, ProfilerBackend]
) -> None:
    net = SPACE.build(SPACE.sample(random.Random(0)))
    example = torch.randn(SPACE.input_shape)
    with pytest.raises(ValueError, match="cache_key"):
        backends[name].measure_module(net, example, cache_key="../escape")
    with pytest.raises(ValueError, match="eval mode"):
        backends[name].measure_module(net.train(), example, cache_key="net")


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.op)
@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_measure_op_for_real(name: str, spec: OpSpec, backends: dict[str, ProfilerBackend]) -> None:
    backend = backends[name]
    measurement = backend.measure_op(spec)
    assert measurement.median_ms > 0
    assert measurement.n >= QUICK.min_runs
    assert len(measurement.samples_ms) == measurement.n
    assert measurement.warmup >= QUICK.warmup_runs
    assert measurement.extra["threads"] == 1
    assert measurement.extra["provider"] == backend.provider()
    assert "protocol" in measurement.extra
    if sys.platform == "linux":
        assert measurement.extra["peak_memory_method"] == RSS_METHOD
        assert isinstance(measurement.peak_memory_bytes, int)
        assert measurement.peak_memory_bytes >= 0
    if isinstance(backend, ConvertedModelBackend):
        assert backend.model_path(spec.key).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", CONVERTING)
def test_cached_model_file_is_reused(name: str, backends: dict[str, ProfilerBackend]) -> None:
    backend = backends[name]
    assert isinstance(backend, ConvertedModelBackend)
    spec = SPECS[-1]
    backend.measure_op(spec)
    path = backend.model_path(spec.key)
    mtime, conversions = path.stat().st_mtime_ns, backend.conversions
    again = backend.measure_op(spec)
    assert again.extra["converted"] is False
    assert backend.conversions == conversions
    assert path.stat().st_mtime_ns == mtime
    # A second profiler sharing the cache (another process, say) converts nothing either.
    other = create_backend(name, cache_dir=backend.cache_dir.parent, protocol=QUICK)
    assert isinstance(other, ConvertedModelBackend)
    other.measure_op(spec)
    assert other.conversions == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_measure_module_whole_network(name: str, backends: dict[str, ProfilerBackend]) -> None:
    backend = backends[name]
    net = SPACE.build(SPACE.sample(random.Random(0)))
    measurement = backend.measure_module(
        net, torch.randn(SPACE.input_shape), cache_key="fbnet-tiny-arch0"
    )
    assert measurement.median_ms > 0
    assert measurement.n >= QUICK.min_runs
    if isinstance(backend, ConvertedModelBackend):
        assert backend.model_path("fbnet-tiny-arch0").is_file()


@pytest.mark.slow
def test_litert_add_probe_does_real_work(backends: dict[str, ProfilerBackend]) -> None:
    """litert-torch folds `x + 0` into a model without ops; the probe must still add something."""
    from ai_edge_litert.interpreter import Interpreter

    backend = backends["litert"]
    assert isinstance(backend, ConvertedModelBackend)
    probe = OpSpec(op="add", in_channels=8, out_channels=8, height=8, width=8)
    backend.measure_op(probe)
    interpreter = Interpreter(model_path=str(backend.model_path(probe.key)))
    interpreter.allocate_tensors()
    x = torch.randn(1, 8, 8, 8).permute(0, 2, 3, 1).contiguous().numpy()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    assert not (interpreter.get_tensor(interpreter.get_output_details()[0]["index"]) == x).all()


def test_tensorrt_unavailable_here_says_why(tmp_path: Path) -> None:
    reason = get_backend_class("tensorrt").unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT is available here: test_tensorrt_measures_op covers it")
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        create_backend("tensorrt", cache_dir=tmp_path, device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_measures_op(precision: str, tmp_path: Path) -> None:
    reason = get_backend_class("tensorrt").unavailable_reason()
    if reason:
        pytest.skip(reason)
    backend = create_backend(
        "tensorrt", cache_dir=tmp_path, protocol=QUICK, device="cuda", precision=precision
    )
    measurement = backend.measure_op(SPECS[1])
    assert measurement.median_ms > 0
    assert measurement.extra["timer"] == "cuda-events"


def _require_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here: torch.cuda.is_available() is False")


@pytest.mark.gpu
def test_torch_cuda_measures_op_with_events(tmp_path: Path) -> None:
    _require_cuda()
    backend = create_backend("torch", cache_dir=tmp_path, protocol=QUICK, device="cuda")
    measurement = backend.measure_op(SPECS[1])
    assert measurement.median_ms > 0
    assert measurement.extra["timer"] == "cuda-events"
    assert measurement.peak_memory_bytes is not None


@pytest.mark.gpu
def test_onnxruntime_cuda_measures_op(tmp_path: Path) -> None:
    _require_cuda()
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider here: install onnxruntime-gpu")
    backend = create_backend("onnxruntime", cache_dir=tmp_path, protocol=QUICK, device="cuda")
    assert backend.measure_op(SPECS[1]).median_ms > 0
