"""The supernet's contract: a derived child is exactly the supernet's path, with nested
(entangled) weights and with separate ones."""

from __future__ import annotations

import pytest
import torch

from search.nesting import SlicedConv2d
from search.spaces.base import space_from_string
from search.supernet import Supernet

TINY_SPACES = ["fbnet-tiny", "proxyless-tiny", "mbv3-tiny"]


def _trained_a_little(space_text: str, nested: bool) -> tuple[Supernet, torch.Tensor]:
    """A supernet after a few single-path steps, so BatchNorm statistics and weights are not
    their initial values."""
    torch.manual_seed(0)
    space = space_from_string(space_text)
    supernet = Supernet(space, nested=nested)
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=0.1)
    images = torch.randn(16, *space.input_shape[1:])
    for step in range(4):
        path = [step % len(slot.candidates) for slot in space.layers]
        loss = supernet(images, path).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return supernet.eval(), images


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("space_text", TINY_SPACES)
def test_a_derived_child_computes_the_supernets_path(space_text: str, nested: bool) -> None:
    supernet, images = _trained_a_little(space_text, nested)
    space = supernet.space
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        choices = [
            int(torch.randint(len(s.candidates), (1,), generator=generator)) for s in space.layers
        ]
        child = space.build(
            space.architecture(
                [s.candidates[c] for s, c in zip(space.layers, choices, strict=True)]
            )
        )
        child.load_state_dict(supernet.child_state_dict(choices))
        with torch.no_grad():
            expected = supernet(images, choices)
            assert torch.allclose(child.eval()(images), expected, atol=1e-5)


def _sliced(module: torch.nn.Module) -> list[SlicedConv2d]:
    return [m for m in module.modules() if isinstance(m, SlicedConv2d)]


def test_nested_candidates_share_their_kernels() -> None:
    space = space_from_string("fbnet-tiny")
    nested, separate = Supernet(space, nested=True), Supernet(space, nested=False)
    assert (
        sum(p.numel() for p in nested.weight_parameters())
        < sum(p.numel() for p in separate.weight_parameters()) / 2
    )
    names = list(space.layers[1].candidates)
    layer = nested.body[1]  # the second stage's first block: 16 -> 24 channels, stride 2
    k3 = layer.candidates[names.index("ir_k3_e6")]
    k5 = layer.candidates[names.index("ir_k5_e3")]
    dw3, dw5 = _sliced(k3)[1].sliced_weight(), _sliced(k5)[1].sliced_weight()
    assert dw3.shape[-1] == 3 and dw5.shape[-1] == 5
    assert torch.equal(dw3[: dw5.shape[0]], dw5[:, :, 1:4, 1:4])


def test_a_step_on_one_candidate_moves_its_nested_siblings_only() -> None:
    space = space_from_string("fbnet-tiny")
    supernet = Supernet(space, nested=True)
    names = list(space.layers[1].candidates)
    layer = supernet.body[1]
    sibling = layer.candidates[names.index("ir_k3_e3")]
    grouped = layer.candidates[names.index("ir_k3_e1_g2")]
    sibling_kernels = [m.sliced_weight().detach().clone() for m in _sliced(sibling)]
    grouped_kernels = [m.sliced_weight().detach().clone() for m in _sliced(grouped)]
    sibling_norms = {k: v.clone() for k, v in sibling.state_dict().items()}
    path = [0] * len(space.layers)
    path[1] = names.index("ir_k5_e6")
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=1.0)
    supernet(torch.randn(4, *space.input_shape[1:]), path).square().mean().backward()
    optimizer.step()
    assert all(
        not torch.equal(b, m.sliced_weight())
        for b, m in zip(sibling_kernels, _sliced(sibling), strict=True)
    )
    assert all(
        torch.equal(b, m.sliced_weight())
        for b, m in zip(grouped_kernels, _sliced(grouped), strict=True)
    )
    # BatchNorm stays private: the sibling's own statistics and affine pairs did not move
    for key, value in sibling.state_dict().items():
        assert torch.equal(value, sibling_norms[key]), key
