"""The stand-alone child network of a search run: plain PyTorch modules built from arch.json (the
space's blocks, no supernet code) with the trained weights of child.pt checked against it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.spaces.base import Architecture, SearchSpace, parse_architecture

if TYPE_CHECKING:
    import torch.nn as nn


class DeployError(ValueError):
    """A run directory that cannot be deployed (no weights, weights that do not fit): one line."""


@dataclass(frozen=True)
class Child:
    space: SearchSpace
    arch: Architecture
    module: nn.Module  # eval mode

    @property
    def arch_string(self) -> str:
        return self.arch.to_string()

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def example(self, batch: int = 1) -> Any:
        import torch

        return torch.zeros((batch, *self.space.input_shape[1:]))


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeployError(f"{path.parent} has no {path.name} ({what})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DeployError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DeployError(f"{path} must hold a JSON object")
    return data


def read_architecture(run_dir: Path) -> tuple[SearchSpace, Architecture]:
    data = read_json(run_dir / "arch.json", "the searched architecture")
    text = data.get("arch")
    if not isinstance(text, str):
        raise DeployError(f"{run_dir / 'arch.json'} has no string field 'arch'")
    try:
        return parse_architecture(text)
    except ValueError as exc:
        raise DeployError(f"{run_dir / 'arch.json'}: {exc}") from None


def load_run_child(run_dir: Path) -> Child:
    """The trained child of `run_dir`; DeployError when child.pt is missing or does not fit."""
    space, arch = read_architecture(run_dir)
    weights = run_dir / "child.pt"
    if not weights.is_file():
        raise DeployError(f"{run_dir} has no trained weights (child.pt): nothing to deploy")
    module = space.build(arch)
    load_weights(module, weights, arch.to_string())
    return Child(space, arch, module.eval())


def random_child(arch_text: str, seed: int = 0) -> Child:
    """A child with random (seeded) weights: for latency work without a search run."""
    import torch

    try:
        space, arch = parse_architecture(arch_text)
    except ValueError as exc:
        raise DeployError(str(exc)) from None
    torch.manual_seed(seed)
    return Child(space, arch, space.build(arch).eval())


def load_weights(module: nn.Module, path: Path, arch_text: str) -> None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file fails in many ways
        raise DeployError(f"{path} is not a PyTorch state dict: {_first_line(exc)}") from None
    if not isinstance(state, dict):
        raise DeployError(f"{path} is not a PyTorch state dict")
    problem = weight_mismatch(module, state)
    if problem:
        raise DeployError(f"{path} does not fit {arch_text}: {problem}")
    module.load_state_dict(state)


def weight_mismatch(module: nn.Module, state: dict[str, Any]) -> str | None:
    """The first way `state` does not fit `module` (missing, unexpected or mis-shaped), or None."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        return f"{len(missing)} tensors missing (first: {missing[0]})"
    if unexpected:
        return f"{len(unexpected)} unexpected tensors (first: {unexpected[0]})"
    for name, tensor in expected.items():
        shape = tuple(getattr(state[name], "shape", ()))
        if shape != tuple(tensor.shape):
            return f"{name} has shape {list(shape)}, the architecture needs {list(tensor.shape)}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
