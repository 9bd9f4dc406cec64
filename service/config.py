"""Settings read from the environment: where hwnas keeps its data and which database it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.paths import hwnas_home, model_cache_dir


@dataclass(frozen=True)
class Settings:
    home: Path  # HWNAS_HOME: data directory (database, converted-model cache, runs)
    database_url: str  # HWNAS_DATABASE_URL: SQLAlchemy URL; default an SQLite file under home
    cache_dir: Path  # HWNAS_CACHE_DIR: converted models; default $HWNAS_HOME/cache


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = hwnas_home(env)
    url = env.get("HWNAS_DATABASE_URL") or f"sqlite:///{home / 'hwnas.db'}"
    return Settings(home=home, database_url=url, cache_dir=model_cache_dir(env))
