"""The predictor on hand-computed numbers: LUT sums, fixed costs, calibration, missing entries."""

from __future__ import annotations

import pytest

from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import (
    FixedCosts,
    MissingEntries,
    features,
    fit_calibration,
    io_megabytes,
    predict,
)

A = OpSpec(op="conv", in_channels=1, out_channels=250, height=10, width=10)  # 0.1004 MB of I/O
B = OpSpec(op="pool", in_channels=250, out_channels=250, height=10, width=10)
IDENTITY = OpSpec(op="skip", in_channels=250, out_channels=250, height=10, width=10)


def _lut(**medians: float) -> dict[str, Measurement]:
    specs = {"A": A, "B": B}
    return {specs[k].key: Measurement.from_samples([v] * 7, warmup=0) for k, v in medians.items()}


def test_raw_sum_without_fixed_costs() -> None:
    p = predict([A, IDENTITY, B], _lut(A=1.0, B=0.5))
    assert p.raw_sum_ms == 1.5 and p.latency_ms == 1.5 and p.n_ops == 2


def test_fixed_costs_are_paid_once_per_network() -> None:
    fixed = FixedCosts(call_overhead_ms=0.1, per_mb_ms=1.0, between_blocks_ms=0.01)
    assert io_megabytes(A) == pytest.approx((100 + 25000) * 4 / 1e6)
    p = predict([A, B], _lut(A=1.0, B=0.5), fixed)
    overhead_a = 0.1 + io_megabytes(A)
    overhead_b = 0.1 + io_megabytes(B)
    network_io = (100 + 250) * 4 / 1e6
    expected = (1.0 - overhead_a) + (0.5 - overhead_b) + 2 * 0.01 + (0.1 + network_io)
    assert p.latency_ms == pytest.approx(expected)
    assert p.raw_sum_ms == 1.5


def test_missing_entries_are_named_never_defaulted() -> None:
    with pytest.raises(MissingEntries, match=r"lacks 1 op\(s\): pool") as info:
        predict([A, B], _lut(A=1.0), device="pi")
    assert info.value.missing == [B]


def test_calibration_recovers_a_linear_truth() -> None:
    fixed = FixedCosts(0.0, 0.0, 0.0)
    points = []
    for a, b in [(1.0, 0.5), (2.0, 0.1), (0.3, 0.9), (4.0, 2.0), (1.5, 1.5)]:
        f = features([A, B], _lut(A=a, B=b), fixed)
        points.append((f, 0.9 * (a + b) + 0.05))  # truth: alpha 0.9, gamma 0.05
    cal = fit_calibration(points, fixed)
    assert cal.alpha("conv") == pytest.approx(0.9, rel=1e-6)
    assert cal.beta + cal.gamma / 2 == pytest.approx(0.025, abs=1e-6)  # n_ops is constant here
    assert cal.mape_after < 1e-6 < cal.mape_before
    p = predict([A, B], _lut(A=3.0, B=1.0), fixed, cal)
    assert p.calibrated and p.latency_ms == pytest.approx(0.9 * 4.0 + 0.05)


def test_calibration_needs_three_points() -> None:
    f = features([A, B], _lut(A=1.0, B=1.0), FixedCosts(0, 0, 0))
    with pytest.raises(ValueError, match="at least 3"):
        fit_calibration([(f, 1.0), (f, 2.0)], FixedCosts(0, 0, 0))


@pytest.mark.parametrize("calibrated", [False, True])
def test_per_op_costs_add_up_to_the_prediction(calibrated: bool) -> None:
    from lut.predictor import Calibration, network_constant_ms, op_cost_ms

    fixed = FixedCosts(call_overhead_ms=0.01, per_mb_ms=0.5, between_blocks_ms=0.002)
    alphas = {"conv": 0.8, "other": 1.2}
    cal = Calibration(alphas, 0.003, 0.02, 10, 5.0, 2.0) if calibrated else None
    lut = _lut(A=1.0, B=0.5)
    specs = [A, IDENTITY, B]
    total = sum(op_cost_ms(s, lut, fixed, cal) for s in specs)
    total += network_constant_ms(specs[0], specs[-1], fixed, cal)
    assert total == pytest.approx(predict(specs, lut, fixed, cal).latency_ms)


def test_per_family_calibration_recovers_different_scales() -> None:
    import random

    fixed = FixedCosts(0.0, 0.0, 0.0)
    rng = random.Random(0)
    points = []
    for _ in range(16):
        a, b = rng.uniform(0.1, 3), rng.uniform(0.1, 3)
        f = features([A, B], _lut(A=a, B=b), fixed)
        points.append((f, 0.8 * a + 1.3 * b + 0.02))  # conv scaled 0.8, pool ("other") 1.3
    cal = fit_calibration(points, fixed)
    assert cal.alpha("conv") == pytest.approx(0.8, rel=1e-4)
    assert cal.alpha("other") == pytest.approx(1.3, rel=1e-4)
    single = fit_calibration(points, fixed, per_family=False)
    assert single.alpha("conv") == single.alpha("other")
    assert cal.mape_after < single.mape_after


def test_calibration_form_is_chosen_by_leave_one_out_error() -> None:
    """A pure scale measured with noise: terms the truth lacks fit the points better and new
    networks worse, so leave-one-out keeps the alpha alone; a real constant keeps gamma."""
    import random

    fixed = FixedCosts(0.0, 0.0, 0.0)
    rng = random.Random(1)
    scaled, offset = [], []
    for _ in range(20):
        a, b = rng.uniform(0.5, 3), rng.uniform(0.5, 3)
        f = features([A, B], _lut(A=a, B=b), fixed)
        noise = 1 + rng.uniform(-0.03, 0.03)
        scaled.append((f, 1.1 * (a + b) * noise))
        offset.append((f, (0.7 * (a + b) + 1.0) * noise))
    cal = fit_calibration(scaled, fixed, per_family=False)
    assert (cal.form, cal.beta, cal.gamma) == ("one alpha", 0.0, 0.0)
    assert cal.alpha("conv") == pytest.approx(1.1, rel=0.02)
    assert 0 < cal.mape_loo < 3
    with_constant = fit_calibration(offset, fixed, per_family=False)
    assert with_constant.form != "one alpha"
    assert with_constant.beta * 2 + with_constant.gamma == pytest.approx(1.0, rel=0.1)
