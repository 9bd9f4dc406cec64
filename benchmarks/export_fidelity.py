"""export_fidelity: do the exported files behave like the PyTorch network? A child of fbnet-tiny
trained on mnist5k is exported to every format; per format: largest absolute logit difference
and top-1 agreement with PyTorch on the whole test split, test accuracy, and for int8 the
accuracy drop (goal ≤ 1 percentage point) and the size against the fp32 file.

    taskset -c 1 python benchmarks/export_fidelity.py [--epochs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from _record import run_markdown, with_run

from deploy.api import export_run
from deploy.testing import make_trained_run
from profilers.base import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"
FORMATS = ["onnx", "tflite", "onnx-int8", "tflite-int8", "tensorrt"]
# A mid-sized architecture of the space (kernels 3 and 5, expansions 1–6, a grouped block)
CHOICES = [
    "ir_k3_e6",
    "ir_k5_e3",
    "ir_k3_e1",
    "ir_k5_e6",
    "ir_k3_e1_g2",
    "ir_k5_e3",
    "ir_k3_e6",
    "skip",
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="training epochs of the child (3)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-deploy-bench"))
    args = p.parse_args()
    torch.set_num_threads(1)
    run_dir = args.workdir / f"fidelity-e{args.epochs}"
    if not (run_dir / "child.pt").exists():
        log(f"training fbnet-tiny on mnist5k for {args.epochs} epochs")
        make_trained_run(run_dir, epochs=args.epochs, choices=_fit(CHOICES))
    start = time.perf_counter()
    result = export_run(run_dir, FORMATS, on_event=lambda e: log(json.dumps(e)))
    card = result["card"]
    rows = [_row(name, card) for name in card["files"]]
    report = {
        "benchmark": "export_fidelity",
        "machine": cpu_model(),
        "arch": card["arch"],
        "dataset": card["dataset"],
        "epochs": args.epochs,
        "pytorch_test_accuracy": card["accuracy"].get("pytorch"),
        "formats": rows,
        "not_produced": result["errors"],
        "export_and_check_wall_s": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
        "affinity": sorted(os.sched_getaffinity(0)),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "export_fidelity.json").write_text(json.dumps(with_run(report), indent=1))
    (RESULTS / "export_fidelity.md").write_text(
        f"{_markdown(report).rstrip()}\n\n{run_markdown()}\n"
    )
    print(_markdown(report))
    return 0


def _fit(choices: list[str]) -> list[str]:
    """The fixed architecture, trimmed or padded with skips to the space's layer count."""
    from search.spaces.base import space_from_string

    count = len(space_from_string("fbnet-tiny").layers)
    return (choices + ["skip"] * count)[:count]


def _row(name: str, card: dict[str, Any]) -> dict[str, Any]:
    check = card["verification"].get(name, {})
    int8 = card["int8"].get(name, {})
    return {
        "format": name,
        "bytes": card["files"][name]["bytes"],
        "max_abs_diff": check.get("max_abs_diff"),
        "top1_agreement": check.get("top1_agreement"),
        "test_accuracy": card["accuracy"].get(name),
        "accuracy_drop_pp": int8.get("accuracy_drop_pp"),
        "size_ratio_vs_fp32": int8.get("size_ratio_vs_fp32"),
        "check": check.get("check"),
        "passed": check.get("passed"),
    }


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# export_fidelity",
        "",
        f"`{report['arch']}`, trained {report['epochs']} epochs on "
        f"{report['dataset']['name']}; PyTorch fp32 test accuracy "
        f"{100 * report['pytorch_test_accuracy']:.2f}% (1000 test images). Machine: "
        f"{report['machine']}.",
        "",
        "| format | size | max abs diff | top-1 agreement | test accuracy | int8 drop | size vs fp32 | check |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["formats"]:
        drop = "" if r["accuracy_drop_pp"] is None else f"{r['accuracy_drop_pp']:+.2f} pp"
        ratio = "" if r["size_ratio_vs_fp32"] is None else f"{r['size_ratio_vs_fp32']:.2f}×"
        lines.append(
            f"| {r['format']} | {r['bytes'] / 1024:.1f} KiB | {r['max_abs_diff']:.2e} | "
            f"{100 * r['top1_agreement']:.1f}% | {100 * r['test_accuracy']:.2f}% | {drop} | "
            f"{ratio} | {'pass' if r['passed'] else 'FAIL'}: {r['check']} |"
        )
    for message in report["not_produced"].values():
        lines.append(f"\nNot produced: {message}")
    lines += [
        "",
        "int8 drop = PyTorch fp32 accuracy − the int8 file's accuracy on the same test split "
        "(negative: the int8 file scored higher). Both int8 files are calibrated on 256 "
        "training images (min-max ranges, per-channel symmetric weights); the TFLite one is "
        "full-integer (int8 input and output).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
