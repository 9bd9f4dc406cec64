"""e2e_repeatability: how well does an end-to-end measurement repeat on this machine?

No predictor can be shown to be within ±X% of measurements that do not repeat within ±X%. For
`--count` architectures already measured by `lut_accuracy` (its workdir database), this measures
each again now, `--sessions` times in fresh runtime sessions, and reports (a) the spread across
those back-to-back sessions and (b) the difference from the stored measurement taken earlier.

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

from lut.store import LutStore, arch_key
from profilers.base import cpu_model, create_backend
from search.spaces.base import space_from_string

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--spaces", default="fbnet-tiny,fbnet")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--sessions", type=int, default=5)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-bench"))
    args = p.parse_args()
    store = LutStore(f"sqlite:///{args.workdir / 'bench.db'}")
    backend = create_backend(args.backend, threads=1, cache_dir=args.workdir / "cache")
    device = store.resolve_device(f"bench-{args.backend}")
    rows = []
    for name in args.spaces.split(","):
        space = space_from_string(name)
        stored = dict(store.e2e_measurements(device, space.spec_string))
        example = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
        spreads, drifts = [], []
        for arch in space.iter_random(seed=1, count=args.count):
            text = arch.to_string()
            if text not in stored:
                continue
            net = space.build(arch)
            now = [
                backend.measure_module(net, example, cache_key=f"net-{arch_key(text)}").median_ms
                for _ in range(args.sessions)
            ]
            spreads.append(max(now) / min(now) - 1)
            drifts.append(statistics.median(now) / stored[text].median_ms - 1)
        rows.append(
            {
                "space": space.spec_string,
                "n": len(drifts),
                "session_spread_median_pct": 100 * statistics.median(spreads),
                "vs_earlier_median_abs_pct": 100 * statistics.median(abs(d) for d in drifts),
                "vs_earlier_within_10pct": sum(abs(d) <= 0.10 for d in drifts) / len(drifts),
                "vs_earlier_signed_median_pct": 100 * statistics.median(drifts),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    meta = {"cpu": cpu_model(), "backend": args.backend, "date": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "e2e_repeatability.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1)
    )
    lines = [
        f"# e2e_repeatability — {meta['cpu']}, {args.backend}, 1 thread, {meta['date']}",
        "",
        f"Each architecture measured {args.sessions}× back to back in fresh sessions, and compared "
        "with its measurement stored by an earlier `lut_accuracy` run.",
        "",
        "| space | n | spread over back-to-back sessions (median) | vs earlier: median abs diff | vs earlier: within ±10% | vs earlier: signed median |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['space']} | {r['n']} | {r['session_spread_median_pct']:.1f}% | "
        f"{r['vs_earlier_median_abs_pct']:.1f}% | {100 * r['vs_earlier_within_10pct']:.0f}% | "
        f"{r['vs_earlier_signed_median_pct']:+.1f}% |"
        for r in rows
    ]
    (RESULTS / "e2e_repeatability.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
