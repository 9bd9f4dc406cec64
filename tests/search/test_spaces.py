"""Search spaces and the architecture grammar: every registered space builds and chains."""

from __future__ import annotations

import json
import random

import pytest
import torch

from lut.modules import build_op, check_chain, example_input
from search.spaces.base import parse_architecture, space_from_string, space_names
from search.spaces.grammar import Choice, parse_choice, split_arch_string

SPACES = space_names()


def test_registry_has_the_issue_spaces() -> None:
    assert {"fbnet", "fbnet-tiny", "proxyless", "proxyless-tiny", "mbv3", "mbv3-tiny"} <= set(
        SPACES
    )


def test_fbnet_is_22_layers_of_9_candidates() -> None:
    space = space_from_string("fbnet")
    assert len(space.layers) == 22
    assert all(len(slot.candidates) == 9 for slot in space.layers)
    assert space.resolution == 224


@pytest.mark.parametrize("name", SPACES)
def test_random_architecture_round_trips_and_builds(name: str) -> None:
    space = space_from_string(name)
    for arch in space.iter_random(seed=3, count=3):
        text = arch.to_string()
        parsed_space, parsed = parse_architecture(text)
        assert parsed == arch and parsed.to_string() == text
        assert parsed_space.params == space.params
    net = space.build(arch)
    out = net(torch.randn(space.input_shape))
    assert out.shape == (1, space.num_classes)


@pytest.mark.parametrize("name", SPACES)
def test_distinct_opspecs_chain_and_cover_every_architecture(name: str) -> None:
    space = space_from_string(name)
    keys = {spec.key for spec in space.distinct_opspecs()}
    for arch in space.iter_random(seed=5, count=20):
        specs = space.decode(arch)
        check_chain(specs)
        assert {s.key for s in specs} <= keys


@pytest.mark.parametrize("name", SPACES)
def test_each_distinct_op_builds_with_its_declared_shapes(name: str) -> None:
    space = space_from_string(name)
    for spec in space.distinct_opspecs()[:: max(1, len(space.distinct_opspecs()) // 12)]:
        out = build_op(spec)(example_input(spec))
        assert tuple(out.shape) == spec.output_shape


def test_parameters_change_resolution_and_width() -> None:
    base = space_from_string("fbnet-tiny")
    scaled = space_from_string("fbnet-tiny@r32_w0.5_c3")
    assert scaled.resolution == 32 and scaled.in_channels == 3
    assert scaled.layers[-1].out_channels < base.layers[-1].out_channels
    arch = scaled.sample(random.Random(0))
    assert arch.to_string().startswith("fbnet-tiny@r32_w0.5_c3_n10:")
    assert scaled.build(arch)(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_choice_tokens_round_trip() -> None:
    for token in ("skip", "ir_k3_e6", "ir_k5_e1_g2", "ir_k3_e3_se", "ir_k7_e4.5"):
        assert parse_choice(token).to_token() == token
    assert parse_choice("ir_k5_e1_g2") == Choice("ir", 5, 1.0, 2, False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fbnet-tiny", "expected SPACE"),
        ("nospace:skip", "unknown search space"),
        ("fbnet-tiny:ir_k3", "needs a kernel"),
        ("fbnet-tiny:conv_k3_e1", "must be 'skip' or start with 'ir_'"),
        ("fbnet-tiny@q5:skip", "bad space parameter"),
        ("fbnet-tiny:skip-skip", "has 8 searchable layers"),
        ("fbnet-tiny:ir_k7_e6-skip-skip-skip-skip-skip-skip-skip", "not a candidate"),
        ("fbnet-tiny@r4:skip", "resolution must be in"),
    ],
)
def test_bad_architectures_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_architecture(text)


def test_arch_json_file(tmp_path) -> None:
    space = space_from_string("proxyless-tiny")
    arch = space.sample(random.Random(1))
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch.to_json()))
    assert parse_architecture(str(path))[1] == arch
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_architecture(str(tmp_path / "bad.json"))


def test_split_keeps_tokens_in_order() -> None:
    name, params, tokens = split_arch_string("fbnet@r160_w0.75:skip-ir_k3_e6")
    assert (name, params.resolution, params.width_mult, tokens) == (
        "fbnet",
        160,
        0.75,
        ("skip", "ir_k3_e6"),
    )
