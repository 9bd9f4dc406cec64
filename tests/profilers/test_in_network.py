"""In-network profiling on the real ONNX Runtime: per-block kernel times of whole networks from
ORT's profiler, covering networks, and the in-network LUT they give (`profilers.in_network`)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from lut.predictor import IN_NETWORK_TIMING, predict
from lut.store import LutStore
from profilers.base import create_backend
from profilers.in_network import covering_architectures, profile_in_network
from profilers.protocol import QUICK
from profilers.timers.ort_kernels import OUTSIDE_BLOCKS
from search.spaces.base import space_from_string

SPACE = space_from_string("fbnet-tiny")


@pytest.fixture
def backend(tmp_path: Path):  # type: ignore[no-untyped-def]
    return create_backend("onnxruntime", cache_dir=tmp_path / "cache", protocol=QUICK)


def test_covering_architectures_run_every_candidate_of_every_layer_once_a_round() -> None:
    archs = covering_architectures(SPACE, rounds=2)
    width = max(len(slot.candidates) for slot in SPACE.layers)
    assert len(archs) == 2 * width
    for r in range(2):
        chosen = archs[r * width : (r + 1) * width]
        for layer, slot in enumerate(SPACE.layers):
            counts = Counter(a.choices[layer] for a in chosen)
            assert set(counts) == set(slot.candidates)
    assert archs == covering_architectures(SPACE, rounds=2)  # seeded
    with pytest.raises(ValueError, match="at least one round"):
        covering_architectures(SPACE, rounds=0)


def test_profile_blocks_gives_every_working_block_its_kernels(backend) -> None:  # type: ignore[no-untyped-def]
    import torch

    arch = SPACE.sample(random.Random(3))
    specs = SPACE.decode(arch)
    example = torch.randn(SPACE.input_shape)
    per_run = backend.profile_blocks(SPACE.build(arch), example, "net-test")
    assert len(per_run) >= QUICK.min_runs
    working = {i for i, spec in enumerate(specs) if not spec.is_identity}
    for run in per_run:
        assert set(run) - {OUTSIDE_BLOCKS} == working
        # ORT's profiler counts whole microseconds: a tiny block may read 0, a run may not.
        assert all(ms >= 0 for ms in run.values()) and sum(run.values()) > 0


def test_in_network_lut_covers_the_space_resumes_and_predicts(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = LutStore(f"sqlite:///{tmp_path / 'lut.db'}")
    report = profile_in_network(store, backend, "laptop", SPACE, rounds=1)
    specs = [s for s in SPACE.distinct_opspecs() if not s.is_identity]
    assert report.networks == len(report.profiled) == 9
    assert report.entries_written == len({s.key for s in specs})
    device = report.device
    assert device.fingerprint["timing"] == IN_NETWORK_TIMING
    assert device.fixed_costs is not None and device.fixed_costs.between_blocks_ms == 0.0
    lut = store.lookup(device, specs)
    assert all(lut[s.key].extra["timing"] == IN_NETWORK_TIMING for s in specs)
    assert all(lut[s.key].extra["appearances"] >= 1 for s in specs)
    arch = SPACE.sample(random.Random(5))
    assert predict(SPACE.decode(arch), lut, device.fixed_costs).latency_ms > 0

    again = profile_in_network(store, backend, "laptop", SPACE, rounds=1)
    assert again.device.id == device.id
    assert again.profiled == [] and again.entries_written == 0

    # Interrupted before the entries were written: the networks' block times are on disk.
    fresh = LutStore(f"sqlite:///{tmp_path / 'fresh.db'}")
    resumed = profile_in_network(fresh, backend, "laptop", SPACE, rounds=1)
    assert resumed.profiled == [] and resumed.entries_written == report.entries_written


def test_a_device_name_holds_one_kind_of_lut(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from profilers.runner import profile_specs

    store = LutStore(f"sqlite:///{tmp_path / 'lut.db'}")
    profile_specs(store, backend, "laptop", [])
    with pytest.raises(ValueError, match="already holds a micro-model LUT"):
        profile_in_network(store, backend, "laptop", SPACE, rounds=1)
    profile_in_network(store, backend, "laptop-in-network", SPACE, rounds=1)
    with pytest.raises(ValueError, match="already holds an in-network LUT"):
        profile_specs(store, backend, "laptop-in-network", [])
    assert [d.name for d in store.devices()] == ["laptop", "laptop-in-network"]


def test_cli_profiles_in_network_and_measure_keeps_to_that_lut(tmp_path: Path) -> None:
    from tests.service.fixtures import hwnas

    name = "laptop-in-network"
    base = ["--device", name, "--backend", "onnxruntime", "--quick"]
    hwnas(
        tmp_path, "profile", *base, "--space", "fbnet-tiny", "--in-network", "--network-rounds", "1"
    )
    arch = SPACE.sample(random.Random(2)).to_string()
    measured = hwnas(tmp_path, "measure", *base, arch, "--json")
    assert json.loads(measured.stdout)["arch"] == arch
    luts = [
        json.loads(line) for line in hwnas(tmp_path, "lut", "list", "--json").stdout.splitlines()
    ]
    assert len(luts) == 1 and luts[0]["device"] == name
    predicted = hwnas(tmp_path, "predict", "--device", name, arch, "--json")
    assert json.loads(predicted.stdout)["latency_ms"] > 0
