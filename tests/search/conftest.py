"""Fixtures of the search tests: a synthetic LUT standing in for a profiled device, and a small
slice of mnist5k."""

from __future__ import annotations

from dataclasses import replace

import pytest
from torch.utils.data import TensorDataset

from lut.measurement import Measurement
from lut.predictor import FixedCosts
from lut.store import LutStore
from search.data import load_dataset
from search.spaces.base import space_from_string
from search.spaces.complexity import macs

SPACE = "fbnet-tiny"


def synthetic_lut(url: str, name: str = "synthetic") -> LutStore:
    """A LUT whose entries come from a formula (0.004 ms + 2 ns per MAC), standing in for a
    profiled device so search tests need no timing; profiling is tested on real runtimes."""
    store = LutStore(url)
    device = store.register_device(name, {"backend": "synthetic", "threads": 1})
    store.set_fixed_costs(device, FixedCosts(0.004, 0.0, 0.0))
    specs = [s for s in space_from_string(SPACE).distinct_opspecs() if not s.is_identity]
    store.add_measurements(
        device,
        [(s, Measurement.from_samples([0.004 + 2e-6 * macs(s)] * 7, warmup=0)) for s in specs],
    )
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LutStore:
    return synthetic_lut(f"sqlite:///{tmp_path_factory.mktemp('lut') / 'lut.db'}")


@pytest.fixture(scope="module")
def small_data():  # type: ignore[no-untyped-def]
    data = load_dataset("mnist5k", seed=0)

    def head(ds: TensorDataset, n: int) -> TensorDataset:
        return TensorDataset(*(t[:n] for t in ds.tensors))

    return replace(
        data, train=head(data.train, 256), val=head(data.val, 128), test=head(data.test, 128)
    )
