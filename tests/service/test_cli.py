"""The `hwnas` command as a user runs it: real processes, a real SQLite file, real ONNX Runtime."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service.fixtures import hwnas

SPACE = "fbnet-tiny"


def _count_rows(home: Path) -> int:
    db = home / "hwnas.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM measurements").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


@pytest.fixture(scope="module")
def profiled_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Profile fbnet-tiny, interrupt it with Ctrl-C part-way, then resume it to the end."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HWNAS_HOME": str(home)}
    args = [
        "profile",
        "--device",
        "laptop",
        "--backend",
        "onnxruntime",
        "--space",
        SPACE,
        "--quick",
    ]
    # As from a shell: a SIGINT ignored here (an xdist worker's) would be inherited. Handlers
    # are reset by exec, ignores are not; so it is handled here while the child starts (a
    # preexec_fn would force a fork of this multithreaded process instead of posix_spawn).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, before)
    deadline = time.monotonic() + 300
    while _count_rows(home) < 5 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)  # the op in flight finishes first
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    interrupted_at = _count_rows(home)
    assert interrupted_at >= 5
    with sqlite3.connect(home / "hwnas.db") as conn:  # every row whole: no NULL statistics
        assert (
            conn.execute("SELECT count(*) FROM measurements WHERE median_ms IS NULL").fetchone()[0]
            == 0
        )
    resumed = hwnas(home, *args)
    total = 72  # fbnet-tiny's distinct ops that need measuring (identities are free)
    assert (
        f"measured {total - interrupted_at} op(s), {interrupted_at} already in the LUT"
        in " ".join(resumed.stderr.split())
    )
    assert _count_rows(home) == total
    return home


@pytest.mark.slow
def test_profile_is_resumable_and_complete(profiled_home: Path) -> None:
    again = hwnas(
        profiled_home,
        "profile",
        "--device",
        "laptop",
        "--backend",
        "onnxruntime",
        "--space",
        SPACE,
        "--quick",
    )
    assert "measured 0 op(s), 72 already in the LUT" in " ".join(again.stderr.split())
    show = json.loads(
        hwnas(profiled_home, "lut", "show", "--device", "laptop", "--space", SPACE, "--json").stdout
    )
    assert show["missing"] == [] and show["ops"] == 72
    assert show["fixed_costs"]["call_overhead_ms"] > 0
    assert show["fingerprint"]["backend"] == "onnxruntime" and show["fingerprint"]["threads"] == 1


@pytest.mark.slow
def test_predict_and_measure_json_lines(profiled_home: Path) -> None:
    archs = hwnas(
        profiled_home, "arch", "random", "--space", SPACE, "--seed", "7", "-n", "3"
    ).stdout
    lines = archs.split()
    assert len(lines) == 3
    predicted = [
        json.loads(x)
        for x in hwnas(
            profiled_home, "predict", "--device", "laptop", *lines, "--json"
        ).stdout.splitlines()
    ]
    assert [p["arch"] for p in predicted] == lines
    assert all(p["latency_ms"] > 0 and p["raw_sum_ms"] > 0 for p in predicted)
    listing = profiled_home / "archs.txt"
    listing.write_text(archs)
    measured = [
        json.loads(x)
        for x in hwnas(
            profiled_home,
            "measure",
            "--backend",
            "onnxruntime",
            "-f",
            str(listing),
            "--quick",
            "--json",
        ).stdout.splitlines()
    ]
    assert [m["arch"] for m in measured] == lines
    assert all(m["latency_ms"] > 0 and m["n"] >= 10 for m in measured)
    # same order of magnitude: the predictor is benchmarked properly in benchmarks/lut_accuracy
    for p, m in zip(predicted, measured, strict=True):
        assert 0.2 < p["latency_ms"] / m["latency_ms"] < 5


@pytest.mark.slow
def test_measure_in_rounds_pools_every_round(profiled_home: Path) -> None:
    archs = hwnas(profiled_home, "arch", "random", "--space", SPACE, "--seed", "8", "-n", "2")
    args = ["measure", "--backend", "onnxruntime", "--quick", "--rounds", "2", "--json"]
    rows = [
        json.loads(x)
        for x in hwnas(profiled_home, *args, *archs.stdout.split()).stdout.split("\n")
        if x
    ]
    assert [r["arch"] for r in rows] == archs.stdout.split()  # input order, whatever the rounds'
    for r in rows:
        rounds = r["extra"]["rounds_median_ms"]
        assert len(rounds) == 2 and min(rounds) <= r["latency_ms"] <= max(rounds)
        assert r["n"] >= 2 * 10  # every round's samples (the quick protocol takes >= 10)
    bad = hwnas(profiled_home, "measure", "--backend", "onnxruntime", "--rounds", "0", check=False)
    assert bad.returncode == 2 and "--rounds: must be at least 1" in bad.stderr


@pytest.mark.slow
def test_calibrate_fits_the_lut_and_predictions_use_it(profiled_home: Path, tmp_path: Path) -> None:
    import shutil

    home = tmp_path / "home"  # a copy: the module's other tests predict uncalibrated
    shutil.copytree(profiled_home, home)
    args = ["lut", "calibrate", "--device", "laptop", "--space", SPACE, "-n", "6", "--quick"]
    done = hwnas(home, *args)
    assert done.stdout.startswith("calibrated laptop") and "on 6 runs" in done.stdout
    arch = hwnas(home, "arch", "random", "--space", SPACE, "--seed", "3", "-n", "1").stdout.strip()
    predicted = json.loads(hwnas(home, "predict", "--device", "laptop", arch, "--json").stdout)
    assert predicted["calibrated"] is True
    too_many = hwnas(home, *args[:-3], "-n", "1001", check=False)
    assert too_many.returncode == 2 and "between 0 and 1000" in too_many.stderr


@pytest.mark.slow
def test_export_import_round_trip(profiled_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "laptop.lut.json"
    hwnas(profiled_home, "lut", "export", "--device", "laptop", "-o", str(out))
    data = json.loads(out.read_text())
    assert data["format"] == "hwnas-lut" and len(data["measurements"]) == 72
    other = tmp_path / "other"
    result = hwnas(other, "lut", "import", str(out))
    assert "imported 72 op(s)" in result.stdout
    listed = [json.loads(x) for x in hwnas(other, "lut", "list", "--json").stdout.splitlines()]
    assert [(d["device"], d["ops"]) for d in listed] == [("laptop", 72)]
    arch = hwnas(other, "arch", "random", "--space", SPACE).stdout.strip()
    a = json.loads(hwnas(profiled_home, "predict", "--device", "laptop", arch, "--json").stdout)
    b = json.loads(hwnas(other, "predict", "--device", "laptop", arch, "--json").stdout)
    assert a["latency_ms"] == pytest.approx(b["latency_ms"])


def test_corrupt_lut_file_imports_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "hwnas-lut", "version": 1, "device": {"name": "x"}}')
    result = hwnas(tmp_path / "home", "lut", "import", str(bad), check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "fingerprint" in result.stderr
    listed = hwnas(tmp_path / "home", "lut", "list", "--json").stdout
    assert listed == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["arch", "random", "--space", "nope"], "valid: fbnet, fbnet-tiny"),
        (["profile", "--device", "d", "--backend", "tflite", "--space", SPACE], "valid: litert"),
        (
            ["profile", "--device", "d", "--backend", "litert", "--space", SPACE, "--in-network"],
            "needs ONNX Runtime's per-node CPU profiler",
        ),
        (
            [
                *["profile", "--device", "d", "--backend", "onnxruntime", "--space", SPACE],
                *["--network-rounds", "2"],
            ],
            "--network-rounds goes with --in-network",
        ),
        (
            [
                "profile",
                "--device",
                "d",
                "--backend",
                "onnxruntime",
                "--space",
                SPACE,
                "--passes",
                "0",
            ],
            "--passes must be at least 1",
        ),
        (["predict", "--device", "phone", "fbnet-tiny:skip"], "unknown device 'phone'"),
        (["measure", "--backend", "onnxruntime", "fbnet-tiny:skip"], "has 8 searchable layers"),
        (["predict", "--device", "x"], "no architecture given"),
        (["lut", "show"], "the following arguments are required: --device"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_input_is_exit_2_and_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = hwnas(tmp_path, *args, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env_url = "postgresql+psycopg://u:secret@127.0.0.1:1/x?connect_timeout=2"
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "lut", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "HWNAS_HOME": str(tmp_path), "HWNAS_DATABASE_URL": env_url},
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot open database" in result.stderr
    assert "secret" not in result.stderr


def test_arch_random_is_seeded(tmp_path: Path) -> None:
    a = hwnas(tmp_path, "arch", "random", "--space", "fbnet", "--seed", "7", "-n", "5").stdout
    b = hwnas(tmp_path, "arch", "random", "--space", "fbnet", "--seed", "7", "-n", "5").stdout
    assert a == b and len(a.splitlines()) == 5
    assert all(line.startswith("fbnet@r224_w1_c3_n1000:") for line in a.splitlines())


@pytest.mark.slow
def test_search_writes_a_run_and_resumes(profiled_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "search",
        "--space",
        SPACE,
        "--dataset",
        "digits",
        "--device",
        "laptop",
        "--strategy",
        "hardcore",
        "--latency-ms",
        "0.2",
        "--epochs",
        "2",
        "--arch-lr",
        "0.02",
        "--child-shift",
        "1",
        "--out",
        str(out),
    ]
    result = hwnas(profiled_home, *args)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["predicted_latency_ms"]["laptop"] <= 0.2
    assert metrics["child_shift_px"] == 1
    report = metrics["strategy_report"]
    assert report["arch_lr"] == 0.02 and report["limit_ms"]["laptop"] <= 0.2
    assert metrics["lut_units"]["laptop"]["backend"] == "onnxruntime"
    assert json.loads((out / "arch.json").read_text())["arch"] == metrics["arch"]
    assert (out / "child.pt").exists() and (out / "history.jsonl").read_text()
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert {"search", "derived", "train", "done"} <= {e["type"] for e in events}
    assert metrics["arch"] in result.stdout
    again = hwnas(profiled_home, "search", "--resume", str(out))
    assert "resumed at step" in again.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--space", SPACE, "--latency-ms", "0.001"], "smallest achievable is"),
        (["--space", "proxyless-tiny", "--latency-ms", "1"], "lacks"),
        (["--space", SPACE, "--strategy", "darts"], "valid: evolution, fbnet, hardcore"),
        (["--space", SPACE, "--dataset", "/nonexistent.npz"], "nonexistent"),
        (["--space", SPACE, "--latency-ms", "1", "--option", "margin=big"], "margin"),
        (["--space", SPACE, "--latency-ms", "1", "--option", "oops"], "expected KEY=VALUE"),
        (["--space", SPACE, "--arch-lr", "-1"], "--arch-lr must be in (0, 10]"),
        (["--space", SPACE, "--latency-ms", "1", "--child-shift", "99"], "--child-shift"),
        (["--space", SPACE, "--sram-kb", "0"], "--sram-kb must be in (0, "),
        (["--space", SPACE, "--flash-kb", "nan"], "--flash-kb must be in (0, "),
        (["--space", SPACE, "--latency-ms", "1", "--sram-kb", "128"], "need an MCU device's LUT"),
    ],
)
def test_search_bad_input_is_exit_2(
    profiled_home: Path, tmp_path: Path, extra: list[str], needle: str
) -> None:
    args = [
        "search",
        "--dataset",
        "digits",
        "--device",
        "laptop",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "x"),
        *extra,
    ]
    result = hwnas(profiled_home, *args, check=False)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_search_with_one_epoch_needs_no_warmup_flag(tmp_path: Path) -> None:
    """--epochs 1 without --warmup-epochs runs (the warm-up default adapts to 0); a warm-up the
    user chose that does not fit is exit 2 naming both flags."""
    from tests.service.fixtures import seed_synthetic_lut, write_npz

    home = tmp_path / "home"
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth", num_classes=3)
    common = ["search", "--space", SPACE, "--device", "cpu-synth", "--strategy", "fbnet"]
    common += ["--dataset", str(write_npz(tmp_path / "squares.npz")), "--epochs", "1"]
    out = tmp_path / "run"
    hwnas(home, *common, "--child-epochs", "1", "--batch-size", "32", "--out", str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["epochs"] == 1 and metrics["settings"]["warmup_epochs"] == 0
    refused = hwnas(home, *common, "--warmup-epochs", "1", "--out", str(out), check=False)
    assert refused.returncode == 2
    assert "--warmup-epochs (1) must be >= 0 and fewer than --epochs (1)" in refused.stderr


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ({"HWNAS_PORT": "abc"}, "bad setting HWNAS_PORT"),
        ({"HWNAS_ENVIRONMENT": "production", "HWNAS_ADMIN_KEY": "short"}, "HWNAS_ADMIN_KEY"),
    ],
)
def test_a_bad_setting_is_one_line(tmp_path: Path, setting: dict[str, str], needle: str) -> None:
    """The CLI and the server read one Settings: a bad HWNAS_* value is one line, exit 1."""
    env = {**os.environ, "HWNAS_HOME": str(tmp_path), **setting}
    env.pop("HWNAS_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "lut", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and needle in done.stderr


def test_search_with_several_budgets_shares_one_supernet(tmp_path: Path) -> None:
    """--latency-ms A,B: one weight phase (supernet/), each budget's architecture phase, child,
    events and history under budget-<ms>/, the Pareto table; --resume finds every budget done."""
    from tests.service.fixtures import seed_synthetic_lut, write_npz

    home = tmp_path / "home"
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth", num_classes=3)
    out = tmp_path / "run"
    args = ["search", "--space", SPACE, "--device", "cpu-synth", "--latency-ms", "3,6"]
    args += ["--dataset", str(write_npz(tmp_path / "squares.npz")), "--epochs", "2"]
    args += ["--child-epochs", "1", "--batch-size", "32", "--arch-steps", "3", "--out", str(out)]
    result = hwnas(home, *args)
    weights = json.loads((out / "supernet" / "weights.json").read_text())
    assert weights["latency_range_ms"][1] == 6.0
    for budget in ("3", "6"):
        run = out / f"budget-{budget}"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["predicted_latency_ms"]["cpu-synth"] <= float(budget)
        assert metrics["shared_supernet"]["arch_steps"] == 3
        assert len((run / "history.jsonl").read_text().splitlines()) == 3
        events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
        assert {"search", "derived", "train", "done"} <= {e["type"] for e in events}
        assert metrics["arch"] in result.stdout
    assert (out / "supernet" / "events.jsonl").read_text()
    assert (out / "pareto.md").exists() and (out / "pareto.png").exists()
    again = hwnas(home, "search", "--resume", str(out))
    assert "budget-3" in again.stdout and "resumed" not in again.stderr


def test_resuming_a_run_from_before_shared_supernets_searches_each_budget(tmp_path: Path) -> None:
    """A request.json written before budgets shared a supernet has no `shared_supernet`: its
    run folders hold one search per budget, so resuming it goes on that way."""
    import argparse

    from service.cli.search import _request_from_args

    old = {"space": SPACE, "devices": ["d"], "budgets": [1.0, 2.0], "epochs": 2}
    (tmp_path / "request.json").write_text(json.dumps(old))
    assert _request_from_args(argparse.Namespace(resume=tmp_path))["shared_supernet"] is False
    (tmp_path / "request.json").write_text(json.dumps({**old, "shared_supernet": True}))
    assert _request_from_args(argparse.Namespace(resume=tmp_path))["shared_supernet"] is True
