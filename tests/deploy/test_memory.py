"""`deploy.memory.tflite_memory` on real converted files: an int8 file also gets TFLite Micro's
predicted arena and MCU flash (beyond the greedy plan of its tensors), a float file does not
(the arena model follows the int8 kernels and refuses the rest rather than guess)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.exporters import export_tflite
from deploy.formats import ExportJob
from deploy.memory import tflite_memory
from lut.opspec import OpSpec

CONV = OpSpec(op="conv", in_channels=3, out_channels=8, height=16, width=16, kernel=3, stride=2)


def test_an_int8_file_gets_the_tflm_arena_and_a_float_file_does_not(tmp_path: Path) -> None:
    from profilers.backends.mcu_backend import convert_int8
    from profilers.export import op_model

    module, example = op_model(CONV)
    int8 = tmp_path / "op.int8.tflite"
    convert_int8(module, example, int8)
    memory = tflite_memory(int8)
    # the whole arena holds the planned tensors and TFLM's persistent buffers beside them
    assert memory["tflm_arena_bytes"] > memory["arena_greedy_bytes"] > 0
    assert memory["tflm_flash_bytes"] > memory["flash_bytes"]
    job = ExportJob(
        module=module.eval(),
        input_shape=(3, 16, 16),
        calibration=np.zeros((1, 3, 16, 16), dtype=np.float32),
        out_dir=tmp_path,
    )
    export_tflite(job, tmp_path / "op.tflite")
    assert "tflm_arena_bytes" not in tflite_memory(tmp_path / "op.tflite")
