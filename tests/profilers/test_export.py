"""Helpers the profiler backends share: micro-model building, the atomic file cache, peak memory,
CPU pinning and silenced output."""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

import pytest

from common.quiet import silenced
from lut.opspec import OpSpec
from profilers.export import ensure_cached, op_model
from profilers.memory import RSS_METHOD, track_peak_rss
from profilers.protocol import pinned_to_cores


def test_micro_models_have_no_foldable_all_zero_parameters() -> None:
    probe = OpSpec(op="add", in_channels=8, out_channels=8, height=8, width=8)
    module, _ = op_model(probe)
    assert all(parameter.any() for parameter in module.parameters())


def test_ensure_cached_writes_atomically_once(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model.bin"
    assert ensure_cached(target, lambda tmp: tmp.write_bytes(b"model")) is True
    assert ensure_cached(target, lambda tmp: tmp.write_bytes(b"other")) is False
    assert target.read_bytes() == b"model"

    def failing(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError):
        ensure_cached(tmp_path / "broken.bin", failing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # no half-written file left


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM and clear_refs are Linux-only")
def test_peak_rss_sees_a_large_allocation() -> None:
    # The block's memory comes straight from the kernel (an anonymous mapping, untouched until
    # written), so it is never pages the process already holds: a bytearray may be served by
    # malloc from resident memory an earlier test freed, and the full suite, locally and in CI,
    # then saw 0 bytes. The mapping is closed inside the block: the mark must keep the freed peak.
    size = 64 * 1024 * 1024
    with track_peak_rss() as memory:
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        block.close()
    assert memory.method == RSS_METHOD
    assert memory.bytes is not None and memory.bytes >= 60 * 1024 * 1024


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_pinning_restores_the_previous_affinity() -> None:
    before = os.sched_getaffinity(0)
    with pinned_to_cores(1) as cpus:
        if cpus is not None:
            assert os.sched_getaffinity(0) == set(cpus) and len(cpus) == 1
    assert os.sched_getaffinity(0) == before


def test_silenced_swallows_native_output_and_keeps_it_for_errors(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with silenced():
        os.write(1, b"native stdout\n")
        os.write(2, b"native stderr\n")
        print("python stdout")
    assert capfd.readouterr() == ("", "")
    with pytest.raises(RuntimeError) as info, silenced():
        os.write(2, b"why it failed\n")
        raise RuntimeError("boom")
    assert "why it failed" in "".join(getattr(info.value, "__notes__", []))


def test_output_is_restored_after_a_ctrl_c_inside_the_restore(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C landing while `silenced` puts the output back (here: in its first step) left
    stderr on the scratch file, and the CLI's "interrupted" line was lost (seen in the suite)."""
    from common import quiet

    stderr_before = os.fstat(2).st_ino

    def interrupted() -> None:
        monkeypatch.setattr(quiet, "_flush_c_stdio", lambda: None)
        raise KeyboardInterrupt

    monkeypatch.setattr(quiet, "_flush_c_stdio", interrupted)
    with pytest.raises(KeyboardInterrupt), silenced():
        pass
    assert os.fstat(2).st_ino != stderr_before  # the interrupt left fd 2 redirected
    quiet.restore_output()
    assert os.fstat(2).st_ino == stderr_before
    os.write(2, b"seen again\n")
    print("printed again", file=sys.stderr)
    assert capfd.readouterr().err == "seen again\nprinted again\n"


def test_model_cache_follows_hwnas_cache_dir_then_hwnas_home(tmp_path: Path) -> None:
    from common.paths import model_cache_dir
    from service.config import load_settings

    home = {"HWNAS_HOME": str(tmp_path / "home")}
    assert model_cache_dir(home) == tmp_path / "home" / "cache"
    shared = {**home, "HWNAS_CACHE_DIR": str(tmp_path / "shared")}
    assert model_cache_dir(shared) == tmp_path / "shared"
    settings = load_settings(shared)
    assert settings.cache_dir == tmp_path / "shared" and settings.home == tmp_path / "home"


def _one_spec_of_each_kind() -> list[OpSpec]:
    """Every op kind and every variant that exports differently: activation, groups (channel
    shuffle), squeeze-excite, strided skip, the pool, the head and the per-call probe."""
    from search.spaces.base import space_from_string

    specs = [
        s for n in ("fbnet-tiny", "mbv3-tiny") for s in space_from_string(n).distinct_opspecs()
    ]
    kinds: dict[tuple[object, ...], OpSpec] = {}
    for spec in specs:
        if not spec.is_identity:
            kinds.setdefault((spec.op, spec.activation, spec.groups > 1, spec.se), spec)
    return [*kinds.values(), OpSpec(op="add", in_channels=8, out_channels=8, height=8, width=8)]


@pytest.mark.slow
def test_micro_model_export_runs_the_graph_the_dynamo_exporter_gives(tmp_path: Path) -> None:
    """Micro-models are exported by the fast TorchScript exporter, networks by dynamo: ORT's
    optimised graphs of both must be the same node for node (benchmarks/exporter_parity.py
    checks every OpSpec of every space)."""
    import numpy as np

    from profilers.onnx_graph import compare_exporters

    for spec in _one_spec_of_each_kind():
        module, example = op_model(spec)
        workdir = tmp_path / spec.key
        workdir.mkdir()
        c = compare_exporters(module, example, workdir)
        assert c.graphs["torchscript"] == c.graphs["dynamo"], spec.short()
        np.testing.assert_allclose(
            c.outputs["torchscript"], c.outputs["dynamo"], rtol=1e-5, atol=1e-5
        )


def test_profile_passes_pool_every_pass_and_resume(tmp_path: Path) -> None:
    from lut.store import LutStore
    from profilers.base import create_backend
    from profilers.protocol import QUICK
    from profilers.runner import profile_specs
    from search.spaces.base import space_from_string

    backend = create_backend("onnxruntime", cache_dir=tmp_path / "cache", protocol=QUICK)
    store = LutStore(f"sqlite:///{tmp_path / 'lut.db'}")
    specs = [s for s in space_from_string("fbnet-tiny").distinct_opspecs() if s.op == "pool"]
    first = profile_specs(store, backend, "laptop", specs)
    one = store.lookup(first.device, specs)[specs[0].key]
    report = profile_specs(store, backend, "laptop", specs, passes=3)
    assert (report.total, report.skipped, report.measured) == (2, 0, specs)
    entry = store.lookup(report.device, specs)[specs[0].key]
    assert entry.extra["passes"] == 3 and len(entry.extra["pass_medians_ms"]) == 3
    assert entry.extra["pass_medians_ms"][0] == one.median_ms
    assert entry.n >= 3 * QUICK.min_runs and set(one.samples_ms) <= set(entry.samples_ms)
    again = profile_specs(store, backend, "laptop", specs, passes=3)
    assert (again.total, again.skipped, again.measured) == (0, 1, [])
    with pytest.raises(ValueError, match="at least 1"):
        profile_specs(store, backend, "laptop", specs, passes=0)
