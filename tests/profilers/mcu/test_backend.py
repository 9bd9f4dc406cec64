"""The mcu backend for real: int8 micro-models converted with litert-torch and run by the
profiling firmware (TFLite Micro + CMSIS-NN) on QEMU's emulated Cortex-M4 board."""

from __future__ import annotations

import pytest

from lut.opspec import OpSpec
from lut.store import LutStore
from profilers.backends.mcu_backend import McuBackend
from profilers.base import create_backend
from profilers.mcu.build import Firmware

CONV = OpSpec(op="conv", in_channels=3, out_channels=8, height=16, width=16, kernel=3, stride=2)
MBCONV = OpSpec(
    op="mbconv", in_channels=8, out_channels=16, height=8, width=8, kernel=3, expansion=3.0
)
LINEAR = OpSpec(op="linear", in_channels=32, out_channels=10)
SKIP = OpSpec(op="skip", in_channels=8, out_channels=16, height=8, width=8, stride=2)


def _conv(out_channels: int) -> OpSpec:
    return OpSpec(op="conv", in_channels=8, out_channels=out_channels, height=8, width=8, kernel=3)


@pytest.fixture(scope="module")
def backend(m4_firmware: Firmware, tmp_path_factory: pytest.TempPathFactory) -> McuBackend:
    made = create_backend("mcu", cache_dir=tmp_path_factory.mktemp("mcu-cache"))
    assert isinstance(made, McuBackend)
    return made


def test_firmware_records_what_built_it(m4_firmware: Firmware) -> None:
    fingerprint = m4_firmware.fingerprint
    assert fingerprint["core"] == "cortex-m4"
    assert fingerprint["kernels"].startswith("cmsis_nn:")
    assert "arm-none-eabi-gcc" in fingerprint["compiler"]
    assert fingerprint["tflm_commit"]
    assert m4_firmware.info["sections"]["text"] > 0
    assert m4_firmware.elf.is_file()


@pytest.mark.parametrize("spec", [CONV, MBCONV, LINEAR, SKIP], ids=lambda s: s.op)
def test_ops_are_profiled_on_the_emulated_board(backend: McuBackend, spec: OpSpec) -> None:
    measured = backend.measure_op(spec)
    instructions = measured.extra["instructions"]
    assert instructions > 0
    assert measured.median_ms == pytest.approx(instructions / (backend.clock_mhz * 1e3))
    assert measured.extra["arena_bytes"] > 0
    assert measured.peak_memory_bytes == measured.extra["arena_bytes"]
    assert measured.extra["flash_bytes"] > measured.extra["model_bytes"] > 0
    per_op = measured.extra["op_instructions"]
    assert per_op and sum(count for _, count in per_op) <= instructions


def test_two_runs_give_identical_counts(backend: McuBackend) -> None:
    first, second = backend.measure_op(MBCONV), backend.measure_op(MBCONV)
    assert second.extra["converted"] is False
    assert first.samples_ms == second.samples_ms
    assert first.extra["instructions"] == second.extra["instructions"]
    assert first.extra["op_instructions"] == second.extra["op_instructions"]


def test_counts_grow_with_macs(backend: McuBackend) -> None:
    counts = [backend.measure_op(_conv(c)).extra["instructions"] for c in (8, 16, 32)]
    assert counts[0] < counts[1] < counts[2]


def test_fingerprint_declares_the_part_and_the_estimate(backend: McuBackend) -> None:
    fingerprint = backend.fingerprint()
    assert fingerprint["core"] == "cortex-m4"
    assert fingerprint["clock_mhz"] == 100.0
    assert fingerprint["sram_bytes"] > 0 and fingerprint["flash_bytes"] > 0
    assert fingerprint["opspec_dtype"] == "int8"
    assert "mps2-an386" in fingerprint["emulator"] and "icount" in fingerprint["emulator"]
    assert "emulator estimate" in fingerprint["estimate"]


def test_declared_clock_scales_milliseconds(backend: McuBackend) -> None:
    faster = McuBackend(cache_dir=backend.cache_dir.parent, clock_mhz=200.0)
    assert faster.measure_op(CONV).median_ms == pytest.approx(
        backend.measure_op(CONV).median_ms / 2
    )
    with pytest.raises(ValueError, match="clock_mhz"):
        McuBackend(cache_dir=backend.cache_dir.parent, clock_mhz=-1.0)


def test_lut_keys_int8_specs_and_finds_them_by_the_spaces_specs(
    backend: McuBackend, sqlite_url: str
) -> None:
    store = LutStore(sqlite_url)
    mcu = store.register_device("m4", backend.fingerprint())
    store.add_measurement(mcu, CONV, backend.measure_op(CONV))
    int8_key = OpSpec(**{**CONV.to_dict(), "dtype": "int8"}).key
    assert store.measured_keys(mcu) == {int8_key}
    assert int8_key != CONV.key
    assert set(store.lookup(mcu, [CONV])) == {CONV.key}
    assert store.missing(mcu, [CONV, LINEAR]) == [LINEAR]


def test_profiling_into_a_lut_records_the_interpreters_own_count_as_fixed_cost(
    backend: McuBackend, sqlite_url: str
) -> None:
    from profilers.runner import profile_specs

    store = LutStore(sqlite_url)
    report = profile_specs(store, backend, "m4-lut", [CONV, LINEAR])
    fixed = report.device.fixed_costs
    assert fixed is not None and fixed.per_mb_ms == 0 and fixed.between_blocks_ms == 0
    assert 0 <= fixed.call_overhead_ms < backend.measure_op(CONV).median_ms
    assert len(report.measured) == 2
    assert set(store.lookup(report.device, [CONV, LINEAR])) == {CONV.key, LINEAR.key}
