"""The server's converted files (profilers/artifacts.py): built once per op, format and converter
version, stored under their SHA-256, and timed by the thin agent's timers as they are."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lut.opspec import OpSpec
from profilers.artifacts import ArtifactStore, converter_version
from profilers.fixed_costs import CHAIN_NAME, probe_names
from profilers.protocol import QUICK
from profilers.timers.ort import OrtFileTimer

SPEC = OpSpec(op="conv", in_channels=8, out_channels=16, height=14, width=14, kernel=3)


def test_files_are_converted_once_and_stored_under_their_hash(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    [artifact] = store.ops([SPEC], "onnx").values()
    blob = store.blob(artifact.sha256)
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == artifact.sha256
    assert (artifact.size, artifact.format) == (blob.stat().st_size, "onnx")
    assert store.ops([SPEC], "onnx") == {SPEC.key: artifact} and store.conversions == 1
    again = ArtifactStore(tmp_path)  # another worker sharing the volume
    assert again.ops([SPEC], "onnx") == {SPEC.key: artifact} and again.conversions == 0
    assert set(store.support("onnx")) == {"warmup", "reference"}

    timer = OrtFileTimer(
        protocol=QUICK, support_files=lambda role: store.blob(store.support("onnx")[role].sha256)
    )
    measured = timer.measure_op_file(blob)
    assert measured.median_ms > 0 and measured.n >= QUICK.min_runs


def test_probe_models_and_converters_are_named() -> None:
    assert CHAIN_NAME in probe_names() and len(set(probe_names())) == 7
    assert "micro-models v1" in converter_version("onnx")
    with pytest.raises(ValueError, match="no converter for format 'engine'"):
        converter_version("engine")
