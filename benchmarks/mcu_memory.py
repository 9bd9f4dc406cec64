"""mcu_memory: how well are a network's SRAM (TFLite Micro's tensor arena) and flash predicted
on the emulated Cortex-M4?

For `--archs` random architectures of each space, the network is converted to int8 and run by
the profiling firmware (the arena TFLM reports after AllocateTensors()), and its `c-array`
project (the model as a const array plus a TFLM main.cc registering exactly its operators) is
built for the M4 (the flash it links: text + data). Compared with:

- the prediction from the int8 file (`deploy.mcu_memory.file_memory`: the arena replayed from
  TFLM's allocator and greedy planner, the flash from the file and the operators' code);
- the prediction composed from the ops' micro-models in the LUT (`deploy.mcu_memory.compose`,
  what `hwnas predict` and the search's SRAM / flash budgets use): meant as an upper bound.

Every op micro-model profiled on the way is checked the same way (predicted vs reported arena).
The operators' code table in `deploy/mcu_memory.py` is measured again and compared.

    python benchmarks/mcu_memory.py --spaces mcunet@r64_w0.35,mcunet@r96_w0.5 --archs 8

Writes benchmarks/results/mcu_memory.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _record import run_markdown, with_run

from deploy.mcu_memory import CODE_TABLE, compose, file_memory, file_operators
from deploy.tflm_arena import predict_arena
from lut.store import arch_key
from profilers.backends.mcu_backend import McuBackend
from profilers.e2e import example_input
from profilers.mcu.flash import operator_code, program_flash_bytes
from search.spaces.base import space_from_string

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spaces", default="mcunet@r64_w0.35,mcunet@r96_w0.5")
    p.add_argument("--archs", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-bench-mcu"))
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    backend = McuBackend(cache_dir=args.workdir / "cache")
    started = time.perf_counter()
    code = operator_code(backend.core, list(CODE_TABLE["own"]))
    code_s = time.perf_counter() - started
    ops: dict[str, dict[str, Any]] = {}
    spaces = [measure_space(backend, name, args, ops) for name in args.spaces.split(",")]
    result = with_run(
        {
            "firmware": backend.firmware.fingerprint,
            "code_table": {
                "measured": code,
                "equals_the_repository_table": code == CODE_TABLE,
                "seconds": round(code_s, 1),
            },
            "op_micro_models": summarise_ops(list(ops.values())),
            "spaces": spaces,
        }
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mcu_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "mcu_memory.md").write_text(markdown(result))
    print(markdown(result))


def measure_space(
    backend: McuBackend, name: str, args: argparse.Namespace, ops: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    space = space_from_string(name)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    uncovered: list[dict[str, str]] = []
    for arch in space.iter_random(seed=args.seed, count=args.archs):
        specs = [s for s in space.decode(arch) if not s.is_identity]
        extras = [measure_op(backend, spec, ops) for spec in specs]
        key = f"mcu-bench-{arch_key(arch.to_string())}"
        measured = backend.measure_module(space.build(arch), example_input(space), cache_key=key)
        path = backend.cache_dir / f"{key}.int8.tflite"
        try:
            rows.append(network_row(backend, arch.to_string(), path, measured.extra, extras))
        except ValueError as exc:  # an operator the arena model does not cover
            uncovered.append({"arch": arch.to_string(), "reason": str(exc)})
            continue
        print(json.dumps(rows[-1]), flush=True)
    return {
        "space": space.spec_string,
        "seconds": round(time.perf_counter() - started, 1),
        **(summarise(rows) if rows else {}),
        "archs": rows,
        "not_covered": uncovered,
    }


def measure_op(backend: McuBackend, spec: Any, ops: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The op's micro-model measured (cached) and its predicted arena checked."""
    if spec.key not in ops:
        extra = dict(backend.measure_op(spec).extra)
        path = backend.cache_dir / f"{spec.key}.int8.tflite"
        try:
            extra["predicted_arena_bytes"] = predict_arena(path).arena_bytes
        except ValueError as exc:
            extra["not_covered"] = str(exc)
        ops[spec.key] = extra
    return ops[spec.key]


def network_row(
    backend: McuBackend,
    arch: str,
    path: Path,
    measured: dict[str, Any],
    extras: list[dict[str, Any]],
) -> dict[str, Any]:
    predicted = file_memory(path)
    composed = compose(extras)
    flash = program_flash_bytes(backend.core, path.read_bytes(), file_operators(path))
    return {
        "arch": arch,
        "measured_arena_bytes": measured["arena_bytes"],
        "predicted_arena_bytes": predicted.sram_bytes,
        "composed_arena_bytes": composed.sram_bytes,
        "arena_head_bytes": predicted.arena_head_bytes,
        "arena_tail_bytes": predicted.arena_tail_bytes,
        "composed_head_bytes": composed.arena_head_bytes,
        "composed_tail_bytes": composed.arena_tail_bytes,
        "model_bytes": measured["model_bytes"],
        "measured_flash_bytes": flash,
        "predicted_flash_bytes": predicted.flash_bytes,
        "composed_flash_bytes": composed.flash_bytes,
        "operators": list(predicted.operators),
    }


def _ratios(rows: list[dict[str, Any]], what: str, of: str) -> list[float]:
    return [r[what] / r[of] for r in rows]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kind in ("arena", "flash"):
        measured = f"measured_{kind}_bytes"
        exact = [r[f"predicted_{kind}_bytes"] == r[measured] for r in rows]
        never_below = [r[f"predicted_{kind}_bytes"] >= r[measured] for r in rows]
        composed = _ratios(rows, f"composed_{kind}_bytes", measured)
        result[kind] = {
            "exact": sum(exact) / len(rows),
            "never_below": sum(never_below) / len(rows),
            "median_ratio_predicted": round(
                statistics.median(_ratios(rows, f"predicted_{kind}_bytes", measured)), 5
            ),
            "composed_never_below": sum(x >= 1 for x in composed) / len(rows),
            "median_ratio_composed": round(statistics.median(composed), 4),
            "max_ratio_composed": round(max(composed), 4),
        }
    return result


def summarise_ops(ops: list[dict[str, Any]]) -> dict[str, Any]:
    covered = [o for o in ops if "predicted_arena_bytes" in o]
    exact = [o["predicted_arena_bytes"] == o["arena_bytes"] for o in covered]
    return {
        "count": len(ops),
        "covered": len(covered),
        "arena_exact": sum(exact) / len(covered) if covered else None,
        "not_covered": sorted({o["not_covered"] for o in ops if "not_covered" in o}),
    }


def markdown(result: dict[str, Any]) -> str:
    code = result["code_table"]
    ops = result["op_micro_models"]
    lines = [
        "# mcu_memory",
        "",
        "Emulated Cortex-M4 (TFLM + CMSIS-NN). Arena: `arena_used_bytes()` after "
        "AllocateTensors(); flash: text + data of the network's c-array project.",
        "",
        f"Op micro-models: {ops['count']}, {ops['covered']} covered by the arena model, "
        f"predicted arena exact for {ops['arena_exact']:.0%} of those. "
        f"Operator code table re-measured in {code['seconds']} s, equal to the repository's: "
        f"{code['equals_the_repository_table']}.",
        "",
        "| space | archs | what | exact | never below | median predicted/measured | "
        "composed never below | median composed/measured | max composed/measured |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["spaces"]:
        if not s["archs"]:
            continue
        for kind in ("arena", "flash"):
            k = s[kind]
            lines.append(
                f"| {s['space']} | {len(s['archs'])} | {kind} | {k['exact']:.0%} | "
                f"{k['never_below']:.0%} | {k['median_ratio_predicted']} | "
                f"{k['composed_never_below']:.0%} | {k['median_ratio_composed']} | "
                f"{k['max_ratio_composed']} |"
            )
    skipped = [f"- {s['space']}: {len(s['not_covered'])} architectures not covered "
               f"({s['not_covered'][0]['reason']})" for s in result["spaces"] if s["not_covered"]]  # fmt: skip
    if skipped:
        lines += ["", *skipped]
    return "\n".join([*lines, "", run_markdown(), ""])


if __name__ == "__main__":
    main()
