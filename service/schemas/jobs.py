"""Job schemas: what a search job asks for, and what GET /jobs/{id} answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from service.jobs.states import JobState
from service.schemas import Schema

DeviceName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
BudgetMs = Annotated[float, Field(gt=0, le=1_000_000)]
OptionKey = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z_][a-z0-9_]*$")
]
OptionValue = (
    Annotated[float, Field(ge=-1e9, le=1e9)] | bool | Annotated[str, Field(max_length=100)]
)
ExportFormat = Literal["onnx", "tflite", "onnx-int8", "tflite-int8", "tensorrt"]

MAX_CHILD_SHIFT_PX = 16  # the child-training shift augmentation, also `hwnas search`'s bound


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
    budgets: dict[DeviceName, BudgetMs] = Field(
        default_factory=dict, max_length=8, description="latency budget in ms per device"
    )
    strategy: str = Field(default="hardcore", min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    epochs: int = Field(default=10, ge=1, le=1000)
    warmup_epochs: int | None = Field(
        default=None,
        ge=0,
        le=999,
        description="weights-only epochs before the architecture learns; fewer than epochs "
        "(default: 1, or 0 when epochs is 1)",
    )
    child_epochs: int | None = Field(default=None, ge=0, le=1000)
    batch_size: int = Field(default=128, ge=1, le=4096)
    arch_lr: float | None = Field(
        default=None, gt=0.0, le=10.0, description="architecture learning rate (strategy's)"
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    trials: int = Field(default=8, ge=1, le=1000, description="random / evolution candidates")
    checkpoint_every: int = Field(default=50, ge=1, le=1_000_000, description="steps")
    inherit_weights: bool = False
    child_shift_px: int = Field(
        default=0,
        ge=0,
        le=MAX_CHILD_SHIFT_PX,
        description="augmentation: the child's images shifted up to N px",
    )
    options: dict[OptionKey, OptionValue] = Field(default_factory=dict, max_length=16)
    export_formats: list[ExportFormat] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _consistent(self) -> JobCreate:
        if len(set(self.devices)) != len(self.devices):
            raise ValueError("devices must not repeat")
        unknown = sorted(set(self.budgets) - set(self.devices))
        if unknown:
            raise ValueError(f"budgets name devices not in devices: {', '.join(unknown)}")
        if len(set(self.export_formats)) != len(self.export_formats):
            raise ValueError("export_formats must not repeat")
        # left unset, warmup_epochs follows epochs (search.engine.default_warmup_epochs)
        if self.warmup_epochs is not None and self.warmup_epochs >= self.epochs:
            default = "" if "epochs" in self.model_fields_set else ", the default"
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs "
                f"({self.epochs}{default})"
            )
        return self


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
    downloads: list[str] = Field(max_length=20, description="names for GET /models/{id}/{name}")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class JobList(Schema):
    jobs: list[JobPublic] = Field(max_length=1000)
