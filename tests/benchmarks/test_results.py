"""Results say which run they are, and the user's documents carry no dated lab notes: every
benchmark result names its commit, date, command and machine; README.md and the packages'
docstrings hold no dates (measured evidence lives in docs/ and benchmarks/)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = sorted((REPO / "benchmarks" / "results").glob("*.json"))
PACKAGES = ["common", "deploy", "lut", "profilers", "search", "service"]
DATE = re.compile(r"20\d\d-\d\d-\d\d")


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_result_names_its_run(path: Path) -> None:
    run = json.loads(path.read_text()).get("run")
    assert isinstance(run, dict), f"{path.name}: no top-level 'run' object"
    assert re.fullmatch(r"[0-9a-f]{40}", str(run.get("commit"))), f"{path.name}: run.commit"
    for key in ("date", "command", "machine"):
        assert isinstance(run.get(key), str) and run[key].strip(), f"{path.name}: run.{key}"
    assert DATE.match(run["date"]), f"{path.name}: run.date is not an ISO date"


def test_there_are_results() -> None:
    assert RESULTS, "benchmarks/results/ holds no JSON results"


def test_readme_has_no_dates() -> None:
    found = DATE.findall((REPO / "README.md").read_text())
    assert not found, f"README.md holds dates {found}: dated measurements belong in docs/"


def _docstrings(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = ast.walk(tree)
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    out = []
    for node in nodes:
        if isinstance(node, kinds) and (doc := ast.get_docstring(node, clean=False)):
            out.append((getattr(node, "name", "module"), doc))
    return out


def test_package_docstrings_have_no_dates() -> None:
    dated = [
        f"{path.relative_to(REPO)}:{name}: {DATE.search(doc).group()}"  # type: ignore[union-attr]
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        for name, doc in _docstrings(path)
        if DATE.search(doc)
    ]
    assert not dated, "docstrings with dates (move the measurements to docs/):\n" + "\n".join(dated)
