"""Model files the backends time: input checks, the cache of converted files (written atomically,
since concurrent profilers may share a cache) and the ONNX export they share."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from common.files import write_atomically
from common.quiet import silenced
from lut.opspec import OpSpec

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

_CACHE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def op_model(spec: OpSpec) -> tuple[nn.Module, torch.Tensor]:
    """The micro-model of `spec` (eval mode) and its NCHW example input.

    Identity specs (a stride-1 `skip` keeping its channels) do no work: a LUT stores 0 for them
    and the runner never sends them, so asking to measure one is a caller's error (ValueError).
    """
    if spec.is_identity:
        raise ValueError(f"{spec.short()} is an identity: there is nothing to measure")
    from lut.modules import build_op, example_input

    module = build_op(spec)
    replace_all_zero_parameters(module)
    return module, example_input(spec)


def probe_model(name: str) -> tuple[nn.Module, torch.Tensor]:
    """A fixed-cost probe model by its name in `profilers.fixed_costs.probe_names()`: an op's
    micro-model, or the chain of depthwise convs (CHAIN_NAME)."""
    import torch.nn as nn

    from lut.modules import build_op, example_input
    from profilers.fixed_costs import CHAIN_LENGTH, CHAIN_NAME, chain_probe, overhead_probes

    if name == CHAIN_NAME:
        probe = chain_probe()
        chain = nn.Sequential(*(build_op(probe) for _ in range(CHAIN_LENGTH))).eval()
        return chain, example_input(probe)
    specs = {s.key: s for s in [*overhead_probes(), chain_probe()]}
    if name not in specs:
        raise ValueError(f"no fixed-cost probe named {name!r}")
    return op_model(specs[name])


def replace_all_zero_parameters(module: nn.Module) -> None:
    """Converters fold arithmetic with all-zero constants away (litert-torch turns the `add`
    probe's `x + 0` into a model with no op at all, the dynamo ONNX exporter drops the zero bias
    that folding a freshly initialised batch norm leaves), which would time an empty model or a
    graph no trained network has. Such parameters get small, fixed non-zero values."""
    import torch

    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in module.parameters():
            if not parameter.any():
                parameter.copy_(0.01 * torch.randn(parameter.shape, generator=generator))


def check_cache_key(key: str) -> str:
    """Cache keys become file names: letters, digits, '.', '_', '-', not starting with '.'."""
    if not _CACHE_KEY.fullmatch(key):
        raise ValueError(
            f"invalid cache_key {key!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return key


def check_eval_mode(module: nn.Module) -> None:
    """Timing a module in training mode would time (and export) batch-norm statistics updates."""
    if module.training:
        raise ValueError("measure_module needs a module in eval mode: call module.eval() first")


def ensure_cached(path: Path, write: Callable[[Path], object]) -> bool:
    """Make sure `path` exists, producing it with `write(temporary_path)` and an atomic rename.

    Returns True if the file was written by this call, False if an existing one was reused.
    """
    if path.is_file():
        return False
    write_atomically(path, write)
    return True


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Export a model the backends time (a micro-model, or a network `measure` times) with one
    input named "input" and one output named "output" (default opset, weights inside the file),
    silencing the exporter's chatter.

    It goes through torch's TorchScript exporter, which is many times faster than the dynamo
    exporter; exporting was most of the time to build an ONNX Runtime LUT. Networks are deployed
    with the dynamo exporter (deploy/exporters.py), so a LUT entry must time the graph the dynamo
    exporter gives: `benchmarks/exporter_parity.py` compares ORT's optimised graphs of both for
    every OpSpec of every space (docs/measuring.md has its findings), and a test checks one
    OpSpec of each kind. A torch without the TorchScript exporter falls back to dynamo.
    """
    try:
        export_onnx_torchscript(module, example, path)
    except (ImportError, NotImplementedError, RuntimeError):
        export_onnx_dynamo(module, example, path)


def export_onnx_torchscript(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """`export_onnx` with the TorchScript exporter only (deprecated by torch, kept by 2.13)."""
    _export(module, example, path, dynamo=False)


def export_onnx_dynamo(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """`export_onnx` with the dynamo exporter, the one deploy uses for whole networks."""
    _export(module, example, path, dynamo=True)


def _export(module: nn.Module, example: torch.Tensor, path: Path, *, dynamo: bool) -> None:
    import torch

    with silenced(), torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=dynamo,
            external_data=False,
            input_names=["input"],
            output_names=["output"],
            verbose=False,
        )
