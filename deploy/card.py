"""The model card: every figure read from the run directory's files as they are now (arch.json,
metrics.json, child.pt, the exported files, export/checks.json entries that match the files'
sha256, export/targets.json), as card.json and card.md."""

from __future__ import annotations

import platform
import statistics
from pathlib import Path
from typing import Any

from deploy.card_input import input_lines
from deploy.checks import CHECKS_FILE, TARGETS_FILE, fresh_entry, read_json_or_empty
from deploy.child import Child, read_json
from deploy.contract import input_contract, read_inputs
from deploy.formats import get_format
from deploy.memory import tflite_memory

FP32_OF = {"onnx-int8": "onnx", "tflite-int8": "tflite"}
ERRORS_FILE = "errors.json"


def build_card(run_dir: Path, child: Child, files: dict[str, Path]) -> dict[str, Any]:
    from search.spaces.complexity import total_macs

    export_dir = run_dir / "export"
    metrics = read_json(run_dir / "metrics.json", "the search's metrics")
    checks = read_json_or_empty(export_dir / CHECKS_FILE)
    fresh = {
        name: checks[name] for name, path in files.items() if fresh_entry(checks.get(name), path)
    }
    dataset = metrics.get("dataset") or {}
    input_shape = [int(d) for d in child.space.input_shape[1:]]  # type: ignore[call-overload]
    return {
        "arch": child.arch_string,
        "space": child.space.name,
        "input_shape": input_shape,
        "input": input_contract(dataset, input_shape, files, read_inputs(export_dir)),
        "num_classes": child.space.num_classes,
        "params": child.params,
        "macs": total_macs(child.space.decode(child.arch)),
        "dataset": {"name": dataset.get("name"), "content_hash": dataset.get("content_hash")},
        "files": {name: _file_entry(run_dir, path) for name, path in files.items()},
        "accuracy": _accuracy(fresh),
        "int8": _int8_summary(fresh, files),
        "verification": {name: _verification(entry) for name, entry in fresh.items()},
        "latency_ms": {
            "predicted": dict(metrics.get("predicted_latency_ms") or {}),
            "measured_here": {n: _latency(e["measurement"]) for n, e in fresh.items()},
            "measured_on_target": _targets(export_dir),
        },
        "memory": _memory(files, fresh),
        "stale": sorted(n for n in set(files) - set(fresh) if get_format(n).verifiable),
        "errors": read_json_or_empty(export_dir / ERRORS_FILE),
        "host": {"machine": platform.machine(), "cpu": _cpu()},
    }


def _file_entry(run_dir: Path, path: Path) -> dict[str, Any]:
    return {"file": str(path.relative_to(run_dir)), "bytes": path.stat().st_size}


def _accuracy(fresh: dict[str, Any]) -> dict[str, float]:
    result: dict[str, float] = {}
    for name, entry in fresh.items():
        verification = entry["verification"]
        result.setdefault("pytorch", verification["reference_accuracy"])
        result[name] = verification["accuracy"]
    return result


def _int8_summary(fresh: dict[str, Any], files: dict[str, Path]) -> dict[str, Any]:
    summary = {}
    for name, fp32 in FP32_OF.items():
        if name not in files:
            continue
        entry: dict[str, Any] = {"bytes": files[name].stat().st_size}
        if fp32 in files:
            entry["size_ratio_vs_fp32"] = entry["bytes"] / files[fp32].stat().st_size
        if name in fresh:
            entry["accuracy_drop_pp"] = fresh[name]["verification"]["accuracy_drop_pp"]
        summary[name] = entry
    return summary


def _verification(entry: dict[str, Any]) -> dict[str, Any]:
    keep = ("max_abs_diff", "top1_agreement", "samples", "check", "passed")
    return {key: entry["verification"][key] for key in keep}


def _latency(measurement: dict[str, Any]) -> dict[str, Any]:
    extra = measurement.get("extra") or {}
    return {
        "runtime": measurement.get("runtime") or extra.get("backend"),
        "median_ms": measurement["median_ms"],
        "p10_ms": measurement["p10_ms"],
        "p90_ms": measurement["p90_ms"],
        "n": measurement["n"],
        "threads": extra.get("threads"),
        "runtime_version": extra.get("runtime_version"),
        **_lut_unit(measurement),
    }


def _lut_unit(measurement: dict[str, Any]) -> dict[str, Any]:
    """Timed in a device LUT's unit (deploy.measure.LutUnit): which device, and, with a drift
    reference, the plain median of the same runs."""
    unit = measurement.get("lut_unit")
    if not unit:
        return {}
    result: dict[str, Any] = {"lut_unit": unit["device"]}
    pairs = (measurement.get("extra") or {}).get("drift_reference") or {}
    if pairs.get("raw_ms"):
        result["raw_median_ms"] = statistics.median(pairs["raw_ms"])
        result["drift_referenced"] = True
    return result


def _targets(export_dir: Path) -> dict[str, dict[str, Any]]:
    targets = read_json_or_empty(export_dir / TARGETS_FILE)
    return {
        device: {fmt: {**_latency(m), **_taken_by(m)} for fmt, m in by_format.items()}
        for device, by_format in targets.items()
    }


def _taken_by(measurement: dict[str, Any]) -> dict[str, Any]:
    """Which agent and device LUT took a measurement on the target, when recorded."""
    taken_by = measurement.get("taken_by")
    return {"taken_by": taken_by} if taken_by else {}


def _memory(files: dict[str, Path], fresh: dict[str, Any]) -> dict[str, Any]:
    memory: dict[str, Any] = {}
    for name, path in files.items():
        entry: dict[str, Any] = {"flash_bytes": path.stat().st_size}
        if path.suffix == ".tflite":
            entry.update(tflite_memory(path))
        measured = fresh.get(name, {}).get("measurement")
        if measured:
            entry["peak_rss_growth_bytes"] = measured.get("peak_memory_bytes")
            entry["rss_method"] = measured.get("memory_method")
            board = measured.get("extra") or {}
            if "arena_bytes" in board:  # run by the mcu backend: TFLM's own report
                entry["tflm_arena_measured_bytes"] = board["arena_bytes"]
        memory[name] = entry
    return memory


def _cpu() -> str:
    from profilers.base import cpu_model

    return cpu_model()


def render_markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# Model card: `{card['arch']}`",
        "",
        f"- space `{card['space']}`, input {'×'.join(map(str, card['input_shape']))}, "
        f"{card['num_classes']} classes",
        f"- {card['params']:,} parameters, {card['macs']:,} MACs",
        f"- dataset `{card['dataset']['name']}` (content hash {card['dataset']['content_hash']})",
        "",
        "## Files",
        "",
        "| format | file | size | accuracy (test) | max abs diff vs PyTorch | top-1 agreement | check |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, entry in card["files"].items():
        check = card["verification"].get(name)
        accuracy = card["accuracy"].get(name)
        lines.append(
            f"| {name} | `{entry['file']}` | {_kib(entry['bytes'])} | {_pct(accuracy)} | "
            + (
                f"{check['max_abs_diff']:.2e} | {_pct(check['top1_agreement'])} | "
                f"{'pass' if check['passed'] else 'FAIL'}: {check['check']} |"
                if check
                else "stale | stale | re-run `hwnas verify` |"
            )
        )
    if "pytorch" in card["accuracy"]:
        lines += ["", f"PyTorch fp32 test accuracy: {_pct(card['accuracy']['pytorch'])}."]
    for name, entry in card["int8"].items():
        drop = entry.get("accuracy_drop_pp")
        ratio = entry.get("size_ratio_vs_fp32")
        lines.append(
            f"{name}: accuracy drop {'—' if drop is None else f'{drop:.2f} pp'}, size "
            f"{'—' if ratio is None else f'{ratio:.2f}× the fp32 file'}."
        )
    lines += input_lines(card) + _latency_lines(card) + _memory_lines(card)
    if card["errors"]:
        lines += ["", "## Formats not produced", ""]
        lines += [f"- {message}" for message in card["errors"].values()]
    if card["stale"]:
        lines += ["", f"Stale (file changed since checked): {', '.join(card['stale'])}."]
    return "\n".join(lines) + "\n"


def _latency_lines(card: dict[str, Any]) -> list[str]:
    latency = card["latency_ms"]
    lines = [
        "",
        "## Latency",
        "",
        "| where | format / runtime | median ms | p10–p90 ms |",
        "|---|---|---:|---|",
    ]
    for device, ms in latency["predicted"].items():
        lines.append(f"| {device} (LUT-predicted) | — | {ms:.4f} | |")
    for device, by_format in latency["measured_on_target"].items():
        for fmt, m in by_format.items():
            agent = (m.get("taken_by") or {}).get("agent")
            by = f" by agent {agent}" if agent else ""
            lines.append(_latency_row(f"{device} (measured on target{by})", fmt, m))
    host = f"this machine ({card['host']['cpu']})"
    referenced = []
    for fmt, m in latency["measured_here"].items():
        if m.get("drift_referenced"):
            referenced.append(f"{fmt} {m['raw_median_ms']:.4f} ms")
            lines.append(_latency_row(f"{host}, in {m['lut_unit']}'s LUT unit", fmt, m))
        else:
            lines.append(_latency_row(host, fmt, m))
    if referenced:
        lines += [
            "",
            "In a LUT's unit: each run paired with the LUT's drift reference model and scaled by "
            "its nominal latency, so the figure compares with the prediction whatever this "
            f"machine's speed at the time. The plain medians of the same runs: {', '.join(referenced)}.",
        ]
    return lines


def _latency_row(where: str, fmt: str, m: dict[str, Any]) -> str:
    return (
        f"| {where} | {fmt} / {m['runtime']} | {m['median_ms']:.4f} | "
        f"{m['p10_ms']:.4f}–{m['p90_ms']:.4f} |"
    )


def _memory_lines(card: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Memory",
        "",
        "| format | flash | tensor arena (planned) | live-tensor peak | peak RSS growth |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in card["memory"].items():
        lines.append(
            f"| {name} | {_kib(m['flash_bytes'])} | {_kib(m.get('arena_greedy_bytes'))} | "
            f"{_kib(m.get('arena_live_peak_bytes'))} | {_kib(m.get('peak_rss_growth_bytes'))} |"
        )
    lines += [
        "",
        "Tensor arena: TFLite tensors' lifetimes in execution order, laid out greedily (largest "
        "first) as TFLite Micro plans its arena — the SRAM a microcontroller needs for "
        "activations; flash is the file. Peak RSS growth: a fresh process loading and "
        "running the file once (ONNX Runtime's CPU arena included).",
    ]
    return lines + _mcu_memory_lines(card)


def _mcu_memory_lines(card: dict[str, Any]) -> list[str]:
    """TFLite Micro on a Cortex-M4: the predicted arena and flash (deploy.mcu_memory) beside
    the arena the firmware reported where the file was measured on the mcu backend."""
    rows = {n: m for n, m in card["memory"].items() if "tflm_arena_bytes" in m}
    if not rows:
        return []
    lines = [
        "",
        "| format | TFLM arena, M4 (predicted) | TFLM arena (firmware) | MCU flash (predicted) |",
        "|---|---:|---:|---:|",
    ]
    for name, m in rows.items():
        lines.append(
            f"| {name} | {_kib(m['tflm_arena_bytes'])} | "
            f"{_kib(m.get('tflm_arena_measured_bytes'))} | {_kib(m.get('tflm_flash_bytes'))} |"
        )
    return [
        *lines,
        "",
        "TFLM arena: the whole tensor arena TFLite Micro allocates with CMSIS-NN (tensors, "
        "scratch, persistent buffers); MCU flash: the file plus the code of a project that "
        "registers exactly its operators (docs/mcu.md).",
    ]


def _kib(value: int | None) -> str:
    return "—" if value is None else f"{value / 1024:.1f} KiB"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"
