"""scale_out's control without Ray: budget units of a finished job run again, each in a plain
process of its own, on a copy of the job's shared weights, one after the other and then side by
side, measured as a Ray task measures itself (`ray_usage`): what two units side by side cost each
other on this machine, on the same work as the two-node job's and with no Ray daemon, worker or
driver involved.

    python benchmarks/_plain_units.py UNIT.pickle   # one unit here; prints its usage as JSON
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def plain_units(
    request: dict[str, Any],
    run_dir: Path,
    database_url: str,
    budgets: list[float],
    out: Path,
    side_by_side: bool,
) -> list[dict[str, Any]]:
    """The usage of `budgets`' units of the job whose `request` ran into `run_dir`, run again
    into `out`, one process each (OMP_NUM_THREADS=1 as the job workers): all at once, or one
    after the other."""
    from search.request import build_requests
    from search.shared import SHARED_DIR
    from service.worker.runner import search_document
    from service.worker.units import FileSink, search_units

    shutil.copytree(run_dir / SHARED_DIR, out / SHARED_DIR)
    document = search_document(request, str(request["dataset"]))
    _, units = search_units(
        document,
        build_requests(document, out),
        out,
        database_url=database_url,
        dataset=str(request["dataset"]),
        sink=FileSink(),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HWNAS_", "RAY_"))}
    env["OMP_NUM_THREADS"] = "1"
    processes = []
    for unit in [unit for unit in units if unit.budget in budgets]:
        pickled = out / f"{unit.name}.pickle"
        pickled.write_bytes(pickle.dumps(unit))
        command = [sys.executable, __file__, str(pickled)]
        processes.append(
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        )
        if not side_by_side:
            processes[-1].wait()
    outputs = [process.communicate()[0] for process in processes]
    if any(process.returncode for process in processes):
        raise RuntimeError(f"a plain unit failed; see {out}")
    return [json.loads(output.strip().splitlines()[-1]) for output in outputs]


def main() -> None:
    sys.path.insert(0, str(REPO))
    from service.worker.executors.ray_usage import UsageMeter
    from service.worker.units import run_unit

    unit = pickle.loads(Path(sys.argv[1]).read_bytes())
    _import_search()  # as a Ray worker that has run a unit before (scale_out warms its nodes)
    meter = UsageMeter()
    run_unit(unit)
    print(json.dumps({"unit": unit.name, "budget_ms": unit.budget, **meter.read()}))


def _import_search() -> None:
    import search.data
    import search.engine
    import search.shared
    import search.strategies
    import search.train  # noqa: F401


if __name__ == "__main__":
    main()
