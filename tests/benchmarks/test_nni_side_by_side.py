"""nni_side_by_side's hwnas half, without NNI (CI never installs it): the exported space is the
hwnas network candidate for candidate, its LUT costs add up to the cost model's prediction, the
data splits survive the .npz, and NNI's exported choices map back to the hwnas architecture."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from nni_side import exchange  # the benchmarks are scripts, not a package

from lut.modules import build_network
from lut.opspec import OpSpec
from search.cost import LatencyCostModel
from search.spaces.base import SearchSpace, space_from_string


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return space_from_string("proxyless-tiny")


def _model(space: SearchSpace) -> LatencyCostModel:
    """A cost model with distinct made-up costs (no LUT needed for the export's bookkeeping)."""
    costs = tuple(
        tuple(0.001 * (10 * layer + k + 1) for k in range(len(slot.candidates)))
        for layer, slot in enumerate(space.layers)
    )
    return LatencyCostModel("dev", space.spec_string, costs, constant_ms=0.03, calibrated=False)


def _chosen_specs(doc: dict, choices: dict[str, str]) -> list[OpSpec]:
    """The network the NNI side builds once each LayerChoice is fixed to `choices`."""
    specs = []
    for item in doc["order"]:
        if item["kind"] == "fixed":
            specs.append(OpSpec.from_dict(item["spec"]))
        else:
            index = item["candidates"].index(choices[item["label"]])
            specs.append(OpSpec.from_dict(item["specs"][index]))
    return specs


def test_exported_space_is_the_hwnas_network_for_every_choice(space: SearchSpace) -> None:
    model = _model(space)
    doc = json.loads(json.dumps(exchange.space_document(space, model)))  # as the venv reads it
    slots = [item for item in doc["order"] if item["kind"] == "slot"]
    assert [s["label"] for s in slots] == [slot.label for slot in space.layers]
    assert [s["candidates"] for s in slots] == [list(slot.candidates) for slot in space.layers]
    for arch in space.iter_random(seed=3, count=5):
        choices = dict(zip([s.label for s in space.layers], arch.choices, strict=True))
        assert _chosen_specs(doc, choices) == space.decode(arch)
        expected = doc["constant_ms"] + sum(
            s["costs_ms"][s["candidates"].index(choices[s["label"]])] for s in slots
        )
        assert expected == pytest.approx(model.cost(_indices(space, arch.choices)))


def test_exported_network_has_the_childs_parameters(space: SearchSpace) -> None:
    doc = exchange.space_document(space, _model(space))
    arch = space.sample(random.Random(7))
    choices = dict(zip([s.label for s in space.layers], arch.choices, strict=True))
    nni_side = build_network(_chosen_specs(doc, choices))
    child = space.build(arch)
    shapes = [tuple(p.shape) for p in child.state_dict().values()]
    assert [tuple(p.shape) for p in nni_side.state_dict().values()] == shapes


def test_cost_model_of_another_space_is_refused(space: SearchSpace) -> None:
    other = space_from_string("proxyless-tiny@r32")
    with pytest.raises(ValueError, match="cost model"):
        exchange.space_document(other, _model(space))


def test_splits_survive_the_npz(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    data = SimpleNamespace(
        **{
            split: TensorDataset(
                torch.randn(n, 1, 28, 28, generator=generator), torch.arange(n) % 10
            )
            for split, n in (("train", 12), ("val", 5), ("test", 7))
        }
    )
    arrays = np.load(exchange.write_splits(data, tmp_path / "splits.npz"))  # type: ignore[arg-type]
    for split in exchange.SPLITS:
        images, labels = getattr(data, split).tensors
        assert np.array_equal(arrays[f"{split}_x"], images.numpy())
        assert arrays[f"{split}_y"].dtype == np.int64
        assert np.array_equal(arrays[f"{split}_y"], labels.numpy())


def test_choices_map_back_to_the_architecture(space: SearchSpace) -> None:
    arch = space.sample(random.Random(1))
    choices = dict(zip([s.label for s in space.layers], arch.choices, strict=True))
    assert exchange.arch_of(space, dict(reversed(list(choices.items())))) == arch.to_string()
    with pytest.raises(ValueError, match="missing"):
        exchange.arch_of(space, {k: v for k, v in choices.items() if k != "s2_b1"})
    with pytest.raises(ValueError, match="not a candidate"):
        exchange.arch_of(space, {**choices, "s2_b1": "ir_k9_e9"})


def _indices(space: SearchSpace, tokens: tuple[str, ...]) -> list[int]:
    return [slot.candidates.index(t) for slot, t in zip(space.layers, tokens, strict=True)]
