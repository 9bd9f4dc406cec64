"""Job schemas: what a search job asks for, and what GET /jobs/{id} answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from search.request import (
    BOUNDS,
    DEFAULT_STRATEGY,
    DEFAULT_TRIALS,
    MAX_ARCH_LR,
    MAX_BUDGET_MS,
    MAX_MEMORY_KB,
    SearchSettings,
    WeightSampling,
)
from service.schemas import Schema
from service.worker.states import JobState

DeviceName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
BudgetMs = Annotated[float, Field(gt=0, le=MAX_BUDGET_MS)]
MAX_BUDGETS = 16
BudgetList = Annotated[list[BudgetMs], Field(min_length=1, max_length=MAX_BUDGETS)]
OptionKey = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z_][a-z0-9_]*$")
]
OptionValue = (
    Annotated[float, Field(ge=-1e9, le=1e9)] | bool | Annotated[str, Field(max_length=100)]
)
ExportFormat = Annotated[str, StringConstraints(min_length=1, max_length=40)]
DEFAULTS = SearchSettings(DEFAULT_STRATEGY)


def bounded(name: str, default: Any, description: str | None = None) -> Any:
    """A field with the search request's own bounds (search.request.BOUNDS)."""
    low, high = BOUNDS[name]
    return Field(default=default, ge=low, le=high, description=description)


class JobCreate(Schema):
    space: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[a-z0-9][a-z0-9-]*(@[A-Za-z0-9_.]+)?$",
        description="a search space, optionally with parameters: fbnet-tiny, fbnet@r160_w0.75",
        examples=["fbnet-tiny"],
    )
    dataset: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="an uploaded dataset's id, or a built-in dataset (mnist5k, digits)",
    )
    devices: list[DeviceName] = Field(
        min_length=1, max_length=8, description="target devices (LUT names); the first is primary"
    )
    budgets: dict[DeviceName, BudgetMs | BudgetList] = Field(
        default_factory=dict,
        max_length=8,
        description="latency budget in ms per device; the primary device (the first of devices) "
        'may have a list of budgets, one result each: {"pi4": [2.0, 3.0]}',
        examples=[{"pi4": 2.5}, {"pi4": [2.0, 3.0, 4.0], "laptop": 0.5}],
    )
    sram_kb: float | None = Field(
        default=None,
        gt=0,
        le=MAX_MEMORY_KB,
        description="hard SRAM budget (the TFLite Micro tensor arena) in KiB on an MCU primary "
        "device",
    )
    flash_kb: float | None = Field(
        default=None,
        gt=0,
        le=MAX_MEMORY_KB,
        description="hard flash budget (model + operator code) in KiB on an MCU primary device",
    )
    shared_supernet: bool = Field(
        default=True,
        description="several budgets train one supernet and search each budget on its weights; "
        "false: one whole search per budget",
    )
    arch_steps: int | None = bounded(
        "arch_steps",
        None,
        "architecture steps per budget on a shared supernet (default: the budgets together "
        "take twice a single search's)",
    )
    weight_sampling: WeightSampling = Field(
        default=DEFAULTS.weight_sampling,
        description="a shared supernet's weight steps: single (one path a step) or sandwich "
        "(largest, smallest and a sampled path a step, the smaller distilled from the largest; "
        "about three times the weight phase's time)",
    )
    strategy: str = Field(
        default=DEFAULT_STRATEGY, min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$"
    )
    epochs: int = bounded("epochs", DEFAULTS.epochs)
    warmup_epochs: int | None = bounded(
        "warmup_epochs",
        None,
        "weights-only epochs before the architecture learns; fewer than epochs "
        "(default: 1, or 0 when epochs is 1)",
    )
    child_epochs: int | None = bounded("child_epochs", None, "default: epochs")
    batch_size: int = bounded("batch_size", DEFAULTS.batch_size)
    arch_lr: float | None = Field(
        default=None, gt=0.0, le=MAX_ARCH_LR, description="architecture learning rate (strategy's)"
    )
    seed: int = bounded("seed", DEFAULTS.seed)
    trials: int = bounded("trials", DEFAULT_TRIALS, "candidates of the baselines")
    checkpoint_every: int = bounded("checkpoint_every", DEFAULTS.checkpoint_every, "steps")
    inherit_weights: bool = False
    child_shift_px: int = bounded(
        "child_shift_px", 0, "augmentation: the child's images shifted up to N px"
    )
    options: dict[OptionKey, OptionValue] = Field(default_factory=dict, max_length=16)
    export_formats: list[ExportFormat] = Field(
        default_factory=list, max_length=8, description="registered export formats (deploy)"
    )

    @field_validator("export_formats")
    @classmethod
    def _registered_formats(cls, names: list[str]) -> list[str]:
        from deploy.formats import get_format

        for name in names:
            get_format(name)  # ValueError naming the registered formats
        return names

    @model_validator(mode="after")
    def _consistent(self) -> JobCreate:
        if len(set(self.devices)) != len(self.devices):
            raise ValueError("devices must not repeat")
        unknown = sorted(set(self.budgets) - set(self.devices))
        if unknown:
            raise ValueError(f"budgets name devices not in devices: {', '.join(unknown)}")
        listed = [
            d for d, b in self.budgets.items() if isinstance(b, list) and d != self.devices[0]
        ]
        if listed:
            raise ValueError(
                f"only the primary device ({self.devices[0]}) may have several budgets, not "
                f"{', '.join(listed)}"
            )
        primary = self.primary_budgets()
        if len({f"{b:g}" for b in primary}) != len(primary):
            raise ValueError(f"budgets of {self.devices[0]} must differ: {primary}")
        memory = [k for k in ("sram_kb", "flash_kb") if getattr(self, k) is not None]
        if memory and len(primary) > 1 and self.shared_supernet:
            raise ValueError(
                f"{' and '.join(memory)} with several budgets need shared_supernet false (one "
                "search per budget)"
            )
        if len(primary) > 1 and self.export_formats:
            raise ValueError(
                "export_formats need a single budget: a job with several budgets gives one "
                "result per budget; submit the budget you want exported as its own job"
            )
        if len(set(self.export_formats)) != len(self.export_formats):
            raise ValueError("export_formats must not repeat")
        # left unset, warmup_epochs follows epochs (search.request.default_warmup_epochs)
        if self.warmup_epochs is not None and self.warmup_epochs >= self.epochs:
            default = "" if "epochs" in self.model_fields_set else ", the default"
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs "
                f"({self.epochs}{default})"
            )
        return self

    def primary_budgets(self) -> list[float]:
        """The primary device's budgets (none, one, or several)."""
        budget = self.budgets.get(self.devices[0])
        if budget is None:
            return []
        return list(budget) if isinstance(budget, list) else [budget]


class JobCreated(Schema):
    id: str = Field(max_length=32)
    state: JobState


class JobPublic(Schema):
    id: str = Field(max_length=32)
    state: JobState
    request: dict[str, Any]
    dataset_id: str | None = Field(default=None, max_length=32)
    progress: dict[str, Any]
    metrics: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=10_000)
    attempt: int = Field(ge=0)
    cancel_requested: bool
    downloads: list[str] = Field(max_length=64, description="names for GET /models/{id}/{name}")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class JobList(Schema):
    jobs: list[JobPublic] = Field(max_length=1000)
