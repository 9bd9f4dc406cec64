"""Per-run kernel times from ONNX Runtime's profiler (`SessionOptions.enable_profiling`).

A stand-alone micro-model pays costs the op does not have inside a network: the `run()` call
itself and, on x86, the NCHWc layout reorders (`ReorderInput`/`ReorderOutput`) at the model's
edges. Summing the op's own kernel times ("Node" events) per run leaves exactly those out."""

from __future__ import annotations

import json
from pathlib import Path

EXCLUDED_OPS = ("ReorderInput", "ReorderOutput")


def kernel_ms_per_run(profile: Path) -> list[float]:
    """For every `model_run` in an ORT profile, the summed kernel time of its nodes (ms),
    leaving out layout reorders, in run order."""
    events = json.loads(profile.read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    kernels = sorted(
        (e["ts"], e["dur"])
        for e in events
        if e.get("cat") == "Node"
        and e.get("name", "").endswith("_kernel_time")
        and not str(e.get("args", {}).get("op_name", "")).startswith(EXCLUDED_OPS)
    )
    totals = [0.0] * len(runs)
    index = 0
    for ts, dur in kernels:
        while index < len(runs) and ts > runs[index][1]:
            index += 1
        if index < len(runs) and runs[index][0] <= ts:
            totals[index] += dur / 1000.0
    return totals
