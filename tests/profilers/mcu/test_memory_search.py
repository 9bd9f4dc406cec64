"""SRAM as a hard search budget, for real: a small MCUNet-like space profiled on the emulated
Cortex-M4 (each op's micro-model converted and run, its arena predicted), a search under an SRAM
budget that rules out its largest blocks, and the result converted and run on the board: the
arena TFLM reports fits the budget and equals the prediction from the file and the search's own
check of it; `hwnas predict` reports the composed SRAM and flash."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lut.store import LutStore
from profilers.mcu.build import Firmware
from search.spaces.base import SpaceDef, StageDef, register_space, space_names
from search.spaces.grammar import SpaceParams

SPACE = "mcu-memory-test"


def _tiny_space() -> SpaceDef:
    return SpaceDef(
        name=SPACE,
        description="two searchable MBConv layers at 16x16 (the SRAM budget test)",
        stem_channels=8,
        stem_stride=1,
        stages=(
            StageDef(
                16,
                2,
                2,
                ("ir_k3_e3", "ir_k7_e6", "skip"),
                first_candidates=("ir_k3_e3", "ir_k7_e6"),
            ),
        ),
        head_channels=32,
        defaults=SpaceParams(resolution=16, width_mult=1.0, in_channels=1, num_classes=10),
    )


if SPACE not in space_names():
    register_space(SPACE)(_tiny_space)


@pytest.fixture(scope="module")
def profiled(m4_firmware: Firmware, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The space's MCU LUT (device m4) in a fresh store, the backend, the data and the space."""
    from torch.utils.data import TensorDataset

    from profilers.backends.mcu_backend import McuBackend
    from profilers.runner import profile_specs
    from search.data.load import load_dataset
    from search.run import bind_space

    folder = tmp_path_factory.mktemp("mcu-memory")
    data = load_dataset("mnist5k", seed=0, resolution=16)

    def head(ds: TensorDataset, n: int) -> TensorDataset:
        return TensorDataset(*(t[:n] for t in ds.tensors))

    data = replace(
        data, train=head(data.train, 128), val=head(data.val, 64), test=head(data.test, 64)
    )
    space = bind_space(SPACE, data)
    store = LutStore(f"sqlite:///{folder / 'lut.db'}")
    backend = McuBackend(cache_dir=folder / "cache")
    profile_specs(store, backend, "m4", space.distinct_opspecs())
    return {"store": store, "backend": backend, "data": data, "space": space, "folder": folder}


def _sram_of_every_architecture(profiled: dict[str, Any]) -> dict[tuple[int, ...], int]:
    import itertools

    from search.memory_budgets import arch_memory

    space, store = profiled["space"], profiled["store"]
    device = store.resolve_device("m4")
    result = {}
    for choice in itertools.product(*(range(len(slot.candidates)) for slot in space.layers)):
        arch = space.architecture(
            [s.candidates[i] for s, i in zip(space.layers, choice, strict=True)]
        )
        result[choice] = arch_memory(store, device, space.decode(arch)).sram_bytes
    return result


def test_a_search_under_an_sram_budget_fits_it_on_the_emulated_board(
    profiled: dict[str, Any], tmp_path: Path
) -> None:
    from deploy.tflm_arena import predict_arena
    from profilers.e2e import example_input
    from search.request import SearchRequest, SearchSettings
    from search.run import cost_models, run_search
    from search.spaces.base import parse_architecture

    sram = _sram_of_every_architecture(profiled)
    budget_kb = (min(sram.values()) + max(sram.values())) / 2 / 1024
    assert max(sram.values()) > budget_kb * 1024  # the budget rules some architectures out
    store, space = profiled["store"], profiled["space"]
    latency = cost_models(store, space, ("m4",))[0].max_latency_ms
    request = SearchRequest(
        space=space.spec_string,
        dataset="mnist5k",
        devices=("m4",),
        budgets_ms=(latency,),
        settings=SearchSettings("hardcore", epochs=2, batch_size=64),
        child_epochs=1,
        sram_kb=budget_kb,
    )
    metrics = run_search(request, store, tmp_path, data=profiled["data"])
    assert metrics["predicted_memory"]["sram_bytes"] <= budget_kb * 1024
    _, arch = parse_architecture(metrics["arch"])
    backend = profiled["backend"]
    measured = backend.measure_module(space.build(arch), example_input(space), cache_key="result")
    assert measured.extra["arena_bytes"] <= budget_kb * 1024
    exact = predict_arena(backend.cache_dir / "result.int8.tflite")
    assert exact.arena_bytes == measured.extra["arena_bytes"]
    assert metrics["predicted_memory"]["sram_bytes"] >= exact.arena_bytes
    check = metrics["sram_check"]  # the search's own check of the file's arena
    assert check["within"] and check["file_arena_bytes"] == measured.extra["arena_bytes"]


def test_predict_reports_the_composed_sram_and_flash(
    profiled: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.cli.main import main

    monkeypatch.setenv("HWNAS_DATABASE_URL", profiled["store"].url)
    space = profiled["space"]
    arch = space.architecture([slot.candidates[0] for slot in space.layers]).to_string()
    assert main(["predict", "--device", "m4", arch, "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["latency_ms"] > 0 and row["sram_bytes"] > 0 and row["flash_bytes"] > 0
