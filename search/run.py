"""One whole search: data, cost models, feasibility, the search itself, the derived child trained
and evaluated, and the run directory's outputs (arch.json, child.pt, metrics.json, history)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from common.files import write_atomically, write_json_atomically
from lut.store import LutStore
from search.cost import LatencyCostModel, build_cost_model
from search.engine import SupernetSearch
from search.exact_sram import exact_sram
from search.inherited import chance_accuracy, inherited_accuracy, unlearned_warning
from search.mckp import Infeasible
from search.memory_budgets import memory_metrics, request_memory_budgets
from search.request import SearchRequest
from search.spaces.base import Architecture, SearchSpace, space_from_string
from search.spaces.complexity import total_macs
from search.spaces.grammar import SpaceParams
from search.strategies.base import Budget, get_strategy
from search.strategies.baseline import BaselineStrategy
from search.supernet import Supernet
from search.train import CHILD_CHECKPOINT, EventFn, train_child


def bind_space(space_text: str, data: Any) -> SearchSpace:
    """The space with the dataset's channels and classes (resolution stays the space's: the data
    is resized to it)."""
    channels = data.input_shape[0]
    return space_from_string(
        space_text, SpaceParams(in_channels=channels, num_classes=data.num_classes)
    )


def cost_models(
    store: LutStore, space: SearchSpace, devices: tuple[str, ...]
) -> list[LatencyCostModel]:
    return [build_cost_model(store, store.resolve_device(name), space) for name in devices]


def lut_units(store: LutStore, devices: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """How each device's LUT was timed: what deploy needs to time exported files in the same
    unit on this host (backend, threads, CPU and the drift reference's nominal latency)."""
    units = {}
    for name in devices:
        device = store.resolve_device(name)
        fixed = device.fixed_costs
        units[name] = {
            "backend": device.backend,
            "threads": device.fingerprint.get("threads"),
            "cpu_model": device.fingerprint.get("cpu_model"),
            "reference_ms": fixed.reference_ms if fixed else None,
        }
    return units


def check_feasible(
    models: list[LatencyCostModel], budgets: tuple[float | None, ...]
) -> list[Budget]:
    result = []
    for model, budget in zip(models, budgets, strict=True):
        if budget is None:
            continue
        if budget < model.min_latency_ms:
            raise Infeasible(budget, model.min_latency_ms, where=model.device)
        result.append(Budget(model, budget))
    return result


def check_request(request: SearchRequest, store: LutStore, data: Any) -> None:
    """Everything that can be refused before any work: LUT coverage, feasibility, strategy."""
    get_strategy(request.settings.strategy).check_options(request.settings.strategy_options)
    space = bind_space(request.space, data)
    check_feasible(cost_models(store, space, request.devices), request.budgets_ms)
    request_memory_budgets(store, space, request)


def run_search(
    request: SearchRequest,
    store: LutStore,
    out_dir: Path,
    *,
    data: Any,
    on_event: EventFn | None = None,
) -> dict[str, Any]:
    """Search (or resume searching) into `out_dir`; returns the metrics written there."""
    emit = on_event or (lambda event: None)
    torch.manual_seed(request.settings.seed)
    space = bind_space(request.space, data)
    models = cost_models(store, space, request.devices)
    budgets = check_feasible(models, request.budgets_ms)
    budgets += request_memory_budgets(store, space, request)
    sram = exact_sram(store, space, request, data)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = lut_version(models)
    start, cpu_start = time.perf_counter(), time.process_time()
    emit({"type": "state", "state": "searching"})
    strategy_report: dict[str, Any] = {}
    strategy_class = get_strategy(request.settings.strategy)
    if issubclass(strategy_class, BaselineStrategy):
        baseline = strategy_class(
            space,
            budgets,
            data,
            trials=request.trials,
            seed=request.settings.seed,
            batch_size=request.settings.batch_size,
            emit=emit,
            **request.settings.strategy_options,
        )
        choices, supernet = baseline.run(), None
        sram_record = sram.check(choices) if sram else None
    else:
        supernet = Supernet(space)
        search = SupernetSearch.create(
            supernet,
            budgets,
            request.settings,
            train=data.train,
            val=data.val,
            out_dir=out_dir,
            lut_version=version,
            on_event=emit,
        )
        choices = search.run()
        choices, sram_record = sram.fit(search.strategy, choices, emit) if sram else (choices, None)
        strategy_report = {
            "arch_lr": search.arch_opt.param_groups[0]["lr"],
            **search.strategy.report(),
        }
    search_wall, search_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return train_and_record(
        request,
        store,
        out_dir,
        space=space,
        models=models,
        choices=choices,
        supernet=supernet,
        search_wall_s=search_wall,
        search_cpu_s=search_cpu,
        strategy_report=strategy_report,
        data=data,
        emit=emit,
        extra_metrics={
            **memory_metrics(store, space, request, choices),
            **({"sram_check": sram_record} if sram_record else {}),
        },
    )


def train_and_record(
    request: SearchRequest,
    store: LutStore,
    out_dir: Path,
    *,
    space: SearchSpace,
    models: list[LatencyCostModel],
    choices: list[int],
    supernet: Supernet | None,
    search_wall_s: float,
    search_cpu_s: float,
    strategy_report: dict[str, Any],
    data: Any,
    emit: EventFn,
    extra_metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The derived architecture's child trained (from the supernet's weights with
    `inherit_weights`) and evaluated; arch.json, child.pt and metrics.json written to
    `out_dir`. Returns the metrics. The training resumes from its checkpoint of each epoch in
    `out_dir` (removed once the outputs are written)."""
    arch = space.architecture(
        [slot.candidates[i] for slot, i in zip(space.layers, choices, strict=True)]
    )
    emit({"type": "derived", "arch": arch.to_string()})
    inherited = None if supernet is None else _check_inherited(supernet, space, choices, data, emit)
    emit({"type": "state", "state": "training"})
    child = space.build(arch)
    if request.inherit_weights and supernet is not None:
        child.load_state_dict(supernet.child_state_dict(choices))
    trained = train_child(
        child,
        data.train,
        data.val,
        epochs=request.settings.epochs if request.child_epochs is None else request.child_epochs,
        seed=request.settings.seed,
        batch_size=request.settings.batch_size,
        test=data.test,
        on_event=emit,
        shift_px=request.child_shift_px,
        checkpoint=out_dir / CHILD_CHECKPOINT,
    )
    metrics = {
        "arch": arch.to_string(),
        "strategy": request.settings.strategy,
        "val_accuracy": trained.val_accuracy,
        "test_accuracy": trained.test_accuracy,
        "predicted_latency_ms": {m.device: m.cost(choices) for m in models},
        "budgets_ms": {m.device: b for m, b in zip(models, request.budgets_ms, strict=True)},
        "params": sum(p.numel() for p in child.parameters()),
        "macs": total_macs(space.decode(arch)),
        "search_wall_s": search_wall_s,
        "search_cpu_s": search_cpu_s,
        "train_wall_s": trained.wall_s,
        "child_epochs": trained.epochs,
        "inherit_weights": request.inherit_weights,
        "inherited_val_accuracy": inherited,
        "child_shift_px": request.child_shift_px,
        "seed": request.settings.seed,
        "settings": {k: v for k, v in vars(request.settings).items()},
        "strategy_report": strategy_report,
        "dataset": data.record(),
        "lut_version": lut_version(models),
        "calibrated": {m.device: m.calibrated for m in models},
        "lut_units": lut_units(store, request.devices),
        **(extra_metrics or {}),
    }
    write_outputs(out_dir, space, arch, choices, child, metrics)
    (out_dir / CHILD_CHECKPOINT).unlink(missing_ok=True)
    emit({"type": "done", "metrics": metrics})
    return metrics


def _check_inherited(
    supernet: Supernet, space: SearchSpace, choices: list[int], data: Any, emit: EventFn
) -> float:
    """The derived network's validation accuracy with the shared weights; a warning event
    where it is barely above chance (`search.inherited`)."""
    accuracy = inherited_accuracy(supernet, space, choices, data)
    warning = unlearned_warning(accuracy, chance_accuracy(data.val.tensors[1]))
    if warning is not None:
        emit({"type": "warning", "message": warning})
    return accuracy


def write_outputs(
    out_dir: Path,
    space: SearchSpace,
    arch: Architecture,
    choices: list[int],
    child: Any,
    metrics: dict[str, Any],
) -> None:
    layers = [
        {"layer": slot.label, "choice": slot.candidates[i], "index": i}
        for slot, i in zip(space.layers, choices, strict=True)
    ]
    write_json_atomically(out_dir / "arch.json", {**arch.to_json(), "layers": layers})
    write_atomically(out_dir / "child.pt", lambda tmp: torch.save(child.state_dict(), tmp))
    write_json_atomically(out_dir / "metrics.json", metrics)


def lut_version(models: list[LatencyCostModel]) -> str:
    """A short hash of the cost models a search ran on: a checkpoint made with others is
    refused."""
    import hashlib

    text = json.dumps([[m.device, m.layer_costs, m.constant_ms] for m in models])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
