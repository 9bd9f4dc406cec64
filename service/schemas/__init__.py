"""Request and response schemas: every field bounded, unknown fields refused."""

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
