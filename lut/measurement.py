"""Measurement: latency statistics of one timed object (an OpSpec or a whole network)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """Robust statistics over raw per-run latencies (milliseconds). Raw samples are kept."""

    samples_ms: tuple[float, ...]
    warmup: int
    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    std_ms: float
    n: int
    ci_rel: float  # half-width of the ~95% confidence interval of the median, / median
    peak_memory_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_samples(
        cls,
        samples_ms: Sequence[float],
        *,
        warmup: int,
        peak_memory_bytes: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Measurement:
        if not samples_ms:
            raise ValueError("a measurement needs at least one sample")
        data = sorted(float(s) for s in samples_ms)
        median = statistics.median(data)
        return cls(
            samples_ms=tuple(float(s) for s in samples_ms),
            warmup=warmup,
            median_ms=median,
            mean_ms=statistics.fmean(data),
            p10_ms=quantile(data, 0.10),
            p90_ms=quantile(data, 0.90),
            std_ms=statistics.pstdev(data) if len(data) > 1 else 0.0,
            n=len(data),
            ci_rel=median_ci_rel(data),
            peak_memory_bytes=peak_memory_bytes,
            extra=dict(extra or {}),
        )

    @classmethod
    def pooled(cls, runs: Sequence[Measurement]) -> Measurement:
        """One measurement of several runs of the same thing (measuring rounds): their samples
        pooled, each run's median kept in `extra["rounds_median_ms"]`, drift-reference pairs
        concatenated, the peak memory the largest."""
        if len(runs) == 1:
            return runs[0]
        extra = {**runs[0].extra, "rounds_median_ms": [m.median_ms for m in runs]}
        pairs: list[dict[str, Any]] = [m.extra.get("drift_reference") or {} for m in runs]
        if all("raw_ms" in p for p in pairs):
            extra["drift_reference"] = {
                **pairs[0],
                "raw_ms": [x for p in pairs for x in p["raw_ms"]],
                "reference_ms": [x for p in pairs for x in p.get("reference_ms", [])],
            }
        peaks = [m.peak_memory_bytes for m in runs if m.peak_memory_bytes is not None]
        return cls.from_samples(
            [x for m in runs for x in m.samples_ms],
            warmup=runs[0].warmup,
            peak_memory_bytes=max(peaks) if peaks else None,
            extra=extra,
        )

    @property
    def cv(self) -> float:
        """Coefficient of variation (std / mean)."""
        return self.std_ms / self.mean_ms if self.mean_ms > 0 else 0.0

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "median_ms": self.median_ms,
            "mean_ms": self.mean_ms,
            "p10_ms": self.p10_ms,
            "p90_ms": self.p90_ms,
            "std_ms": self.std_ms,
            "n": self.n,
            "warmup": self.warmup,
            "ci_rel": self.ci_rel,
            "peak_memory_bytes": self.peak_memory_bytes,
            "extra": self.extra if samples else _without_paired_samples(self.extra),
        }
        if samples:
            data["samples_ms"] = list(self.samples_ms)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        """Rebuild from raw samples (statistics are recomputed, never trusted from the input)."""
        samples = data.get("samples_ms")
        if not isinstance(samples, list) or not samples:
            raise ValueError("a measurement needs a non-empty list 'samples_ms'")
        if not all(isinstance(s, int | float) and math.isfinite(s) and s >= 0 for s in samples):
            raise ValueError("'samples_ms' must hold finite non-negative numbers")
        warmup = data.get("warmup", 0)
        peak = data.get("peak_memory_bytes")
        if not isinstance(warmup, int) or warmup < 0:
            raise ValueError("'warmup' must be a non-negative integer")
        if peak is not None and (not isinstance(peak, int) or peak < 0):
            raise ValueError("'peak_memory_bytes' must be a non-negative integer or null")
        extra = data.get("extra") or {}
        if not isinstance(extra, dict):
            raise ValueError("'extra' must be an object")
        return cls.from_samples(samples, warmup=warmup, peak_memory_bytes=peak, extra=extra)


def _without_paired_samples(extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` with a drift reference's raw sample pairs summarised by their medians."""
    pairs = extra.get("drift_reference")
    if not isinstance(pairs, dict) or "raw_ms" not in pairs:
        return extra
    summary = {
        "nominal_ms": pairs.get("nominal_ms"),
        "raw_median_ms": statistics.median(pairs["raw_ms"]) if pairs["raw_ms"] else None,
        "reference_median_ms": (
            statistics.median(pairs["reference_ms"]) if pairs.get("reference_ms") else None
        ),
    }
    return {**extra, "drift_reference": summary}


def quantile(sorted_data: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted data."""
    if len(sorted_data) == 1:
        return float(sorted_data[0])
    pos = q * (len(sorted_data) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(sorted_data) - 1)
    return float(sorted_data[low] + (sorted_data[high] - sorted_data[low]) * (pos - low))


def median_ci_rel(sorted_data: Sequence[float]) -> float:
    """Relative half-width of a distribution-free ~95% CI of the median (order statistics at
    n/2 ± 1.96·√n/2), so the stopping rule does not assume normal latencies."""
    n = len(sorted_data)
    median = statistics.median(sorted_data)
    if n < 6 or median <= 0:
        return math.inf
    half = 1.96 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half))
    high = min(n - 1, math.ceil(n / 2 + half))
    return (sorted_data[high] - sorted_data[low]) / 2 / median
