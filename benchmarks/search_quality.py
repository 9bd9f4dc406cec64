"""search_quality: on a task that separates architectures, does the search beat a random network
and the hand-made one under the same latency budget?

On `--dataset` (cluttered-mnist, synthetic: a task where random architectures differ, see
accuracy_span) in `--space` (fbnet-tiny; `--span` names the accuracy_span result of that space)
with this machine's onnxruntime LUT (1 thread, calibrated), at three
budgets (0.3 / 0.55 / 0.8 of the way from the space's smallest to its largest predicted latency)
and for each of `--seeds`:

- `hardcore` and `fbnet`: one request with the three budgets, as a user's Pareto job runs it —
  one shared supernet (`search.shared`), each budget's architecture phase, each child trained;
- `random`: random search given the same wall time as hardcore's share of its job (the weight
  phase split evenly over the budgets, plus the budget's architecture phase): its trials are that
  time over one trial's cost (one proxy epoch, timed from hardcore's child);
- `mobilenetv2`: the hand-made network (every layer `ir_k3_e6`) at the widest width multiplier
  that fits.

Every method searches under the same predicted latency: hardcore's limit, the budget less the
margin that keeps its measured latency within the budget (`limit_of`); the baselines have no
margin of their own, and under the bare budget they would get the latency that hardcore gives up
for its guarantee. Measured latencies are set against the budget itself.

Every network's child is trained the same way (`--child-epochs`, shifts of `--child-shift` px,
the seed) and measured end to end in `--measure-rounds` rounds (their median). The verdict: at
two of three budgets or more, hardcore's per-seed paired difference to random and to
MobileNetV2 is above zero by more than two standard errors, and every hardcore result measures
within 1.05× its budget. Each budget also states the
mean stand-alone accuracy of accuracy_span's random architectures that fit it, and each method's
improvement over that mean.

    python benchmarks/search_quality.py --seeds 0 --tag _s0        # one process per seed
    python benchmarks/search_quality.py --seeds 0,1,2,3,4           # assembles search_quality.*
    python benchmarks/search_quality.py --merge A.json,B.json       # seeds of several results

`--merge` gathers seeds that ran apart (other processes, other sessions' committed results) into
one result, training nothing (`_seed_merge`): each seed keeps its run record and its budgets.

Every run is cached in `--workdir` (with the LUT), so a run cut short resumes and a run over
all seeds reuses the per-seed processes' work. Writes benchmarks/results/search_quality.json and
.md (search_quality_smoke.* with --smoke), rewritten after every seed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import _common as c
import torch
from _record import run_record
from _seed_merge import MergeError, budgets_of, gather

from search.request import build_requests
from search.shared import run_shared_search
from search.train import train_child

NAME = "search_quality"
MBV2_BLOCK = "ir_k3_e6"
SUPERNET_METHODS = ("hardcore", "fbnet")
METHODS = (*SUPERNET_METHODS, "random", "mobilenetv2")
BEATS_NEEDED = 2  # of the three budgets
MEASURED_LIMIT = 1.05  # measured / budget, every hardcore result
SPAN_RESULT = c.RESULTS / "accuracy_span.json"
HEAD_KEYS = ("space", "dataset", "synthetic", "test_images", "accuracy_span_pp")
SMOKE = {"epochs": 1, "child_epochs": 1, "widths": "0.5,1.0", "calibration": 4, "seeds": "0"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    c.add_common_args(p, ",".join(METHODS), epochs=8)
    p.add_argument("--dataset", default="cluttered-mnist")
    p.add_argument("--space", default=c.SPACE, help="a tiny space with an ir_k3_e6 candidate")
    p.add_argument("--span", type=Path, default=SPAN_RESULT, help="accuracy_span's result file")
    p.add_argument("--seeds", default="0,1,2,3,4", help="each seeds the searches and children")
    p.add_argument("--fractions", default="0.3,0.55,0.8", help="budgets, min→max predicted")
    p.add_argument("--widths", default="0.25,0.35,0.5,0.75,1.0", help="MobileNetV2 widths")
    p.add_argument("--child-shift", type=int, default=2, help="pixels (0: no augmentation)")
    p.add_argument(
        "--weight-sampling",
        choices=("single", "sandwich"),
        default="single",
        help="the shared supernet's weight phase: one path a step, or the sandwich rule",
    )
    p.add_argument(
        "--measure-rounds",
        type=int,
        default=5,
        help="end-to-end rounds per result network; its measured latency is their median",
    )
    p.add_argument(
        "--merge",
        default="",
        metavar="FILES",
        help="comma-separated result files of one protocol (seeds run apart, in other "
        "processes or sessions): write one result of all their seeds, training nothing",
    )
    args = c.parse(p, SMOKE)
    args.seeds = [int(s) for s in str(args.seeds).split(",") if s]
    unknown = set(args.strategies) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    return args


def train_cached(
    args: argparse.Namespace, data: Any, space: Any, arch: str, seed: int, done: Path
) -> dict[str, Any]:
    """`arch` of `space` trained from scratch with the child settings and `seed` (metrics cached
    in `done`)."""
    if done.exists():
        return dict(json.loads(done.read_text()))
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


def mbv2_widths(
    bench: c.Bench, space_text: str, widths: str
) -> dict[float, tuple[Any, str, float]]:
    """Per width: its space (profiled and calibrated), the all-`ir_k3_e6` arch, its prediction."""
    out = {}
    for w in sorted(float(x) for x in widths.split(",")):
        space, model = c.prepare_space(bench, f"{space_text}@w{w:g}")
        arch = space.architecture([MBV2_BLOCK] * len(space.layers)).to_string()
        out[w] = (space, arch, model.cost(c.choices_of(space, arch)))
    return out


def shared_job(
    bench: c.Bench, args: argparse.Namespace, strategy: str, budgets: list[float]
) -> list[dict[str, Any]]:
    """The budgets as one request on one supernet (resumes; cached once finished): each
    budget's metrics."""
    sampling = "" if args.weight_sampling == "single" else f"-{args.weight_sampling}"
    out = (
        c.run_dir(args, NAME, None, f"{strategy}-shared-nested{sampling}")
        / "b"
        / "_".join(f"{b:.6f}" for b in budgets)
    )
    doc = {
        "space": args.space,
        "dataset": args.dataset,
        "devices": [c.DEVICE],
        "budgets": budgets,
        "strategy": strategy,
        "epochs": args.epochs,
        "warmup_epochs": args.warmup_epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "child_epochs": args.child_epochs,
        "child_shift_px": args.child_shift,
        "weight_sampling": args.weight_sampling,
    }
    c.log(f"seed {args.seed} {strategy}: {len(budgets)} budgets on one supernet -> {out}")
    results = run_shared_search(build_requests(doc, out), bench.store, out, data=bench.data)
    return [metrics for _, _, metrics in results]


def share_wall_s(job: list[dict[str, Any]], index: int) -> float:
    """A budget's share of its job's search: the weight phase split evenly, plus its own
    architecture phase."""
    weights = float(job[index]["shared_supernet"]["weights_wall_s"])
    return weights / len(job) + float(job[index]["search_wall_s"])


def row(method: str, arch: str, accuracy: float, predicted: float) -> dict:
    return {"method": method, "arch": arch, "test_accuracy": accuracy, "predicted_ms": predicted}


def limit_of(job: list[dict[str, Any]] | None, index: int, budget: float) -> float:
    """The predicted latency every method searches under at budget `index`: hardcore's limit
    there (see the module's docstring), or the budget itself where hardcore did not run."""
    if job is None:
        return budget
    return float(job[index]["strategy_report"]["limit_ms"][c.DEVICE])


def one_seed(
    bench: c.Bench, args: argparse.Namespace, space: Any, budgets: list[float], mbv2: dict
) -> list[dict[str, dict[str, Any]]]:
    """Per budget, each method's row for seed `args.seed`."""
    rows: list[dict[str, dict[str, Any]]] = [{} for _ in budgets]
    jobs = {
        s: shared_job(bench, args, s, budgets) for s in SUPERNET_METHODS if s in args.strategies
    }
    for method, job in jobs.items():
        for i, m in enumerate(job):
            rows[i][method] = row(
                method, m["arch"], m["test_accuracy"], m["predicted_latency_ms"][c.DEVICE]
            )
            rows[i][method]["search_wall_s"] = share_wall_s(job, i)
            rows[i][method]["inherited_val_accuracy"] = m.get("inherited_val_accuracy")
    for i, budget in enumerate(budgets):
        limit = limit_of(jobs.get("hardcore"), i, budget)
        for method in rows[i]:
            rows[i][method]["limit_ms"] = limit
        if "random" in args.strategies and "hardcore" in jobs:
            child = jobs["hardcore"][i]
            per_trial = child["train_wall_s"] / max(1, child["child_epochs"])
            trials = max(1, round(share_wall_s(jobs["hardcore"], i) / per_trial))
            out = c.run_dir(args, NAME, limit, f"random-t{trials}")
            m = c.search(bench, args, "random", limit, out, trials=trials, space_text=args.space)
            predicted = m["predicted_latency_ms"][c.DEVICE]
            rows[i]["random"] = row("random", m["arch"], m["test_accuracy"], predicted)
            rows[i]["random"].update(
                trials=trials, search_wall_s=m["search_wall_s"], limit_ms=limit
            )
        fits = [w for w, (_, _, predicted) in mbv2.items() if predicted <= limit]
        if "mobilenetv2" in args.strategies and fits:
            w_space, arch, predicted = mbv2[max(fits)]
            done = c.run_dir(args, NAME, None, f"mbv2-{w_space.spec_string}") / "metrics.json"
            m = train_cached(args, bench.data, w_space, arch, args.seed, done)
            rows[i]["mobilenetv2"] = row("mobilenetv2", arch, m["test_accuracy"], predicted)
            rows[i]["mobilenetv2"].update(width=max(fits), limit_ms=limit)
    spaces = {space.spec_string: space} | {s.spec_string: s for s, _, _ in mbv2.values()}
    measure_rows(bench, rows, spaces, args.measure_rounds)
    return rows


def measure_rows(
    bench: c.Bench, rows: list[dict[str, dict[str, Any]]], spaces: dict[str, Any], rounds: int
) -> None:
    """Every row's network measured end to end in `rounds` rounds (each in a fresh session, the
    networks of a space in a shuffled order each round: `_common.measure_rounds`), its
    `measured_ms` their median: one slow spell of a shared machine does not decide whether a
    result is within its budget."""
    texts: dict[str, set[str]] = {}
    for by_method in rows:
        for r in by_method.values():
            texts.setdefault(r["arch"].split(":", 1)[0], set()).add(r["arch"])
    medians = {}
    for spec, group in texts.items():
        for text, times in c.measure_rounds(bench, spaces[spec], sorted(group), rounds).items():
            medians[text] = statistics.median(times)
    for by_method in rows:
        for r in by_method.values():
            r.update(measured_ms=medians[r["arch"]], measured_rounds=rounds)


def span_of(span_result: Path, space: Any, dataset: str) -> dict[str, Any]:
    """accuracy_span's record of `dataset`, or {} where the file is missing or holds another
    space's architectures (their span says nothing about this space)."""
    if not span_result.exists():
        return {}
    span = json.loads(span_result.read_text())
    if span.get("protocol", {}).get("space") != space.name:
        return {}
    return dict(span["datasets"].get(dataset, {}))


def random_archs_under(
    budgets: list[float], model: Any, space: Any, dataset: str, span_result: Path
) -> list[dict]:
    """Per budget: accuracy_span's random architectures (stand-alone, one seed) that fit it, and
    their mean test accuracy — the bar "Evaluating the Search Phase of NAS" sets."""
    runs = span_of(span_result, space, dataset).get("runs", [])
    out = []
    for budget in budgets:
        fit = [
            r["test_accuracy"] for r in runs if model.cost(c.choices_of(space, r["arch"])) <= budget
        ]
        out.append({"n": len(fit), "mean": statistics.fmean(fit) if fit else None})
    return out


def results_list(
    per_seed: dict[int, list[dict[str, dict[str, Any]]]],
    budgets: list[float],
    seed_budgets: dict[int, list[float]] | None = None,
) -> list[dict[str, Any]]:
    """One entry per budget and method: the test accuracy per seed (in seed order) and the
    largest measured / budget. `seed_budgets` gives a seed's own budgets where seeds ran on
    different LUTs (merged from several runs: the same fractions of each LUT's range)."""
    out = []
    seeds = sorted(per_seed)
    for i, budget in enumerate(budgets):
        for method in METHODS:
            ran = [s for s in seeds if method in per_seed[s][i]]
            if not ran:
                continue
            rows = [per_seed[s][i][method] for s in ran]
            own = [(seed_budgets or {}).get(s, budgets)[i] for s in ran]
            out.append(
                {
                    "budget_ms": budget,
                    "method": method,
                    "seeds": ran,
                    "per_seed": [r["test_accuracy"] for r in rows],
                    "measured_over_budget_max": max(
                        r["measured_ms"] / b for r, b in zip(rows, own, strict=True)
                    ),
                    "archs": [r["arch"] for r in rows],
                }
            )
    return out


def paired(results: list[dict[str, Any]], budget: float, a: str, b: str) -> dict | None:
    """Mean and standard error over the seeds both ran of accuracy(a) − accuracy(b)."""
    by = {r["method"]: r for r in results if r["budget_ms"] == budget}
    if a not in by or b not in by:
        return None
    pairs = dict(zip(by[b]["seeds"], by[b]["per_seed"], strict=True))
    diffs = [
        x - pairs[s] for s, x in zip(by[a]["seeds"], by[a]["per_seed"], strict=True) if s in pairs
    ]
    if len(diffs) < 2:
        return {"n": len(diffs), "mean": statistics.fmean(diffs) if diffs else None, "se": None}
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    return {"n": len(diffs), "mean": statistics.fmean(diffs), "se": se}


def verdict(results: list[dict[str, Any]], budgets: list[float]) -> dict[str, Any]:
    """Whether hardcore beats both baselines by > 2 standard errors of the paired per-seed
    difference at `BEATS_NEEDED` budgets (random alone where no MobileNetV2 width fits), and
    measures within `MEASURED_LIMIT` of every budget."""
    per_budget = []
    for budget in budgets:
        versus = {b: paired(results, budget, "hardcore", b) for b in ("random", "mobilenetv2")}
        ran = [v for v in versus.values() if v is not None]  # no MobileNetV2 width may fit
        beats = versus["random"] is not None and all(
            v["se"] is not None and v["mean"] > 2 * v["se"] for v in ran
        )
        per_budget.append({"budget_ms": budget, "versus": versus, "beats_both": beats})
    hardcore = [r for r in results if r["method"] == "hardcore"]
    within = all(r["measured_over_budget_max"] <= MEASURED_LIMIT for r in hardcore)
    beaten = sum(b["beats_both"] for b in per_budget)
    return {
        "per_budget": per_budget,
        "budgets_beaten": beaten,
        "beats_needed": BEATS_NEEDED,
        "hardcore_within_measured_limit": within and bool(hardcore),
        "measured_limit": MEASURED_LIMIT,
        "holds": beaten >= BEATS_NEEDED and within and bool(hardcore),
    }


def markdown(payload: dict[str, Any]) -> list[str]:
    m, v = payload["meta"], payload["verdict"]
    synthetic = " (synthetic)" if m["dataset"] == "cluttered-mnist" else ""
    span_pp = payload["accuracy_span_pp"]
    span = (
        f"Random architectures of the space span {span_pp:.1f} pp on this task (accuracy_span)."
        if span_pp is not None
        else "accuracy_span has not measured this space on this task."
    )
    lines = [
        f"# {NAME}",
        "",
        f"{m['dataset']}{synthetic}, {payload['space']}, {m['backend']} LUT (calibrated). Search "
        f"{m['epochs']} epochs (hardcore and fbnet: the three budgets as one request on one "
        f"supernet, weight sampling {m.get('weight_sampling', 'single')}); every child trained {m['child_epochs']} epochs with shifts up to "
        f"{m['child_shift_px']} px; seeds {', '.join(map(str, m['seeds']))}. {span}",
        "",
        "| budget ms | method | mean test acc | per seed | measured / budget (max) "
        "| vs mean random arch under budget |",
        "|---|---|---|---|---|---|",
    ]
    floors = {b["budget_ms"]: b for b in payload["random_archs_under_budget"]}
    for r in payload["results"]:
        mean = statistics.fmean(r["per_seed"])
        floor = floors[r["budget_ms"]]
        rel = f"{100 * (mean / floor['mean'] - 1):+.1f}% (n={floor['n']})" if floor["mean"] else "—"
        per = " / ".join(f"{a:.3f}" for a in r["per_seed"])
        lines.append(
            f"| {r['budget_ms']:.4f} | {r['method']} | {mean:.4f} | {per} "
            f"| {r['measured_over_budget_max']:.2f} | {rel} |"
        )
    lines += limits_line(payload)
    lines += inherited_line(payload)
    lines += seed_provenance(payload)
    lines += ["", "Hardcore minus each baseline, paired by seed (mean ± standard error, pp):", ""]
    for b in v["per_budget"]:
        parts = []
        for name, d in b["versus"].items():
            if d is None or d["mean"] is None:
                parts.append(f"{name}: not run")
            elif d["se"] is None:
                parts.append(f"{name}: {100 * d['mean']:+.1f} (one seed)")
            else:
                parts.append(f"{name}: {100 * d['mean']:+.1f} ± {100 * d['se']:.1f}")
        mark = "beats both" if b["beats_both"] else "does not beat both"
        lines.append(f"- {b['budget_ms']:.4f} ms: {'; '.join(parts)} — {mark}")
    lines += [
        "",
        f"**Verdict: {'holds' if v['holds'] else 'does not hold'}** — hardcore beats both "
        f"baselines by more than two standard errors at {v['budgets_beaten']} of "
        f"{len(v['per_budget'])} budgets (needed {v['beats_needed']}); every hardcore result "
        f"measures within {v['measured_limit']}× its budget: "
        f"{'yes' if v['hardcore_within_measured_limit'] else 'no'}.",
    ]
    return lines


def limits_line(payload: dict[str, Any]) -> list[str]:
    """The predicted latency every method searched under at each budget (hardcore's limit),
    from the first seed's rows; none for results from before the methods shared it."""
    first = payload["per_seed"][min(payload["per_seed"], key=int)]
    limits = [next(iter(by_method.values())).get("limit_ms") for by_method in first]
    if any(limit is None for limit in limits):
        return []
    budgets = [r["budget_ms"] for r in payload["results"]]
    pairs = ", ".join(
        f"{limit:.4f} ms ({limit / budget:.1%} of {budget:.4f})"
        for limit, budget in zip(limits, dict.fromkeys(budgets), strict=True)
    )
    return ["", f"Every method searched under hardcore's limit at each budget: {pairs}."]


def inherited_line(payload: dict[str, Any]) -> list[str]:
    """Hardcore's derived networks' validation accuracy with the shared weights, per budget in
    seed order (`search.inherited`: near chance, the search could not tell networks apart);
    none for results from before it was recorded."""
    per_budget: list[list[float]] = []
    seeds = sorted(payload["per_seed"].items(), key=lambda item: int(item[0]))
    for index in range(len(payload["random_archs_under_budget"])):
        rows = [seed_rows[index].get("hardcore", {}) for _, seed_rows in seeds]
        values = [
            r["inherited_val_accuracy"] for r in rows if r.get("inherited_val_accuracy") is not None
        ]
        per_budget.append(values)
    if not any(per_budget):
        return []
    parts = "; ".join(" / ".join(f"{100 * a:.1f}%" for a in values) or "—" for values in per_budget)
    return [
        "",
        f"Hardcore's networks with the shared weights, before their training (validation "
        f"accuracy per seed, by budget): {parts}.",
    ]


def seed_provenance(payload: dict[str, Any]) -> list[str]:
    """Where merged seeds ran: each seed's commit, date and budgets (none for one run)."""
    runs = payload.get("seed_runs")
    if not runs:
        return []
    budgets = payload.get("budgets_ms_per_seed", {})
    lines = ["", "Seeds merged from separate runs (`--merge`), each paired within itself:", ""]
    for seed in sorted(runs, key=int):
        run = runs[seed]
        own = " / ".join(f"{b:.4f}" for b in budgets.get(seed, []))
        lines.append(
            f"- seed {seed}: commit {str(run.get('commit'))[:12]}, {run.get('date')}, "
            f"budgets {own} ms"
        )
    return lines


def main() -> None:
    args = parse_args()
    if args.merge:
        return merge(args)
    torch.set_num_threads(1)  # the other core is someone else's
    bench = c.open_bench(args)
    space, model = c.prepare_space(bench, args.space)
    lo, hi = model.min_latency_ms, model.max_latency_ms
    budgets = [lo + float(f) * (hi - lo) for f in args.fractions.split(",")]
    mbv2 = mbv2_widths(bench, args.space, args.widths)
    c.log(f"budgets {[round(b, 4) for b in budgets]} ms")
    span = span_of(args.span, space, args.dataset)
    meta = {
        **c.meta(args),
        "epochs": args.epochs,
        "child_epochs": args.child_epochs,
        "child_shift_px": args.child_shift,
        "weight_sampling": args.weight_sampling,
        "seeds": args.seeds,
        "space_range_ms": [lo, hi],
        "fractions": args.fractions,
        "mbv2_predicted_ms": {w: p for w, (_, _, p) in mbv2.items()},
    }
    floors = random_archs_under(budgets, model, space, args.dataset, args.span)
    head = {
        "commit": run_record()["commit"],
        "space": args.space,
        "dataset": args.dataset,
        "synthetic": args.dataset == "cluttered-mnist",
        "test_images": len(bench.data.test),
        "accuracy_span_pp": span.get("summary", {}).get("span_pp"),
        "random_archs_under_budget": [
            {"budget_ms": b, **f} for b, f in zip(budgets, floors, strict=True)
        ],
    }
    per_seed: dict[int, list[dict[str, dict[str, Any]]]] = {}
    for seed in args.seeds:
        args.seed = seed
        per_seed[seed] = one_seed(bench, args, space, budgets, mbv2)
        payload = assemble(head, meta, budgets, per_seed)
        c.write_results(NAME, args, payload, markdown(payload))
    c.log(f"verdict holds: {payload['verdict']['holds']}")


def assemble(
    head: dict[str, Any],
    meta: dict[str, Any],
    budgets: list[float],
    per_seed: dict[int, list[dict[str, dict[str, Any]]]],
    seed_budgets: dict[int, list[float]] | None = None,
    seed_runs: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The result: `head` (what was searched, on what), the per-budget results and verdict
    over the seeds, the raw rows per seed (what `--merge` reads back), and where seeds came
    from other runs their budgets and run records."""
    results = results_list(per_seed, budgets, seed_budgets)
    payload = {
        **head,
        "results": results,
        "verdict": verdict(results, budgets),
        "per_seed": per_seed,
        "meta": {**meta, "seeds": sorted(per_seed)},
    }
    if seed_budgets is not None:
        payload["budgets_ms_per_seed"] = seed_budgets
    if seed_runs is not None:
        payload["seed_runs"] = seed_runs
    return payload


def merge(args: argparse.Namespace) -> None:
    """`--merge`: one result from the seeds of several result files of one protocol (no
    training); exits with one line where they cannot be merged."""
    files = [Path(f) for f in args.merge.split(",") if f]
    try:
        first, per_seed, seed_budgets, seed_runs = gather(files)
    except MergeError as exc:
        print(f"search_quality --merge: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    head = {k: first[k] for k in (*HEAD_KEYS, "random_archs_under_budget")}
    head["commit"] = run_record()["commit"]
    meta = {**first["meta"], "merged_from": [str(f) for f in files]}
    payload = assemble(head, meta, budgets_of(first), per_seed, seed_budgets, seed_runs)
    c.write_results(NAME, args, payload, markdown(payload))
    c.log(f"merged seeds {sorted(per_seed)}; verdict holds: {payload['verdict']['holds']}")


if __name__ == "__main__":
    main()
