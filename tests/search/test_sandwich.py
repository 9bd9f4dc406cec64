"""The sandwich rule with in-place distillation: which paths a step trains, detached soft
targets, and the shared weight phase in sandwich mode (resume, refusal of the other mode)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from lut.store import LutStore
from search.cost import build_cost_model
from search.request import SearchSettings, build_requests
from search.run import bind_space
from search.sandwich import distillation_loss, extreme_paths, sandwich_step
from search.shared import SHARED_DIR, plan_shared_search, train_shared_weights
from search.spaces.base import space_from_string
from search.supernet import MixedOp, Supernet

SPACE = "fbnet-tiny"


def _model(store: LutStore) -> Any:
    return build_cost_model(store, store.resolve_device("synthetic"), space_from_string(SPACE))


def _supernet(data: Any) -> Supernet:
    torch.manual_seed(0)
    return Supernet(bind_space(SPACE, data))


def _candidate_weights(supernet: Supernet, path: list[int]) -> list[torch.Tensor]:
    """The parameters each layer's chosen candidate owns (nested kernels are the layer's)."""
    layers = [b for b in supernet.body if isinstance(b, MixedOp)]
    return [
        p.detach().clone()
        for layer, pick in zip(layers, path, strict=True)
        for p in layer.candidates[pick].parameters(recurse=True)
    ]


def test_extreme_paths_are_each_layers_dearest_and_cheapest(store: LutStore) -> None:
    model = _model(store)
    largest, smallest = extreme_paths(model)
    assert model.cost(largest) == pytest.approx(model.max_latency_ms)
    assert model.cost(smallest) == pytest.approx(model.min_latency_ms)
    assert largest != smallest


def test_distillation_loss_is_the_kl_divergence_plus_a_constant() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 10), torch.softmax(torch.randn(4, 10), dim=1)
    kl = torch.nn.functional.kl_div(
        torch.log_softmax(student, dim=1), teacher, reduction="batchmean"
    )
    entropy = -(teacher * teacher.log()).sum(1).mean()
    assert float(distillation_loss(student, teacher)) == pytest.approx(float(kl + entropy))


def _private_norms(supernet: Supernet, path: list[int], other: list[int]) -> list[torch.Tensor]:
    """The BatchNorm parameters of `path`'s candidates in the layers where `other` differs:
    weights only `path` uses (the layer's nested kernels are shared by both)."""
    layers = [b for b in supernet.body if isinstance(b, MixedOp)]
    return [
        p
        for layer, mine, theirs in zip(layers, path, other, strict=True)
        if mine != theirs
        for m in layer.candidates[mine].modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for p in m.parameters()
    ]


def test_a_sandwich_step_trains_the_largest_and_smallest_paths_on_detached_targets(
    store: LutStore, small_data: Any
) -> None:
    supernet = _supernet(small_data)
    largest, smallest = extreme_paths(_model(store))
    images, labels = small_data.train.tensors[0][:16], small_data.train.tensors[1][:16]
    teacher_alone = _supernet(small_data)
    torch.nn.functional.cross_entropy(teacher_alone(images, largest), labels).backward()
    before = [_candidate_weights(supernet, p) for p in (largest, smallest)]
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=0.1)
    optimizer.zero_grad()
    loss, logits = sandwich_step(supernet, images, labels, largest, [smallest])
    assert not loss.requires_grad and not logits.requires_grad
    # weights only the teacher uses get the labels' gradient alone: the student's loss reaches
    # them through no soft target (detached) ...
    mine = _private_norms(supernet, largest, smallest)
    alone = _private_norms(teacher_alone, largest, smallest)
    assert mine and all(p.grad is not None for p in mine)
    for p, q in zip(mine, alone, strict=True):
        assert torch.allclose(p.grad, q.grad)
    # ... while the shared head sums both paths' gradients
    assert any(
        not torch.allclose(p.grad, q.grad)
        for p, q in zip(supernet.head.parameters(), teacher_alone.head.parameters(), strict=True)
    )
    optimizer.step()
    after = [_candidate_weights(supernet, p) for p in (largest, smallest)]
    for old, new in zip(before, after, strict=True):  # both ends trained
        assert any(not torch.equal(a, b) for a, b in zip(old, new, strict=True))


def _document(budgets: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "space": SPACE,
        "dataset": "mnist5k",
        "devices": ["synthetic"],
        "budgets": budgets,
        "strategy": "hardcore",
        "epochs": 2,
        "batch_size": 64,
        "child_epochs": 0,
        "seed": 3,
        "weight_sampling": "sandwich",
        "checkpoint_every": 1,
        **extra,
    }


@pytest.fixture(scope="module")
def tiny_data(small_data: Any) -> Any:
    """small_data with 128 training images: two steps an epoch at batch 64."""
    images, labels = small_data.train.tensors
    return replace(small_data, train=TensorDataset(images[:128], labels[:128]))


def _budgets(store: LutStore) -> list[float]:
    model = _model(store)
    span = model.max_latency_ms - model.min_latency_ms
    return [round(model.min_latency_ms + s * span, 4) for s in (0.3, 0.7)]


class Interrupt(Exception):
    pass


def _weights(store: LutStore, data: Any, out: Path, doc: dict[str, Any], **kw: Any) -> dict:
    plan = plan_shared_search(build_requests(doc, out), store, data)
    return train_shared_weights(plan, out, data=data, **kw)


def test_an_interrupted_sandwich_weight_phase_resumes_to_the_same_weights(
    store: LutStore, tiny_data: Any, tmp_path: Path
) -> None:
    doc = _document(_budgets(store))
    whole = _weights(store, tiny_data, tmp_path / "whole", doc)
    assert whole["weight_sampling"] == "sandwich" and whole["steps"] == 4

    def stop(event: dict) -> None:  # the end of epoch 1's event comes before its checkpoint
        if event["type"] == "search" and event["step"] >= 2:
            raise Interrupt

    cut = tmp_path / "cut"
    with pytest.raises(Interrupt):
        _weights(store, tiny_data, cut, doc, on_event=stop)
    events: list[dict] = []
    resumed = _weights(store, tiny_data, cut, doc, on_event=events.append)
    assert {"type": "resumed", "phase": "weights", "step": 1} in events
    assert resumed["identity"] == whole["identity"]
    a = torch.load(tmp_path / "whole" / SHARED_DIR / "checkpoint.pt", weights_only=False)
    b = torch.load(cut / SHARED_DIR / "checkpoint.pt", weights_only=False)
    for key, value in a["supernet"].items():
        assert torch.equal(value, b["supernet"][key]), key


def test_a_folder_of_the_other_weight_sampling_is_refused(
    store: LutStore, tiny_data: Any, tmp_path: Path
) -> None:
    doc = _document(_budgets(store), epochs=1)
    single = {**doc, "weight_sampling": "single"}
    plan = plan_shared_search(build_requests(doc, tmp_path), store, tiny_data)
    other = plan_shared_search(build_requests(single, tmp_path), store, tiny_data)
    assert plan.weights_id != other.weights_id

    def stop(event: dict) -> None:
        if event["type"] == "search" and event["step"] >= 2:
            raise Interrupt

    with pytest.raises(Interrupt):  # leaves a checkpoint of the sandwich phase, unfinished
        _weights(store, tiny_data, tmp_path / "cut", doc, on_event=stop)
    with pytest.raises(ValueError, match="weight_sampling 'sandwich', not 'single'"):
        _weights(store, tiny_data, tmp_path / "cut", single)
    _weights(store, tiny_data, tmp_path / "done", single)  # a finished record
    record = json.loads((tmp_path / "done" / SHARED_DIR / "weights.json").read_text())
    assert record["weight_sampling"] == "single"
    with pytest.raises(ValueError, match="weight_sampling 'single', not 'sandwich'"):
        _weights(store, tiny_data, tmp_path / "done", doc)


def test_weight_sampling_is_one_of_the_modes() -> None:
    assert SearchSettings("hardcore").weight_sampling == "single"
    with pytest.raises(ValueError, match="weight_sampling must be one of single, sandwich"):
        SearchSettings("hardcore", weight_sampling="triple")


def test_a_job_and_the_cli_carry_weight_sampling_to_the_settings() -> None:
    from pydantic import ValidationError

    from service.cli.main import build_parser
    from service.cli.search import _request_from_args
    from service.schemas.jobs import JobCreate
    from service.worker.runner import search_requests

    job = JobCreate(
        space=SPACE,
        dataset="mnist5k",
        devices=["d"],
        budgets={"d": [1.0, 2.0]},
        weight_sampling="sandwich",
    )
    runs = search_requests(job.model_dump(), "mnist5k", Path("run"))
    assert {r.settings.weight_sampling for _, _, r in runs} == {"sandwich"}
    with pytest.raises(ValidationError, match="weight_sampling"):
        JobCreate(space=SPACE, dataset="mnist5k", devices=["d"], weight_sampling="triple")
    argv = ["search", "--space", SPACE, "--dataset", "mnist5k", "--device", "d"]
    args = build_parser().parse_args([*argv, "--weight-sampling", "sandwich"])
    assert _request_from_args(args)["weight_sampling"] == "sandwich"
    assert build_parser().parse_args(argv).weight_sampling == "single"
