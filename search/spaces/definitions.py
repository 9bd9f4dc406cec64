"""The built-in search spaces: FBNet, ProxylessNAS, a MobileNetV3-like space, and tiny variants."""

from __future__ import annotations

from search.spaces.base import SpaceDef, StageDef, register_space
from search.spaces.grammar import SpaceParams

# FBNet (Wu et al., 2019), table 1: k3/k5 x e1/e3/e6, grouped (g2) e1 variants, and skip.
FBNET_CANDIDATES = (
    "ir_k3_e1",
    "ir_k3_e1_g2",
    "ir_k3_e3",
    "ir_k3_e6",
    "ir_k5_e1",
    "ir_k5_e1_g2",
    "ir_k5_e3",
    "ir_k5_e6",
    "skip",
)
# ProxylessNAS (Cai et al., 2019): MBConv k3/5/7 x e3/6, and skip except where a stage begins.
PROXYLESS_BLOCKS = tuple(f"ir_k{k}_e{e}" for k in (3, 5, 7) for e in (3, 6))
PROXYLESS_CANDIDATES = (*PROXYLESS_BLOCKS, "skip")
# MobileNetV3-like: k3/k5 x e3/e6, squeeze-excite on or off, and skip except where a stage begins.
MBV3_BLOCKS = tuple(f"ir_k{k}_e{e}{se}" for k in (3, 5) for e in (3, 6) for se in ("", "_se"))
MBV3_CANDIDATES = (*MBV3_BLOCKS, "skip")

IMAGENET = SpaceParams(resolution=224, width_mult=1.0, in_channels=3, num_classes=1000)
MNIST = SpaceParams(resolution=28, width_mult=1.0, in_channels=1, num_classes=10)


@register_space("fbnet")
def fbnet() -> SpaceDef:
    stages = [(16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1)]
    return SpaceDef(
        name="fbnet",
        description="FBNet: 22 searchable layers x 9 candidates, 224x224",
        stem_channels=16,
        stem_stride=2,
        stages=tuple(StageDef(c, n, s, FBNET_CANDIDATES) for c, n, s in stages),
        head_channels=1984,
        defaults=IMAGENET,
    )


@register_space("fbnet-tiny")
def fbnet_tiny() -> SpaceDef:
    stages = [(16, 1, 1), (24, 2, 2), (32, 2, 2), (64, 2, 2), (96, 1, 1)]
    return SpaceDef(
        name="fbnet-tiny",
        description="FBNet candidates, 8 searchable layers, 28x28x1 input (MNIST-sized)",
        stem_channels=16,
        stem_stride=1,
        stages=tuple(StageDef(c, n, s, FBNET_CANDIDATES) for c, n, s in stages),
        head_channels=256,
        defaults=MNIST,
    )


def _proxyless_stages(stages: list[tuple[int, int, int]]) -> tuple[StageDef, ...]:
    fixed_first = StageDef(16, 1, 1, ("ir_k3_e1",), searchable=False)
    searched = [
        StageDef(c, n, s, PROXYLESS_CANDIDATES, first_candidates=PROXYLESS_BLOCKS)
        for c, n, s in stages
    ]
    return (fixed_first, *searched)


@register_space("proxyless")
def proxyless() -> SpaceDef:
    stages = [(24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1)]
    return SpaceDef(
        name="proxyless",
        description="ProxylessNAS mobile: 21 searchable MBConv k3/5/7 x e3/6 + skip, 224x224",
        stem_channels=32,
        stem_stride=2,
        stages=_proxyless_stages(stages),
        head_channels=1280,
        defaults=IMAGENET,
    )


@register_space("proxyless-tiny")
def proxyless_tiny() -> SpaceDef:
    stages = [(24, 2, 2), (40, 2, 2), (80, 2, 2), (96, 1, 1)]
    return SpaceDef(
        name="proxyless-tiny",
        description="ProxylessNAS candidates, 7 searchable layers, 28x28x1 input",
        stem_channels=16,
        stem_stride=1,
        stages=_proxyless_stages(stages),
        head_channels=256,
        defaults=MNIST,
    )


def _mbv3_stages(stages: list[tuple[int, int, int, str]]) -> tuple[StageDef, ...]:
    return tuple(
        StageDef(c, n, s, MBV3_CANDIDATES, activation=act, first_candidates=MBV3_BLOCKS)
        for c, n, s, act in stages
    )


@register_space("mbv3")
def mbv3() -> SpaceDef:
    stages = [
        (24, 2, 2, "relu"),
        (40, 3, 2, "relu"),
        (80, 4, 2, "hswish"),
        (112, 2, 1, "hswish"),
        (160, 3, 2, "hswish"),
    ]
    return SpaceDef(
        name="mbv3",
        description="MobileNetV3-like: k3/k5 x e3/e6 x optional SE + skip, h-swish late, 224x224",
        stem_channels=16,
        stem_stride=2,
        stages=_mbv3_stages(stages),
        head_channels=960,
        defaults=IMAGENET,
        stem_activation="hswish",
        head_activation="hswish",
    )


@register_space("mbv3-tiny")
def mbv3_tiny() -> SpaceDef:
    stages = [(24, 2, 2, "relu"), (40, 2, 2, "hswish"), (80, 2, 2, "hswish"), (96, 1, 1, "hswish")]
    return SpaceDef(
        name="mbv3-tiny",
        description="MobileNetV3-like candidates, 7 searchable layers, 28x28x1 input",
        stem_channels=16,
        stem_stride=1,
        stages=_mbv3_stages(stages),
        head_channels=256,
        defaults=MNIST,
        stem_activation="hswish",
        head_activation="hswish",
    )


# MCUNet-like (Lin et al., 2020): MBConv k3/5/7 x e3/4/6 + skip, for microcontrollers, where
# resolution and width (`mcunet@r64_w0.35`, `mcunet@r96_w0.5`) set the SRAM a network needs.
MCUNET_BLOCKS = tuple(f"ir_k{k}_e{e}" for k in (3, 5, 7) for e in (3, 4, 6))
MCUNET_CANDIDATES = (*MCUNET_BLOCKS, "skip")


@register_space("mcunet")
def mcunet() -> SpaceDef:
    stages = [(24, 2, 2), (40, 3, 2), (80, 3, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)]
    fixed_first = StageDef(16, 1, 1, ("ir_k3_e1",), searchable=False)
    searched = [
        StageDef(c, n, s, MCUNET_CANDIDATES, first_candidates=MCUNET_BLOCKS) for c, n, s in stages
    ]
    return SpaceDef(
        name="mcunet",
        description="MCUNet-like: 15 searchable MBConv k3/5/7 x e3/4/6 + skip, 96x96, width 0.5",
        stem_channels=32,
        stem_stride=2,
        stages=(fixed_first, *searched),
        head_channels=320,
        defaults=SpaceParams(resolution=96, width_mult=0.5, in_channels=3, num_classes=10),
    )
