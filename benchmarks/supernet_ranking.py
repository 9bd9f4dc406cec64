"""supernet_ranking: does the shared supernet rank architectures as training them alone does?

A weight-sharing search can only find a good network if the accuracy a path reaches with the
supernet's inherited weights orders architectures as their stand-alone training does ("Evaluating
the Search Phase of NAS": often it does not, and the search is then no better than random). This
trains the shared weights exactly as a multi-budget job does (`search.shared.WeightPhase`: one
path a step, drawn by `LatencySampler` over the space's whole latency range of this machine's
onnxruntime LUT) on `--dataset` (cluttered-mnist, synthetic), and after each of `--eval-epochs`
gives every architecture of accuracy_span (`--span`, its result file) its inherited weights, re-estimates BatchNorm on 20
training batches (as SPOS and OFA do) and measures its test accuracy. Kendall τ (tau-b) and
Spearman ρ against the stand-alone test accuracies recorded in accuracy_span's result. The
supernet nests each layer's MBConv kernels as jobs do (`search.nesting`); `--weights separate`
gives every candidate its own weights instead, to measure what the nesting buys.
`--weight-sampling` names the weight phase's modes to rank (`single`: one path a step;
`sandwich`: the largest, smallest and a sampled path a step, the two smaller distilled from the
largest, `search.sandwich`), each in its own subfolder of `--workdir`. The result holds one run
per mode, each with the run record of the command that measured it: a mode not run now keeps
its run from the current result when that ranked the same architectures, space and settings.

    python benchmarks/supernet_ranking.py

Writes benchmarks/results/supernet_ranking.json and .md (supernet_ranking_smoke.* with --smoke).
The weight phase checkpoints in `--workdir`, so an interrupted run resumes, and keeps the weights
of each evaluated epoch there, so a rerun after accuracy_span has trained more architectures only
evaluates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as c
import torch
from _record import run_record
from scipy.stats import kendalltau, spearmanr

from search.checkpoint import load_checkpoint
from search.cost import LatencyCostModel
from search.data import load_dataset
from search.inherited import inherited_accuracy
from search.request import WEIGHT_SAMPLING, SearchSettings
from search.run import bind_space
from search.shared import LatencySampler, Progress, WeightPhase
from search.spaces.base import SearchSpace
from search.supernet import Supernet
from search.train import steps_per_epoch

NAME = "supernet_ranking"
SPAN_RESULT = c.RESULTS / "accuracy_span.json"
WEIGHTS = ("nested", "separate")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="cluttered-mnist")
    p.add_argument("--eval-epochs", default="2,4,8", help="weight-phase epochs to rank after")
    p.add_argument("--span", type=Path, default=SPAN_RESULT, help="accuracy_span's result file")
    p.add_argument("--weights", choices=WEIGHTS, default="nested", help="the supernet's weights")
    p.add_argument(
        "--weight-sampling",
        default="single",
        help=f"comma-separated weight-phase modes to rank, of {', '.join(WEIGHT_SAMPLING)}",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="seeds the weight phase")
    p.add_argument("--calibration", type=int, default=20, help="end-to-end runs (LUT workdir)")
    p.add_argument("--lut-workdir", type=Path, default=Path("/tmp/hwnas-search-bench"))
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-supernet-ranking"))
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument("--smoke", action="store_true", help="1 epoch, the first 4 architectures")
    args = p.parse_args()
    args.eval_epochs = sorted({int(e) for e in args.eval_epochs.split(",") if e})
    args.weight_sampling = list(dict.fromkeys(m for m in args.weight_sampling.split(",") if m))
    unknown = set(args.weight_sampling) - set(WEIGHT_SAMPLING)
    if unknown or not args.weight_sampling:
        p.error(f"--weight-sampling takes {', '.join(WEIGHT_SAMPLING)}, not {args.weight_sampling}")
    if args.smoke:
        args.eval_epochs = [1]
        args.workdir = args.workdir.with_name(args.workdir.name + "-smoke")
    return args


def standalone_accuracies(span: Path, dataset: str, smoke: bool) -> dict[str, float]:
    """Architecture → stand-alone test accuracy, from an accuracy_span result."""
    runs = json.loads(span.read_text())["datasets"][dataset]["runs"]
    accuracies = {r["arch"]: float(r["test_accuracy"]) for r in runs}
    if len(accuracies) < 4:
        raise SystemExit(f"accuracy_span has {len(accuracies)} architectures on {dataset}")
    return dict(list(accuracies.items())[:4]) if smoke else accuracies


def cost_model(args: argparse.Namespace, space_text: str) -> LatencyCostModel:
    """The space's calibrated onnxruntime cost model from the search benchmarks' LUT workdir."""
    bench_args = argparse.Namespace(
        workdir=args.lut_workdir,
        smoke=False,
        drift_reference=False,
        calibration=args.calibration,
    )
    args.lut_workdir.mkdir(parents=True, exist_ok=True)
    return c.prepare_space(c.open_bench(bench_args), space_text)[1]


def correlations(inherited: dict[str, float], standalone: dict[str, float]) -> dict[str, float]:
    archs = list(standalone)
    a, b = [inherited[x] for x in archs], [standalone[x] for x in archs]
    return {
        "kendall_tau": float(kendalltau(a, b).statistic),
        "spearman_rho": float(spearmanr(a, b).statistic),
    }


WEIGHT_WORDS = {
    "nested": "each layer's MBConv kernels nested",
    "separate": "separate weights per candidate",
}
SAMPLING_WORDS = {
    "single": "one path a step",
    "sandwich": "the sandwich rule: the largest, the smallest and one sampled path a step, the "
    "two smaller distilled from the largest's soft outputs",
}


def markdown(payload: dict[str, Any]) -> list[str]:
    p = payload["protocol"]
    runs = payload["runs"]
    lines = [
        f"# {NAME}",
        "",
        f"{p['space']} on {p['dataset']}"
        + (" (synthetic)" if p["dataset"] == "cluttered-mnist" else "")
        + f": the shared weights ({WEIGHT_WORDS[p['weights']]}) trained as a multi-budget job "
        f"trains them (paths drawn over [{p['latency_range_ms'][0]:.3f}, "
        f"{p['latency_range_ms'][1]:.3f}] ms, batch {p['batch_size']}, seed {p['seed']}; "
        + "; ".join(
            f"`{r['weight_sampling']}`: {SAMPLING_WORDS[r['weight_sampling']]}" for r in runs
        )
        + f"); each of the {p['architectures']} architectures of accuracy_span evaluated on the "
        "test split with its inherited weights (BatchNorm re-estimated on 20 training batches), "
        f"against its stand-alone test accuracy ({p['standalone_protocol']}).",
        "",
        "| weight sampling | weight-phase epochs | Kendall τ | Spearman ρ "
        "| inherited accuracy: min / median / max | weight phase CPU |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        for row in run["rankings"]:
            acc = sorted(row["inherited"].values())
            lines.append(
                f"| {run['weight_sampling']} | {row['epochs']} | **{row['kendall_tau']:.2f}** | "
                f"{row['spearman_rho']:.2f} | {acc[0]:.1%} / {statistics.median(acc):.1%} / "
                f"{acc[-1]:.1%} | {row['weights_cpu_s'] / 60:.1f} min |"
            )
    lines += ["", *equal_cpu(runs)]
    finished = [r for r in runs if r["rankings"]]
    header = " | ".join(f"inherited, {r['weight_sampling']} (last row)" for r in finished)
    lines += [
        "",
        f"| architecture | stand-alone | {header} |",
        "|---|---|" + "---|" * len(finished),
    ]
    for arch, acc in sorted(payload["standalone"].items(), key=lambda kv: -kv[1]):
        cells = " | ".join(f"{r['rankings'][-1]['inherited'][arch]:.2%}" for r in finished)
        lines.append(f"| `{arch.split(':', 1)[1]}` | {acc:.2%} | {cells} |")
    for run in runs:
        if run["run"] != run_record():  # kept from an earlier command
            r = run["run"]
            lines += [
                "",
                f"The `{run['weight_sampling']}` run: commit {r['commit'][:12]} "
                f"({r['date'][:10]}): `{r['command']}`",
            ]
    return lines


def equal_cpu(runs: list[dict[str, Any]]) -> list[str]:
    """A sentence pairing the last single-path row with the sandwich row of the nearest weight
    phase CPU time, when both ran."""
    by_mode = {r["weight_sampling"]: r["rankings"] for r in runs if r["rankings"]}
    if set(by_mode) != {"single", "sandwich"}:
        return []
    single = by_mode["single"][-1]
    near = min(by_mode["sandwich"], key=lambda r: abs(r["weights_cpu_s"] - single["weights_cpu_s"]))
    return [
        f"At about equal weight-phase CPU: single path after {single['epochs']} epochs "
        f"({single['weights_cpu_s'] / 60:.1f} min) τ = {single['kendall_tau']:.2f}; sandwich "
        f"after {near['epochs']} epochs ({near['weights_cpu_s'] / 60:.1f} min) "
        f"τ = {near['kendall_tau']:.2f}."
    ]


def trained_weights(
    supernet: Supernet,
    sampler: LatencySampler,
    settings: SearchSettings,
    data: Any,
    workdir: Path,
    identity: str,
) -> dict[str, float] | None:
    """The supernet's weights after `settings.epochs` epochs (the phase's times), from the
    epoch's snapshot or by resuming the phase; None if the phase's checkpoint is already past
    that epoch and it has no snapshot (the weights then cannot be had without training again)."""
    snapshot = workdir / f"epoch-{settings.epochs}.pt"
    if snapshot.exists():  # a rerun (more architectures in the span) evaluates again only
        saved = torch.load(snapshot, weights_only=False)
        supernet.load_state_dict(saved["supernet"])
        return dict(saved["times"])
    total = settings.epochs * steps_per_epoch(data.train, settings.batch_size)
    payload = load_checkpoint(workdir)
    if payload is not None and int(payload["step"]) > total:
        return None
    times = WeightPhase(
        supernet,
        sampler,
        settings,
        data.train,
        workdir,
        identity,
        Progress(total=total),
        lambda event: None,
    ).run()
    torch.save({"supernet": supernet.state_dict(), "times": times}, snapshot)
    return times


def rank_mode(
    args: argparse.Namespace,
    mode: str,
    space: SearchSpace,
    sampler: LatencySampler,
    data: Any,
    standalone: dict[str, float],
    run: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """`run["rankings"]`: one row per evaluated epoch of `mode`'s weight phase; `save` after
    each."""
    torch.manual_seed(args.seed)
    supernet = Supernet(space, nested=args.weights == "nested")
    # the checkpoint's owner: extending --eval-epochs resumes it, another space, weights or
    # mode refuses (single-path folders keep the name they had before the modes)
    suffix = "" if mode == "single" else f"-{mode}"
    identity = f"supernet-ranking:{space.spec_string}:{args.weights}{suffix}"
    workdir = args.workdir / f"{space.spec_string}-{args.weights}{suffix}"
    for epochs in args.eval_epochs:
        settings = SearchSettings(
            "hardcore",
            epochs=epochs,
            warmup_epochs=0,
            batch_size=args.batch_size,
            seed=args.seed,
            weight_sampling=mode,
        )
        c.log(f"{mode}: weight phase to epoch {epochs}")
        times = trained_weights(supernet, sampler, settings, data, workdir, identity)
        if times is None:
            c.log(f"{mode}: no snapshot of epoch {epochs} and the phase is past it; skipped")
            continue
        started = time.process_time()
        inherited = {
            arch: inherited_accuracy(
                supernet, space, c.choices_of(space, arch), data, "test", args.batch_size
            )
            for arch in standalone
        }
        row = {
            "epochs": epochs,
            "weights_wall_s": times["wall_s"],
            "weights_cpu_s": times["cpu_s"],
            "evaluate_cpu_s": time.process_time() - started,
            **correlations(inherited, standalone),
            "inherited": inherited,
        }
        run["rankings"].append(row)
        c.log(f"{mode} epoch {epochs}: Kendall tau {row['kendall_tau']:.3f}")
        save()


SAME_PROTOCOL = ("space", "dataset", "weights", "batch_size", "seed", "span_result")


def kept_runs(args: argparse.Namespace, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The current result's runs of the modes not run now, if it ranked the same architectures
    (same stand-alone accuracies) with the same protocol; a result from before the modes holds
    one single-path run at its top level."""
    path = c.RESULTS / (f"{NAME}_smoke.json" if args.smoke else f"{NAME}{args.tag}.json")
    if not path.exists():
        return []
    current = json.loads(path.read_text())
    same = all(current["protocol"].get(k) == payload["protocol"][k] for k in SAME_PROTOCOL)
    if not same or current["standalone"] != payload["standalone"]:
        return []
    runs = current.get("runs") or [
        {"weight_sampling": "single", "run": current["run"], "rankings": current["rankings"]}
    ]
    return [r for r in runs if r["weight_sampling"] not in args.weight_sampling]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)  # the other core is someone else's
    standalone = standalone_accuracies(args.span, args.dataset, args.smoke)
    space_text = next(iter(standalone)).split(":", 1)[0]
    model = cost_model(args, space_text)
    data = load_dataset(args.dataset, seed=0, resolution=28)
    space = bind_space(space_text, data)
    if space.spec_string != model.space:
        raise SystemExit(f"the LUT's space {model.space} is not the dataset's {space.spec_string}")
    sampler = LatencySampler(model, model.min_latency_ms, model.max_latency_ms, args.seed)
    span_protocol = json.loads(args.span.read_text())["protocol"]
    new_runs: list[dict[str, Any]] = [
        {"weight_sampling": m, "run": run_record(), "rankings": []} for m in args.weight_sampling
    ]
    payload = {
        "protocol": {
            "space": space.spec_string,
            "dataset": args.dataset,
            "synthetic": args.dataset == "cluttered-mnist",
            "architectures": len(standalone),
            "weights": args.weights,
            "span_result": args.span.name,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "latency_range_ms": [sampler.low_ms, sampler.high_ms],
            "standalone_protocol": (
                f"{span_protocol['child_epochs']} epochs, shifts up to "
                f"{span_protocol['child_shift_px']} px, batch {span_protocol['batch_size']}, "
                f"seed {span_protocol['seed']}, from accuracy_span"
            ),
        },
        "standalone": standalone,
        "runs": new_runs,
        "meta": {"torch_threads": torch.get_num_threads(), "smoke": bool(args.smoke)},
    }

    def save() -> None:
        c.write_results(
            NAME, argparse.Namespace(smoke=args.smoke, tag=args.tag), payload, markdown(payload)
        )

    payload["runs"] = [*kept_runs(args, payload), *new_runs]
    for run in new_runs:
        rank_mode(args, run["weight_sampling"], space, sampler, data, standalone, run, save)


if __name__ == "__main__":
    main()
