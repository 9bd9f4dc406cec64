"""Deployable models: real exports (torch.onnx dynamo, litert-torch), real runtimes (ONNX Runtime,
LiteRT), a real dataset (mnist5k) and the `hwnas` command as a user runs it. TensorRT cannot be
installed here: its test skips with the reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deploy.api import (
    DeployError,
    artifact_path,
    export_run,
    record_target_measurement,
)
from deploy.arch_export import export_architecture
from deploy.formats import ExportJob, format_names
from deploy.memory import Buffer, greedy_arena, live_peak
from deploy.run import export_formats
from deploy.testing import make_trained_run
from deploy.verify import FP32_MAX_ABS_DIFF
from search.spaces.base import space_from_string, space_names

ALL_FORMATS = format_names()  # every registered format: a new one is tested for free


def hwnas(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HWNAS_HOME": str(home), "COLUMNS": "200"}
    env.pop("HWNAS_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A run dir of fbnet-tiny on mnist5k (untrained weights, real data), exported to every
    format once."""
    run_dir = tmp_path_factory.mktemp("run") / "a"
    make_trained_run(run_dir, epochs=0, arch_seed=3)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["predicted_latency_ms"] = {"laptop": 0.25}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir, export_run(run_dir, ALL_FORMATS, quick=True)


def _tiny_variant(name: str) -> str:
    """A 224-pixel space at 32 pixels: the same blocks and ops, cheap to convert."""
    space = space_from_string(name)
    return name if space.resolution <= 32 else f"{name}@r32"


@pytest.mark.slow
@pytest.mark.parametrize("space_name", space_names())
def test_every_space_exports_to_onnx_and_tflite_matching_pytorch(
    space_name: str, tmp_path: Path
) -> None:
    import random

    space = space_from_string(_tiny_variant(space_name))
    arch = space.sample(random.Random(11)).to_string()
    files, errors, checks = export_architecture(arch, ["onnx", "tflite"], tmp_path)
    assert errors == {}
    for name in ("onnx", "tflite"):
        assert files[name].is_file()
        assert checks[name]["max_abs_diff"] <= FP32_MAX_ABS_DIFF, (name, checks[name])
        assert checks[name]["top1_agreement"] == 1.0


@pytest.mark.slow
def test_run_export_produces_verified_files_and_a_card(exported_run: tuple[Path, dict]) -> None:
    run_dir, result = exported_run
    assert set(result["files"]) == {"onnx", "tflite", "onnx-int8", "tflite-int8", "c-array"}
    assert set(result["errors"]) <= {"tensorrt"}
    card = json.loads((run_dir / "card.json").read_text())
    for name in ("onnx", "tflite"):  # fp32: logits match PyTorch on the real test split
        check = card["verification"][name]
        assert check["passed"] and check["max_abs_diff"] <= FP32_MAX_ABS_DIFF
        assert check["samples"] == 1000
    for name in ("onnx-int8", "tflite-int8"):  # int8 files load and run on the test split
        assert card["verification"][name]["top1_agreement"] > 0.5
        assert 0 < card["int8"][name]["size_ratio_vs_fp32"] < 0.6
        assert "accuracy_drop_pp" in card["int8"][name]
        assert card["latency_ms"]["measured_here"][name]["median_ms"] > 0
    memory = card["memory"]["tflite-int8"]
    assert 0 < memory["arena_live_peak_bytes"] <= memory["arena_greedy_bytes"]
    assert memory["flash_bytes"] == (run_dir / "export" / "model.int8.tflite").stat().st_size
    assert card["memory"]["tflite"]["arena_live_peak_bytes"] > memory["arena_live_peak_bytes"]
    assert card["latency_ms"]["predicted"] == {"laptop": 0.25}
    assert card["params"] > 0 and card["macs"] > 0
    text = (run_dir / "card.md").read_text()
    assert card["arch"] in text and "tensor arena" in text.lower() and "laptop" in text


def test_tensorrt_engine_needs_tensorrt(exported_run: tuple[Path, dict]) -> None:
    from deploy.tensorrt import unavailable_reason

    run_dir, result = exported_run
    reason = unavailable_reason()
    if reason is not None:
        assert result["errors"]["tensorrt"] == f"tensorrt: {reason}"
        with pytest.raises(FileNotFoundError, match=r"tensorrt was not produced.*TensorRT"):
            artifact_path(run_dir, "tensorrt")
        pytest.skip(f"TensorRT engine not built or timed here: {reason}")
    card = json.loads((run_dir / "card.json").read_text())
    assert card["verification"]["tensorrt"]["top1_agreement"] > 0.9


def test_artifact_paths(exported_run: tuple[Path, dict]) -> None:
    run_dir, _ = exported_run
    assert artifact_path(run_dir, "onnx") == run_dir / "export" / "model.onnx"
    assert artifact_path(run_dir, "card.md").read_text().startswith("# Model card")
    with pytest.raises(FileNotFoundError, match="no artifact named 'zip'"):
        artifact_path(run_dir, "zip")
    for name in ALL_FORMATS:
        if name != "tensorrt":  # not installable here
            assert artifact_path(run_dir, name).is_file()


@pytest.mark.slow
def test_verify_cli_reruns_every_check(exported_run: tuple[Path, dict], tmp_path: Path) -> None:
    run_dir, _ = exported_run
    result = hwnas(tmp_path, "verify", "--run", str(run_dir), "--json")
    checks = json.loads(result.stdout)
    assert set(checks) == {"onnx", "tflite", "onnx-int8", "tflite-int8"}
    assert checks["tflite"]["passed"] and checks["onnx"]["max_abs_diff"] <= FP32_MAX_ABS_DIFF
    # the exit code follows the int8 accuracy check, which untrained weights may fail
    int8_ok = all(checks[n]["passed"] for n in ("onnx-int8", "tflite-int8"))
    assert result.returncode == (0 if int8_ok else 1), result.stderr


@pytest.mark.slow
def test_card_follows_the_files_on_disk(exported_run: tuple[Path, dict], tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(exported_run[0], run_dir)
    before = json.loads((run_dir / "card.json").read_text())
    # replace the int8 TFLite file by the fp32 one and change the LUT prediction
    shutil.copy(run_dir / "export" / "model.tflite", run_dir / "export" / "model.int8.tflite")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["predicted_latency_ms"] = {"laptop": 0.5, "pi": 3.0}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    result = hwnas(tmp_path, "card", "--run", str(run_dir), "--json", "--quick")
    assert result.returncode == 0, result.stderr
    after = json.loads(result.stdout)
    fp32_size = (run_dir / "export" / "model.tflite").stat().st_size
    assert after["files"]["tflite-int8"]["bytes"] == fp32_size
    assert after["files"]["tflite-int8"]["bytes"] != before["files"]["tflite-int8"]["bytes"]
    assert after["int8"]["tflite-int8"]["size_ratio_vs_fp32"] == 1.0
    assert after["memory"]["tflite-int8"] == after["memory"]["tflite"] | {
        "peak_rss_growth_bytes": after["memory"]["tflite-int8"]["peak_rss_growth_bytes"]
    }
    # re-verified, not copied from the old entry: an fp32 file now matches PyTorch closely
    assert after["verification"]["tflite-int8"]["max_abs_diff"] <= FP32_MAX_ABS_DIFF
    assert after["latency_ms"]["predicted"] == {"laptop": 0.5, "pi": 3.0}
    assert "| pi (LUT-predicted)" in (run_dir / "card.md").read_text()


def test_target_measurement_goes_into_the_card(
    exported_run: tuple[Path, dict], tmp_path: Path
) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(exported_run[0], run_dir)
    measurement = {"samples_ms": [2.0, 2.2, 2.1, 2.4, 2.0], "warmup": 10, "backend": "litert"}
    record_target_measurement(run_dir, "pi", "tflite-int8", measurement)
    card = json.loads((run_dir / "card.json").read_text())
    target = card["latency_ms"]["measured_on_target"]["pi"]["tflite-int8"]
    assert target["median_ms"] == pytest.approx(2.1) and target["runtime"] == "litert"
    assert (
        "pi (measured on target) | tflite-int8 / litert | 2.1000"
        in (run_dir / "card.md").read_text()
    )
    with pytest.raises(DeployError, match="samples_ms"):
        record_target_measurement(run_dir, "pi", "tflite", {"samples_ms": []})
    with pytest.raises(DeployError, match="unknown format"):
        record_target_measurement(run_dir, "pi", "zip", measurement)
    with pytest.raises(FileNotFoundError, match="tensorrt was not produced"):
        record_target_measurement(run_dir, "pi", "tensorrt", measurement)


@pytest.mark.slow
def test_measure_file_times_int8_files(exported_run: tuple[Path, dict], tmp_path: Path) -> None:
    from profilers.base import create_backend
    from profilers.protocol import QUICK

    export_dir = exported_run[0] / "export"
    example = torch.randn(1, 1, 28, 28)
    for runtime, name in [("litert", "model.int8.tflite"), ("onnxruntime", "model.int8.onnx")]:
        backend = create_backend(runtime, cache_dir=tmp_path, protocol=QUICK)
        measured = backend.measure_file(export_dir / name, example)  # type: ignore[attr-defined]
        assert measured.median_ms > 0 and measured.extra["model_file"] == name
        with pytest.raises(ValueError, match="times"):
            backend.measure_file(export_dir / "model.engine", example)  # type: ignore[attr-defined]


class WithDeterminant(torch.nn.Module):
    """A network with an op TFLite cannot express (a matrix determinant) but ONNX can."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.det(self.conv(x)[:, :, :4, :4])


@pytest.mark.slow
def test_an_op_a_format_cannot_express_is_named_and_others_still_produced(
    tmp_path: Path,
) -> None:
    job = ExportJob(
        module=WithDeterminant().eval(),
        input_shape=(1, 8, 8),
        calibration=np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32),
        out_dir=tmp_path,
    )
    paths = {"onnx": tmp_path / "m.onnx", "tflite": tmp_path / "m.tflite"}
    errors = export_formats(job, ["tflite", "onnx"], paths, lambda event: None)
    assert list(errors) == ["tflite"]
    assert errors["tflite"] == "tflite: the format cannot express the op aten._linalg_det.default"
    assert paths["onnx"].is_file() and not paths["tflite"].exists()
    assert not list(tmp_path.glob(".*tmp*"))  # no half-written file left behind


@pytest.mark.slow
def test_export_arch_options_nhwc_and_dynamic_batch(tmp_path: Path) -> None:
    import onnx
    from ai_edge_litert.interpreter import Interpreter

    arch = space_from_string("mbv3-tiny").sample(__import__("random").Random(2)).to_string()
    home = tmp_path / "home"
    result = hwnas(
        home, "export", "--arch", arch, "--format", "onnx,tflite", "-o", str(tmp_path),
        "--nhwc", "--dynamic-batch", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert all(check["passed"] for check in report["checks"].values())
    graph_input = onnx.load(str(tmp_path / "model.onnx")).graph.input[0]
    assert graph_input.name == "input"
    assert graph_input.type.tensor_type.shape.dim[0].dim_param  # a named, free batch dimension
    interpreter = Interpreter(model_path=str(tmp_path / "model.tflite"))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 28, 28, 1]


def test_run_without_weights_is_exit_2_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "arch.json").write_text(
        json.dumps(
            {
                "arch": space_from_string("fbnet-tiny")
                .sample(__import__("random").Random(0))
                .to_string()
            }
        )
    )
    result = hwnas(tmp_path, "export", "--run", str(run_dir), "--format", "onnx")
    assert result.returncode == 2
    assert (
        result.stderr
        == f"hwnas: error: {run_dir} has no trained weights (child.pt): nothing to deploy\n"
    )
    result = hwnas(tmp_path, "export", "--run", str(run_dir), "--format", "onnx,zip")
    assert result.returncode == 2 and "unknown export format 'zip'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    import random

    space = space_from_string("fbnet-tiny")
    one, other = (space.sample(random.Random(s)) for s in (0, 1))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "arch.json").write_text(json.dumps({"arch": one.to_string()}))
    torch.save(space.build(other).state_dict(), run_dir / "child.pt")
    if one.choices == other.choices:
        pytest.fail("the two seeds must give different architectures")
    result = hwnas(tmp_path, "card", "--run", str(run_dir))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "does not fit" in result.stderr or "tensors" in result.stderr, result.stderr
    (run_dir / "child.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DeployError, match="not a PyTorch state dict"):
        export_run(run_dir, ["onnx"])


def test_changed_dataset_is_refused(exported_run: tuple[Path, dict], tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(exported_run[0], run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["dataset"]["content_hash"] = "0" * 16
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(DeployError, match="changed since the run"):
        export_run(run_dir, ["onnx"])


def test_greedy_arena_matches_hand_computed_plans() -> None:
    # a and c never live together and share offset 0; b overlaps both and sits above them
    buffers = [Buffer(0, 100, -1, 1), Buffer(1, 50, 1, 2), Buffer(2, 100, 2, 3)]
    assert live_peak(buffers, 4) == 150 and greedy_arena(buffers) == 150
    # the planner cannot always reach the live peak: 3 buffers, a gap too small for the last
    buffers = [Buffer(0, 60, 0, 1), Buffer(1, 40, 0, 3), Buffer(2, 30, 2, 3), Buffer(3, 50, 2, 2)]
    assert live_peak(buffers, 4) == 120
    assert greedy_arena(buffers) == 130


def _synthetic_lut_home(home: Path) -> None:
    """A LUT from a formula in HWNAS_HOME's database, standing in for a profiled device (the
    search needs one; profiling is tested on real runtimes elsewhere)."""
    from lut.measurement import Measurement
    from lut.predictor import FixedCosts
    from lut.store import LutStore
    from search.spaces.complexity import macs

    home.mkdir(parents=True, exist_ok=True)
    store = LutStore(f"sqlite:///{home / 'hwnas.db'}")
    device = store.register_device("synthetic", {"backend": "synthetic", "threads": 1})
    store.set_fixed_costs(device, FixedCosts(0.004, 0.0, 0.0))
    specs = [s for s in space_from_string("fbnet-tiny").distinct_opspecs() if not s.is_identity]
    store.add_measurements(
        device,
        [(s, Measurement.from_samples([0.004 + 2e-6 * macs(s)] * 7, warmup=0)) for s in specs],
    )


@pytest.mark.slow
def test_search_then_export_in_one_go(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "run"
    _synthetic_lut_home(home)
    bad = hwnas(home, "search", "--space", "fbnet-tiny", "--dataset", "digits", "--device",
                "synthetic", "--export", "onnx,zip", "--out", str(out))  # fmt: skip
    assert bad.returncode == 2 and "unknown export format 'zip'" in bad.stderr
    assert not out.exists()  # refused before any work
    result = hwnas(
        home, "search", "--space", "fbnet-tiny", "--dataset", "digits", "--device", "synthetic",
        "--strategy", "random", "--trials", "1", "--epochs", "1", "--child-epochs", "0",
        "--export", "onnx", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["verification"]["onnx"]["passed"]
    assert set(card["latency_ms"]["predicted"]) == {"synthetic"}
    assert (out / "export" / "model.onnx").is_file() and "card.md" in result.stdout


class WithInverseErf(torch.nn.Module):
    """A network with an op the ONNX exporter has no function for (the inverse error function)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.erfinv(torch.tanh(x))


def test_an_op_onnx_cannot_express_is_named(tmp_path: Path) -> None:
    job = ExportJob(
        module=WithInverseErf().eval(),
        input_shape=(1, 8, 8),
        calibration=np.zeros((2, 1, 8, 8), dtype=np.float32),
        out_dir=tmp_path,
    )
    errors = export_formats(job, ["onnx"], {"onnx": tmp_path / "m.onnx"}, lambda event: None)
    assert errors == {"onnx": "onnx: the format cannot express the op prims.erf_inv.default"}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_card_times_files_in_the_lut_unit_of_a_device_profiled_here(tmp_path: Path) -> None:
    from profilers.base import cpu_model

    run_dir = tmp_path / "run"
    make_trained_run(run_dir, epochs=0, arch_seed=3)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["predicted_latency_ms"] = {"laptop": 0.25, "phone": 3.0}
    metrics["lut_units"] = {
        "phone": {
            "backend": "onnxruntime",
            "threads": 1,
            "cpu_model": "Cortex-A76",
            "reference_ms": 1.0,
        },
        "laptop": {
            "backend": "onnxruntime",
            "threads": 1,
            "cpu_model": cpu_model(),
            "reference_ms": 0.2,
        },
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    export_run(run_dir, ["onnx"], quick=True)
    card = json.loads((run_dir / "card.json").read_text())
    measured = card["latency_ms"]["measured_here"]["onnx"]
    assert measured["lut_unit"] == "laptop" and measured["drift_referenced"]
    assert measured["median_ms"] > 0 and measured["raw_median_ms"] > 0
    assert "in laptop's LUT unit" in (run_dir / "card.md").read_text()


def test_files_are_timed_plainly_without_a_lut_of_this_host() -> None:
    from deploy.measure import LutUnit, lut_unit_for
    from profilers.base import cpu_model

    units = {"phone": {"backend": "litert", "threads": 4, "cpu_model": "Cortex-A76"}}
    assert lut_unit_for("litert", units) is None
    units["laptop"] = {"backend": "litert", "threads": 2, "cpu_model": cpu_model()}
    assert lut_unit_for("litert", units) == LutUnit("laptop", 2, None)
    assert lut_unit_for("onnxruntime", units) is None
