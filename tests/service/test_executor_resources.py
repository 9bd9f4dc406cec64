"""What a job's Ray tasks declare (HWNAS_RAY_UNIT_CPUS, _GPUS, _MEMORY_MB), and the check that
some node of the cluster has room for one before any is submitted."""

from __future__ import annotations

from service.config import load_settings
from service.worker.executors.resources import UnitResources, missing_room

ONE_CPU = {"CPU": 1.0, "memory": 2 * 1024.0**3}


def test_the_settings_declare_cpus_and_what_else_is_set(tmp_path: object) -> None:
    settings = load_settings(
        {"HWNAS_HOME": str(tmp_path), "HWNAS_RAY_UNIT_GPUS": "1", "HWNAS_RAY_UNIT_MEMORY_MB": "512"}
    )
    resources = UnitResources.of(settings)
    assert resources == UnitResources(cpus=1.0, gpus=1.0, memory_mb=512, wait_s=60.0)
    assert resources.wanted() == {"CPU": 1.0, "GPU": 1.0, "memory": 512 * 1024.0**2}
    assert UnitResources().wanted() == {"CPU": 1.0}  # no GPUs or memory declared by default


def test_a_unit_fits_when_one_node_has_all_it_asks_for() -> None:
    gpu_node = {"CPU": 4.0, "GPU": 1.0, "memory": 8 * 1024.0**3}
    assert missing_room({"CPU": 1.0, "GPU": 1.0}, [ONE_CPU, gpu_node]) is None
    assert missing_room({"CPU": 1.0}, [ONE_CPU]) is None


def test_a_unit_no_node_can_run_is_named_with_what_the_nodes_have() -> None:
    problem = missing_room({"CPU": 1.0, "GPU": 1.0}, [ONE_CPU, ONE_CPU])
    assert problem is not None
    assert "asks for 1 CPU, 1 GPU" in problem and "the most any node has: 1 CPU, 0 GPUs" in problem
    assert "HWNAS_RAY_UNIT_GPUS" in problem
    # two nodes of one CPU hold two CPUs together, but a unit runs on one node
    split = missing_room({"CPU": 2.0}, [ONE_CPU, ONE_CPU])
    assert split is not None and "asks for 2 CPUs" in split
    memory = missing_room({"CPU": 1.0, "memory": 4 * 1024.0**3}, [ONE_CPU])
    assert memory is not None and "4096 MiB memory" in memory and "2048 MiB memory" in memory
    assert missing_room({"CPU": 1.0}, []) is not None  # a cluster with no live node
