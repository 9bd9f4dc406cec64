"""The firmware on each emulated core for real: the M7 on QEMU's mps2-an500, whose PSRAM (the
firmware's job and tensor arena) sits at another address than the M4 board's, and the M55 on
mps3-an547 (another memory map and SysTick clock, hard float, CMSIS-NN's MVE kernels). The same
int8 micro-model runs on every board, with repeatable counts on each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deploy.tflm_arena import predict_arena
from lut.opspec import OpSpec
from profilers.backends.mcu_backend import McuBackend
from profilers.mcu.build import Firmware, ensure_firmware, firmware_files
from profilers.mcu.toolchain import get_core

MBCONV = OpSpec(
    op="mbconv", in_channels=8, out_channels=16, height=8, width=8, kernel=3, expansion=3.0
)


@pytest.fixture(scope="module")
def conversions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One int8 conversion of MBCONV for every board."""
    return tmp_path_factory.mktemp("mcu-cores")


def _twice_and_on_the_m4(core: str, conversions: Path) -> tuple[Any, Any, Any, Any]:
    """The core's backend and the M4's, MBCONV measured on the core (checked repeatable on a
    second run, from the cached file) and on the M4."""
    backend = McuBackend(device=core, cache_dir=conversions)
    m4 = McuBackend(device="m4", cache_dir=conversions)
    first, again = backend.measure_op(MBCONV), backend.measure_op(MBCONV)
    assert again.extra["converted"] is False
    assert first.extra["instructions"] == again.extra["instructions"] > 0
    assert first.extra["op_instructions"] == again.extra["op_instructions"]
    return backend, m4, first, m4.measure_op(MBCONV)


def test_an_op_runs_on_the_emulated_m7_as_on_the_m4(
    m4_firmware: Firmware, m7_firmware: Firmware, conversions: Path
) -> None:
    m7, _, on_m7, on_m4 = _twice_and_on_the_m4("m7", conversions)

    assert m7_firmware.fingerprint["core"] == "cortex-m7"
    assert m7.fingerprint()["emulator"].endswith("mps2-an500, -icount shift=0")
    # the same 32-bit structures and planner: the arena does not depend on the core
    assert on_m7.extra["arena_bytes"] == on_m4.extra["arena_bytes"]
    # instructions, not cycles: the cores run nearly the same code, at their declared clocks
    ratio = on_m7.extra["instructions"] / on_m4.extra["instructions"]
    assert 0.8 < ratio < 1.25
    assert on_m7.median_ms == pytest.approx(on_m7.extra["instructions"] / (216.0 * 1e3))


def test_an_op_runs_on_the_emulated_m55_with_mve_kernels(
    m4_firmware: Firmware, m55_firmware: Firmware, conversions: Path
) -> None:
    m55, m4, on_m55, on_m4 = _twice_and_on_the_m4("m55", conversions)

    built = m55_firmware.fingerprint
    assert (built["core"], built["tflm_target"]) == ("cortex-m55", "cortex_m_generic")
    device = m55.fingerprint()
    assert device["emulator"].endswith("mps3-an547, -icount shift=0")
    assert device["tflm_target"] == "cortex_m_generic" and device["clock_mhz"] == 400.0
    # CMSIS-NN's MVE kernels: every convolution takes fewer instructions than on the M4
    assert on_m55.extra["instructions"] < 0.8 * on_m4.extra["instructions"]
    pairs = zip(on_m55.extra["op_instructions"], on_m4.extra["op_instructions"], strict=True)
    for (tag, count), (m4_tag, m4_count) in pairs:
        assert tag == m4_tag
        if "CONV" in tag:
            assert count < m4_count
    # the arena is not the M4's: CMSIS-NN's MVE depthwise kernel has no scratch-free 3x3 path and
    # asks for 4 x CH_IN_BLOCK_MVE (124) x kernel_w x kernel_h bytes of scratch
    assert on_m55.extra["arena_bytes"] - on_m4.extra["arena_bytes"] == 4 * 124 * 3 * 3
    # ... which the arena model's MVE kernel set predicts, and the LUT entry records
    model = m55.cache_dir / f"{MBCONV.key}.int8.tflite"
    assert predict_arena(model, "mve").arena_bytes == on_m55.extra["arena_bytes"]
    assert predict_arena(model, "dsp").arena_bytes == on_m4.extra["arena_bytes"]
    recorded = on_m55.extra["arena_head_bytes"] + on_m55.extra["arena_tail_bytes"]
    assert recorded == on_m55.extra["arena_bytes"]
    assert on_m55.median_ms == pytest.approx(on_m55.extra["instructions"] / (400.0 * 1e3))
    # other kernels, the same int8 arithmetic: the output bytes equal the M4's
    output = m55.run_file(model, print_output=True).output
    assert output and output == m4.run_file(model, print_output=True).output


def test_the_m55_has_no_serial_build_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no serial build for m55"):
        ensure_firmware(get_core("m55"), transport="serial")
    with pytest.raises(ValueError, match="no serial build for m55"):
        McuBackend(device="m55", port="/dev/null", cache_dir=tmp_path)


def test_a_cores_firmware_digest_covers_only_its_boards_files() -> None:
    names = {core: [path.name for path in firmware_files(get_core(core))] for core in ("m4", "m55")}
    assert names["m4"] == ["mps2.ld", "profiler_main.cc", "serial.c", "startup.c"]
    assert "mps3.ld" in names["m55"] and "mps3_an547.c" in names["m55"]
    assert "mps2.ld" not in names["m55"]


def test_the_agent_emulates_the_core_it_is_given(
    mcu_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from profilers.agent.main import build_parser, main, make_measurer

    monkeypatch.setenv("HWNAS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HWNAS_AGENT_KEY", "k")
    base = ["--server", "http://127.0.0.1:9", "--name", "emulated", "--backend", "mcu"]
    base += ["--cache", str(tmp_path / "files")]
    backend = make_measurer(build_parser().parse_args([*base, "--core", "m55"]))["backend"]
    assert isinstance(backend, McuBackend)
    assert (backend.core.board, backend.clock_mhz) == ("mps3-an547", 400.0)
    assert main([*base, "--core", "m9"]) == 2
    assert "unknown --core 'm9'; valid: m4, m7, m55" in capsys.readouterr().err
