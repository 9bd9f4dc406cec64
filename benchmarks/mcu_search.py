"""mcu_search: do searches under SRAM budgets give networks that fit them on the emulated board,
and how accurate are they beside the MobileNetV2 widths that fit the same SRAM?

What a user runs, as commands, in the benchmark's own HWNAS_HOME (`--workdir`):

1. `hwnas profile --device m4 --backend mcu --space SPACE` with SPACE bound to the dataset's
   channels and classes (the search binds it so; an unbound space's stem is not the searched one);
2. per SRAM budget and seed, `hwnas search --strategy hardcore --latency-ms L --sram-kb S
   --flash-kb F` (the same latency and flash budgets for all), then `hwnas export --format
   tflite-int8,c-array --nhwc`;
3. each exported int8 file run by the profiling firmware on the emulated M4: its instructions at
   the LUT's declared clock, the arena TFLM reports, and the flash of its c-array project
   (text + data, as `mcu_memory` measures it), each compared with its budget; beside it the
   same architecture converted as the LUT's micro-models are (what the LUT's sum predicts);
4. the baseline: the space's network with every layer `ir_k3_e6` at each `--widths` multiplier,
   the widest whose emulated arena fits each SRAM budget (and the widest that also fits the
   latency budget) trained with the child's settings and the search's seed.

Everything is cached in `--workdir` (the LUT, runs, conversions, trained baselines), so a rerun
resumes. Without `--latency-ms` it stops after the LUT and prints the space's latency range.

    python benchmarks/mcu_search.py --latency-ms 200

Writes benchmarks/results/mcu_search.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _record import run_markdown, with_run

RESULTS = Path(__file__).resolve().parent / "results"
DEVICE = "m4"
MBV2_BLOCK = "ir_k3_e6"
FIRMWARE_CACHE = "/tmp/hwnas-test-mcu"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="mcunet@r64_w0.35")
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--sram-kb", default="128,256", help="SRAM budgets, KiB, comma-separated")
    p.add_argument("--latency-ms", type=float, help="the latency budget of every search")
    p.add_argument("--flash-kb", type=float, default=1024)
    p.add_argument("--widths", default="0.1,0.25,0.35,0.5,0.75", help="MobileNetV2-like widths")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--child-epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seeds", default="0,1,2", help="one search per SRAM budget and seed")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-bench-mcu-search"))
    return p.parse_args()


def hwnas_env(workdir: Path) -> dict[str, str]:
    """The benchmark's own home (LUT database, cache) and the shared firmware cache."""
    kept = ("HWNAS_TFLM_KIT", "HWNAS_TFLM_SOURCES")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWNAS_") or k in kept}
    env.update(HWNAS_HOME=str(workdir / "home"), OMP_NUM_THREADS="1")
    env["HWNAS_MCU_DIR"] = os.environ.get("HWNAS_MCU_DIR", FIRMWARE_CACHE)
    return env


def hwnas(env: dict[str, str], *argv: str) -> float:
    """Run `hwnas ARGV` (raises on a non-zero exit); its wall seconds."""
    print("$ hwnas " + " ".join(argv), flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "service.cli", *argv], env=env, check=True)
    return time.perf_counter() - started


def once(path: Path, work: Any) -> dict[str, Any]:
    """`work()`'s JSON result, cached in `path` (a rerun reads it instead)."""
    if path.exists():
        return dict(json.loads(path.read_text()))
    result = work()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return dict(result)


def bound_space(args: argparse.Namespace) -> tuple[Any, Any]:
    """The dataset (resized to the space's resolution) and the space bound to it, as search
    binds it."""
    from search.data.load import load_dataset
    from search.run import bind_space
    from search.spaces.base import space_from_string

    resolution = space_from_string(args.space).resolution
    data = load_dataset(args.dataset, seed=args.seed, resolution=resolution)
    return data, bind_space(args.space, data)


def profile(args: argparse.Namespace, env: dict[str, str], space: Any) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        argv = ("profile", "--device", DEVICE, "--backend", "mcu", "--space", space.spec_string)
        seconds = hwnas(env, *argv)
        ops = sum(not s.is_identity for s in space.distinct_opspecs())
        return {"command": "hwnas " + " ".join(argv), "ops": ops, "seconds": round(seconds, 1),
                "ops_per_minute": round(60 * ops / seconds, 2)}  # fmt: skip

    return once(args.workdir / "lut.json", work)


def lut_range(env: dict[str, str], space: Any) -> dict[str, Any]:
    """The LUT's latency range over the space and its declared clock."""
    from lut.store import LutStore
    from search.run import cost_models

    store = LutStore(f"sqlite:///{Path(env['HWNAS_HOME']) / 'hwnas.db'}")
    model = cost_models(store, space, (DEVICE,))[0]
    device = store.resolve_device(DEVICE)
    return {"min_latency_ms": round(model.min_latency_ms, 3),
            "max_latency_ms": round(model.max_latency_ms, 3),
            "clock_mhz": device.fingerprint["clock_mhz"]}  # fmt: skip


def search(args: argparse.Namespace, env: dict[str, str], sram_kb: float) -> dict[str, Any]:
    """One search under `sram_kb` and its export (cached): the run's metrics and wall times."""
    out = args.workdir / "runs" / f"sram-{sram_kb:g}-s{args.seed}"

    def work() -> dict[str, Any]:
        argv = ["search", "--space", args.space, "--dataset", args.dataset, "--device", DEVICE,
                "--strategy", "hardcore", "--latency-ms", f"{args.latency_ms:g}",
                "--sram-kb", f"{sram_kb:g}", "--flash-kb", f"{args.flash_kb:g}",
                "--epochs", str(args.epochs), "--child-epochs", str(args.child_epochs),
                "--batch-size", str(args.batch_size), "--seed", str(args.seed),
                "--out", str(out)]  # fmt: skip
        search_s = hwnas(env, *argv)
        export = ("export", "--run", str(out), "--format", "tflite-int8,c-array", "--nhwc")
        export_s = hwnas(env, *export)
        metrics = json.loads((out / "metrics.json").read_text())
        return {"commands": ["hwnas " + " ".join(argv), "hwnas " + " ".join(export)],
                "search_seconds": round(search_s, 1), "export_seconds": round(export_s, 1),
                "metrics": metrics}  # fmt: skip

    return {**once(out.parent / f"{out.name}.json", work), "out": str(out)}


def on_board(backend: Any, path: Path) -> dict[str, Any]:
    """An int8 file run by the firmware on the emulated board: latency at the declared clock,
    arena, and the flash of its c-array project; beside them the file's predicted arena and
    flash."""
    from deploy.mcu_memory import file_memory, file_operators
    from profilers.mcu.flash import program_flash_bytes

    measured = backend.measure_file(path).extra
    operators = file_operators(path)
    predicted = file_memory(path)
    return {
        "instructions": measured["instructions"],
        "latency_ms": round(measured["instructions"] / (backend.clock_mhz * 1e3), 3),
        "arena_bytes": measured["arena_bytes"],
        "flash_bytes": program_flash_bytes(backend.core, path.read_bytes(), operators),
        "file_predicted_arena_bytes": predicted.sram_bytes,
        "file_predicted_flash_bytes": predicted.flash_bytes,
        "operators": operators,
        "operator_instructions": per_operator(measured["op_instructions"]),
        "model_bytes": measured["model_bytes"],
    }


def per_operator(op_instructions: list[list[Any]]) -> dict[str, int]:
    """The last Invoke()'s instructions summed per operator type."""
    totals: dict[str, int] = {}
    for tag, count in op_instructions:
        totals[tag] = totals.get(tag, 0) + int(count)
    return totals


def untrained_latency(backend: Any, text: str) -> dict[str, Any]:
    """The architecture with random weights, converted as the LUT's micro-models are (random
    calibration images, no input normalisation): the network the LUT's sum predicts, beside
    the exported file (which holds the input normalisation in its input's quantisation, or as
    an op where the channels' statistics differ)."""
    from lut.store import arch_key
    from profilers.e2e import example_input
    from search.spaces.base import parse_architecture

    space, arch = parse_architecture(text)
    key = f"untrained-{arch_key(text)}"
    measured = backend.measure_module(space.build(arch), example_input(space), cache_key=key)
    instructions = measured.extra["instructions"]
    return {"instructions": instructions,
            "latency_ms": round(instructions / (backend.clock_mhz * 1e3), 3),
            "operator_instructions": per_operator(measured.extra["op_instructions"]),
            "model_bytes": measured.extra["model_bytes"]}  # fmt: skip


def result_row(
    args: argparse.Namespace, backend: Any, sram_kb: float, run: dict[str, Any]
) -> dict[str, Any]:
    metrics = run["metrics"]
    path = Path(run["out"]) / "export" / "model.int8.tflite"
    out = Path(run["out"])
    board = once(out.parent / f"{out.name}-board.json", lambda: on_board(backend, path))
    untrained = once(out.parent / f"{out.name}-untrained.json",
                     lambda: untrained_latency(backend, metrics["arch"]))  # fmt: skip
    memory = metrics["predicted_memory"]
    return {
        "arch": metrics["arch"],
        "test_accuracy": metrics["test_accuracy"],
        "predicted_latency_ms": round(metrics["predicted_latency_ms"][DEVICE], 3),
        "predicted_sram_bytes": memory["sram_bytes"],
        "predicted_flash_bytes": memory["flash_bytes"],
        "measured": board,
        "untrained": untrained,
        "within": {
            "latency": board["latency_ms"] <= args.latency_ms,
            "sram": board["arena_bytes"] <= sram_kb * 1024,
            "flash": board["flash_bytes"] <= args.flash_kb * 1024,
        },
        "search_seconds": run["search_seconds"],
        "export_seconds": run["export_seconds"],
        "commands": run["commands"],
    }


def baseline_widths(args: argparse.Namespace, backend: Any, data: Any) -> list[dict[str, Any]]:
    """Per width, the all-`ir_k3_e6` network converted to int8 and run on the board (random
    weights: the arena does not depend on them; its count is the untrained network's)."""
    from profilers.e2e import example_input
    from search.run import bind_space

    rows = []
    for width in sorted(float(w) for w in args.widths.split(",")):
        base, _, params = args.space.partition("@")
        text = "_".join([p for p in params.split("_") if p and not p.startswith("w")]
                        + [f"w{width:g}"])  # fmt: skip
        space = bind_space(f"{base}@{text}", data)
        arch = space.architecture([MBV2_BLOCK] * len(space.layers))
        key = f"mbv2-{space.spec_string.replace('@', '-')}"

        def work(space: Any = space, arch: Any = arch, key: str = key) -> dict[str, Any]:
            backend.measure_module(space.build(arch), example_input(space), cache_key=key)
            return on_board(backend, backend.cache_dir / f"{key}.int8.tflite")

        board = once(args.workdir / "baseline" / f"{key}-board.json", work)
        rows.append({"width": width, "arch": arch.to_string(), "measured": board})
    return rows


def train_baseline(args: argparse.Namespace, data: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The baseline network trained from scratch with the child's settings (cached)."""
    from search.spaces.base import parse_architecture
    from search.train import train_child

    def work() -> dict[str, Any]:
        import torch

        space, arch = parse_architecture(row["arch"])
        torch.manual_seed(args.seed)
        trained = train_child(space.build(arch), data.train, data.val, epochs=args.child_epochs,
                              seed=args.seed, batch_size=args.batch_size, test=data.test)  # fmt: skip
        return {"test_accuracy": trained.test_accuracy, "train_seconds": round(trained.wall_s, 1)}

    name = f"mbv2-w{row['width']:g}-e{args.child_epochs}-s{args.seed}.json"
    return once(args.workdir / "baseline" / name, work)


def baseline_for(
    args: argparse.Namespace,
    data: Any,
    widths: list[dict[str, Any]],
    sram_kb: float,
    *,
    latency_too: bool = False,
) -> dict[str, Any] | None:
    """The widest width whose emulated arena fits `sram_kb` (and, with `latency_too`, whose
    untrained count fits the latency budget), trained; None if no width fits."""
    fits = [
        w
        for w in widths
        if w["measured"]["arena_bytes"] <= sram_kb * 1024
        and (not latency_too or w["measured"]["latency_ms"] <= args.latency_ms)
    ]
    if not fits:
        return None
    widest = max(fits, key=lambda w: w["width"])
    return {**widest, **train_baseline(args, data, widest),
            "within_latency": widest["measured"]["latency_ms"] <= args.latency_ms}  # fmt: skip


def one_run(
    args: argparse.Namespace,
    env: dict[str, str],
    backend: Any,
    data: Any,
    widths: list[dict[str, Any]],
    sram_kb: float,
) -> dict[str, Any]:
    """The search under `sram_kb` at `args.seed`, its result on the board, and the baselines."""
    return {
        "sram_kb": sram_kb,
        "seed": args.seed,
        "result": result_row(args, backend, sram_kb, search(args, env, sram_kb)),
        "baseline": baseline_for(args, data, widths, sram_kb),
        "baseline_within_latency": baseline_for(args, data, widths, sram_kb, latency_too=True),
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per SRAM budget: how many results are within every budget on the board, and the median
    test accuracy of the results and of each baseline over the seeds."""
    out = []
    for sram_kb in sorted({r["sram_kb"] for r in runs}):
        mine = [r for r in runs if r["sram_kb"] == sram_kb]
        out.append({
            "sram_kb": sram_kb,
            "results": len(mine),
            "within_every_budget": sum(all(r["result"]["within"].values()) for r in mine),
            "median_accuracy": _median([r["result"]["test_accuracy"] for r in mine]),
            "baseline_median_accuracy": _median(
                [r["baseline"]["test_accuracy"] for r in mine if r["baseline"]]),
            "baseline_within_latency_median_accuracy": _median(
                [r["baseline_within_latency"]["test_accuracy"] for r in mine
                 if r["baseline_within_latency"]]),
        })  # fmt: skip
    return out


def main() -> None:
    args = parse_args()
    args.seed = int(args.seeds.split(",")[0])
    import torch

    torch.set_num_threads(1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = hwnas_env(args.workdir)
    os.environ.update({k: env[k] for k in ("HWNAS_HOME", "HWNAS_MCU_DIR")})
    from profilers.backends.mcu_backend import McuBackend

    data, space = bound_space(args)
    lut = profile(args, env, space)
    lut.update(lut_range(env, space))
    print(json.dumps(lut), flush=True)
    if args.latency_ms is None:
        sys.exit(f"give --latency-ms between {lut['min_latency_ms']} and {lut['max_latency_ms']}")
    backend = McuBackend(clock_mhz=lut["clock_mhz"], cache_dir=args.workdir / "board")
    widths = baseline_widths(args, backend, data)
    runs = []
    for seed in (int(x) for x in args.seeds.split(",")):
        args.seed = seed
        data, _ = bound_space(args)
        for sram_kb in (float(x) for x in args.sram_kb.split(",")):
            runs.append(one_run(args, env, backend, data, widths, sram_kb))
            print(json.dumps(runs[-1]), flush=True)
    result = with_run({
        "space": space.spec_string, "dataset": args.dataset, "device": DEVICE,
        "budgets": {"latency_ms": args.latency_ms, "sram_kb": args.sram_kb,
                    "flash_kb": args.flash_kb},
        "settings": {"strategy": "hardcore", "epochs": args.epochs,
                     "child_epochs": args.child_epochs, "batch_size": args.batch_size,
                     "seeds": args.seeds},
        "firmware": backend.firmware.fingerprint, "lut": lut,
        "summary": summary(runs), "baseline_widths": widths, "per_budget": runs,
    })  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mcu_search.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "mcu_search.md").write_text(markdown(result))
    print(markdown(result))


def _kb(n: int) -> str:
    return f"{n / 1024:.1f}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _beyond(row: dict[str, Any]) -> str:
    """Exported minus untrained instructions per operator type (the non-zero ones)."""
    exported = row["measured"]["operator_instructions"]
    untrained = row["untrained"]["operator_instructions"]
    diffs = {op: exported.get(op, 0) - untrained.get(op, 0) for op in {*exported, *untrained}}
    return ", ".join(f"{op} {d:+,}" for op, d in sorted(diffs.items()) if d) or "none"


def markdown(result: dict[str, Any]) -> str:
    lut, b, st = result["lut"], result["budgets"], result["settings"]
    lines = [
        "# mcu_search",
        "",
        f"`{result['space']}` on {result['dataset']}, device {result['device']} (emulated "
        f"Cortex-M4, TFLM + CMSIS-NN, latency = instructions at {lut['clock_mhz']:g} MHz: an "
        f"emulator estimate). Budgets: latency {b['latency_ms']:g} ms, flash "
        f"{b['flash_kb']:g} KiB, SRAM {b['sram_kb']} KiB. Search: {st['strategy']}, "
        f"{st['epochs']} epochs, child {st['child_epochs']} epochs, batch {st['batch_size']}, "
        f"seeds {st['seeds']}.",
        "",
        f"LUT: {lut['ops']} ops in {lut['seconds'] / 60:.1f} min ({lut['ops_per_minute']} "
        f"ops/min, conversions included); the space spans {lut['min_latency_ms']}–"
        f"{lut['max_latency_ms']} ms by the LUT.",
        "",
        "| SRAM KiB | results within every budget (emulated) | median accuracy | baseline "
        "within SRAM | baseline within SRAM and latency |",
        "|---|---|---|---|---|",
    ]
    for row in result["summary"]:
        lines.append(
            f"| {row['sram_kb']:g} | {row['within_every_budget']} of {row['results']} | "
            f"{row['median_accuracy']} | {row['baseline_median_accuracy'] or 'none fits'} | "
            f"{row['baseline_within_latency_median_accuracy'] or 'none fits'} |"
        )
    runs = result["per_budget"]
    return "\n".join(
        [*lines, *_results(runs), *_untrained(runs), *_baselines(runs),
         *_widths(result["baseline_widths"]), "", run_markdown(), ""]
    )  # fmt: skip


def _results(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| SRAM KiB | seed | result | accuracy | latency ms pred / meas | arena KiB pred / meas "
        "| flash KiB pred / meas | within latency / SRAM / flash | search min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in runs:
        r, m, w = row["result"], row["result"]["measured"], row["result"]["within"]
        lines.append(
            f"| {row['sram_kb']:g} | {row['seed']} | `{r['arch'].split(':')[1]}` | "
            f"{r['test_accuracy']:.4f} | {r['predicted_latency_ms']} / {m['latency_ms']} | "
            f"{_kb(r['predicted_sram_bytes'])} / {_kb(m['arena_bytes'])} | "
            f"{_kb(r['predicted_flash_bytes'])} / {_kb(m['flash_bytes'])} | "
            f"{_yes(w['latency'])} / {_yes(w['sram'])} / {_yes(w['flash'])} | "
            f"{r['search_seconds'] / 60:.1f} |"
        )
    return lines


def _untrained(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "Each result's architecture with random weights, converted as the LUT's micro-models "
        "are (no input normalisation; what the LUT's sum predicts), run the same way:",
        "",
    ]
    return lines + [
        f"- {row['sram_kb']:g} KiB, seed {row['seed']}: "
        f"{row['result']['untrained']['latency_ms']} ms; the exported file's instructions "
        f"beyond it, per operator: {_beyond(row['result'])}"
        for row in runs
    ]


def _baseline_cells(base: dict[str, Any] | None) -> str:
    if base is None:
        return "none fits | |"
    return f"{base['width']:g} | {base['test_accuracy']:.4f} |"


def _baselines(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "Baseline: every layer `ir_k3_e6`, the widest width whose emulated arena fits the SRAM "
        "budget (and whose untrained latency also fits the latency budget), trained with the "
        "child's settings and the same seed.",
        "",
        "| SRAM KiB | seed | within SRAM: width | accuracy | within SRAM and latency: width | "
        "accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for row in runs:
        lines.append(
            f"| {row['sram_kb']:g} | {row['seed']} | {_baseline_cells(row['baseline'])} "
            f"{_baseline_cells(row['baseline_within_latency'])}"
        )
    return lines


def _widths(widths: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| width | latency ms (untrained) | arena KiB (file-predicted / emulated) | flash KiB |",
        "|---|---|---|---|",
    ]
    for w in widths:
        m = w["measured"]
        lines.append(
            f"| {w['width']:g} | {m['latency_ms']} | {_kb(m['file_predicted_arena_bytes'])} / "
            f"{_kb(m['arena_bytes'])} | {_kb(m['flash_bytes'])} |"
        )
    return lines


if __name__ == "__main__":
    main()
