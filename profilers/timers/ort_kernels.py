"""Per-run kernel times from ONNX Runtime's profiler (`SessionOptions.enable_profiling`).

A stand-alone micro-model pays costs the op does not have inside a network: the `run()` call
itself and, on x86, the NCHWc layout reorders at the model's edges (a `ReorderInput` first and a
`ReorderOutput` last). Summing the op's kernel times ("Node" events) per run without those leaves
them out; reorders *inside* the op (around a channel shuffle, say) are the op's own and count.

Inside a whole network, the kernels of each block can be told apart by name: torch's TorchScript
exporter names a node after the module path that made it, `/3/body/...` for block 3 of an
`nn.Sequential`, and ORT's fused nodes keep the name of one of their parts. The layout reorders
ORT inserts between blocks have no such name (`ReorderInput_token_12`); each is counted with
the block whose kernel follows it, the block that needed its input in another layout."""

from __future__ import annotations

import re
from typing import Any

Event = dict[str, Any]
_BLOCK = re.compile(r"^/(\d+)/")
OUTSIDE_BLOCKS = -1  # the key of kernels after the last block's (none in exported networks)


def timed_runs_only(events: list[Event], runs: int) -> list[Event]:
    """The events of the last `runs` `model_run`s (the timed ones; warm-up runs come first)."""
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    if len(spans) < runs:
        raise RuntimeError(f"ORT's profile holds {len(spans)} runs, fewer than the {runs} timed")
    start = spans[-runs][0] if runs else float("inf")
    return [e for e in events if e.get("ts", -1) >= start]


def _kernels_per_run(events: list[Event]) -> list[list[tuple[float, str, str]]]:
    """Per `model_run`, in order: (ms, node name, op type) of each kernel it ran."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    kernels = sorted(
        (e["ts"], e["dur"], e["name"].removesuffix("_kernel_time"), e.get("args", {}))
        for e in events
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
    )
    per_run: list[list[tuple[float, str, str]]] = [[] for _ in runs]
    index = 0
    for ts, dur, name, args in kernels:
        while index < len(runs) and ts > runs[index][1]:
            index += 1
        if index < len(runs) and runs[index][0] <= ts:
            per_run[index].append((dur / 1000.0, name, str(args.get("op_name", ""))))
    return per_run


def kernel_ms_per_run(events: list[Event]) -> list[float]:
    """For every `model_run` in an ORT profile, the summed kernel time of its nodes (ms) less
    the layout reorders at the model's edges, in run order."""
    return [_without_edge_reorders(nodes) for nodes in _kernels_per_run(events)]


def _without_edge_reorders(nodes: list[tuple[float, str, str]]) -> float:
    if nodes and nodes[0][2] == "ReorderInput":
        nodes = nodes[1:]
    if nodes and nodes[-1][2] == "ReorderOutput":
        nodes = nodes[:-1]
    return sum(ms for ms, _, _ in nodes)


def block_ms_per_run(events: list[Event]) -> list[dict[int, float]]:
    """For every `model_run`, each block's kernel time (ms) by block index: its named kernels
    and the unnamed ones just before them. A block that runs no kernel (an identity) is absent."""
    result = []
    for nodes in _kernels_per_run(events):
        blocks: dict[int, float] = {}
        pending = 0.0
        for ms, name, _ in nodes:
            match = _BLOCK.match(name)
            if match is None:
                pending += ms
                continue
            block = int(match.group(1))
            blocks[block] = blocks.get(block, 0.0) + ms + pending
            pending = 0.0
        if pending:
            blocks[OUTSIDE_BLOCKS] = pending
        result.append(blocks)
    return result
