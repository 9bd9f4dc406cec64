"""accuracy_span: how far apart are random architectures of a space on a task?

A benchmark task can only show that a search beats a random network when architectures differ
on it by more than the noise. This trains `-n` (20) random architectures of `--space`
(fbnet-tiny) from scratch on each of `--datasets` (cluttered-mnist, synthetic, and mnist5k) with
search_quality's child-training protocol (its `train_cached`: `--child-epochs` 8, random shifts
of up to `--child-shift` 2 px, batch 128, `--seed` 0 for every architecture; data split at seed
0, 28×28) and reports the min / median / max test accuracy and the span (max − min) in pp.
The same architectures are trained on every dataset, alternating, so a run cut short still
compares like with like.

    python benchmarks/accuracy_span.py

Writes benchmarks/results/accuracy_span.json and .md (accuracy_span_smoke.* with --smoke),
rewritten after every architecture. Each training is cached in `--workdir`, so an interrupted
run resumes; `--max-wall-s` stops starting new architectures after that many seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import _common as c
import torch
from search_quality import train_cached

from lut.store import arch_key
from search.data import load_dataset
from search.run import bind_space
from search.spaces.complexity import total_macs

NAME = "accuracy_span"
SYNTHETIC = ("cluttered-mnist",)  # labelled as synthetic in every table


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="cluttered-mnist,mnist5k", help="comma-separated")
    p.add_argument("--space", default=c.SPACE)
    p.add_argument("-n", "--count", type=int, default=20, help="random architectures")
    p.add_argument("--arch-seed", type=int, default=27, help="seeds the random architectures")
    p.add_argument("--seed", type=int, default=0, help="seeds every architecture's training")
    p.add_argument("--child-epochs", type=int, default=8)
    p.add_argument("--child-shift", type=int, default=2, help="pixels (0: no augmentation)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-wall-s", type=float, default=None, help="start no architecture after")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-accuracy-span"))
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument(
        "--only-cached",
        default="",
        help="comma-separated datasets reported only where an architecture's training is already "
        "cached in the workdir, never started (to assemble a run cut short)",
    )
    p.add_argument("--smoke", action="store_true", help="2 architectures, 1 epoch")
    args = p.parse_args()
    if args.smoke:
        args.count, args.child_epochs = min(args.count, 2), 1
        args.workdir = args.workdir.with_name(args.workdir.name + "-smoke")
    args.datasets = [d for d in args.datasets.split(",") if d]
    args.only_cached = {d for d in args.only_cached.split(",") if d}
    return args


def meta(args: argparse.Namespace, started: float, fresh: int, cached: int) -> dict[str, Any]:
    """What the run record (`_record`: commit, date, command, machine) does not say."""
    return {
        "torch_threads": torch.get_num_threads(),
        "wall_s": time.perf_counter() - started,
        "trainings_run": fresh,
        "trainings_from_cache": cached,  # finished by earlier invocations (same settings)
        "smoke": bool(args.smoke),
    }


def summary(accuracies: list[float]) -> dict[str, Any]:
    return {
        "n": len(accuracies),
        "min": min(accuracies),
        "median": statistics.median(accuracies),
        "max": max(accuracies),
        "span_pp": 100 * (max(accuracies) - min(accuracies)),
    }


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    return statistics.correlation(ranks(a), ranks(b))


def markdown(payload: dict[str, Any]) -> list[str]:
    m, p = payload["meta"], payload["protocol"]
    names = list(payload["datasets"])
    label = {n: f"{n} (synthetic)" if n in SYNTHETIC else n for n in names}
    lines = [
        f"# {NAME}",
        "",
        f"{p['space']}: {p['count_done']} random architectures drawn (seed {p['arch_seed']}), "
        f"each dataset's n of them trained from scratch {p['child_epochs']} epochs, shifts up to "
        f"{p['child_shift_px']} px, batch {p['batch_size']}, training seed {p['seed']} (one run "
        "each); data split at seed 0.",
        f"{m['torch_threads']} torch thread; {m['trainings_run']} trainings run by this "
        f"invocation ({m['wall_s'] / 60:.0f} min), {m['trainings_from_cache']} read from "
        "earlier invocations' cache (each one's wall time is in the JSON).",
        "",
        "| dataset | train / val / test | n | min | median | max | span | s.e. of one accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        d = payload["datasets"][n]
        if not d["runs"]:
            continue
        s, sizes = d["summary"], d["sizes"]
        se = 100 * (s["median"] * (1 - s["median"]) / sizes["test"]) ** 0.5
        lines.append(
            f"| {label[n]} | {sizes['train']:,} / {sizes['val']:,} / {sizes['test']:,} | {s['n']} "
            f"| {s['min']:.2%} | {s['median']:.2%} | {s['max']:.2%} | **{s['span_pp']:.1f} pp** "
            f"| {se:.1f} pp |"
        )
    if payload.get("spearman") is not None:
        lines += [
            "",
            f"Rank correlation of the accuracies of the {payload['spearman_n']} architectures "
            f"trained on both (Spearman, {' vs '.join(names)}): {payload['spearman']:.2f}.",
        ]
    lines += [
        "",
        "| architecture | MACs | " + " | ".join(label[n] for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for arch, macs in zip(payload["architectures"], payload["macs"], strict=True):
        cells = []
        for n in names:
            acc = {r["arch"]: r["test_accuracy"] for r in payload["datasets"][n]["runs"]}.get(arch)
            cells.append("not run" if acc is None else f"{acc:.2%}")
        lines.append(f"| `{arch.split(':', 1)[1]}` | {macs:,} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)  # the other core is someone else's
    started = time.perf_counter()
    loaded = {name: load_dataset(name, seed=0, resolution=28) for name in args.datasets}
    spaces = {name: bind_space(args.space, data) for name, data in loaded.items()}
    first = spaces[args.datasets[0]]
    archs = [a.to_string() for a in first.iter_random(seed=args.arch_seed, count=args.count)]
    counts = {"fresh": 0, "cached": 0}
    config = f"c{args.child_epochs}x{args.child_shift}b{args.batch_size}s{args.seed}"
    payload: dict[str, Any] = {
        "protocol": {
            "space": args.space,
            "count": args.count,
            "count_done": 0,
            "arch_seed": args.arch_seed,
            "seed": args.seed,
            "child_epochs": args.child_epochs,
            "child_shift_px": args.child_shift,
            "batch_size": args.batch_size,
            "split_seed": 0,
            "resolution": 28,
        },
        "architectures": [],
        "macs": [],
        "datasets": {
            name: {
                **data.record(),
                "synthetic": name in SYNTHETIC,
                "runs": [],
            }
            for name, data in loaded.items()
        },
    }
    for i, arch in enumerate(archs):
        if args.max_wall_s is not None and time.perf_counter() - started > args.max_wall_s:
            c.log(f"--max-wall-s reached: {i} of {len(archs)} architectures")
            break
        for name, data in loaded.items():
            space = spaces[name]
            text = arch.replace(first.spec_string, space.spec_string, 1)
            done = args.workdir / NAME / f"{name}-{data.content_hash}" / config / arch_key(text)
            if name in args.only_cached and not (done / "metrics.json").exists():
                continue
            c.log(f"{i + 1}/{len(archs)} {name}")
            counts["cached" if (done / "metrics.json").exists() else "fresh"] += 1
            metrics = train_cached(args, data, space, text, args.seed, done / "metrics.json")
            runs = payload["datasets"][name]["runs"]
            runs.append(metrics)
            payload["datasets"][name]["summary"] = summary([r["test_accuracy"] for r in runs])
            c.log(f"  test {metrics['test_accuracy']:.4f}, {metrics['train_wall_s']:.0f} s")
        decoded = first.decode(first.architecture(arch.split(":", 1)[1].split("-")))
        payload["architectures"].append(arch)
        payload["macs"].append(total_macs(decoded))
        payload["protocol"]["count_done"] = i + 1
        if len(loaded) == 2:  # over the architectures trained on both
            a, b = (
                {r["arch"]: r["test_accuracy"] for r in d["runs"]}
                for d in payload["datasets"].values()
            )
            both = [t for t in a if t in b]
            payload["spearman"] = spearman([a[t] for t in both], [b[t] for t in both])
            payload["spearman_n"] = len(both)
        payload["meta"] = meta(args, started, counts["fresh"], counts["cached"])
        c.write_results(NAME, args, payload, markdown(payload))


if __name__ == "__main__":
    main()
