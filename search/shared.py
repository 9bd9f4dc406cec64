"""One supernet, many budgets: a request with several latency budgets trains the supernet's
weights once, on paths spread over the latency range the budgets span, then runs each budget's
architecture phase on those shared weights (the strategy's own steps, projections and derive, so
each budget keeps its guarantee), and trains each budget's child — as HardCoRe-NAS and
Once-for-All train once and specialise per target.

Under the request's `out`:

| path | what |
|---|---|
| `supernet/checkpoint.pt`, `supernet/weights.json` | the weight phase: its checkpoint, and its record once finished |
| `budget-<ms>/checkpoint.pt`, `history.jsonl`, `derived.json` | one budget's architecture phase, its history, its derived architecture |
| `budget-<ms>/arch.json`, `child.pt`, `metrics.json` | its child, as a single search writes them |

Every phase resumes from its checkpoint, finished phases are skipped, and a folder holding
another request's work is refused.

**The weight phase** trains `epochs` epochs of weight steps with no architecture step.
Each step's path is drawn at a target latency: an epoch's steps split the range from the
space's smallest latency to the largest budget into as many strata, one target in each, in a
seeded order; the path is sampled from the maximum-entropy distribution with that expected
latency (p ∝ exp(−λ·cost) per layer: the KL projection of the uniform distribution, as
hardcore's projections). So each candidate is trained in proportion to its use across the
range, the cheapest ops at the bottom as much as the dear ones at the top, rather than mostly
near one budget as a single search's p concentrates. `weight_sampling` "single" (the default)
trains that one path a step, so the phase takes a single search's weight-step time;
"sandwich" (`search.sandwich`: BigNAS, Once-for-All) also trains the space's largest and
smallest paths every step, the smaller two distilled from the largest, at about three times
the time. A layer's MBConv candidates share nested kernels (`search.nesting`), so every path
trains the kernels the others slice.

**Each budget's architecture phase** starts from the uniform architecture on the frozen shared
weights (the weights are reloaded before each budget, so the order of budgets does not matter)
and takes `arch_steps` of the strategy's architecture steps on validation batches, its
schedule (temperature) annealed over those steps, then derives. By default the budgets together
take `ARCH_STEP_SHARE` times a single search's architecture steps, so K budgets cost the
weight phase once plus about twice one search's architecture work (`default_arch_steps`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from common.files import write_json_atomically
from lut.store import LutStore
from search.checkpoint import load_checkpoint, save_checkpoint
from search.cost import LatencyCostModel
from search.engine import alpha_gradients, history_line, seeded_batch, truncate_history
from search.exact_sram import ExactSram, exact_sram
from search.memory_budgets import memory_metrics, request_memory_budgets
from search.request import SearchRequest, SearchSettings
from search.run import (
    bind_space,
    check_feasible,
    cost_models,
    lut_version,
    train_and_record,
)
from search.sandwich import extreme_paths, sandwich_step
from search.strategies.base import Budget, SearchStrategy, get_search_strategy, get_strategy
from search.strategies.projection import bisect_lambda, expected_cost, stack_rows
from search.supernet import Supernet
from search.train import EventFn, steps_per_epoch

# The budgets' architecture phases together take this many times a single search's
# architecture steps (measured against five separate searches in benchmarks/pareto_cost.py).
ARCH_STEP_SHARE = 2.0
SHARED_DIR = "supernet"
DERIVED = "derived.json"
WEIGHTS_RECORD = "weights.json"

BudgetRun = tuple[float | None, Path, SearchRequest]


def shares_supernet(doc: Mapping[str, Any], requests: Sequence[BudgetRun]) -> bool:
    """Whether a request document's budgets train one supernet: several budgets, a supernet
    strategy (not a baseline), and `shared_supernet` not false."""
    if len(requests) < 2 or doc.get("shared_supernet", True) is False:
        return False
    return issubclass(get_strategy(requests[0][2].settings.strategy), SearchStrategy)


def default_arch_steps(settings: SearchSettings, steps_per_epoch: int, budgets: int) -> int:
    """Architecture steps per budget: `ARCH_STEP_SHARE` × a single search's
    ((epochs − warm-up) × steps per epoch), shared among the budgets."""
    single = max(1, settings.epochs - settings.warmup) * steps_per_epoch
    return max(1, math.ceil(ARCH_STEP_SHARE * single / budgets))


def _seed(*parts: int) -> int:
    value = 0
    for part in parts:
        value = (value * 1_000_003 + part) % (2**62)
    return value


class LatencySampler:
    """Paths of a space spread over [low_ms, high_ms] of one device's latency; deterministic in
    (seed, epoch, step), so a resumed phase draws the paths the uninterrupted one would."""

    def __init__(self, model: LatencyCostModel, low_ms: float, high_ms: float, seed: int) -> None:
        if not model.min_latency_ms <= low_ms <= high_ms <= model.max_latency_ms:
            raise ValueError(
                f"latency range [{low_ms}, {high_ms}] ms is outside the space's "
                f"[{model.min_latency_ms}, {model.max_latency_ms}] ms"
            )
        self.model = model
        self.low_ms, self.high_ms, self.seed = low_ms, high_ms, seed
        self.costs = stack_rows(model.layer_costs, pad=0.0)
        self.logits = stack_rows(
            [torch.zeros(len(c)) for c in model.layer_costs], pad=float("-inf")
        )

    def distribution(self, target_ms: float) -> torch.Tensor:
        """Per layer (rows, padded with zeros) the maximum-entropy distribution whose expected
        latency is `target_ms`: softmax(−λ·cost) with λ found by bisection."""
        target = target_ms - self.model.constant_ms
        uniform = expected_cost(self.logits, self.costs, 0.0)
        if target <= uniform:
            lam = bisect_lambda(self.logits, self.costs, target, sign=1.0)
        else:
            lam = -bisect_lambda(self.logits, self.costs, target, sign=-1.0)
        return torch.softmax(self.logits - lam * self.costs, dim=1)

    def target_ms(self, epoch: int, index: int, steps: int) -> float:
        """Step `index`'s target: one uniform draw in its own of the epoch's `steps` strata of
        the range, the strata in a seeded order."""
        generator = torch.Generator().manual_seed(_seed(self.seed, 1, epoch))
        order = torch.randperm(steps, generator=generator)
        offsets = torch.rand(steps, generator=generator, dtype=torch.float64)
        share = (int(order[index % steps]) + float(offsets[index % steps])) / steps
        return self.low_ms + share * (self.high_ms - self.low_ms)

    def path(self, epoch: int, index: int, steps: int) -> list[int]:
        probs = self.distribution(self.target_ms(epoch, index, steps))
        generator = torch.Generator().manual_seed(_seed(self.seed, 2, epoch, index))
        return [int(torch.multinomial(row, 1, generator=generator)) for row in probs]


def _weight_optimizer(supernet: Supernet, settings: SearchSettings) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        supernet.weight_parameters(),
        lr=settings.weight_lr,
        momentum=0.9,
        nesterov=True,
        weight_decay=4e-5,
    )


def _refuse(out_dir: Path, payload: dict[str, Any], phase: str, identity: str) -> None:
    if payload.get("phase") != phase:
        raise ValueError(
            f"{out_dir} holds a single search's checkpoint, not a shared supernet's; "
            "start a new run (another --out)"
        )
    if payload.get("identity") != identity:
        raise ValueError(
            f"{out_dir} holds a shared-supernet run of another request (settings, budgets or "
            "LUT); start a new run (another --out)"
        )


def _refuse_other_sampling(out_dir: Path, record: Mapping[str, Any], sampling: str) -> None:
    """A weight phase's checkpoint or record of the other `weight_sampling` is refused by name
    (one from before the setting existed trained single paths)."""
    held = record.get("weight_sampling", "single")
    if held != sampling:
        raise ValueError(
            f"{out_dir} holds shared weights trained with weight_sampling {held!r}, not "
            f"{sampling!r}; start a new run (another --out) or ask for {held!r}"
        )


class Clock:
    """A phase's wall and CPU seconds, carried over from its checkpoint when it resumes (CPU
    time is the process's: other work on a shared machine slows the wall clock, not it)."""

    def __init__(self, wall_s: float = 0.0, cpu_s: float = 0.0) -> None:
        self.before = (wall_s, cpu_s)
        self.started = (time.perf_counter(), time.process_time())

    def read(self) -> dict[str, float]:
        return {
            "wall_s": self.before[0] + time.perf_counter() - self.started[0],
            "cpu_s": self.before[1] + time.process_time() - self.started[1],
        }


@dataclass
class Progress:
    """The search's steps over all phases, for the progress stream."""

    total: int
    done: int = 0


@dataclass
class WeightPhase:
    """The shared weights: `epochs` epochs of steps on paths drawn by `sampler`, one path a step
    or the sandwich rule (`settings.weight_sampling`)."""

    supernet: Supernet
    sampler: LatencySampler
    settings: SearchSettings
    train: Any
    out_dir: Path
    identity: str
    progress: Progress
    emit: EventFn

    def run(self) -> dict[str, float]:
        """Train (or resume training) the weights; returns the phase's `wall_s` and `cpu_s`."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        optimizer = _weight_optimizer(self.supernet, self.settings)
        per_epoch = steps_per_epoch(self.train, self.settings.batch_size)
        total = self.settings.epochs * per_epoch
        step, clock = 0, Clock()
        payload = load_checkpoint(self.out_dir)
        if payload is not None:
            _refuse_other_sampling(self.out_dir, payload, self.settings.weight_sampling)
            _refuse(self.out_dir, payload, "weights", self.identity)
            self.supernet.load_state_dict(payload["supernet"])
            optimizer.load_state_dict(payload["weight_optimizer"])
            step, clock = int(payload["step"]), Clock(payload["wall_s"], payload["cpu_s"])
            if step < total:
                self.emit({"type": "resumed", "phase": "weights", "step": step})
        self.progress.done = step
        while step < total:
            epoch, index = divmod(step, per_epoch)
            images, labels = seeded_batch(self.train, self.settings, epoch, index)
            path = self.sampler.path(epoch, index, per_epoch)
            optimizer.zero_grad(set_to_none=True)
            loss, logits = self._gradients(images, labels, path)
            optimizer.step()
            step += 1
            self.progress.done += 1
            if step % 10 == 0 or index == per_epoch - 1:
                self.emit(
                    {
                        "type": "search",
                        "phase": "weights",
                        "epoch": epoch + 1,
                        "epochs": self.settings.epochs,
                        "step": self.progress.done,
                        "steps": self.progress.total,
                        "loss": loss.item(),
                        "accuracy": float((logits.argmax(1) == labels).float().mean()),
                        "path_latency_ms": self.sampler.model.cost(path),
                        "expected_latency_ms": {},
                    }
                )
            if step % self.settings.checkpoint_every == 0 or step == total:
                self._checkpoint(optimizer, step, clock.read())
        return clock.read()

    def _gradients(
        self, images: torch.Tensor, labels: torch.Tensor, path: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step's gradients: the sampled path on the labels, or (sandwich) the largest
        path on the labels and the smallest and sampled paths distilled from it. Returns the
        loss and logits on the labels."""
        if self.settings.weight_sampling == "sandwich":
            largest, smallest = extreme_paths(self.sampler.model)
            return sandwich_step(self.supernet, images, labels, largest, [smallest, path])
        logits = self.supernet(images, path)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        return loss.detach(), logits.detach()

    def _checkpoint(
        self, optimizer: torch.optim.Optimizer, step: int, times: dict[str, float]
    ) -> None:
        save_checkpoint(
            self.out_dir,
            {
                "phase": "weights",
                "identity": self.identity,
                "weight_sampling": self.settings.weight_sampling,
                "supernet": self.supernet.state_dict(),
                "weight_optimizer": optimizer.state_dict(),
                "step": step,
                **times,
                "saved_at": time.time(),
            },
        )


@dataclass
class ArchitecturePhase:
    """One budget's architecture steps on the frozen shared weights, then its derive."""

    supernet: Supernet
    strategy: SearchStrategy
    settings: SearchSettings
    val: Any
    steps: int
    steps_per_epoch: int
    out_dir: Path
    identity: str
    progress: Progress
    emit: EventFn
    arch_opt: torch.optim.Optimizer = field(init=False)

    def __post_init__(self) -> None:
        arch_lr = self.settings.arch_lr or self.strategy.default_arch_lr
        self.arch_opt = torch.optim.Adam(
            self.supernet.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999)
        )

    def run(self) -> tuple[list[int], dict[str, float]]:
        """The derived choices, and the phase's `wall_s` and `cpu_s` (its derive included)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        generator = torch.Generator().manual_seed(self.settings.seed + 1)
        params = self.supernet.arch_parameters()
        step, clock = 0, Clock()
        payload = load_checkpoint(self.out_dir)
        if payload is not None:
            _refuse(self.out_dir, payload, "architecture", self.identity)
            with torch.no_grad():
                for alpha, saved in zip(params, payload["alphas"], strict=True):
                    alpha.copy_(saved)
            self.arch_opt.load_state_dict(payload["arch_optimizer"])
            generator.set_state(payload["generator"])
            self.strategy.load_state(payload["strategy"])
            step, clock = int(payload["step"]), Clock(payload["wall_s"], payload["cpu_s"])
            truncate_history(self.out_dir / "history.jsonl", step)
            self.emit({"type": "resumed", "phase": "architecture", "step": step})
        self.progress.done += step
        with (self.out_dir / "history.jsonl").open("a") as history:
            while step < self.steps:
                self.strategy.on_epoch_start(step, self.steps)  # its schedule over the phase
                epoch, index = divmod(step, self.steps_per_epoch)
                images, labels = seeded_batch(self.val, self.settings, epoch, index)
                loss, details = self.strategy.architecture_loss(images, labels, generator)
                alpha_gradients(params, loss)
                self.arch_opt.step()
                self.strategy.after_architecture_step()
                history.write(history_line(step, details.expected_latency_ms, self.supernet))
                step += 1
                self.progress.done += 1
                if step % 10 == 0 or step == self.steps:
                    self._emit_progress(step, details.loss)
                if step % self.settings.checkpoint_every == 0 or step == self.steps:
                    history.flush()
                    self._checkpoint(generator, step, clock.read())
        choices = self.strategy.derive()
        return choices, clock.read()

    def _emit_progress(self, step: int, arch_loss: float) -> None:
        expected = {d: float(v.detach()) for d, v in self.strategy.expected_latencies().items()}
        self.emit(
            {
                "type": "search",
                "phase": "architecture",
                "arch_step": step,
                "arch_steps": self.steps,
                "step": self.progress.done,
                "steps": self.progress.total,
                "arch_loss": arch_loss,
                "expected_latency_ms": expected,
                **self.strategy.describe(),
            }
        )

    def _checkpoint(self, generator: torch.Generator, step: int, times: dict[str, float]) -> None:
        save_checkpoint(
            self.out_dir,
            {
                "phase": "architecture",
                "identity": self.identity,
                "alphas": [a.detach().clone() for a in self.supernet.arch_parameters()],
                "arch_optimizer": self.arch_opt.state_dict(),
                "generator": generator.get_state(),
                "step": step,
                "strategy": self.strategy.state(),
                "strategy_name": self.strategy.name,
                **times,
                "saved_at": time.time(),
            },
        )


def _identity(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_alike(requests: Sequence[BudgetRun]) -> SearchRequest:
    """The requests' common part: they differ only in the primary device's budget."""
    if not requests:
        raise ValueError("a shared supernet needs at least one budget")
    first = requests[0][2]
    for budget, _, request in requests:
        if budget is None:
            raise ValueError("a shared supernet needs a latency budget per run")
        if request.budgets_ms[1:] != first.budgets_ms[1:] or (
            request.settings,
            request.space,
            request.devices,
            request.sram_kb,
            request.flash_kb,
        ) != (first.settings, first.space, first.devices, first.sram_kb, first.flash_kb):
            raise ValueError("the budgets of a shared supernet must share every other setting")
    return first


def _tagged(emit: EventFn, budget: float | None) -> EventFn:
    """`emit` with the budget's `budget_ms` on every event."""

    def tagged(event: dict[str, Any]) -> None:
        emit({**event, "budget_ms": budget})

    return tagged


def _read_json(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text())) if path.exists() else None


@dataclass
class SharedPlan:
    """What every unit of a shared search derives the same way from its requests, data and LUT:
    the weight phase and each budget's unit compute it on their own (on any node), so a unit's
    arguments stay small."""

    requests: Sequence[BudgetRun]
    settings: SearchSettings
    strategy_class: type[SearchStrategy]
    space: Any
    models: list[LatencyCostModel]
    budget_sets: list[list[Budget]]
    latency_range_ms: tuple[float, float]
    per_epoch: int
    arch_steps: int
    weights_id: str
    sram: ExactSram | None = None

    @property
    def weight_steps(self) -> int:
        return self.settings.epochs * self.per_epoch

    def progress(self, budgets_before: int = 0) -> Progress:
        """The steps over all phases; a budget's unit starts after the weight phase and the
        architecture phases of the budgets listed before it."""
        total = self.weight_steps + len(self.requests) * self.arch_steps
        return Progress(total=total, done=self.weight_steps + budgets_before * self.arch_steps)


def plan_shared_search(requests: Sequence[BudgetRun], store: LutStore, data: Any) -> SharedPlan:
    """Check the requests (alike, feasible, known strategy options) and derive the plan."""
    first = _check_alike(requests)
    settings = first.settings
    strategy_class = get_search_strategy(settings.strategy)
    strategy_class.check_options(settings.strategy_options)
    space = bind_space(first.space, data)
    models = cost_models(store, space, first.devices)
    memory = request_memory_budgets(store, space, first)  # the same for every request
    budget_sets = [
        check_feasible(models, request.budgets_ms) + memory for _, _, request in requests
    ]
    primary = models[0]
    largest = max(float(b) for b, _, _ in requests if b is not None)
    low, high = primary.min_latency_ms, min(largest, primary.max_latency_ms)
    per_epoch = steps_per_epoch(data.train, settings.batch_size)
    arch_steps = settings.arch_steps or default_arch_steps(settings, per_epoch, len(requests))
    weights_id = _identity(
        lut_version(models),
        space.spec_string,
        settings.epochs,
        settings.batch_size,
        settings.seed,
        settings.weight_lr,
        low,
        high,
        # single-path runs keep the identity they had before the setting existed (they resume)
        *([] if settings.weight_sampling == "single" else [settings.weight_sampling]),
    )
    return SharedPlan(
        requests,
        settings,
        strategy_class,
        space,
        models,
        budget_sets,
        (low, high),
        per_epoch,
        arch_steps,
        weights_id,
        exact_sram(store, space, first, data),
    )


def train_shared_weights(
    plan: SharedPlan, out: Path, *, data: Any, on_event: EventFn | None = None
) -> dict[str, Any]:
    """The weight phase under `out/supernet` (resumed, or skipped once finished); returns its
    record (weights.json)."""
    emit = on_event or (lambda event: None)
    shared_dir = out / SHARED_DIR
    emit({"type": "state", "state": "searching"})
    weights = _read_json(shared_dir / WEIGHTS_RECORD)
    if weights is not None:
        _refuse_other_sampling(shared_dir, weights, plan.settings.weight_sampling)
    if weights is not None and weights.get("identity") != plan.weights_id:
        raise ValueError(f"{shared_dir} holds another request's supernet; start a new run")
    if weights is not None:
        return weights
    torch.manual_seed(plan.settings.seed)
    low, high = plan.latency_range_ms
    times = WeightPhase(
        Supernet(plan.space),
        LatencySampler(plan.models[0], low, high, plan.settings.seed),
        plan.settings,
        data.train,
        shared_dir,
        plan.weights_id,
        plan.progress(),
        emit,
    ).run()
    weights = {
        "identity": plan.weights_id,
        "weight_sampling": plan.settings.weight_sampling,
        **times,
        "steps": plan.weight_steps,
        "latency_range_ms": [low, high],
    }
    write_json_atomically(shared_dir / WEIGHTS_RECORD, weights)
    return weights


def search_budget(
    plan: SharedPlan,
    index: int,
    store: LutStore,
    out: Path,
    *,
    data: Any,
    on_event: EventFn | None = None,
) -> tuple[float | None, Path, dict[str, Any]]:
    """Budget `index`'s unit after the weight phase: its architecture phase on the shared
    weights (read from `out/supernet`) and its child; resumes or skips what a previous run of
    the unit finished. Its events carry `budget_ms`. Seeded on its own, so it gives the same
    result whichever process runs it and whatever ran before."""
    budget, run_dir, request = plan.requests[index]
    emit = _tagged(on_event or (lambda event: None), budget)
    weights = _read_json(out / SHARED_DIR / WEIGHTS_RECORD)
    if weights is None or weights.get("identity") != plan.weights_id:
        raise ValueError(f"{out / SHARED_DIR} holds no finished supernet of this request")
    settings = plan.settings
    identity = _identity(
        plan.weights_id,
        settings.strategy,
        settings.strategy_options,
        settings.arch_lr,
        plan.arch_steps,
        request.devices,
        [b.latency_ms for b in plan.budget_sets[index]],
    )
    finished = _read_json(run_dir / "metrics.json")
    if finished is not None:
        if finished.get("shared_supernet", {}).get("identity") != identity:
            raise ValueError(f"{run_dir} holds another request's result; start a new run")
        return budget, run_dir, finished
    torch.manual_seed(settings.seed)
    supernet = Supernet(plan.space)
    shared_state = _shared_state(out / SHARED_DIR)
    choice = _read_json(run_dir / DERIVED)
    if choice is None or choice.get("identity") != identity:
        choice = _architecture(
            supernet,
            shared_state,
            plan.strategy_class,
            plan.budget_sets[index],
            settings,
            data.val,
            plan.arch_steps,
            plan.per_epoch,
            run_dir,
            identity,
            plan.progress(index),
            emit,
            plan.sram,
        )
    supernet.load_state_dict(shared_state)  # the child inherits the shared weights
    torch.manual_seed(settings.seed)  # each child's initialisation, whatever ran before
    record = {
        "weights_wall_s": weights["wall_s"],
        "weights_cpu_s": weights["cpu_s"],
        "weight_steps": weights["steps"],
        "latency_range_ms": weights["latency_range_ms"],
        "arch_steps": plan.arch_steps,
        "budgets_ms": [b for b, _, _ in plan.requests],
    }
    metrics = train_and_record(
        request,
        store,
        run_dir,
        space=plan.space,
        models=plan.models,
        choices=list(choice["choices"]),
        supernet=supernet,
        search_wall_s=float(choice["wall_s"]),
        search_cpu_s=float(choice["cpu_s"]),
        strategy_report=dict(choice["strategy_report"]),
        data=data,
        emit=emit,
        extra_metrics={
            "shared_supernet": {**record, "identity": choice["identity"]},
            **memory_metrics(store, plan.space, request, list(choice["choices"])),
            **({"sram_check": choice["sram_check"]} if choice.get("sram_check") else {}),
        },
    )
    return budget, run_dir, metrics


def _shared_state(shared_dir: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(shared_dir)
    if payload is None:
        raise ValueError(f"{shared_dir} holds no supernet checkpoint")
    return dict(payload["supernet"])


def run_shared_search(
    requests: Sequence[BudgetRun],
    store: LutStore,
    out: Path,
    *,
    data: Any,
    on_event: EventFn | None = None,
) -> list[tuple[float | None, Path, dict[str, Any]]]:
    """Search every budget of `requests` (from `build_requests`) on one supernet under `out`
    and train each budget's child, in this process, one budget after the other; resumes
    whatever is unfinished. Returns (budget, run directory, metrics) per budget, the metrics as
    `run_search` writes them plus a `shared_supernet` record. Events carry `phase` (weights,
    architecture) and, for a budget's, `budget_ms`."""
    plan = plan_shared_search(requests, store, data)
    train_shared_weights(plan, out, data=data, on_event=on_event)
    return [
        search_budget(plan, index, store, out, data=data, on_event=on_event)
        for index in range(len(requests))
    ]


def _architecture(
    supernet: Supernet,
    shared_state: dict[str, torch.Tensor],
    strategy_class: type[SearchStrategy],
    budgets: list[Budget],
    settings: SearchSettings,
    val: Any,
    steps: int,
    per_epoch: int,
    run_dir: Path,
    identity: str,
    progress: Progress,
    emit: EventFn,
    sram: ExactSram | None = None,
) -> dict[str, Any]:
    """One budget's architecture phase from the shared weights and the uniform architecture;
    its derived choices (checked on the file's exact arena under an SRAM budget) recorded in
    `derived.json`."""
    supernet.load_state_dict(shared_state)
    strategy = strategy_class(supernet, budgets, **settings.strategy_options)
    phase = ArchitecturePhase(
        supernet,
        strategy,
        settings,
        val,
        steps,
        per_epoch,
        run_dir,
        identity,
        progress,
        emit,
    )
    choices, times = phase.run()
    sram_record = None
    if sram is not None:
        choices, sram_record = sram.fit(strategy, choices, emit)
    result = {
        "identity": identity,
        "choices": choices,
        **({"sram_check": sram_record} if sram_record else {}),
        **times,
        "strategy_report": {"arch_lr": phase.arch_opt.param_groups[0]["lr"], **strategy.report()},
    }
    write_json_atomically(run_dir / DERIVED, result)
    return result
