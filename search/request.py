"""The one search request: its settings, defaults and bounds, and `build_requests`, which turns a
request document — what `hwnas search` writes to request.json and what a REST job holds, the same
keys — into one `SearchRequest` per budget. The CLI's flags and the job schema take their
defaults and bounds from here.

A request document's keys:

| key | default | meaning |
|---|---|---|
| `space`, `dataset` | — | the search space and the dataset (built-in name, path, or uploaded id) |
| `devices` | — | device LUTs; the first is the primary device |
| `budgets` | `[]` | latency budgets (ms) on the primary device: one result each (a Pareto front) |
| `shared_supernet` | true | several budgets train one supernet (`search.shared`); false: one whole search each |
| `arch_steps` | see `search.shared` | architecture steps per budget on the shared supernet |
| `weight_sampling` | single | the shared supernet's weight steps: `single` (one path a step) or `sandwich` (`search.sandwich`) |
| `device_budgets` | `{}` | a further hard budget per other device |
| `sram_kb`, `flash_kb` | none | hard SRAM (tensor arena) and flash budgets in KiB on an MCU primary device |
| `strategy` | hardcore | a registered strategy (`search.strategies`) |
| `epochs`, `warmup_epochs` | 10, 1 | search epochs; weights-only epochs first (0 with one epoch) |
| `child_epochs` | `epochs` | training epochs of the result |
| `batch_size`, `seed`, `arch_lr` | 128, 0, the strategy's | |
| `trials` | 8 | candidates of the baselines (random, evolution) |
| `inherit_weights`, `child_shift_px` | false, 0 | the child's start and shift augmentation |
| `checkpoint_every` | 50 | steps between checkpoints |
| `options` | `{}` | the strategy's options |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

# Inclusive bounds of the request's integer fields, shared by the CLI and the job schema.
BOUNDS: dict[str, tuple[int, int]] = {
    "epochs": (1, 1000),
    "warmup_epochs": (0, 999),
    "child_epochs": (0, 1000),
    "batch_size": (1, 4096),
    "seed": (0, 2**31 - 1),
    "trials": (1, 1000),
    "checkpoint_every": (1, 1_000_000),
    "child_shift_px": (0, 16),
    "arch_steps": (1, 100_000),
}
MAX_ARCH_LR = 10.0
MAX_BUDGET_MS = 1_000_000.0
MAX_MEMORY_KB = 1_048_576.0  # 1 GiB: SRAM and flash budgets
MEMORY_BUDGETS = ("sram_kb", "flash_kb")
DEFAULT_STRATEGY = "hardcore"
DEFAULT_TRIALS = 8
# How the shared supernet's weight phase trains (search.shared, search.sandwich).
WeightSampling = Literal["single", "sandwich"]
WEIGHT_SAMPLING: tuple[str, ...] = get_args(WeightSampling)


def check_bounds(values: Mapping[str, Any]) -> None:
    """ValueError naming the first field outside its `BOUNDS` (None means "the default")."""
    for name, value in values.items():
        if value is None:
            continue
        low, high = BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")


def default_warmup_epochs(epochs: int) -> int:
    """Weights-only epochs before the architecture starts to learn: one, or none when there is
    only one epoch (a default must never refuse a request the user did not make)."""
    return min(1, epochs - 1)


@dataclass(frozen=True)
class SearchSettings:
    strategy: str
    epochs: int = 10
    warmup_epochs: int | None = None  # None: default_warmup_epochs(epochs)
    batch_size: int = 128
    weight_lr: float = 0.05
    arch_lr: float | None = None  # None: the strategy's own default (`default_arch_lr`)
    seed: int = 0
    checkpoint_every: int = 50
    strategy_options: dict[str, Any] = field(default_factory=dict)
    # Architecture steps per budget when several budgets share one supernet (search.shared);
    # None: its default. A single search does not read it.
    arch_steps: int | None = None
    # The shared supernet's weight steps, one of WEIGHT_SAMPLING; a single search does not read it.
    weight_sampling: WeightSampling = "single"

    def __post_init__(self) -> None:
        check_bounds(
            {
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "arch_steps": self.arch_steps,
            }
        )
        if self.warmup_epochs is None:
            object.__setattr__(self, "warmup_epochs", default_warmup_epochs(self.epochs))
        elif not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must be >= 0 and fewer than epochs "
                f"({self.epochs}); left unset it is {default_warmup_epochs(self.epochs)}"
            )
        if self.arch_lr is not None and not 0.0 < self.arch_lr <= MAX_ARCH_LR:
            raise ValueError(f"arch_lr must be in (0, {MAX_ARCH_LR:g}], not {self.arch_lr}")
        if self.weight_sampling not in WEIGHT_SAMPLING:
            raise ValueError(
                f"weight_sampling must be one of {', '.join(WEIGHT_SAMPLING)}, "
                f"not {self.weight_sampling!r}"
            )

    @property
    def warmup(self) -> int:
        """The warm-up epochs in effect: `warmup_epochs`, or the default if it was left unset."""
        if self.warmup_epochs is None:
            return default_warmup_epochs(self.epochs)
        return self.warmup_epochs


@dataclass(frozen=True)
class SearchRequest:
    space: str
    dataset: str
    devices: tuple[str, ...]  # LUTs the budgets refer to; the first is the primary device
    budgets_ms: tuple[float | None, ...]  # one per device; None: no hard budget there
    settings: SearchSettings
    child_epochs: int | None = None  # default: the search's epochs
    inherit_weights: bool = False
    child_shift_px: int = 0  # the child trains on images shifted by up to this many pixels
    trials: int = DEFAULT_TRIALS  # candidates trained by the random / evolution baselines
    extra: dict[str, Any] = field(default_factory=dict)
    sram_kb: float | None = None  # hard arena budget on the primary (MCU) device, KiB
    flash_kb: float | None = None  # hard flash budget on the primary (MCU) device, KiB


def build_requests(
    doc: Mapping[str, Any], out: Path
) -> list[tuple[float | None, Path, SearchRequest]]:
    """One SearchRequest per budget on the primary device (one without a budget if none is
    given); with several budgets each run goes to `out/budget-<ms>`, else to `out` itself.
    ValueError names the first bad field."""
    devices = list(dict.fromkeys(doc["devices"]))
    extra = dict(doc.get("device_budgets") or {})
    devices += sorted(set(extra) - set(devices))  # a budgeted device need not be repeated
    budgets = list(doc.get("budgets") or []) or [None]
    for budget in [*budgets, *extra.values()]:
        if budget is not None and not 0 < budget <= MAX_BUDGET_MS:
            raise ValueError(f"a latency budget must be in (0, {MAX_BUDGET_MS:g}] ms, not {budget}")
    names = [f"{b:g}" for b in budgets if b is not None]
    if len(set(names)) != len(names):  # each budget's run is budget-<ms:g>
        raise ValueError(f"budgets must differ (in 6 significant digits): {', '.join(names)}")
    check_bounds({key: doc.get(key) for key in ("child_epochs", "trials", "child_shift_px")})
    memory = check_memory_budgets(doc, len(budgets))
    settings = search_settings(doc)
    result = []
    for budget in budgets:
        run_dir = out / f"budget-{budget:g}" if len(budgets) > 1 else out
        request = SearchRequest(
            space=doc["space"],
            dataset=doc["dataset"],
            devices=tuple(devices),
            budgets_ms=tuple([budget, *[extra.get(d) for d in devices[1:]]]),
            settings=settings,
            child_epochs=doc.get("child_epochs"),
            inherit_weights=bool(doc.get("inherit_weights")),
            child_shift_px=int(doc.get("child_shift_px") or 0),
            trials=int(doc.get("trials") or DEFAULT_TRIALS),
            sram_kb=memory.get("sram_kb"),
            flash_kb=memory.get("flash_kb"),
        )
        result.append((budget, run_dir, request))
    return result


def check_memory_budgets(doc: Mapping[str, Any], budget_count: int) -> dict[str, float]:
    """The document's SRAM and flash budgets (KiB) that are set; ValueError for one that is not
    a number in (0, MAX_MEMORY_KB], or for memory budgets with several latency budgets on one
    supernet (each search derives its own)."""
    memory = {}
    for key in MEMORY_BUDGETS:
        value = doc.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number of KiB, not {value!r}")
        if not 0 < value <= MAX_MEMORY_KB:
            raise ValueError(f"{key} must be in (0, {MAX_MEMORY_KB:g}] KiB, not {value:g}")
        memory[key] = float(value)
    if memory and budget_count > 1 and doc.get("shared_supernet", True) is not False:
        raise ValueError(
            f"{' and '.join(memory)} with several latency budgets need one search per budget "
            "(shared_supernet false; hwnas search --separate-searches)"
        )
    return memory


def search_settings(doc: Mapping[str, Any]) -> SearchSettings:
    """The search settings of a request document; missing keys take the defaults."""
    defaults = SearchSettings(DEFAULT_STRATEGY)
    check_bounds({"checkpoint_every": doc.get("checkpoint_every")})
    return SearchSettings(
        strategy=doc.get("strategy") or DEFAULT_STRATEGY,
        epochs=doc.get("epochs", defaults.epochs),
        warmup_epochs=doc.get("warmup_epochs"),
        batch_size=doc.get("batch_size", defaults.batch_size),
        seed=doc.get("seed", defaults.seed),
        arch_lr=doc.get("arch_lr"),
        checkpoint_every=doc.get("checkpoint_every") or defaults.checkpoint_every,
        strategy_options=dict(doc.get("options") or {}),
        arch_steps=doc.get("arch_steps"),
        weight_sampling=doc.get("weight_sampling") or defaults.weight_sampling,
    )
