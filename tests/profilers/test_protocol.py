"""The drift reference: every timed run paired with a run of a fixed reference model, samples
expressed in the reference's nominal unit (arithmetic here; real ONNX Runtime LUTs below)."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from lut.opspec import OpSpec
from lut.predictor import FixedCosts
from lut.store import LutStore
from profilers.base import create_backend
from profilers.protocol import QUICK, DriftReference, time_runs
from profilers.runner import profile_specs, use_lut_drift_reference

SPEC = OpSpec(op="conv", in_channels=8, out_channels=8, height=14, width=14, kernel=3)
REFERENCED = replace(QUICK, drift_reference=True)


def test_a_drifting_machine_gives_the_same_referenced_samples() -> None:
    """The machine's speed swings 3x from run to run; the op always takes 2x the reference, so
    every referenced sample is 2x the nominal latency, and the raw pairs are kept."""
    speeds = itertools.cycle([1.0, 3.0, 1.5, 2.2])
    speed = {"now": 1.0}

    def op_run() -> float:
        speed["now"] = next(speeds)
        return 0.2 * speed["now"]

    def reference_run() -> float:
        return 0.1 * speed["now"]

    m = time_runs(op_run, QUICK, reference=DriftReference(reference_run, nominal_ms=0.1))
    assert m.samples_ms == pytest.approx([0.2] * m.n)
    pairs = m.extra["drift_reference"]
    assert pairs["nominal_ms"] == 0.1
    assert len(pairs["raw_ms"]) == len(pairs["reference_ms"]) == m.n
    assert statistics.median(pairs["raw_ms"]) > 0.3  # the raw runs did drift


def test_a_reference_needs_a_positive_nominal_latency() -> None:
    with pytest.raises(ValueError, match="nominal latency"):
        DriftReference(lambda: 1.0, nominal_ms=0.0)


def test_fixed_costs_keep_the_reference_and_refuse_a_bad_one() -> None:
    fixed = FixedCosts(0.005, 0.01, 0.001, reference_ms=0.17)
    assert FixedCosts.from_dict(fixed.to_dict()) == fixed
    assert FixedCosts.from_dict({"call_overhead_ms": 1, "per_mb_ms": 0}).reference_ms is None
    with pytest.raises(ValueError, match="reference_ms"):
        FixedCosts.from_dict({"call_overhead_ms": 1, "per_mb_ms": 0, "reference_ms": -1})


def test_torch_backend_refuses_a_drift_reference(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot measure with a drift reference"):
        create_backend("torch", cache_dir=tmp_path, protocol=REFERENCED)


@pytest.mark.slow
def test_onnxruntime_lut_with_a_drift_reference(tmp_path: Path) -> None:
    """A new LUT measures the reference's nominal latency with its fixed costs; its entries are
    referenced, and a later plain profiler follows the LUT while a LUT without a reference
    refuses a referenced one (the units would not mix)."""
    store = LutStore(f"sqlite:///{tmp_path / 'lut.db'}")
    backend = create_backend("onnxruntime", cache_dir=tmp_path / "cache", protocol=REFERENCED)
    device = profile_specs(store, backend, "ref-laptop", [SPEC]).device
    assert device.fixed_costs is not None
    nominal = device.fixed_costs.reference_ms
    assert nominal is not None and nominal > 0
    entry = store.lookup(device, [SPEC])[SPEC.key]
    pairs = entry.extra["drift_reference"]
    assert pairs["nominal_ms"] == nominal and len(pairs["reference_ms"]) == entry.n

    plain = create_backend("onnxruntime", cache_dir=tmp_path / "cache", protocol=QUICK)
    use_lut_drift_reference(plain, device)
    assert plain.protocol.drift_reference and plain.drift_reference_ms == nominal

    unreferenced = create_backend("onnxruntime", cache_dir=tmp_path / "cache", protocol=QUICK)
    other = profile_specs(store, unreferenced, "plain-laptop", []).device
    referenced = create_backend("onnxruntime", cache_dir=tmp_path / "cache", protocol=REFERENCED)
    with pytest.raises(ValueError, match="without a drift reference"):
        use_lut_drift_reference(referenced, other)
