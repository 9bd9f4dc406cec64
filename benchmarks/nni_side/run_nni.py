"""One NNI one-shot search on an hwnas space, run by the NNI virtual environment's python (not
hwnas's): reads a job JSON (the space exported candidate for candidate, its LUT costs, the data's
.npz, the strategy and its budget), writes the architecture NNI exports and the search's times.

The candidates are built by hwnas's own `lut.modules.build_op` from the exported OpSpecs (that
module needs only torch), so every path of NNI's supernet is the module the hwnas child has. The
latency penalty is NNI's `ExpectationProfilerPenalty` over an `ExpressionProfiler` whose
expression is the LUT: the constant plus, per layer, a `switch_case` from the chosen candidate to
its cost — the expectation under the strategy's architecture probabilities is the expected
latency hwnas's cost model computes.

    venv/bin/python benchmarks/nni_side/run_nni.py JOB.json OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import nni  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from nni.mutable.symbol import SymbolicExpression  # noqa: E402
from nni.nas.evaluator.pytorch import Classification, DataLoader  # noqa: E402
from nni.nas.nn.pytorch import LayerChoice, ModelSpace  # noqa: E402
from nni.nas.oneshot.pytorch.profiler import ExpectationProfilerPenalty  # noqa: E402
from nni.nas.profiler import ExpressionProfiler  # noqa: E402
from nni.nas.strategy import DARTS, GumbelDARTS, Proxyless  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from lut.modules import build_op  # noqa: E402
from lut.opspec import OpSpec  # noqa: E402

STRATEGIES = {"nni-darts": DARTS, "nni-gumbel": GumbelDARTS, "nni-proxyless": Proxyless}


class ExportedSpace(ModelSpace):
    """The exported network in order: fixed ops as themselves, each searchable layer a
    `LayerChoice` labelled with the hwnas slot label, its candidates keyed by their tokens."""

    def __init__(self, order: list[dict[str, Any]]) -> None:
        super().__init__()
        self.choices: dict[str, LayerChoice] = {}
        layers: list[nn.Module] = []
        for item in order:
            if item["kind"] == "fixed":
                layers.append(build_op(OpSpec.from_dict(item["spec"])))
                continue
            candidates = {
                token: build_op(OpSpec.from_dict(spec))
                for token, spec in zip(item["candidates"], item["specs"], strict=True)
            }
            choice = LayerChoice(candidates, label=item["label"])
            self.choices[item["label"]] = choice
            layers.append(choice)
        self.body = nn.Sequential(*layers)
        self.train()  # build_op returns modules in eval mode; Lightning keeps a module's mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class LutLatency(ExpressionProfiler):
    """hwnas's LUT as an NNI expression: constant + Σ_layer cost[layer][chosen candidate]."""

    def __init__(self, space: ExportedSpace, order: list[dict[str, Any]], constant_ms: float):
        expression: Any = constant_ms
        for item in order:
            if item["kind"] == "slot":
                costs = dict(zip(item["candidates"], item["costs_ms"], strict=True))
                choice = space.choices[item["label"]].choice
                expression = expression + SymbolicExpression.switch_case(choice, costs)
        self.expression = expression


def loaders(path: Path, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    arrays = np.load(path)

    def dataset(split: str) -> TensorDataset:
        return TensorDataset(
            torch.from_numpy(arrays[f"{split}_x"]), torch.from_numpy(arrays[f"{split}_y"])
        )

    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(dataset("train"), batch_size=batch_size, shuffle=True, generator=generator)
    return train, DataLoader(dataset("val"), batch_size=batch_size)


def search(job: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(1)
    pl.seed_everything(job["seed"], workers=True)
    doc = job["space"]
    space = ExportedSpace(doc["order"])
    penalty = ExpectationProfilerPenalty(
        LutLatency(space, doc["order"], doc["constant_ms"]),
        baseline=job["budget_ms"],
        scale=job["scale"],
        nonlinear="linear",
        aggregate="add",
    )
    train, val = loaders(Path(job["data"]), job["batch_size"], job["seed"])
    limit = job.get("limit_batches") or 1.0
    evaluator = Classification(
        train_dataloaders=train,
        val_dataloaders=val,
        num_classes=doc["num_classes"],
        max_epochs=job["epochs"],
        accelerator="cpu",
        devices=1,
        limit_train_batches=limit,
        limit_val_batches=limit,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    strategy = STRATEGIES[job["strategy"]](warmup_epochs=job["warmup_epochs"], penalty=penalty)
    wall, cpu = time.perf_counter(), time.process_time()
    supernet = strategy.mutate_model(space)
    oneshot = strategy.mutate_evaluator(evaluator)
    oneshot.evaluate(supernet)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    module = oneshot.module
    probs = {k: {t: float(p) for t, p in v.items()} for k, v in module.export_probs().items()}
    return {
        "choices": {k: str(v) for k, v in module.export().items()},
        "probabilities": probs,
        "expected_latency_ms": float(penalty.profile(probs)),
        "search_wall_s": wall,
        "search_cpu_s": cpu,
        "nni_version": nni.__version__,
        "torch_version": torch.__version__,
    }


def main() -> None:
    job_path, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    result = search(json.loads(job_path.read_text()))
    out_path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
