"""The model files a thin agent times, converted where torch is (the server's workers) and stored
content-addressed: each OpSpec's micro-model, each fixed-cost probe and the two support models
(warm-up, drift reference) per format, built once for an (op hash, format, converter version)
and kept as `blobs/<sha256>` under an index of those three, so agents download by hash and cache
what they downloaded."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.files import write_atomically
from lut.opspec import OpSpec

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

# Bump when lut/modules.py builds an op's micro-model differently: every file is built again.
MICRO_MODEL_VERSION = 1
FORMATS = ("onnx", "tflite")
SHA256_PATTERN = r"^[0-9a-f]{64}$"

ModelFn = Callable[[], "tuple[nn.Module, torch.Tensor]"]


@dataclass(frozen=True)
class Artifact:
    """One stored file: what an agent downloads (by `sha256`) and checks."""

    sha256: str
    size: int
    format: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def converter_version(fmt: str) -> str:
    """What converts files of `fmt` here (read from package metadata; nothing is imported).
    ValueError for an unknown format or a converter that is not installed."""
    if fmt not in FORMATS:
        raise ValueError(f"no converter for format {fmt!r}; valid: {', '.join(FORMATS)}")
    try:
        torch = importlib.metadata.version("torch")
        if fmt == "onnx":
            return f"torch {torch} TorchScript ONNX exporter, micro-models v{MICRO_MODEL_VERSION}"
        litert = importlib.metadata.version("litert-torch")
    except importlib.metadata.PackageNotFoundError as exc:
        missing = f"{exc.name} is not installed"
        raise ValueError(f"this server cannot convert {fmt} files: {missing}") from None
    return f"litert-torch {litert}, torch {torch}, micro-models v{MICRO_MODEL_VERSION}"


def convert(fmt: str, module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write `module` (NCHW input like `example`) as a file of `fmt`, as the backends do."""
    if fmt == "onnx":
        from profilers.export import export_onnx

        export_onnx(module, example, path)
    elif fmt == "tflite":
        from profilers.backends.litert_backend import convert_channel_last

        convert_channel_last(module, example, path)
    else:
        raise ValueError(f"no converter for format {fmt!r}; valid: {', '.join(FORMATS)}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ArtifactStore:
    """`root/blobs/<sha256>` and `root/index/<format>/<converter digest>/<name>.json`; both
    written atomically, so workers sharing the directory (a shared volume) may convert the same
    op at once and agree."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.conversions = 0  # files this instance converted (index misses)
        self.conversion_s = 0.0  # seconds spent converting them

    def blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def _index(self, name: str, fmt: str) -> Path:
        digest = hashlib.sha256(converter_version(fmt).encode()).hexdigest()[:16]
        return self.root / "index" / fmt / digest / f"{name}.json"

    def get(self, name: str, fmt: str) -> Artifact | None:
        index = self._index(name, fmt)
        try:
            data = json.loads(index.read_text())
        except (OSError, ValueError):
            return None
        artifact = Artifact(data["sha256"], int(data["size"]), data["format"])
        return artifact if self.blob(artifact.sha256).is_file() else None

    def ensure(self, name: str, fmt: str, model: ModelFn) -> Artifact:
        """The file of model `name` in `fmt`, converted now if this converter never did."""
        import time

        found = self.get(name, fmt)
        if found is not None:
            return found
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="hwnas-convert-") as tmp:
            path = Path(tmp) / f"{name}.{fmt}"
            convert(fmt, *model(), path)
            artifact = self._store(path, fmt)
        self.conversions += 1
        self.conversion_s += time.perf_counter() - start
        record = {**artifact.to_dict(), "name": name, "converter": converter_version(fmt)}
        write_atomically(self._index(name, fmt), lambda tmp: tmp.write_text(json.dumps(record)))
        return artifact

    def _store(self, path: Path, fmt: str) -> Artifact:
        sha256 = file_sha256(path)
        target = self.blob(sha256)
        if not target.is_file():
            write_atomically(target, lambda tmp: shutil.copyfile(path, tmp))
        return Artifact(sha256, path.stat().st_size, fmt)

    # -- what tasks carry ---------------------------------------------------------------------
    def ops(self, specs: Iterable[OpSpec], fmt: str) -> dict[str, Artifact]:
        """op key → the file of its micro-model."""
        from profilers.export import op_model

        return {s.key: self.ensure(s.key, fmt, lambda s=s: op_model(s)) for s in specs}  # type: ignore[misc]

    def support(self, fmt: str) -> dict[str, Artifact]:
        """ "warmup" and "reference" → the support models' files (profilers.timers.base)."""
        from profilers.backends.converted import SUPPORT_SPECS
        from profilers.export import op_model

        return {
            role: self.ensure(spec.key, fmt, lambda spec=spec: op_model(spec))  # type: ignore[misc]
            for role, spec in SUPPORT_SPECS.items()
        }

    def probes(self, fmt: str) -> dict[str, Artifact]:
        """probe name → the fixed-cost probe models' files (profilers.fixed_costs)."""
        from profilers.export import probe_model
        from profilers.fixed_costs import probe_names

        return {
            name: self.ensure(name, fmt, lambda name=name: probe_model(name))  # type: ignore[misc]
            for name in probe_names()
        }
