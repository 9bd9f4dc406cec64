"""The one Settings of the CLI and the server, from `HWNAS_*` environment variables
(pydantic-settings): where hwnas keeps its data, its database, caches and limits. Refuses
insecure defaults outside development."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

INSECURE_SECRETS = frozenset({"changethis", "changeme", "secret", "password", "admin", "hwnas"})
MIN_ADMIN_KEY_CHARS = 32
# search.data.archive.MAX_UNCOMPRESSED_BYTES, what the search's loader accepts (importing it
# here would import torch into every CLI command)
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3


def _default_home() -> Path:
    return Path(user_data_dir("hwnas", appauthor=False))


class InsecureSettings(ValueError):
    """A setting that is unsafe outside development (a placeholder secret, a short key)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HWNAS_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str = Field(default="", max_length=2000, description="default: SQLite under home")
    artifacts_dir: Path = Field(
        default_factory=lambda data: Path(data["home"]) / "artifacts",
        description="default: home/artifacts",
    )
    cache_dir: Path = Field(
        default_factory=lambda data: Path(data["home"]) / "cache",
        description="converted models (ONNX / TFLite micro-models and networks); default "
        "home/cache; one cache can serve several homes",
    )
    environment: Literal["development", "production"] = "development"
    admin_key: SecretStr | None = Field(
        default=None, description="an admin key ensured at start-up (bootstraps containers)"
    )
    max_upload_bytes: int = Field(default=512 * 1024**2, ge=1024, le=1 << 40)
    max_dataset_bytes: int = Field(
        default=MAX_UNCOMPRESSED_BYTES,
        ge=1024,
        le=MAX_UNCOMPRESSED_BYTES,
        description="an uploaded dataset's uncompressed size, known from its zip directory "
        "before anything is decompressed (at most what the search's loader accepts)",
    )
    max_json_bytes: int = Field(
        default=64 * 1024**2, ge=1024, le=1 << 32, description="any request body but an upload"
    )
    stale_upload_s: float = Field(
        default=3600.0,
        gt=0,
        description="start-up deletes temporary upload files untouched this long (left by "
        "a crash; younger ones may be another API process's uploads in progress)",
    )
    lease_s: float = Field(default=60.0, gt=0, le=3600, description="a claimed job's lease")
    heartbeat_s: float = Field(
        default=10.0, gt=0, le=600, description="how often a worker renews it"
    )
    poll_s: float = Field(
        default=1.0, gt=0, le=60, description="how often an idle worker looks for jobs"
    )
    agent_wait_s: float = Field(default=600.0, gt=0, description="wait for an agent before failing")
    agent_offline_after_s: float = Field(default=60.0, gt=0)
    agent_task_lease_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="an agent's claim on a task, renewed by heartbeats",
    )
    agent_task_specs: int = Field(default=8, ge=1, le=512, description="OpSpecs per agent task")
    workers: int = Field(
        default=1, ge=0, le=64, description="local worker processes of `hwnas serve`"
    )
    host: str = Field(default="127.0.0.1", max_length=255)
    port: int = Field(default=8000, ge=0, le=65535)
    ray_address: str = Field(
        default="",
        max_length=500,
        description="a Ray cluster (`auto`, `ray://head:10001`, `host:port`) that runs a job's "
        "units (weight phase, each budget's search) as Ray tasks; empty: in the worker's process, "
        "and nothing imports Ray",
    )
    ray_unit_cpus: float = Field(
        default=1.0, gt=0, le=256, description="CPUs each Ray task of a job declares"
    )
    ray_unit_gpus: float = Field(
        default=0.0, ge=0, le=64, description="GPUs each Ray task of a job declares (0: none)"
    )
    ray_unit_memory_mb: int = Field(
        default=0,
        ge=0,
        le=16 * 1024**2,
        description="memory (MiB) each Ray task of a job declares to Ray's scheduler (0: none)",
    )
    ray_wait_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="how long a job waits for its Ray cluster to come up (to accept the job "
        "worker, and to have a node with room for its tasks) before it fails",
    )

    @model_validator(mode="after")
    def _fill_defaults_and_check(self) -> Settings:
        self.home = self.home.expanduser()
        self.cache_dir = self.cache_dir.expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'hwnas.db'}"
        self.artifacts_dir = self.artifacts_dir.expanduser()
        problems = insecure_settings(self)
        if problems and self.environment != "development":
            raise InsecureSettings("; ".join(problems))
        for problem in problems:
            warnings.warn(f"insecure setting (allowed in development): {problem}", stacklevel=2)
        return self


def insecure_settings(settings: Settings) -> list[str]:
    problems = []
    if settings.admin_key is not None:
        key = settings.admin_key.get_secret_value()
        if key.lower() in INSECURE_SECRETS or len(key) < MIN_ADMIN_KEY_CHARS:
            problems.append(
                f"HWNAS_ADMIN_KEY is a placeholder or shorter than {MIN_ADMIN_KEY_CHARS} "
                "characters; generate one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`"
            )
    password = _url_password(settings.database_url)
    if password is not None and password.lower() in INSECURE_SECRETS:
        problems.append("HWNAS_DATABASE_URL uses a placeholder password")
    return problems


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password  # type: ignore[return-value]
    except ArgumentError:
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The server's settings, read once."""
    return Settings()


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings read now (the CLI's); `environ`'s HWNAS_* values, if given, take precedence.
    Insecure settings are refused outside development and not warned about: a command line is
    not a server."""
    given = {
        key.removeprefix("HWNAS_").lower(): value
        for key, value in (environ or {}).items()
        if key.startswith("HWNAS_") and key.removeprefix("HWNAS_").lower() in Settings.model_fields
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Settings(**given)  # type: ignore[arg-type]  # strings, parsed as from the environment
