"""search_quality: do the latency-aware searches find better networks than the baselines?

On mnist5k and fbnet-tiny with this machine's onnxruntime LUT (1 thread, calibrated), at three
budgets (by default 0.3 / 0.55 / 0.8 of the way from the space's smallest to its largest predicted
latency), every strategy's result is compared with (a) `random` given the wall-clock time the
hardcore search took (its trial count chosen from the per-trial cost of the plain random run) and
(b) the hand-made MobileNetV2-style network — every layer `ir_k3_e6` — at the widest width
multiplier whose predicted latency fits the budget (each width profiled and calibrated as its own
space), trained for the same child epochs. Test accuracy and measured end-to-end latency (same
backend, same protocol) for each, and whether "hardcore and fbnet at least match both baselines at
every budget, and beat them at two of three" holds.

    python benchmarks/search_quality.py

Writes benchmarks/results/search_quality.json and .md (search_quality_smoke.* with --smoke),
rewritten after each budget. Runs are cached in the workdir, so an interrupted run resumes.

    python benchmarks/search_quality.py --retrain-from benchmarks/results/search_quality.json \
        --child-epochs 10 --child-shift 2 --seeds 0,1,2,3,4,5,6,7 --tag _retrain

re-judges a finished run under another child-training protocol: every architecture it recorded
(per seed and budget, except plain `random`, which the claim does not use) is trained again from
scratch with this run's child epochs and shift augmentation; latencies are the recorded ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
from pathlib import Path
from typing import Any

import _common as c
import torch

from search.data import load_dataset
from search.spaces.base import parse_architecture
from search.strategies.base import get_strategy, strategy_names
from search.strategies.baseline import BaselineStrategy
from search.train import train_child

NAME = "search_quality"
MBV2_BLOCK = "ir_k3_e6"
BASELINES = tuple(
    name for name in strategy_names() if issubclass(get_strategy(name), BaselineStrategy)
)
SMOKE = {
    "strategies": "hardcore,random",
    "epochs": 1,
    "child_epochs": 1,
    "fractions": "0.3,0.8",
    "widths": "0.5,1.0",
    "trials": 2,
    "calibration": 4,
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    c.add_common_args(p, "hardcore,fbnet,proxyless,evolution,random", epochs=10)
    p.add_argument("--fractions", default="0.3,0.55,0.8", help="budgets, min→max predicted")
    p.add_argument("--budgets-ms", default="", help="absolute budgets (override --fractions)")
    p.add_argument("--widths", default="0.25,0.35,0.5,0.75,1.0", help="MobileNetV2 widths")
    p.add_argument("--trials", type=int, default=8, help="candidates of random / evolution")
    p.add_argument("--tolerance", type=float, default=0.0, help="'match' = acc ≥ baseline − tol")
    p.add_argument(
        "--child-shift",
        type=int,
        default=0,
        help="children (and MobileNetV2) train on images shifted by up to this many pixels",
    )
    p.add_argument(
        "--retrain-from",
        type=Path,
        default=None,
        help="a finished run's JSON: retrain its architectures with this run's child settings "
        "and judge the claim on them (no search, no profiling)",
    )
    p.add_argument(
        "--rerun-from",
        type=Path,
        default=None,
        help="with --retrain-from: a newer run (same budgets and seeds, this run's child "
        "settings) whose --rerun-methods rows replace the retrained ones",
    )
    p.add_argument("--rerun-methods", default="hardcore", help="rows taken from --rerun-from")
    p.add_argument(
        "--rederive",
        default="",
        help="comma-separated strategies whose finished searches are not repeated but derived "
        "again by the current code from their final checkpoints (children retrained; the first "
        "results kept as metrics.before-rederive.json)",
    )
    p.add_argument(
        "--seeds",
        default="",
        help="several seeds, e.g. 0,1,2 (overrides --seed): every run is repeated per seed and "
        "the claim is judged on the mean test accuracy over the seeds",
    )
    return c.parse(p, SMOKE)


def mbv2_widths(bench: c.Bench, widths: str) -> dict[float, tuple[Any, str, float]]:
    """Per width: its space (profiled and calibrated), the all-`ir_k3_e6` arch, its prediction."""
    out = {}
    for w in sorted(float(x) for x in widths.split(",")):
        space, model = c.prepare_space(bench, f"{c.SPACE}@w{w:g}")
        arch = space.architecture([MBV2_BLOCK] * len(space.layers)).to_string()
        out[w] = (space, arch, model.cost(c.choices_of(space, arch)))
    return out


def train_cached(
    args: argparse.Namespace, data: Any, space: Any, arch: str, seed: int, done: Path
) -> dict[str, Any]:
    """`arch` of `space` trained from scratch with the child settings and `seed` (metrics cached
    in `done`)."""
    if done.exists():
        return json.loads(done.read_text())
    shift = f", shift {args.child_shift} px" if args.child_shift else ""
    c.log(f"seed {seed} {arch}: training {args.child_epochs} epochs{shift}")
    torch.manual_seed(seed)
    trained = train_child(
        space.build(space.architecture(arch.split(":", 1)[1].split("-"))),
        data.train,
        data.val,
        epochs=args.child_epochs,
        seed=seed,
        batch_size=args.batch_size,
        test=data.test,
        shift_px=args.child_shift,
    )
    metrics = {
        "arch": arch,
        "test_accuracy": trained.test_accuracy,
        "val_accuracy": trained.val_accuracy,
        "train_wall_s": trained.wall_s,
    }
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(metrics, indent=1))
    return metrics


def train_mbv2(bench: c.Bench, args: argparse.Namespace, space: Any, arch: str) -> dict[str, Any]:
    """Train the MobileNetV2-style network like a search's child (same epochs, seed; cached)."""
    out = c.run_dir(args, NAME, None, f"mbv2-{space.spec_string}")
    return train_cached(args, bench.data, space, arch, args.seed, out / "metrics.json")


def row(method: str, m: dict[str, Any], predicted: float, measured: float, budget: float) -> dict:
    return {
        "method": method,
        "arch": m["arch"],
        "test_accuracy": m["test_accuracy"],
        "predicted_ms": predicted,
        "measured_ms": measured,
        "measured_over_budget": measured / budget,
        "search_wall_s": m.get("search_wall_s"),
        "train_wall_s": m["train_wall_s"],
        "trials": m.get("trials"),
        **({"arch_before_rederive": m["arch_before_rederive"]} if m.get("rederived") else {}),
    }


def one_budget(
    bench: c.Bench, args: argparse.Namespace, space: Any, budget: float, mbv2: dict
) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}

    def out_dir(strategy: str, trials: int) -> Any:
        method = f"{strategy}-t{trials}" if strategy in BASELINES else strategy
        return c.run_dir(args, NAME, budget, method)

    def run(label: str, strategy: str, trials: int) -> dict[str, Any] | None:
        """The search's metrics and its row; None for an `--only-cached` one not finished."""
        out = out_dir(strategy, trials)
        if c.skipped(args, strategy, out, "metrics.json"):
            return None
        rederive = strategy in args.rederive.split(",") and label == strategy
        m = c.search(bench, args, strategy, budget, out, trials=trials, rederive=rederive)
        m["trials"] = trials if strategy in BASELINES else None
        measured = c.measure_text(bench, space, m["arch"])
        rows[label] = row(label, m, m["predicted_latency_ms"][c.DEVICE], measured, budget)
        return m

    # hardcore first (its wall time is the reference), random next (its cost per trial).
    order = sorted({*args.strategies, "random"}, key=lambda s: (s != "hardcore", s != "random", s))
    walls = {s: m["search_wall_s"] for s in order if (m := run(s, s, args.trials)) is not None}
    reference = "hardcore" if "hardcore" in walls else order[0]
    equal_time = None
    if reference in walls and "random" in walls:
        eq_trials = max(1, round(walls[reference] / (walls["random"] / args.trials)))
        eq = run("random (same wall)", "random", eq_trials)
        if eq is not None:
            equal_time = {
                "reference": reference,
                "reference_search_wall_s": walls[reference],
                "random_trials": eq_trials,
                "random_search_wall_s": eq["search_wall_s"],
            }
    fits = [w for w, (_, _, predicted) in mbv2.items() if predicted <= budget]
    if fits:
        w_space, arch, predicted = mbv2[max(fits)]
        m = train_mbv2(bench, args, w_space, arch)
        measured = c.measure_text(bench, w_space, arch)
        label = f"MobileNetV2 w{max(fits):g}"
        rows["mobilenetv2"] = row(label, m, predicted, measured, budget)
    return {
        "budget_ms": budget,
        "mobilenetv2_width": max(fits) if fits else None,
        "equal_time": equal_time,
        "rows": rows,
    }


def best_baseline(rows: dict[str, dict[str, Any]]) -> float:
    """The better test accuracy of the two baselines run at a budget (random given the same wall
    time, MobileNetV2 where a width fits)."""
    return max(rows[k]["test_accuracy"] for k in ("random (same wall)", "mobilenetv2") if k in rows)


def verdict(budgets: list[dict[str, Any]], tol: float) -> dict[str, Any]:
    """Does "hardcore and fbnet at least match both baselines at every budget, and beat them at
    two of three" hold? (Generally: beat at ⌈2n/3⌉ of n budgets; a MobileNetV2 that fits no width
    at a budget is not a baseline there.)"""
    need = math.ceil(2 * len(budgets) / 3)
    out: dict[str, Any] = {"tolerance": tol, "beats_needed": need, "per_strategy": {}}
    for s in ("hardcore", "fbnet"):
        if any(s not in b["rows"] for b in budgets):
            out["per_strategy"][s] = None
            continue
        margins = [b["rows"][s]["test_accuracy"] - best_baseline(b["rows"]) for b in budgets]
        out["per_strategy"][s] = {
            "margins_vs_best_baseline": margins,
            "matches_every_budget": all(m >= -tol for m in margins),
            "budgets_beaten": sum(m > 0 for m in margins),
        }
    out["holds"] = all(
        v is not None and v["matches_every_budget"] and v["budgets_beaten"] >= need
        for v in out["per_strategy"].values()
    )
    return out


def markdown(meta: dict[str, Any], budgets: list[dict[str, Any]], v: dict[str, Any]) -> list[str]:
    lines = [
        f"# search_quality — {meta['cpu']}, {meta['backend']}, {meta['date']}",
        "",
        f"mnist5k, fbnet-tiny, search {meta['epochs']} epochs, children trained {meta['child_epochs']} "
        f"epochs, seed {meta['seed']}. Latency: predicted (calibrated LUT) and measured end to end.",
        "",
        *retrain_lines(meta),
        "| budget ms (fraction) | method | test acc | predicted ms | measured ms | measured / budget | search s | trials |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in budgets:
        for r in b["rows"].values():
            search_s = f"{r['search_wall_s']:.0f}" if r["search_wall_s"] is not None else "—"
            lines.append(
                f"| {b['budget_ms']:.4f} ({b['fraction']:.2f}) | {r['method']} | {r['test_accuracy']:.4f} "
                f"| {r['predicted_ms']:.4f} | {r['measured_ms']:.4f} | {r['measured_over_budget']:.2f} "
                f"| {search_s} | {r['trials'] or '—'} |"
            )
        if b["mobilenetv2_width"] is None:
            lines.append(
                f"| {b['budget_ms']:.4f} ({b['fraction']:.2f}) | MobileNetV2: no width fits |"
                + " — |" * 6
            )
    lines += ["", "Equal wall-clock random search:", ""]
    for b in budgets:
        e = b["equal_time"]
        if e is None:
            lines.append(f"- {b['budget_ms']:.4f} ms: not run (`--only-cached random`)")
            continue
        lines.append(
            f"- {b['budget_ms']:.4f} ms: {e['reference']} searched {e['reference_search_wall_s']:.0f} s; "
            f"random with {e['random_trials']} trials searched {e['random_search_wall_s']:.0f} s"
        )
    return lines + claim_lines(v, "Claim holds", "accuracy minus the better baseline", 1)


def claim_lines(v: dict[str, Any], title: str, margin: str, digits: int) -> list[str]:
    """The verdict under a table: whether the claim holds, then per strategy its margins per
    budget (and the per-seed paired margins where there are several seeds)."""
    lines = ["", f"**{title}: {'yes' if v['holds'] else 'no'}** (tolerance {v['tolerance']}):", ""]
    for s, d in v["per_strategy"].items():
        if d is None:
            lines.append(f"- {s}: not run at every budget")
            continue
        margins = ", ".join(f"{100 * m:+.{digits}f}" for m in d["margins_vs_best_baseline"])
        paired = ", ".join(
            f"{100 * m:+.1f} ± {100 * se:.1f}" for m, se in d.get("paired_margins", [])
        )
        lines.append(
            f"- {s}: {margin} per budget (pp): {margins}; "
            + (f"per-seed margin, mean ± standard error (pp): {paired}; " if paired else "")
            + f"matches at every budget: {d['matches_every_budget']}; beats both at "
            f"{d['budgets_beaten']} (needed {v['beats_needed']})"
        )
    return lines


def mean_over_seeds(per_seed: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per budget, every method's test accuracy averaged over the seeds that ran it (with the
    per-seed values and their standard deviation); other fields from the first seed."""
    runs = list(per_seed.values())
    out = []
    for i, first in enumerate(runs[0]):
        rows = {}
        for key, row0 in first["rows"].items():
            accs = [r[i]["rows"][key]["test_accuracy"] for r in runs if key in r[i]["rows"]]
            measured = [
                r[i]["rows"][key]["measured_over_budget"] for r in runs if key in r[i]["rows"]
            ]
            rows[key] = {
                **row0,
                "test_accuracy": statistics.fmean(accs),
                "test_accuracy_per_seed": accs,
                "test_accuracy_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "measured_over_budget": max(measured),
            }
        out.append({**first, "rows": rows})
    return out


def retrain_lines(meta: dict[str, Any]) -> list[str]:
    """The header lines saying how a retrained run's children were trained."""
    if "retrained_from" not in meta:
        shift = meta.get("child_shift_px") or 0
        return [f"Children trained on images shifted by up to {shift} px.", ""] if shift else []
    return [
        f"The architectures of `{meta['retrained_from']}` (its searches and latencies as "
        f"recorded there), each trained again from scratch for {meta['child_epochs']} epochs "
        f"on images shifted by up to {meta['child_shift_px']} px; plain `random` (fixed trials) "
        "is not retrained.",
        *(
            [
                f"Rows of {meta['rerun_methods']}: from `{meta['rerun_from']}`, a new search at "
                "the same budgets and seeds whose children were trained the same way.",
            ]
            if meta.get("rerun_from")
            else []
        ),
        "",
    ]


def seed_markdown(
    meta: dict[str, Any], means: list[dict[str, Any]], v: dict[str, Any]
) -> list[str]:
    lines = [
        f"# search_quality — {meta['cpu']}, {meta['backend']}, {meta['date']}",
        "",
        f"mnist5k, fbnet-tiny, search {meta['epochs']} epochs, children trained "
        f"{meta['child_epochs']} epochs, seeds {', '.join(map(str, meta['seeds']))} (each seeds "
        "the search and the child's training; the data splits stay fixed). Test accuracy: mean "
        "over the seeds (sd), and per seed; measured / budget: the largest over the seeds.",
        "",
        *retrain_lines(meta),
        "| budget ms (fraction) | method | mean test acc | sd | per seed | measured / budget (max) |",
        "|---|---|---|---|---|---|",
    ]
    for b in means:
        for r in b["rows"].values():
            per = " / ".join(f"{a:.3f}" for a in r["test_accuracy_per_seed"])
            lines.append(
                f"| {b['budget_ms']:.4f} ({b['fraction']:.2f}) | {r['method']} "
                f"| {r['test_accuracy']:.4f} | {r['test_accuracy_sd']:.4f} | {per} "
                f"| {r['measured_over_budget']:.2f} |"
            )
    margin = "mean accuracy minus the better baseline's mean"
    return lines + claim_lines(v, "Claim holds on the means", margin, 2)


def paired_margins(per_seed: dict[int, list[dict[str, Any]]], strategy: str) -> list[tuple]:
    """Per budget: the strategy's accuracy minus the better baseline's within each seed, as mean
    and standard error over the seeds (the seeds' common noise cancels in the pairs)."""
    out = []
    for i in range(len(next(iter(per_seed.values())))):
        margins = [
            results[i]["rows"][strategy]["test_accuracy"] - best_baseline(results[i]["rows"])
            for results in per_seed.values()
            if strategy in results[i]["rows"]
        ]
        se = statistics.stdev(margins) / math.sqrt(len(margins)) if len(margins) > 1 else 0.0
        out.append((statistics.fmean(margins) if margins else float("nan"), se))
    return out


NOT_RETRAINED = ("random",)  # plain random (fixed trials): not a baseline of the claim


def retrain_arch(args: argparse.Namespace, data: Any, arch: str, seed: int) -> dict[str, Any]:
    """A recorded architecture trained again with this run's child settings (cached)."""
    key = hashlib.sha1(arch.encode()).hexdigest()[:16]
    config = f"c{args.child_epochs}x{args.child_shift}b{args.batch_size}s{seed}"
    done = args.workdir / "runs" / f"{NAME}_retrain" / config / key / "metrics.json"
    return train_cached(args, data, parse_architecture(arch)[0], arch, seed, done)


def recorded_seeds(path: Path, payload: dict[str, Any], seeds: list[int]) -> dict[int, list]:
    """A finished run's budgets per seed (a single-seed run's under its own seed); every one of
    `seeds` must be there."""
    if "per_seed" in payload:
        recorded = {int(s): budgets for s, budgets in payload["per_seed"].items()}
    else:
        recorded = {int(payload["meta"]["seed"]): payload["budgets"]}
    missing = [s for s in seeds if s not in recorded]
    if missing:
        raise SystemExit(f"{path}: no seed {missing} (it has {sorted(recorded)})")
    return recorded


def rerun_budgets(args: argparse.Namespace, seeds: list[int]) -> dict[int, list[dict[str, Any]]]:
    """`--rerun-from`'s budgets per seed, checked to have this run's child settings."""
    if args.rerun_from is None:
        return {}
    payload = json.loads(args.rerun_from.read_text())
    meta = payload["meta"]
    ran = (meta["child_epochs"], meta.get("child_shift_px", 0))
    if ran != (args.child_epochs, args.child_shift):
        raise SystemExit(f"{args.rerun_from}: children trained (epochs, shift) {ran}, not ours")
    return recorded_seeds(args.rerun_from, payload, seeds)


def rerun_row(
    args: argparse.Namespace, budgets: list[dict[str, Any]], budget: dict[str, Any], key: str
) -> dict[str, Any]:
    """The rerun's `key` row at `budget` (matched by its ms), marked as such."""
    same = [b for b in budgets if abs(b["budget_ms"] - budget["budget_ms"]) < 1e-9]
    if not same or key not in same[0]["rows"]:
        raise SystemExit(f"{args.rerun_from}: no {key} at {budget['budget_ms']:.6f} ms")
    return {
        **same[0]["rows"][key],
        "rerun_from": str(args.rerun_from),
        "recorded_test_accuracy": budget["rows"][key]["test_accuracy"],
    }


def retrain(
    args: argparse.Namespace, payload: dict[str, Any], seeds: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """The recorded run's budgets per seed, every row's test accuracy replaced by its
    architecture's under this run's child settings (the recorded one kept beside it)."""
    recorded = recorded_seeds(args.retrain_from, payload, seeds)
    rerun = rerun_budgets(args, seeds)
    rerun_methods = set(args.rerun_methods.split(","))
    data = load_dataset(c.DATASET, seed=0, resolution=28)
    out: dict[int, list[dict[str, Any]]] = {}
    for seed in seeds:
        out[seed] = []
        for budget in recorded[seed]:
            rows = {}
            for key, r in budget["rows"].items():
                if key in NOT_RETRAINED:
                    continue
                if rerun and key in rerun_methods:
                    rows[key] = rerun_row(args, rerun[seed], budget, key)
                    continue
                m = retrain_arch(args, data, r["arch"], seed)
                rows[key] = {
                    **r,
                    "test_accuracy": m["test_accuracy"],
                    "recorded_test_accuracy": r["test_accuracy"],
                    "train_wall_s": m["train_wall_s"],
                }
            out[seed].append({**budget, "rows": rows})
    return out


def retrain_main(args: argparse.Namespace, seeds: list[int]) -> None:
    payload = json.loads(args.retrain_from.read_text())
    per_seed = retrain(args, payload, seeds)
    recorded_meta = payload["meta"]
    meta = {
        **c.meta(args),
        "retrained_from": str(args.retrain_from),
        "rerun_from": None if args.rerun_from is None else str(args.rerun_from),
        "rerun_methods": args.rerun_methods if args.rerun_from is not None else "",
        "recorded_meta": recorded_meta,
        "epochs": recorded_meta["epochs"],
        "child_epochs": args.child_epochs,
        "child_shift_px": args.child_shift,
        "seed": seeds[0],
        "seeds": seeds,
    }
    means = mean_over_seeds(per_seed)
    v = verdict(means, args.tolerance)
    for s, d in v["per_strategy"].items():
        if d is not None:
            d["paired_margins"] = paired_margins(per_seed, s)
    result = {"meta": meta, "budgets": means, "per_seed": per_seed, "verdict": v}
    c.write_results(NAME, args, result, seed_markdown(meta, means, v))
    c.log(f"claim holds: {v['holds']}")


def main() -> None:
    args = parse_args()
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    if args.retrain_from is not None:
        retrain_main(args, seeds)
        return
    bench = c.open_bench(args)
    space, model = c.prepare_space(bench, c.SPACE)
    lo, hi = model.min_latency_ms, model.max_latency_ms
    if args.budgets_ms:
        budgets = [float(b) for b in args.budgets_ms.split(",")]
    else:
        budgets = [lo + float(f) * (hi - lo) for f in args.fractions.split(",")]
    mbv2 = mbv2_widths(bench, args.widths)
    mbv2_pred = {w: p for w, (_, _, p) in mbv2.items()}
    c.log(f"budgets {[round(b, 4) for b in budgets]} ms; MobileNetV2 predicted {mbv2_pred}")
    meta = {
        **c.meta(args),
        "epochs": args.epochs,
        "child_epochs": args.child_epochs,
        "child_shift_px": args.child_shift,
        "seed": seeds[0],
        "seeds": seeds,
    }
    meta["space_range_ms"] = [lo, hi]
    meta["mbv2_predicted_ms"] = mbv2_pred
    per_seed: dict[int, list[dict[str, Any]]] = {}
    for seed in seeds:
        args.seed = seed
        results: list[dict[str, Any]] = []
        per_seed[seed] = results
        for budget in budgets:
            results.append(one_budget(bench, args, space, budget, mbv2))
            results[-1]["fraction"] = (budget - lo) / (hi - lo)
            if len(seeds) == 1:
                v = verdict(results, args.tolerance)
                payload: dict[str, Any] = {"meta": meta, "budgets": results, "verdict": v}
                c.write_results(NAME, args, payload, markdown(meta, results, v))
    if len(seeds) > 1:
        means = mean_over_seeds(per_seed)
        v = verdict(means, args.tolerance)
        for s, d in v["per_strategy"].items():
            if d is not None:
                d["paired_margins"] = paired_margins(per_seed, s)
        payload = {
            "meta": meta,
            "budgets": means,
            "per_seed": per_seed,
            "verdict": v,
        }
        c.write_results(NAME, args, payload, seed_markdown(meta, means, v))
    c.log(f"claim holds: {v['holds']}")


if __name__ == "__main__":
    main()
