"""predicted_vs_measured: for exported models, the latency the LUT predicts against the latency
measured end to end in each runtime on this machine — ONNX Runtime (fp32 and int8 files) and
LiteRT (fp32 and full-integer int8 files). fbnet-tiny (28×28×1, 10 classes) is profiled into an
ONNX Runtime LUT and a LiteRT LUT (fp32 micro-models; there is no int8 LUT, so the int8 rows
compare int8 files with the fp32 prediction, which is what a user without an int8 LUT sees).

The models are the results of the search benchmarks when their run directories exist under
--search-runs, else --models random architectures of the space; each is exported with
`export_architecture` (TFLite with NHWC input, as the LiteRT LUT's micro-models are) and every
file is timed in a fresh process with the profilers' protocol, pinned to one core.

    taskset -c 1 python benchmarks/predicted_vs_measured.py [--models 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _record import run_markdown, with_run

from deploy.arch_export import export_architecture
from deploy.measure import measure_exported
from lut.predictor import predict
from lut.store import LutStore
from profilers.base import cpu_model, create_backend
from profilers.protocol import QUICK
from profilers.runner import profile_specs
from search.spaces.base import parse_architecture, space_from_string

RESULTS = Path(__file__).resolve().parent / "results"
SPACE = "fbnet-tiny@r28_w1_c1_n10"
FORMATS = ["onnx", "onnx-int8", "tflite", "tflite-int8"]
LUT_OF = {
    "onnx": "onnxruntime",
    "onnx-int8": "onnxruntime",
    "tflite": "litert",
    "tflite-int8": "litert",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=6, help="how many models (6)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-deploy-bench/pvm"))
    p.add_argument("--search-runs", type=Path, default=Path("/tmp/hwnas-search-bench/runs"))
    p.add_argument("--quick", action="store_true", help="the quick protocol (a smoke run)")
    args = p.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    space = space_from_string(SPACE)
    store = LutStore(f"sqlite:///{args.workdir / 'bench.db'}")
    devices = {name: _profile(store, name, space, args) for name in ("onnxruntime", "litert")}
    archs, source = _models(space, args)
    rows = []
    for index, arch in enumerate(archs):
        rows += _model_rows(store, devices, arch, args.workdir / f"m{index}", args.quick)
        _write(rows, source, args)
    print((RESULTS / _name(args, "md")).read_text())
    return 0


def _profile(store: LutStore, backend_name: str, space: Any, args: argparse.Namespace) -> Any:
    backend = create_backend(
        backend_name,
        threads=1,
        cache_dir=args.workdir / "cache",
        protocol=QUICK if args.quick else None,
    )
    report = profile_specs(
        store,
        backend,
        f"bench-{backend_name}",
        space.distinct_opspecs(),
        on_start=lambda n: log(f"{backend_name}: profiling {n} ops") if n else None,
    )
    return report.device


def _models(space: Any, args: argparse.Namespace) -> tuple[list[str], str]:
    """The search benchmarks' results first, topped up with random architectures."""
    runs = sorted(args.search_runs.rglob("arch.json")) if args.search_runs.is_dir() else []
    found = sorted({json.loads(p.read_text())["arch"] for p in runs})
    found = [a for a in found if a.startswith(SPACE)][: args.models]
    extra = [a.to_string() for a in space.iter_random(seed=args.seed, count=args.models)]
    archs = (found + [a for a in extra if a not in found])[: args.models]
    source = (
        f"{len(found)} search benchmark results ({args.search_runs}) and "
        f"{len(archs) - len(found)} random architectures (seed {args.seed})"
    )
    return archs, source


def _model_rows(
    store: LutStore, devices: dict[str, Any], arch: str, out: Path, quick: bool
) -> list[dict[str, Any]]:
    log(f"exporting {arch}")
    files, errors, _ = export_architecture(arch, FORMATS, out, nhwc=True)
    space, parsed = parse_architecture(arch)
    specs = space.decode(parsed)
    example = space_example(space)
    rows = []
    for fmt, path in files.items():
        device = devices[LUT_OF[fmt]]
        predicted = predict(specs, store.lookup(device, specs), device.fixed_costs).latency_ms
        measured = measure_exported(LUT_OF[fmt], path, example, quick=quick)
        row = {
            "arch": arch,
            "format": fmt,
            "runtime": LUT_OF[fmt],
            "predicted_ms": predicted,
            "measured_ms": measured["median_ms"],
            "measured_p10_ms": measured["p10_ms"],
            "measured_p90_ms": measured["p90_ms"],
            "error_pct": 100 * (predicted - measured["median_ms"]) / measured["median_ms"],
            "bytes": path.stat().st_size,
        }
        log(f"  {fmt}: predicted {predicted:.4f} ms, measured {row['measured_ms']:.4f} ms")
        rows.append(row)
    rows += [{"arch": arch, "format": f, "error": e} for f, e in errors.items()]
    return rows


def space_example(space: Any) -> Any:
    import numpy as np

    return np.random.default_rng(0).standard_normal(space.input_shape).astype(np.float32)


def _name(args: argparse.Namespace, ext: str) -> str:
    return f"predicted_vs_measured{'_smoke' if args.quick else ''}.{ext}"


def _write(rows: list[dict[str, Any]], source: str, args: argparse.Namespace) -> None:
    summary = {}
    for fmt in FORMATS:
        errors = [abs(r["error_pct"]) for r in rows if r.get("format") == fmt and "error_pct" in r]
        if errors:
            summary[fmt] = {
                "models": len(errors),
                "mape_pct": statistics.fmean(errors),
                "max_abs_error_pct": max(errors),
                "within_10pct": sum(e <= 10 for e in errors),
            }
    report = {
        "benchmark": "predicted_vs_measured",
        "machine": cpu_model(),
        "space": SPACE,
        "models_from": source,
        "protocol": "quick" if args.quick else "default",
        "predictor": "uncalibrated (LUT + the device's fixed costs; no end-to-end calibration)",
        "rows": rows,
        "summary": summary,
        "load_average_1m": os.getloadavg()[0],  # other work on the machine inflates timings
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / _name(args, "json")).write_text(json.dumps(with_run(report), indent=1))
    (RESULTS / _name(args, "md")).write_text(f"{_markdown(report).rstrip()}\n\n{run_markdown()}\n")


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# predicted_vs_measured",
        "",
        f"{report['space']}, models: {report['models_from']}. Machine: {report['machine']}, "
        f"one pinned thread, {report['protocol']} protocol. Predictor: {report['predictor']}. "
        f"Load average when written: {report.get('load_average_1m', float('nan')):.1f} "
        "(a shared 2-core machine: other sessions' work ran alongside).",
        "",
        "| format (runtime) | models | mean abs error | max abs error | within ±10% |",
        "|---|---:|---:|---:|---:|",
    ]
    for fmt, s in report["summary"].items():
        lines.append(
            f"| {fmt} ({LUT_OF[fmt]}) | {s['models']} | {s['mape_pct']:.1f}% | "
            f"{s['max_abs_error_pct']:.1f}% | {s['within_10pct']}/{s['models']} |"
        )
    lines += [
        "",
        "| architecture | format | LUT-predicted ms | measured ms (p10–p90) | error |",
        "|---|---|---:|---:|---:|",
    ]
    for r in report["rows"]:
        choices = r["arch"].split(":", 1)[1]
        if "error" in r:
            lines.append(f"| {choices} | {r['format']} | — | not produced: {r['error']} | |")
            continue
        lines.append(
            f"| {choices} | {r['format']} | {r['predicted_ms']:.4f} | {r['measured_ms']:.4f} "
            f"({r['measured_p10_ms']:.4f}–{r['measured_p90_ms']:.4f}) | {r['error_pct']:+.1f}% |"
        )
    lines += [
        "",
        "int8 rows are predicted from the fp32 LUT of the same runtime (no int8 LUT exists): "
        "their error is mostly the int8 speed-up or slow-down itself.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
