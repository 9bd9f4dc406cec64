"""Request and response schemas: every field bounded, unknown fields refused, no coercion ("2"
is not a number, true is not 1) and no NaN or infinity."""

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
