"""Per-run kernel times from ONNX Runtime's profiler (`SessionOptions.enable_profiling`).

A stand-alone micro-model pays costs the op does not have inside a network: the `run()` call
itself and, on x86, the NCHWc layout reorders at the model's edges (a `ReorderInput` first and a
`ReorderOutput` last). Summing the op's kernel times ("Node" events) per run without those leaves
them out; reorders *inside* the op (around a channel shuffle, say) are the op's own and count."""

from __future__ import annotations

import json
from pathlib import Path


def kernel_ms_per_run(profile: Path) -> list[float]:
    """For every `model_run` in an ORT profile, the summed kernel time of its nodes (ms) less
    the layout reorders at the model's edges, in run order."""
    events = json.loads(profile.read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    kernels = sorted(
        (e["ts"], e["dur"], str(e.get("args", {}).get("op_name", "")))
        for e in events
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
    )
    per_run: list[list[tuple[float, str]]] = [[] for _ in runs]
    index = 0
    for ts, dur, op in kernels:
        while index < len(runs) and ts > runs[index][1]:
            index += 1
        if index < len(runs) and runs[index][0] <= ts:
            per_run[index].append((dur / 1000.0, op))
    return [_without_edge_reorders(nodes) for nodes in per_run]


def _without_edge_reorders(nodes: list[tuple[float, str]]) -> float:
    if nodes and nodes[0][1] == "ReorderInput":
        nodes = nodes[1:]
    if nodes and nodes[-1][1] == "ReorderOutput":
        nodes = nodes[:-1]
    return sum(ms for ms, _ in nodes)
