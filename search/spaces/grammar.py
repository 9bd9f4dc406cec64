"""The architecture-string grammar: the one textual form of a searched network.

    ARCH    := SPACE [ "@" PARAM ( "_" PARAM )* ] ":" CHOICE ( "-" CHOICE )*
    SPACE   := a registered search space name, e.g. "fbnet", "fbnet-tiny"
    PARAM   := "r" INT      input resolution (square, pixels)
             | "w" FLOAT    width multiplier (channels scaled, rounded to a multiple of 8)
             | "c" INT      input channels (3 for RGB, 1 for MNIST)
             | "n" INT      number of classes
    CHOICE  := "skip"       identity (a 1x1 conv where the layer changes shape)
             | "ir" ( "_" FIELD )*     inverted residual block (MBConv)
    FIELD   := "k" INT      depthwise kernel size
             | "e" NUM      expansion ratio of the 1x1 expand conv
             | "g" INT      groups of the 1x1 convs (with a channel shuffle)
             | "se"         squeeze-and-excite

Example: ``fbnet-tiny@r28_w1_c1_n10:ir_k3_e1-ir_k5_e6-skip-ir_k3_e3_g2-...`` has one CHOICE per
searchable layer of the space, in order. A SPACE with only "@PARAMS" and no ":" part names a
parametrised space (``--space fbnet@r160_w0.75``). Parameters left out take the space's defaults.
This grammar is used by the search spaces (LUT keys come from the decoded choices), by the search
strategies (results are written in it) and by deploy (child networks are built from it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM_RE = re.compile(r"^(?P<key>[rwcn])(?P<value>\d+(?:\.\d+)?)$")
_FIELD_RE = re.compile(r"^(?P<key>[keg])(?P<value>\d+(?:\.\d+)?)$")
_SPACE_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class SpaceParams:
    """Parameters of a space instance. None means 'the space's default'."""

    resolution: int | None = None
    width_mult: float | None = None
    in_channels: int | None = None
    num_classes: int | None = None

    def to_header(self) -> str:
        parts = []
        if self.resolution is not None:
            parts.append(f"r{self.resolution}")
        if self.width_mult is not None:
            parts.append(f"w{self.width_mult:g}")
        if self.in_channels is not None:
            parts.append(f"c{self.in_channels}")
        if self.num_classes is not None:
            parts.append(f"n{self.num_classes}")
        return "_".join(parts)


@dataclass(frozen=True)
class Choice:
    """One decoded CHOICE token."""

    block: str  # "ir" or "skip"
    kernel: int = 1
    expansion: float = 1.0
    groups: int = 1
    se: bool = False

    def to_token(self) -> str:
        if self.block == "skip":
            return "skip"
        token = f"ir_k{self.kernel}_e{self.expansion:g}"
        if self.groups > 1:
            token += f"_g{self.groups}"
        if self.se:
            token += "_se"
        return token


def parse_choice(token: str) -> Choice:
    """Decode one CHOICE token; raise ValueError naming what is wrong."""
    if token == "skip":
        return Choice(block="skip")
    fields = token.split("_")
    if fields[0] != "ir":
        raise ValueError(f"bad layer choice {token!r}: must be 'skip' or start with 'ir_'")
    values: dict[str, float] = {}
    se = False
    for field in fields[1:]:
        if field == "se":
            se = True
            continue
        match = _FIELD_RE.match(field)
        if not match:
            raise ValueError(f"bad field {field!r} in layer choice {token!r} (fields: kN eN gN se)")
        values[match["key"]] = float(match["value"])
    if "k" not in values or "e" not in values:
        raise ValueError(f"layer choice {token!r} needs a kernel (kN) and an expansion (eN)")
    kernel, groups = values["k"], values.get("g", 1.0)
    if kernel != int(kernel) or groups != int(groups) or kernel < 1 or groups < 1:
        raise ValueError(f"layer choice {token!r}: kernel and groups must be positive integers")
    if kernel % 2 == 0:
        raise ValueError(f"layer choice {token!r}: kernel must be odd")
    if values["e"] <= 0:
        raise ValueError(f"layer choice {token!r}: expansion must be > 0")
    return Choice("ir", int(kernel), values["e"], int(groups), se)


def parse_space_header(text: str) -> tuple[str, SpaceParams]:
    """Split ``SPACE[@PARAMS]`` into the space name and its parameters."""
    name, _, header = text.partition("@")
    if not _SPACE_RE.match(name):
        raise ValueError(f"bad space name {name!r}")
    if not header:
        return name, SpaceParams()
    found: dict[str, str] = {}
    for part in header.split("_"):
        match = _PARAM_RE.match(part)
        if not match:
            raise ValueError(f"bad space parameter {part!r} in {text!r} (use rN, wX, cN, nN)")
        if match["key"] in found:
            raise ValueError(f"space parameter {match['key']!r} given twice in {text!r}")
        found[match["key"]] = match["value"]
    try:
        params = SpaceParams(
            resolution=int(found["r"]) if "r" in found else None,
            width_mult=float(found["w"]) if "w" in found else None,
            in_channels=int(found["c"]) if "c" in found else None,
            num_classes=int(found["n"]) if "n" in found else None,
        )
    except ValueError:
        raise ValueError(f"bad space parameters in {text!r}: r, c and n take integers") from None
    return name, params


def split_arch_string(text: str) -> tuple[str, SpaceParams, tuple[str, ...]]:
    """Split an ARCH string into space name, parameters and CHOICE tokens (not yet validated
    against the space)."""
    text = text.strip()
    head, sep, body = text.partition(":")
    if not sep or not body:
        raise ValueError(
            f"bad architecture string {text[:60]!r}: expected SPACE[@PARAMS]:CHOICE-CHOICE-..."
        )
    name, params = parse_space_header(head)
    tokens = tuple(body.split("-"))
    for token in tokens:
        parse_choice(token)
    return name, params, tokens
