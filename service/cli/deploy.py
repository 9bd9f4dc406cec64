"""`hwnas export`, `hwnas verify`, `hwnas classify`, `hwnas card`: deployable files from a search
run (or from an architecture with random weights), their numerical checks, classifying images
with them, and the model card."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from service.cli.common import (
    EnvironmentProblem,
    UsageProblem,
    print_json_line,
    stderr,
)

DEFAULT_FORMATS = "onnx,tflite,onnx-int8,tflite-int8"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a search run's model (or an architecture) to ONNX, TFLite, int8, TensorRT",
        description="Export the trained child of --run DIR into DIR/export/, check each file "
        "against PyTorch on the run's test split, time it on this machine and write the model "
        "card (DIR/card.json, DIR/card.md). With --arch, export an architecture with random "
        "weights (for latency work) to -o.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, metavar="DIR", help="a search run directory")
    source.add_argument("--arch", metavar="ARCH", help="an architecture string or arch.json")
    p.add_argument(
        "--format",
        default=DEFAULT_FORMATS,
        help=f"comma-separated: onnx, tflite, onnx-int8, tflite-int8, tensorrt "
        f"(default {DEFAULT_FORMATS})",
    )
    p.add_argument(
        "-o", "--output", type=Path, help="with --arch: the file (one format) or directory"
    )
    p.add_argument(
        "--input",
        dest="pixels",
        choices=["float", "uint8"],
        default="float",
        help="what the files take: float pixels in [0, 1] (default) or raw uint8 0..255 (the "
        "natural input of a microcontroller or NPU); the train split's normalisation is inside "
        "the files either way",
    )
    p.add_argument("--nhwc", action="store_true", help="TFLite files with NHWC input/output")
    p.add_argument("--dynamic-batch", action="store_true", help="ONNX files with a free batch")
    p.add_argument(
        "--tensorrt-precision", default="fp16", choices=["fp16", "int8", "fp32"], help="(fp16)"
    )
    p.add_argument("--seed", type=int, default=0, help="with --arch: seed of the random weights")
    p.add_argument("--quick", action="store_true", help="a fast, looser timing protocol")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=run_export)

    p = sub.add_parser("verify", help="re-run every numerical check of a run's exported files")
    p.add_argument("--run", type=Path, metavar="DIR", required=True, help="a search run directory")
    p.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    p.set_defaults(handler=run_verify)

    p = sub.add_parser(
        "classify",
        help="classify image files or an .npz with a run's exported file (not PyTorch)",
        description="Run one exported file of --run DIR in its own runtime (ONNX Runtime or "
        "LiteRT) on image files or an .npz (x, optional y), preparing the pixels as DIR/card.json "
        "states, and print each image's top-k classes with softmax scores; with labels (y), "
        "also the accuracy.",
    )
    p.add_argument("--run", type=Path, metavar="DIR", required=True, help="an exported run")
    p.add_argument("--format", help="which exported file (default: the card's first, e.g. onnx)")
    p.add_argument("--top-k", type=int, default=3, help="classes per image (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE", help="image files or .npz")
    p.set_defaults(handler=run_classify)

    p = sub.add_parser("card", help="write and print a run's model card (markdown)")
    p.add_argument("--run", type=Path, metavar="DIR", required=True, help="a search run directory")
    p.add_argument("--json", action="store_true", help="print card.json instead of card.md")
    p.add_argument("--quick", action="store_true", help="a fast, looser timing protocol")
    p.set_defaults(handler=run_card)


def progress_event(event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "export":
        detail = event.get("error") or event.get("path") or ""
        stderr.print(f"export {event['format']}: {event['state']} {detail}".rstrip())
    elif kind in ("verify", "measure"):
        stderr.print(f"{kind} {event['format']}")


def run_export(args: argparse.Namespace) -> int:
    from deploy.api import DeployError, export_run

    if args.arch is not None:
        if args.pixels != "float":
            raise UsageProblem("--input goes with --run: --arch files take float pixels")
        return _export_arch(args)
    if args.output is not None:
        raise UsageProblem("-o/--output goes with --arch; a run exports into DIR/export/")
    try:
        result = export_run(
            args.run,
            args.format.split(","),
            on_event=progress_event,
            nhwc=args.nhwc,
            dynamic_batch=args.dynamic_batch,
            tensorrt_precision=args.tensorrt_precision,
            quick=args.quick,
            pixels=args.pixels,
        )
    except DeployError as exc:
        raise UsageProblem(str(exc)) from None
    _report(result["files"], result["errors"], result["card"].get("verification", {}), args.json)
    if not args.json:
        _line(f"model card: {args.run / 'card.md'}")
    return 1 if result["errors"] else 0


def _export_arch(args: argparse.Namespace) -> int:
    from deploy.api import DeployError
    from deploy.arch_export import export_architecture

    try:
        files, errors, checks = export_architecture(
            args.arch,
            args.format.split(","),
            args.output,
            seed=args.seed,
            nhwc=args.nhwc,
            dynamic_batch=args.dynamic_batch,
            tensorrt_precision=args.tensorrt_precision,
            on_event=progress_event,
        )
    except DeployError as exc:
        raise UsageProblem(str(exc)) from None
    _report(files, errors, checks, args.json)
    return 1 if errors else 0


def _report(
    files: dict[str, Path], errors: dict[str, str], checks: dict[str, Any], as_json: bool
) -> None:
    if as_json:
        print_json_line(
            {"files": {k: str(v) for k, v in files.items()}, "errors": errors, "checks": checks}
        )
    else:
        for name, path in files.items():
            check = checks.get(name) or {}
            verdict = ""
            if check:
                verdict = (
                    f"  max abs diff {check['max_abs_diff']:.2e}, top-1 agreement "
                    f"{100 * check['top1_agreement']:.1f}%, "
                    f"{'pass' if check['passed'] else 'FAIL'} ({check['check']})"
                )
            _line(f"{name}: {path}{verdict}")
    for message in errors.values():
        sys.stderr.write(f"hwnas: error: {message}\n")


def run_verify(args: argparse.Namespace) -> int:
    from deploy.api import DeployError, verify_run
    from deploy.verify import failures

    try:
        checks = verify_run(args.run, on_event=progress_event)
    except DeployError as exc:
        raise UsageProblem(str(exc)) from None
    if args.json:
        print_json_line(checks)
    else:
        for name, check in checks.items():
            _line(
                f"{name}: max abs diff {check['max_abs_diff']:.2e}, top-1 agreement "
                f"{100 * check['top1_agreement']:.1f}%, accuracy {100 * check['accuracy']:.2f}% "
                f"(PyTorch {100 * check['reference_accuracy']:.2f}%): "
                f"{'pass' if check['passed'] else 'FAIL'} ({check['check']})"
            )
    failed = failures({name: {"verification": check} for name, check in checks.items()})
    if failed:
        raise EnvironmentProblem("verification failed: " + "; ".join(failed))
    return 0


def run_classify(args: argparse.Namespace) -> int:
    from deploy.api import DeployError
    from deploy.classify import classify

    try:
        for record in classify(args.run, args.format, args.inputs, top_k=args.top_k):
            if args.json:
                print_json_line(record)
            elif "summary" in record:
                summary = record["summary"]
                _line(
                    f"{summary['format']}: accuracy {100 * summary['accuracy']:.2f}% on "
                    f"{summary['images']} labelled images"
                )
            else:
                tops = ", ".join(f"{t['class']} ({t['score']:.3f})" for t in record["top"])
                label = f"  [label {record['label']}]" if "label" in record else ""
                _line(f"{record['input']}: {tops}{label}")
    except DeployError as exc:
        raise UsageProblem(str(exc)) from None
    return 0


def run_card(args: argparse.Namespace) -> int:
    from deploy.api import DeployError, write_card

    try:
        card = write_card(args.run, quick=args.quick)
    except DeployError as exc:
        raise UsageProblem(str(exc)) from None
    if args.json:
        sys.stdout.write(json.dumps(card, indent=1) + "\n")
    else:
        sys.stdout.write((args.run / "card.md").read_text())
    return 0


def _line(text: str) -> None:
    sys.stdout.write(text + "\n")
