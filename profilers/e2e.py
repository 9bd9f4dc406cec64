"""End-to-end measuring of whole networks: one network timed with the backend's protocol,
shuffled rounds over many (a slow spell of a shared machine then falls on different networks
each round), and resumable measuring into a device's table of end-to-end runs.

A network is given as a search space and an architecture of it — anything with
`space.build(arch)` and `space.input_shape`, and `arch.to_string()` — so this module needs no
search code."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from lut.measurement import Measurement
from lut.store import Device, LutStore, arch_key

Network = tuple[Any, Any]  # (space, architecture)
OnMeasured = Callable[[int, Measurement], None]  # index into the networks, its measurement


def example_input(space: Any) -> Any:
    """The fixed input every network of `space` is timed on (seeded: same bytes every time)."""
    import torch

    return torch.randn(space.input_shape, generator=torch.Generator().manual_seed(0))


def measure_network(backend: Any, space: Any, arch: Any) -> Measurement:
    """The whole network built and timed once with the backend's protocol; its converted file
    is cached under the architecture's key."""
    key = f"net-{arch_key(arch.to_string())}"
    return backend.measure_module(space.build(arch), example_input(space), cache_key=key)  # type: ignore[no-any-return]


def round_order(count: int, round_index: int) -> list[int]:
    """The order of round `round_index`: the input order first, then a shuffle per round."""
    order = list(range(count))
    if round_index:
        random.Random(round_index).shuffle(order)
    return order


def measure_in_rounds(
    backend: Any,
    networks: Sequence[Network],
    rounds: int,
    on_measured: OnMeasured | None = None,
) -> list[list[Measurement]]:
    """Every network timed `rounds` times, round by round over all of them (`round_order`);
    per network, its measurement of each round."""
    runs: list[list[Measurement]] = [[] for _ in networks]
    for round_index in range(rounds):
        for i in round_order(len(networks), round_index):
            runs[i].append(measure_network(backend, *networks[i]))
            if on_measured:
                on_measured(i, runs[i][-1])
    return runs


def measure_into_store(
    store: LutStore,
    device: Device,
    backend: Any,
    space: Any,
    archs: Sequence[Any],
    *,
    resume: bool = True,
    on_measured: OnMeasured | None = None,
) -> dict[str, float]:
    """Each architecture timed and stored as an end-to-end run of `device` (for calibration and
    accuracy checks); with `resume`, those the store already holds are not timed again.
    Returns each architecture's median (ms) by its string."""
    done: dict[str, float] = {}
    if resume:
        done = {a: m.median_ms for a, m in store.e2e_measurements(device, space.spec_string)}
    for i, arch in enumerate(archs):
        text = arch.to_string()
        if text in done:
            continue
        measured = measure_network(backend, space, arch)
        store.add_e2e(device, text, space.spec_string, measured)
        done[text] = measured.median_ms
        if on_measured:
            on_measured(i, measured)
    return {a.to_string(): done[a.to_string()] for a in archs}
