"""Weight entanglement: a layer's MBConv candidates as nested slices of one set of kernels.

With a separate set of weights per candidate, single-path training feeds each layer a random one
of its predecessor's unrelated feature sets, and the shared weights do not learn within a search's
few hundred steps (docs/strategies.md, "Does the supernet learn?"). Once-for-All and Single-Path
NAS nest the candidates instead: a layer keeps one expand, one depthwise and one project kernel of
the widest expansion and the largest kernel size, and a candidate uses the first `mid` channels
and the centred `k`×`k` window. A candidate without an expand conv (expansion 1, one group) runs
the depthwise and project slices on its input directly. BatchNorm stays private to each candidate
(Slimmable Networks' switchable BatchNorm): the statistics of different widths differ, and an
affine pair per candidate costs a few numbers.

Candidates nest when they agree on groups and, for grouped convs, on `mid` (a grouped conv's
first channels are not a narrower grouped conv). Squeeze-excite weights and `skip` stay private.
A space whose candidates all nest (proxyless, mbv3: `skip` only where it is the identity) trains
as one network; one whose layers mix families (fbnet's grouped blocks and conv skips) gains
little, because a path nearly always crosses into an unrelated family somewhere.
A nested candidate's weights are materialised by `sliced_state_dict`, keyed as `build_op` keys
them, so a derived child is still exactly `space.build(arch)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from lut.modules import InvertedResidual
from lut.opspec import OpSpec


class SharedKernel(nn.Module):
    """One conv kernel that several candidates slice: [out, in/groups, k, k]."""

    def __init__(self, shape: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's own initialisation


class SlicedConv2d(nn.Module):
    """A bias-free conv whose kernel is the first `out` × `in/groups` channels and the centred
    `kernel` × `kernel` window of a `SharedKernel`. The source is held outside the module tree so
    that its parameter is registered once, by the layer that owns it."""

    def __init__(self, source: SharedKernel, conv: nn.Conv2d) -> None:
        super().__init__()
        self._source = (source,)
        self.out_channels, self.in_per_group = conv.out_channels, conv.in_channels // conv.groups
        self.kernel = conv.kernel_size[0]
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.groups

    def sliced_weight(self) -> torch.Tensor:
        full = self._source[0].weight
        start = (full.shape[-1] - self.kernel) // 2
        window = slice(start, start + self.kernel)
        return full[: self.out_channels, : self.in_per_group, window, window]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.sliced_weight(), None, self.stride, self.padding, 1, self.groups)


def _family(spec: OpSpec) -> tuple[int, int] | None:
    """Candidates with the same key nest; None: the candidate keeps its own weights."""
    if spec.op != "mbconv":
        return None
    return (spec.groups, spec.mid_channels if spec.groups > 1 else 0)


def _conv_stages(block: InvertedResidual) -> tuple[nn.Sequential | None, ...]:
    """(expand or None, depthwise, project) conv-BN-act stages of an MBConv block, in
    `build_op`'s layout."""
    stages = [m for m in block.body if isinstance(m, nn.Sequential)]
    return (stages[0] if len(stages) == 3 else None, stages[-2], stages[-1])


def _conv(stage: nn.Sequential) -> nn.Conv2d:
    conv = stage[0]
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"{type(conv).__name__} is not a conv: nested twice?")
    return conv


def _shared_kernel(convs: Sequence[nn.Conv2d]) -> SharedKernel:
    kernel = max(c.kernel_size[0] for c in convs)
    return SharedKernel(
        (
            max(c.out_channels for c in convs),
            max(c.in_channels // c.groups for c in convs),
            kernel,
            kernel,
        )
    )


def nest(specs: Sequence[OpSpec], candidates: Iterable[nn.Module]) -> nn.ModuleList:
    """Tie the convs of a layer's nestable candidates to shared kernels (in place); returns the
    shared kernels, which the layer must register."""
    families: dict[tuple[int, int], list[InvertedResidual]] = {}
    for spec, module in zip(specs, candidates, strict=True):
        key = _family(spec)
        if key is not None and isinstance(module, InvertedResidual):
            families.setdefault(key, []).append(module)
    shared = nn.ModuleList()
    for members in families.values():
        for part in range(3):
            stages = [s for s in (_conv_stages(m)[part] for m in members) if s is not None]
            if len(stages) < 2:
                continue
            source = _shared_kernel([_conv(s) for s in stages])
            shared.append(source)
            for stage in stages:
                stage[0] = SlicedConv2d(source, _conv(stage))
    return shared


def sliced_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """`module`'s state with each sliced conv's kernel materialised as `<prefix>.weight`."""
    state = {key: value.clone() for key, value in module.state_dict().items()}
    for name, child in module.named_modules():
        if isinstance(child, SlicedConv2d):
            state[f"{name}.weight"] = child.sliced_weight().detach().clone()
    return state
