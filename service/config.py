"""Settings read from the environment: where hwnas keeps its data and which database it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir


@dataclass(frozen=True)
class Settings:
    home: Path  # HWNAS_HOME: data directory (database, converted-model cache, runs)
    database_url: str  # HWNAS_DATABASE_URL: SQLAlchemy URL; default an SQLite file under home

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = Path(env.get("HWNAS_HOME") or user_data_dir("hwnas", appauthor=False)).expanduser()
    url = env.get("HWNAS_DATABASE_URL") or f"sqlite:///{home / 'hwnas.db'}"
    return Settings(home=home, database_url=url)
