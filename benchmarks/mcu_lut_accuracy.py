"""mcu_lut_accuracy: how well do a Cortex-M LUT's summed op counts predict whole networks?

For `--archs` random architectures of each space, every op they use is profiled as an int8
micro-model on the emulated board (the LUT), each whole network is converted and run end to end
on the same firmware, and the sum of its ops' instruction counts is compared with the network's
count (emulation is deterministic, so the noise ceiling is exact agreement). The arena the
greedy planner of `deploy/memory.py` predicts is compared with the one TFLM reports. Also
records the firmware's build cost and the LUT's ops per minute, conversions included.

    python benchmarks/mcu_lut_accuracy.py --spaces mcunet@r64_w0.35 --archs 8

Writes benchmarks/results/mcu_lut_accuracy.json and .md.
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
from scipy.stats import kendalltau

from deploy.memory import tflite_memory
from lut.predictor import FixedCosts, predict
from lut.store import arch_key
from profilers.backends.mcu_backend import McuBackend
from profilers.e2e import example_input
from profilers.runner import measure_fixed_costs
from search.spaces.base import space_from_string

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spaces", default="mcunet@r64_w0.35")
    p.add_argument("--archs", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-bench-mcu"))
    args = p.parse_args()
    backend = McuBackend(cache_dir=args.workdir / "cache")
    started = time.perf_counter()
    firmware = backend.firmware
    setup_s = time.perf_counter() - started
    started = time.perf_counter()
    fixed = measure_fixed_costs(backend)
    fixed_s = time.perf_counter() - started
    spaces = [measure_space(backend, name, args, fixed) for name in args.spaces.split(",")]
    result = with_run(
        {
            "firmware": {**firmware.info, "setup_seconds_this_run": round(setup_s, 1)},
            "fixed_costs": {**fixed.to_dict(), "seconds": round(fixed_s, 1)},
            "fingerprint": backend.fingerprint(),
            "spaces": spaces,
        }
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mcu_lut_accuracy.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "mcu_lut_accuracy.md").write_text(markdown(result))
    print(markdown(result))


def measure_space(
    backend: McuBackend, name: str, args: argparse.Namespace, fixed: FixedCosts
) -> dict[str, Any]:
    space = space_from_string(name)
    archs = list(space.iter_random(seed=args.seed, count=args.archs))
    specs = {s.key: s for a in archs for s in space.decode(a) if not s.is_identity}
    started = time.perf_counter()
    entries = {key: backend.measure_op(spec) for key, spec in specs.items()}
    lut = {key: m.extra["instructions"] for key, m in entries.items()}
    lut_s = time.perf_counter() - started
    rows = []
    for arch in archs:
        ops = [s for s in space.decode(arch) if not s.is_identity]
        key = f"mcu-bench-{arch_key(arch.to_string())}"
        measured = backend.measure_module(space.build(arch), example_input(space), cache_key=key)
        predicted_arena = tflite_memory(backend.cache_dir / f"{key}.int8.tflite")
        rows.append(
            {
                "arch": arch.to_string(),
                "measured_instructions": measured.extra["instructions"],
                "predicted_instructions": sum(lut[s.key] for s in ops),
                "measured_ms": measured.median_ms,
                "predicted_ms": predict(space.decode(arch), entries, fixed).latency_ms,
                "measured_arena_bytes": measured.extra["arena_bytes"],
                "greedy_arena_bytes": predicted_arena["arena_greedy_bytes"],
                "model_bytes": measured.extra["model_bytes"],
            }
        )
    return {"space": space.spec_string, "ops": len(specs), "lut_seconds": round(lut_s, 1),
            "ops_per_minute": round(60 * len(specs) / lut_s, 1), **summary(rows), "archs": rows}  # fmt: skip


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["predicted_ms"] / r["measured_ms"] for r in rows]
    raw = [r["predicted_instructions"] / r["measured_instructions"] for r in rows]
    arena = [r["greedy_arena_bytes"] / r["measured_arena_bytes"] for r in rows]
    tau = kendalltau([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows]).statistic
    return {
        "median_ratio_raw_sum_to_measured": round(statistics.median(raw), 4),
        "median_ratio_predicted_to_measured": round(statistics.median(ratios), 4),
        "within_5_percent": sum(abs(x - 1) <= 0.05 for x in ratios) / len(ratios),
        "kendall_tau": round(float(tau), 4),
        "median_ratio_greedy_arena_to_measured": round(statistics.median(arena), 4),
    }


def markdown(result: dict[str, Any]) -> str:
    fw = result["firmware"]
    lines = [
        "# mcu_lut_accuracy",
        "",
        f"Firmware library build: {fw['library_build_seconds']} s with {fw['library_build_jobs']} "
        f"jobs ({fw['compiled_sources']} sources); firmware text {fw['sections']['text']} bytes.",
        "",
        "| space | archs | ops | ops/min | median raw sum/measured | median predicted/measured | "
        "within ±5% | Kendall τ | median greedy arena/measured |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["spaces"]:
        lines.append(
            f"| {s['space']} | {len(s['archs'])} | {s['ops']} | {s['ops_per_minute']} | "
            f"{s['median_ratio_raw_sum_to_measured']} | "
            f"{s['median_ratio_predicted_to_measured']} | {s['within_5_percent']:.0%} | "
            f"{s['kendall_tau']} | {s['median_ratio_greedy_arena_to_measured']} |"
        )
    return "\n".join([*lines, "", run_markdown(), ""])


if __name__ == "__main__":
    main()
