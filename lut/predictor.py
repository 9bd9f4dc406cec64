"""Latency prediction from a LUT: the sum of per-op entries, corrected for the runtime's fixed
costs, optionally calibrated on a few end-to-end measurements.

A LUT entry timed as a stand-alone micro-model by whole runs holds the op's compute *plus* one
`run()` call's overhead (dispatch, copying the input in and the output out). A whole network pays
that overhead once, and pays a (small) cost at each boundary between blocks instead. (Entries
timed by their kernels, alone or inside networks — `profilers.in_network` — hold no call
overhead, and in-network LUTs measure no between-block cost: it is inside their entries.) So:

    compute_i  = max(lut_i - overhead(io_bytes_i), 0)
    predicted  = alpha * sum(compute_i) + beta * n_ops + gamma

Uncalibrated: alpha = 1, beta = the measured between-block cost, gamma = overhead(network io).
Calibrated: (alpha, beta, gamma) >= 0 fitted by relative-error least squares on end-to-end runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lut.measurement import Measurement
from lut.opspec import OpSpec

FLOAT_BYTES = 4
KERNEL_TIMING = "kernels"  # Measurement.extra["timing"] of entries timed by the op's kernels
IN_NETWORK_TIMING = "in-network"  # ... of entries timed by the op's kernels inside networks


class MissingEntries(LookupError):
    """The LUT lacks entries the prediction needs; never replaced by a silent default."""

    def __init__(self, device: str, missing: Sequence[OpSpec]) -> None:
        self.missing = list(missing)
        listed = "; ".join(spec.short() for spec in self.missing[:5])
        more = f" (and {len(self.missing) - 5} more)" if len(self.missing) > 5 else ""
        super().__init__(
            f"LUT of device {device!r} lacks {len(self.missing)} op(s): {listed}{more}; "
            f"run `hwnas profile` for this space on that device"
        )


def io_megabytes(spec: OpSpec) -> float:
    return (math.prod(spec.input_shape) + math.prod(spec.output_shape)) * FLOAT_BYTES / 1e6


def needs_measurement(spec: OpSpec) -> bool:
    """Identity ops do no work in a fused network: they cost nothing and are never profiled."""
    return not spec.is_identity


@dataclass(frozen=True)
class FixedCosts:
    """Per-call overhead of the runtime (fitted on `add` micro-models of several sizes) and the
    extra cost of one boundary between blocks (from a chain of `add` ops). `reference_ms` is
    the drift reference's nominal latency when the LUT was measured with one (every entry is
    then in that unit: see `MeasureProtocol.drift_reference`), else None."""

    call_overhead_ms: float
    per_mb_ms: float
    between_blocks_ms: float = 0.0
    reference_ms: float | None = None

    def overhead_ms(self, megabytes: float) -> float:
        return self.call_overhead_ms + self.per_mb_ms * megabytes

    def entry_overhead_ms(self, spec: OpSpec, entry: Measurement) -> float:
        """What a LUT entry holds beyond the op's own cost: one call's overhead for a timed
        run of a micro-model, nothing for an entry timed by its kernels, stand-alone or inside
        networks (`extra.timing`)."""
        if entry.extra.get("timing") in (KERNEL_TIMING, IN_NETWORK_TIMING):
            return 0.0
        return self.overhead_ms(io_megabytes(spec))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FixedCosts:
        try:
            values = {k: float(data[k]) for k in ("call_overhead_ms", "per_mb_ms")}
            values["between_blocks_ms"] = float(data.get("between_blocks_ms", 0.0))
            reference = data.get("reference_ms")
            reference_ms = None if reference is None else float(reference)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad fixed costs {dict(data)!r}: {exc}") from None
        if not all(math.isfinite(v) for v in values.values()):
            raise ValueError("fixed costs must be finite numbers")
        if reference_ms is not None and not (math.isfinite(reference_ms) and reference_ms > 0):
            raise ValueError("fixed costs' reference_ms must be a positive number or null")
        return cls(**values, reference_ms=reference_ms)


NO_FIXED_COSTS = FixedCosts(0.0, 0.0, 0.0)


OP_FAMILIES = ("conv", "mbconv", "dwsep", "other")


def op_family(spec: OpSpec) -> str:
    """Ops whose in-network cost scales alike: plain convs, inverted residuals with an expand conv,
    depthwise-separable blocks (expansion 1, no expand conv), and the rest."""
    if spec.op == "conv":
        return "conv"
    if spec.op == "mbconv":
        has_expand = spec.mid_channels != spec.in_channels or spec.groups > 1
        return "mbconv" if has_expand else "dwsep"
    return "other"


@dataclass(frozen=True)
class Calibration:
    """predicted = Σ_family alphas[family] · compute_family + beta · n_ops + gamma."""

    alphas: dict[str, float]
    beta: float
    gamma: float
    n_points: int
    mape_before: float  # of the uncalibrated predictor on the fitting points, in percent
    mape_after: float
    form: str = ""  # the model form chosen by leave-one-out error, e.g. "one alpha + beta"
    mape_loo: float | None = None  # its leave-one-out error on the fitting points, in percent

    def alpha(self, family: str) -> float:
        return self.alphas.get(family, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        try:
            if "alphas" in data:
                alphas = {str(k): float(v) for k, v in dict(data["alphas"]).items()}
            else:  # one alpha for every family
                alphas = dict.fromkeys(OP_FAMILIES, float(data["alpha"]))
            return cls(
                alphas=alphas,
                beta=float(data["beta"]),
                gamma=float(data["gamma"]),
                n_points=int(data["n_points"]),
                mape_before=float(data.get("mape_before", math.nan)),
                mape_after=float(data.get("mape_after", math.nan)),
                form=str(data.get("form", ""))[:100],
                mape_loo=_optional_float(data.get("mape_loo")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad calibration {dict(data)!r}: {exc}") from None


@dataclass(frozen=True)
class Features:
    """What the predictor needs of one network: its LUT sum and the corrected terms."""

    raw_sum_ms: float
    compute_ms: float
    n_ops: int
    network_overhead_ms: float
    compute_by_family: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    latency_ms: float
    raw_sum_ms: float
    compute_ms: float
    n_ops: int
    calibrated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def features(
    specs: Sequence[OpSpec],
    lut: Mapping[str, Measurement],
    fixed: FixedCosts,
    *,
    device: str = "?",
) -> Features:
    """Sum the LUT over `specs`; raise MissingEntries naming every spec the LUT lacks."""
    measured = [spec for spec in specs if needs_measurement(spec)]
    missing = {spec.key: spec for spec in measured if spec.key not in lut}
    if missing:
        raise MissingEntries(device, list(missing.values()))
    raw = 0.0
    by_family = dict.fromkeys(OP_FAMILIES, 0.0)
    for spec in measured:
        latency = lut[spec.key].median_ms
        raw += latency
        entry = lut[spec.key]
        by_family[op_family(spec)] += max(latency - fixed.entry_overhead_ms(spec, entry), 0.0)
    net_io = 0.0
    if specs:
        first, last = specs[0], specs[-1]
        net_io = (math.prod(first.input_shape) + math.prod(last.output_shape)) * FLOAT_BYTES / 1e6
    return Features(
        raw, sum(by_family.values()), len(measured), fixed.overhead_ms(net_io), by_family
    )


def predict_from_features(
    feats: Features, fixed: FixedCosts, calibration: Calibration | None = None
) -> Prediction:
    if calibration is None:
        latency = feats.compute_ms + fixed.between_blocks_ms * feats.n_ops
        latency += feats.network_overhead_ms
    else:
        latency = sum(calibration.alpha(f) * c for f, c in feats.compute_by_family.items())
        latency += calibration.beta * feats.n_ops + calibration.gamma
    return Prediction(
        latency, feats.raw_sum_ms, feats.compute_ms, feats.n_ops, calibration is not None
    )


def predict(
    specs: Sequence[OpSpec],
    lut: Mapping[str, Measurement],
    fixed: FixedCosts | None = None,
    calibration: Calibration | None = None,
    *,
    device: str = "?",
) -> Prediction:
    fixed = fixed or NO_FIXED_COSTS
    return predict_from_features(features(specs, lut, fixed, device=device), fixed, calibration)


def op_cost_ms(
    spec: OpSpec,
    lut: Mapping[str, Measurement],
    fixed: FixedCosts,
    calibration: Calibration | None = None,
) -> float:
    """One op's additive share of `predict` (identities cost 0): the search's per-choice cost.
    For any network, Σ op_cost_ms + network_constant_ms == predict(...).latency_ms."""
    if not needs_measurement(spec):
        return 0.0
    if spec.key not in lut:
        raise MissingEntries("?", [spec])
    entry = lut[spec.key]
    compute = max(entry.median_ms - fixed.entry_overhead_ms(spec, entry), 0.0)
    if calibration is None:
        return compute + fixed.between_blocks_ms
    return calibration.alpha(op_family(spec)) * compute + calibration.beta


def network_constant_ms(
    first: OpSpec, last: OpSpec, fixed: FixedCosts, calibration: Calibration | None = None
) -> float:
    """The part of `predict` no op owns: one call's overhead, or the calibrated intercept."""
    if calibration is not None:
        return calibration.gamma
    net_io = (math.prod(first.input_shape) + math.prod(last.output_shape)) * FLOAT_BYTES / 1e6
    return fixed.overhead_ms(net_io)


def fit_calibration(
    points: Sequence[tuple[Features, float]], fixed: FixedCosts, *, per_family: bool = True
) -> Calibration:
    """Fit alphas, beta, gamma >= 0 minimising the squared *relative* error over (features,
    measured end-to-end ms) points with non-negative least squares.

    Several forms are fitted — one alpha for every op family or (with `per_family` and at least
    3 points per coefficient) one per family present, each with and without the per-op `beta`
    and the constant `gamma` — and the one with the smallest leave-one-out relative error on the
    points is kept (the simpler on a tie): with ~20 points the richest form fits the points
    best and new networks worse, which leave-one-out sees and a fit on all points does not
    (docs/measuring.md, "The calibration's form")."""
    import numpy as np

    if len(points) < 3:
        raise ValueError(
            f"a calibration needs at least 3 end-to-end measurements, got {len(points)}"
        )
    measured = np.array([m for _, m in points], dtype=float)
    if np.any(measured <= 0):
        raise ValueError("end-to-end latencies must be positive")
    present = [f for f in OP_FAMILIES if any(p.compute_by_family.get(f, 0) > 0 for p, _ in points)]
    groupings = [[present]]
    if per_family and len(present) > 1 and len(points) >= 3 * (len(present) + 2):
        groupings.append([[f] for f in present])
    forms = [
        _CalibrationForm(groups, beta, gamma)
        for groups in groupings
        for beta in (False, True)
        for gamma in (False, True)
    ]
    designs = [form.design(points) for form in forms]
    scored = [(forms[i].loo_mape(d, measured), i) for i, d in enumerate(designs)]
    loo, index = min(scored, key=lambda item: (round(item[0], 9), item[1]))
    best, design = forms[index], designs[index]
    coef = _fit_relative(design, measured)
    alphas = {f: float(coef[i]) for i, g in enumerate(best.groups) for f in g}
    n_alphas = len(best.groups)
    before = [predict_from_features(f, fixed).latency_ms for f, _ in points]
    after = design @ coef
    return Calibration(
        alphas=alphas,
        beta=float(coef[n_alphas]) if best.beta else 0.0,
        gamma=float(coef[-1]) if best.gamma else 0.0,
        n_points=len(points),
        mape_before=_mape(before, measured.tolist()),
        mape_after=_mape(after.tolist(), measured.tolist()),
        form=best.name,
        mape_loo=loo,
    )


@dataclass(frozen=True)
class _CalibrationForm:
    """One form of the calibration: which alphas (op families grouped), and whether beta
    (per op) and gamma (constant) are fitted or held at 0."""

    groups: list[list[str]]
    beta: bool
    gamma: bool

    @property
    def name(self) -> str:
        alphas = "one alpha" if len(self.groups) == 1 else "alpha per op family"
        return alphas + (" + beta" if self.beta else "") + (" + gamma" if self.gamma else "")

    def design(self, points: Sequence[tuple[Features, float]]) -> Any:
        import numpy as np

        rows = []
        for p, _ in points:
            row = [sum(p.compute_by_family.get(f, 0.0) for f in g) for g in self.groups]
            row += [float(p.n_ops)] if self.beta else []
            row += [1.0] if self.gamma else []
            rows.append(row)
        return np.array(rows, dtype=float)

    def loo_mape(self, design: Any, measured: Any) -> float:
        """Mean relative error (percent) of each point predicted by a fit on the others."""
        import numpy as np

        errors = []
        for i in range(len(measured)):
            keep = np.arange(len(measured)) != i
            coef = _fit_relative(design[keep], measured[keep])
            errors.append(abs(float(design[i] @ coef) / measured[i] - 1))
        return 100.0 * sum(errors) / len(errors)


def _fit_relative(design: Any, measured: Any) -> Any:
    """Non-negative coefficients minimising the squared relative error."""
    from scipy.optimize import nnls

    weights = 1.0 / measured
    coef, _ = nnls(design * weights[:, None], measured * weights)
    return coef


def _optional_float(value: Any) -> float | None:
    """None for a missing value; JSON (PostgreSQL's above all) has no NaN."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    errors = [abs(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    return 100.0 * sum(errors) / len(errors)
