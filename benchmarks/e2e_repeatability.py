"""e2e_repeatability: how well does an end-to-end measurement repeat on this machine?

No predictor can be shown to be within ±X% of measurements that do not repeat within ±X%. For
`--count` architectures already measured by `lut_accuracy` (its workdir database), this measures
each again now, `--sessions` times in fresh runtime sessions, and reports (a) the spread across
those back-to-back sessions and (b) the difference from the stored measurement taken earlier.
When the LUT was measured with a drift reference (`lut_accuracy --drift-reference`), every
measurement is paired with the reference and both figures are given for the raw timings and for
the referenced ones, from the same runs.

    python benchmarks/e2e_repeatability.py --backend onnxruntime --spaces fbnet-tiny,fbnet

Writes benchmarks/results/e2e_repeatability.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from _record import run_markdown, with_run

from lut.measurement import Measurement
from lut.store import LutStore, arch_key
from profilers.base import cpu_model, create_backend
from profilers.runner import use_lut_drift_reference
from search.spaces.base import space_from_string

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--spaces", default="fbnet-tiny,fbnet")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--sessions", type=int, default=5)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-bench"))
    p.add_argument("--tag", default="", help="suffix of the result files")
    args = p.parse_args()
    store = LutStore(f"sqlite:///{args.workdir / 'bench.db'}")
    backend = create_backend(args.backend, threads=1, cache_dir=args.workdir / "cache")
    device = store.resolve_device(f"bench-{args.backend}")
    use_lut_drift_reference(backend, device)
    rows = []
    for name in args.spaces.split(","):
        space = space_from_string(name)
        stored = dict(store.e2e_measurements(device, space.spec_string))
        example = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
        now: dict[str, list[list[float]]] = {"timed": [], "raw": []}
        earlier: dict[str, list[float]] = {"timed": [], "raw": []}
        for arch in space.iter_random(seed=1, count=args.count):
            text = arch.to_string()
            if text not in stored:
                continue
            net = space.build(arch)
            runs = [
                backend.measure_module(net, example, cache_key=f"net-{arch_key(text)}")
                for _ in range(args.sessions)
            ]
            now["timed"].append([m.median_ms for m in runs])
            earlier["timed"].append(stored[text].median_ms)
            if "drift_reference" in runs[0].extra:
                now["raw"].append([raw_median(m) for m in runs])
                if "drift_reference" in stored[text].extra:  # stored with its raw pairs
                    earlier["raw"].append(raw_median(stored[text]))
        row = {"space": space.spec_string, "n": len(now["timed"])}
        row.update(repeatability(now["timed"], earlier["timed"]))
        if now["raw"]:  # the timed figures above are the referenced ones
            row["referenced"] = True
            row["raw"] = repeatability(now["raw"], earlier["raw"])
        rows.append(row)
        print(json.dumps(rows[-1]), file=sys.stderr)
    meta = {"cpu": cpu_model(), "backend": args.backend, "date": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"e2e_repeatability{args.tag}.json").write_text(
        json.dumps(with_run({"meta": meta, "rows": rows}), indent=1)
    )
    lines = [
        f"# e2e_repeatability — {meta['cpu']}, {args.backend}, 1 thread, {meta['date']}",
        "",
        f"Each architecture measured {args.sessions}× back to back in fresh sessions, and compared "
        "with its measurement stored by an earlier `lut_accuracy` run. With a drift reference, "
        "'raw' rows are the same runs' plain timings.",
        "",
        "| space | timings | n | spread over back-to-back sessions (median) | vs earlier: median abs diff | vs earlier: within ±10% | vs earlier: signed median |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        label = "referenced" if r.get("referenced") else "plain"
        lines.append(table_row(r["space"], label, r["n"], r))
        if "raw" in r:
            lines.append(table_row(r["space"], "raw (same runs)", r["n"], r["raw"]))
    (RESULTS / f"e2e_repeatability{args.tag}.md").write_text(
        "\n".join([*lines, "", run_markdown()]) + "\n"
    )


def raw_median(m: Measurement) -> float:
    """The plain timing of a referenced measurement: the median of its raw runs."""
    return statistics.median(m.extra["drift_reference"]["raw_ms"])


def repeatability(sessions: list[list[float]], earlier: list[float]) -> dict[str, float]:
    """Spread over the sessions; difference from the earlier runs where there are as many."""
    spreads = [max(now) / min(now) - 1 for now in sessions]
    row = {"session_spread_median_pct": 100 * statistics.median(spreads)}
    if len(earlier) != len(sessions):
        return row
    drifts = [statistics.median(now) / e - 1 for now, e in zip(sessions, earlier, strict=True)]
    return {
        **row,
        "vs_earlier_median_abs_pct": 100 * statistics.median(abs(d) for d in drifts),
        "vs_earlier_within_10pct": sum(abs(d) <= 0.10 for d in drifts) / len(drifts),
        "vs_earlier_signed_median_pct": 100 * statistics.median(drifts),
    }


def table_row(space: str, label: str, n: int, r: dict[str, float]) -> str:
    if "vs_earlier_median_abs_pct" not in r:
        return f"| {space} | {label} | {n} | {r['session_spread_median_pct']:.1f}% | — | — | — |"
    return (
        f"| {space} | {label} | {n} | {r['session_spread_median_pct']:.1f}% | "
        f"{r['vs_earlier_median_abs_pct']:.1f}% | {100 * r['vs_earlier_within_10pct']:.0f}% | "
        f"{r['vs_earlier_signed_median_pct']:+.1f}% |"
    )


if __name__ == "__main__":
    main()
