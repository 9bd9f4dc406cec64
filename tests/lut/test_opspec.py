"""OpSpec: canonical form, stable hashes across processes, validation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lut.opspec import OpSpec

SPEC = OpSpec(
    op="mbconv",
    in_channels=24,
    out_channels=32,
    height=56,
    width=56,
    kernel=5,
    stride=2,
    expansion=6,
    groups=1,
    se=True,
)


def test_hash_is_stable_across_processes() -> None:
    code = (
        "from lut.opspec import OpSpec;"
        "print(OpSpec(op='mbconv', in_channels=24, out_channels=32, height=56, width=56,"
        " kernel=5, stride=2, expansion=6, groups=1, se=True).key)"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout.strip()
        for seed in (1, 2, 3)
    }
    assert keys == {SPEC.key}


def test_hash_pinned() -> None:
    # The key is a database primary key: changing it orphans every stored LUT.
    assert (
        OpSpec(
            op="conv", in_channels=3, out_channels=16, height=224, width=224, kernel=3, stride=2
        ).key
        == "86f60df16ef977bd293a"
    )


def test_int_and_float_expansion_hash_equal() -> None:
    a = OpSpec(op="mbconv", in_channels=8, out_channels=8, expansion=3)
    b = OpSpec(op="mbconv", in_channels=8, out_channels=8, expansion=3.0)
    assert a.key == b.key and a == b


def test_round_trip_dict() -> None:
    assert OpSpec.from_dict(SPEC.to_dict()) == SPEC


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"op": "lstm"}, "unknown op type"),
        ({"activation": "gelu"}, "unknown activation"),
        ({"kernel": 0}, "kernel must be >= 1"),
        ({"groups": 5}, "groups=5 must divide"),
        ({"expansion": 0}, "expansion must be > 0"),
    ],
)
def test_invalid_specs_raise_value_error(kwargs: dict, message: str) -> None:
    base = {"op": "mbconv", "in_channels": 8, "out_channels": 8}
    with pytest.raises(ValueError, match=message):
        OpSpec(**{**base, **kwargs})


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown OpSpec field"):
        OpSpec.from_dict({**SPEC.to_dict(), "colour": "red"})


def test_shapes() -> None:
    assert SPEC.input_shape == (1, 24, 56, 56)
    assert SPEC.output_shape == (1, 32, 28, 28)
    assert not SPEC.has_residual
    assert OpSpec(op="skip", in_channels=8, out_channels=8).is_identity
    assert OpSpec(op="linear", in_channels=64, out_channels=10).output_shape == (1, 10)
