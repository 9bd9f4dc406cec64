"""lut_accuracy: is the latency the LUT predicts the latency we measure?

For each runtime (1 thread) and space: build the space's LUT (resumable, in its own database),
measure `--calibration` random architectures end to end to fit the calibration, then measure
`--count` *other* random architectures end to end and compare them with three predictors: the raw
LUT sum, the LUT corrected by the device's measured fixed costs, and the calibrated predictor.
Reports MAPE, the share within ±10% and Kendall's τ. Also records what `profile_cost` needs: the
wall time and number of ops to build each LUT, and the median coefficient of variation.

    python benchmarks/lut_accuracy.py --backends onnxruntime,litert --spaces fbnet,fbnet-tiny

Writes benchmarks/results/lut_accuracy.json and .md (and profile_cost.json/.md), rewritten after
each (backend, space) so a long run can be followed and resumed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from _common import timed_rounds
from _record import run_markdown, run_record, with_run
from scipy.stats import kendalltau

from lut.measurement import Measurement
from lut.predictor import features, fit_calibration, predict_from_features
from lut.store import Device, LutStore, arch_key
from profilers.base import cpu_model, create_backend
from profilers.e2e import measure_into_store
from profilers.export import op_model
from profilers.in_network import profile_in_network
from profilers.protocol import MeasureProtocol
from profilers.runner import profile_specs, use_lut_drift_reference
from search.spaces.base import SearchSpace, space_from_string

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="onnxruntime,litert")
    p.add_argument("--spaces", default="fbnet-tiny,fbnet")
    p.add_argument("--count", type=int, default=100, help="test architectures per space")
    p.add_argument("--calibration", type=int, default=20, help="calibration architectures")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="end-to-end measuring rounds: each round times every architecture once more, in a "
        "shuffled order, and an architecture's latency is the median of its rounds (a single "
        "round of 224x224 networks on a shared machine does not repeat well enough to rank them)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="drop this run's LUTs and measurements and redo them"
    )
    p.add_argument(
        "--fresh-lut", action="store_true", help="measure the LUTs again, keep end-to-end runs"
    )
    p.add_argument(
        "--drift-reference",
        action="store_true",
        help="measure the LUTs and the end-to-end runs paired with a reference model "
        "(MeasureProtocol.drift_reference); use a workdir of its own",
    )
    p.add_argument(
        "--convert-only",
        action="store_true",
        help="only convert the LUT's micro-models and the end-to-end networks into the cache "
        "(run it on another core ahead of a measuring run, so conversions do not hold it up)",
    )
    p.add_argument(
        "--shard",
        default="0/1",
        help="with --convert-only: convert the I-th of every N networks ('I/N'), to split the "
        "conversions between processes",
    )
    p.add_argument(
        "--passes",
        type=int,
        default=1,
        help="measure every op of the (micro-model) LUTs this many times, passes pooled "
        "(`hwnas profile --passes`); adds passes to a LUT that has fewer",
    )
    p.add_argument(
        "--in-network",
        type=int,
        default=0,
        metavar="R",
        help="onnxruntime: predict from a LUT profiled inside R rounds of covering networks "
        "(`hwnas profile --in-network`) instead of micro-models; the end-to-end runs stay those "
        "of the micro-model LUT's device, so both LUTs are scored on the same measurements",
    )
    p.add_argument("--workdir", type=Path, default=Path("/tmp/hwnas-bench"))
    p.add_argument("--tag", default="", help="suffix of the result files")
    return p.parse_args()


def measure_e2e(
    store: LutStore, device: Device, backend: Any, space: SearchSpace, archs: list
) -> dict[str, float]:
    """End-to-end medians, resumable through the device's e2e table."""
    # Calibration and test architectures interleaved, so a drift of the machine's speed during
    # the run cannot bias one set against the other.
    archs = sorted(archs, key=lambda a: arch_key(a.to_string()))

    def logged(i: int, m: Measurement) -> None:
        print(f"  e2e {i + 1}/{len(archs)} {m.median_ms:.4f} ms", file=sys.stderr, flush=True)

    return measure_into_store(store, device, backend, space, archs, on_measured=logged)


def measure_rounds(
    backend: Any, space: SearchSpace, archs: list, first: dict[str, float], args: argparse.Namespace
) -> dict[str, list[float]]:
    """`--rounds` rounds per architecture (`_common.timed_rounds`), the later ones kept in
    `--workdir/e2e_rounds/<backend>-<space>.json`."""
    path = args.workdir / "e2e_rounds" / f"{backend.name}-{space.spec_string}.json"
    by_text = {a.to_string(): a for a in archs}
    return timed_rounds(backend, space, by_text, first, args.rounds, path)


def round_agreement(rounds: list[list[float]], predicted: list[float]) -> dict[str, Any] | None:
    """How well measurements agree with each other, against how well the predictor agrees with
    them: the rounds are split into two disjoint halves of k = rounds // 2 (every such split),
    and the median over splits is given of τ(half, other half) (two independent k-round
    measurements) and of τ(predictor, half). A predictor cannot be shown to rank networks better
    than measurements rank themselves."""
    count = len(rounds[0])
    if count < 2:
        return None
    k = count // 2
    between, predictor = [], []
    for chosen in itertools.combinations(range(count), 2 * k):
        for first in itertools.combinations(chosen, k):
            if first[0] != chosen[0]:  # each split once
                continue
            second = [i for i in chosen if i not in first]
            a = [statistics.median(r[i] for i in first) for r in rounds]
            b = [statistics.median(r[i] for i in second) for r in rounds]
            between.append(float(kendalltau(a, b).statistic))
            predictor.append(float(kendalltau(predicted, a).statistic))
    return {
        "half_rounds": k,
        "tau_between_halves_median": statistics.median(between),
        "tau_predictor_vs_half_median": statistics.median(predictor),
        "spread_median_pct": 100 * statistics.median(max(r) / min(r) - 1 for r in rounds),
    }


def convert_only(backend_name: str, space_name: str, args: argparse.Namespace) -> None:
    """Fill the cache with every file `run_one` will time, in the order it times them."""
    space = space_from_string(space_name)
    backend = create_backend(backend_name, threads=1, cache_dir=args.workdir / "cache")
    index, count = (int(x) for x in args.shard.split("/"))
    specs = [s for s in space.distinct_opspecs() if not s.is_identity]
    for spec in specs[index::count]:
        backend.convert_cached(*op_model(spec), cache_key=spec.key)
    archs = list(space.iter_random(seed=1000, count=args.calibration))
    archs += list(space.iter_random(seed=1, count=args.count))
    archs = sorted(archs, key=lambda a: arch_key(a.to_string()))[index::count]
    example = torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))
    for i, arch in enumerate(archs, start=1):
        key = f"net-{arch_key(arch.to_string())}"
        backend.convert_cached(space.build(arch).eval(), example, cache_key=key)
        print(f"  converted {i}/{len(archs)}", file=sys.stderr, flush=True)


def metrics(predicted: list[float], measured: list[float]) -> dict[str, float]:
    errors = [(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    tau = kendalltau(predicted, measured).statistic
    return {
        "mape_pct": 100 * statistics.fmean(abs(e) for e in errors),
        "within_10pct": sum(abs(e) <= 0.10 for e in errors) / len(errors),
        "within_5pct": sum(abs(e) <= 0.05 for e in errors) / len(errors),
        "mean_signed_error_pct": 100 * statistics.fmean(errors),
        "kendall_tau": float(tau),
    }


def run_one(backend_name: str, space_name: str, args: argparse.Namespace) -> dict[str, Any]:
    space = space_from_string(space_name)
    store = LutStore(f"sqlite:///{args.workdir / 'bench.db'}")
    protocol = MeasureProtocol(drift_reference=args.drift_reference)
    backend = create_backend(
        backend_name, threads=1, cache_dir=args.workdir / "cache", protocol=protocol
    )
    device_name = f"bench-{backend_name}"
    specs = space.distinct_opspecs()
    if args.fresh:
        for old in store.devices(device_name) + store.devices(f"{device_name}-in-network"):
            store.delete_device(old)
    conversions = getattr(backend, "conversions", 0)
    start = time.perf_counter()
    report = profile_specs(
        store, backend, device_name, specs, force=args.fresh_lut, passes=args.passes
    )
    profile_wall = time.perf_counter() - start
    device = report.device
    lut = store.lookup(device, specs)
    fixed = device.fixed_costs
    profile = {
        "ops": len([s for s in specs if not s.is_identity]),
        "ops_measured_this_run": len(report.measured),
        "wall_s_this_run": profile_wall,
        "converted_all": getattr(backend, "conversions", 0) - conversions >= len(lut),
    }
    label, lut_device = backend_name, device
    if args.in_network and backend_name == "onnxruntime":
        label = f"{backend_name} (in-network LUT)"
        lut_device, profile = in_network_lut(store, backend, device, space, args)
        lut, fixed = store.lookup(lut_device, specs), lut_device.fixed_costs
    cvs = [lut[s.key].cv for s in specs if s.key in lut]
    assert fixed is not None
    cal_archs = list(space.iter_random(seed=1000, count=args.calibration))
    test_archs = list(space.iter_random(seed=1, count=args.count))
    print(f"{backend_name} {space_name}: e2e", file=sys.stderr, flush=True)
    first = measure_e2e(store, device, backend, space, cal_archs + test_archs)
    rounds = measure_rounds(backend, space, cal_archs + test_archs, first, args)
    e2e = {text: statistics.median(values) for text, values in rounds.items()}

    def feats(arch: Any) -> Any:
        decoded = space.decode(arch)
        return features(decoded, lut, fixed)

    cal_points = [(feats(a), e2e[a.to_string()]) for a in cal_archs]
    calibration = fit_calibration(cal_points, fixed)
    single = fit_calibration(cal_points, fixed, per_family=False)
    store.set_calibration(lut_device, space.spec_string, calibration)
    measured = [e2e[a.to_string()] for a in test_archs]
    test_feats = [feats(a) for a in test_archs]
    raw = [f.raw_sum_ms for f in test_feats]
    corrected = [predict_from_features(f, fixed).latency_ms for f in test_feats]
    calibrated = [predict_from_features(f, fixed, calibration).latency_ms for f in test_feats]
    single_alpha = [predict_from_features(f, fixed, single).latency_ms for f in test_feats]
    return {
        "backend": label,
        "space": space.spec_string,
        "threads": 1,
        "drift_reference": args.drift_reference,
        "fingerprint": lut_device.fingerprint,
        "fixed_costs": fixed.to_dict(),
        "calibration": calibration.to_dict(),
        "calibration_single_alpha": single.to_dict(),
        "n_test": len(test_archs),
        "n_calibration": len(cal_archs),
        "rounds": args.rounds,
        "round_agreement": round_agreement([rounds[a.to_string()] for a in test_archs], calibrated),
        "measured_ms": {
            "median": statistics.median(measured),
            "min": min(measured),
            "max": max(measured),
        },
        "raw_lut_sum": metrics(raw, measured),
        "corrected_uncalibrated": metrics(corrected, measured),
        "calibrated_single_alpha": metrics(single_alpha, measured),
        "corrected_calibrated": metrics(calibrated, measured),
        "profile": {**profile, "median_cv": statistics.median(cvs)},
        "points": [
            {
                "arch": a.to_string(),
                "measured_ms": m,
                "rounds_ms": rounds[a.to_string()],
                "raw_ms": r,
                "calibrated_ms": c,
            }
            for a, m, r, c in zip(test_archs, measured, raw, calibrated, strict=True)
        ],
    }


def in_network_lut(
    store: LutStore, backend: Any, device: Device, space: SearchSpace, args: argparse.Namespace
) -> tuple[Device, dict[str, Any]]:
    """The in-network LUT (`profilers.in_network`) beside `device`'s, and its profile_cost row;
    the backend is left measuring in the unit of `device`'s LUT again."""
    print(f"onnxruntime {space.spec_string}: in-network LUT", file=sys.stderr, flush=True)
    start = time.perf_counter()
    report = profile_in_network(
        store,
        backend,
        f"{device.name}-in-network",
        space,
        rounds=args.in_network,
        force=args.fresh_lut,
    )
    wall = time.perf_counter() - start
    use_lut_drift_reference(backend, device)
    specs = space.distinct_opspecs()
    profile = {
        "ops": len([s for s in specs if not s.is_identity]),
        "ops_measured_this_run": report.entries_written,
        "wall_s_this_run": wall,
        "converted_all": len(report.profiled) == report.networks,
        "networks": report.networks,
    }
    return report.device, profile


def merged(results: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """This run's rows, plus earlier rows of other (backend, space) pairs from the result file."""
    path = RESULTS / f"lut_accuracy{tag}.json"
    done = {(r["backend"], r["space"]) for r in results}
    earlier = json.loads(path.read_text())["results"] if path.exists() else []
    return [r for r in earlier if (r["backend"], r["space"]) not in done] + results


def profile_rows(results: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """Rows of LUTs built from scratch in this run (every op measured, conversions included);
    other pairs keep the row of the run that built them."""
    path = RESULTS / f"profile_cost{tag}.json"
    rows = {
        (r["backend"], r["space"]): r
        for r in (json.loads(path.read_text())["results"] if path.exists() else [])
        if "wall_s" in r
    }
    for r in results:
        p = r["profile"]
        if p["ops_measured_this_run"] == p["ops"] and p.get("converted_all", False):
            rows[(r["backend"], r["space"])] = {
                "backend": r["backend"],
                "space": r["space"],
                "ops": p["ops"],
                "wall_s": p["wall_s_this_run"],
                "median_cv": p["median_cv"],
                "date": time.strftime("%Y-%m-%d %H:%M"),
            }
    return list(rows.values())


def write_results(results: list[dict[str, Any]], tag: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for r in results:  # rows merged in from earlier runs keep those runs' records
        r.setdefault("run", run_record())
    results = merged(results, tag)
    meta = {"cpu": cpu_model(), "machine": platform.machine(), "date": time.strftime("%Y-%m-%d")}
    (RESULTS / f"lut_accuracy{tag}.json").write_text(
        json.dumps(with_run({"meta": meta, "results": results}), indent=1)
    )
    lines = [
        f"# lut_accuracy — {meta['cpu']}, 1 thread, {meta['date']}",
        "",
        "Test architectures are disjoint from the calibration ones. Goal: ≥95% within ±10% and "
        "τ ≥ 0.9 for the calibrated predictor.",
        "",
        "| backend | space | n | rounds | median ms | predictor | MAPE % | within ±10% | Kendall τ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for key, label in (
            ("raw_lut_sum", "raw LUT sum"),
            ("corrected_uncalibrated", "fixed costs"),
            ("calibrated_single_alpha", "calibrated, one α"),
            ("corrected_calibrated", "calibrated, any form"),
        ):
            if key not in r:  # rows written by an earlier version of this script
                continue
            m = r[key]
            lines.append(
                f"| {r['backend']} | {r['space']} | {r['n_test']} | {r.get('rounds', 1)} "
                f"| {r['measured_ms']['median']:.3f} "
                f"| {label} | {m['mape_pct']:.1f} | {100 * m['within_10pct']:.0f}% | {m['kendall_tau']:.3f} |"
            )
    lines += [
        "",
        "Calibrations: each fits the forms it may use (one α, or one per op family with enough "
        "points; with and without β per op and γ) and keeps the one with the smallest "
        "leave-one-out error on its calibration runs.",
        "",
    ]
    lines += [
        f"- {r['backend']} {r['space']}: any form → {r['calibration'].get('form', '?')} "
        f"(leave-one-out MAPE {r['calibration'].get('mape_loo') or float('nan'):.1f}%); "
        f"one α → {r.get('calibration_single_alpha', {}).get('form', '?')}"
        for r in results
    ]
    lines += [
        "",
        "Measured latency = the median of an architecture's rounds (each a fresh session, "
        "rounds in shuffled orders). Do measurements rank the networks as the predictor does? "
        "The rounds split into two halves of k rounds (every split; medians over splits): τ "
        "between the two halves' medians (two independent k-round measurements) against τ "
        "between the calibrated predictor and one half:",
        "",
    ]
    lines += [
        f"- {r['backend']} {r['space']}: k = {a['half_rounds']}: τ(half, other half) "
        f"{a['tau_between_halves_median']:.3f}, τ(predictor, half) "
        f"{a['tau_predictor_vs_half_median']:.3f}; spread over the {r['rounds']} rounds "
        f"(median max/min − 1) {a['spread_median_pct']:.1f}%"
        for r in results
        if (a := r.get("round_agreement")) and "half_rounds" in a
    ]
    (RESULTS / f"lut_accuracy{tag}.md").write_text("\n".join([*lines, "", run_markdown()]) + "\n")
    cost = profile_rows(results, tag)
    (RESULTS / f"profile_cost{tag}.json").write_text(
        json.dumps(with_run({"meta": meta, "results": cost}), indent=1)
    )
    md = [
        f"# profile_cost — {meta['cpu']}, 1 core",
        "",
        "Building each LUT from scratch: converting (ONNX export / litert-torch) and measuring "
        "every op, plus the fixed costs.",
        "",
        "| backend | space | ops | wall s | median CV | measured on |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {c['backend']} | {c['space']} | {c['ops']} | {c['wall_s']:.0f} | "
        f"{100 * c['median_cv']:.1f}% | {c['date']} |"
        for c in cost
    ]
    (RESULTS / f"profile_cost{tag}.md").write_text("\n".join([*md, "", run_markdown()]) + "\n")


def main() -> None:
    args = parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        for space in args.spaces.split(","):
            if args.convert_only:
                convert_only(backend, space, args)
                continue
            results.append(run_one(backend, space, args))
            write_results(results, args.tag)
            c = results[-1]["corrected_calibrated"]
            print(
                f"{backend} {space}: within10 {c['within_10pct']:.2%} tau {c['kendall_tau']:.3f}",
                file=sys.stderr,
                flush=True,
            )


if __name__ == "__main__":
    main()
