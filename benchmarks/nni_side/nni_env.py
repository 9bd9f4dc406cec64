"""NNI's own virtual environment, created and cached by the benchmark (CI never installs NNI):
`python -m venv` and `pip install` of NNI 3, Lightning, torchmetrics and hwnas's torch pin."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REQUIREMENTS = ("torch==2.13.0", "nni", "pytorch-lightning", "torchmetrics")
REPORTED = ("nni", "torch", "pytorch-lightning", "torchmetrics", "numpy")
MARKER = ".hwnas-requirements"


def venv_python(workdir: Path) -> Path:
    return workdir / "venv" / "bin" / "python"


def ensure_venv(workdir: Path, log: Callable[[str], None] = print) -> dict[str, str]:
    """The venv under `workdir/venv`, created once (a marker holds the requirements it was made
    with; other requirements make it again). Returns the installed versions of `REPORTED`."""
    python, marker = venv_python(workdir), workdir / "venv" / MARKER
    wanted = "\n".join(REQUIREMENTS)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        log(f"creating NNI's venv in {workdir / 'venv'}: pip install {' '.join(REQUIREMENTS)}")
        subprocess.run([sys.executable, "-m", "venv", str(workdir / "venv")], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
        marker.write_text(wanted)
    versions = installed(python)
    log("NNI venv: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return versions


def installed(python: Path) -> dict[str, str]:
    """`pip freeze` of the venv, narrowed to the packages the comparison depends on."""
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    ).stdout
    pins = dict(line.split("==", 1) for line in out.splitlines() if "==" in line)
    return {name: pins[name] for name in REPORTED if name in pins}
