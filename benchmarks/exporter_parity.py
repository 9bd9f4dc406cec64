"""exporter_parity: do ONNX Runtime micro-models exported by torch's TorchScript exporter run the
same graph as those of the dynamo exporter (the one deploy uses)? For every distinct OpSpec of
the chosen spaces: export both ways, let ONNX Runtime optimise each (all optimisations, the CPU
provider, as the profiler runs them), compare the optimised graphs node for node (op type,
domain, attributes, initializer shapes) and the outputs on one input; time both exports.

    python benchmarks/exporter_parity.py [--spaces fbnet-tiny,fbnet,...] [--tag TAG]

Writes benchmarks/results/exporter_parity{tag}.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import onnxruntime as ort
import torch
from _record import run_markdown, with_run

from lut.opspec import OpSpec
from profilers.base import cpu_model
from profilers.export import op_model, replace_all_zero_parameters
from profilers.onnx_graph import ExporterComparison, compare_exporters
from search.spaces.base import Architecture, SearchSpace, space_from_string, space_names

RESULTS = Path(__file__).resolve().parent / "results"


def compare_spec(spec: OpSpec, tmp: Path) -> dict[str, Any]:
    module, example = op_model(spec)
    return {"spec": spec.short(), "key": spec.key, **row(compare_exporters(module, example, tmp))}


def compare_network(space: SearchSpace, arch: Architecture, tmp: Path) -> dict[str, Any]:
    module = space.build(arch)
    replace_all_zero_parameters(module)  # as trained: dynamo drops a fresh network's zero biases
    example = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
    comparison = compare_exporters(module, example, tmp)
    return {"space": space.spec_string, "arch": arch.to_string(), **row(comparison)}


def row(c: ExporterComparison) -> dict[str, Any]:
    dynamo, torchscript = set(c.graphs["dynamo"]), set(c.graphs["torchscript"])
    return {
        "same_graph": c.same_graph,
        "nodes": len(c.graphs["dynamo"]),
        "max_abs_diff": c.max_abs_diff,
        "export_s": c.export_s,
        **(
            {}
            if c.same_graph
            else {
                "dynamo_only": sorted(dynamo - torchscript),
                "torchscript_only": sorted(torchscript - dynamo),
            }
        ),
    }


def distinct_specs(spaces: list[str]) -> list[OpSpec]:
    specs: dict[str, OpSpec] = {}
    for name in spaces:
        for spec in space_from_string(name).distinct_opspecs():
            if not spec.is_identity:
                specs.setdefault(spec.key, spec)
    return list(specs.values())


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# exporter_parity ({report['when']}, {report['cpu']}, torch {report['torch']}, "
        f"onnxruntime {report['onnxruntime']})",
        "",
        f"Spaces: {', '.join(report['spaces'])}.",
        "",
        "| models | same optimised ORT graph | largest output difference "
        "| dynamo export, median s | TorchScript export, median s | dynamo total s "
        "| TorchScript total s |",
        "|---|---|---|---|---|---|---|",
    ]
    differ = []
    for what, label in (("specs", "distinct non-identity OpSpecs"), ("networks", "networks")):
        rows = report[what]
        if not rows:
            continue
        dyn = [r["export_s"]["dynamo"] for r in rows]
        ts = [r["export_s"]["torchscript"] for r in rows]
        same = sum(r["same_graph"] for r in rows)
        lines.append(
            f"| {len(rows)} {label} | {same} of {len(rows)} "
            f"| {max(r['max_abs_diff'] for r in rows):.2e} | {statistics.median(dyn):.3f} "
            f"| {statistics.median(ts):.3f} | {sum(dyn):.1f} | {sum(ts):.1f} |"
        )
        differ += [r for r in rows if not r["same_graph"]]
    for r in differ[:20]:
        lines += [
            "",
            f"- {r.get('spec') or r['arch']}: dynamo only {r['dynamo_only']}; "
            f"TorchScript only {r['torchscript_only']}",
        ]
    return "\n".join(lines) + "\n"


def _log(i: int, n: int, what: str, row: dict[str, Any]) -> None:
    flag = "same" if row["same_graph"] else "DIFFERENT"
    print(f"[{i}/{n}] {what}: {flag}", file=sys.stderr, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--spaces", default=",".join(space_names()))
    p.add_argument("--no-specs", action="store_true", help="compare networks only")
    p.add_argument("--networks", type=int, default=3, help="random networks per space")
    p.add_argument("--tag", default="")
    args = p.parse_args()
    torch.set_num_threads(1)
    spaces = args.spaces.split(",")
    specs = [] if args.no_specs else distinct_specs(spaces)
    networks = [
        (space, arch)
        for space in map(space_from_string, spaces)
        for arch in space.iter_random(seed=0, count=args.networks)
    ]
    rows, network_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate(specs, 1):
            rows.append(compare_spec(spec, Path(tmp)))
            _log(i, len(specs), spec.short(), rows[-1])
        for i, (space, arch) in enumerate(networks, 1):
            network_rows.append(compare_network(space, arch, Path(tmp)))
            _log(i, len(networks), f"{space.spec_string} network", network_rows[-1])
    report = {
        "when": time.strftime("%Y-%m-%d"),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "spaces": spaces,
        "specs": rows,
        "networks": network_rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"exporter_parity{args.tag}.json").write_text(
        json.dumps(with_run(report), indent=1) + "\n"
    )
    (RESULTS / f"exporter_parity{args.tag}.md").write_text(
        f"{markdown(report).rstrip()}\n\n{run_markdown()}\n"
    )
    print(markdown(report))


if __name__ == "__main__":
    main()
