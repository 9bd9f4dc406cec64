"""Dropping inner tensor names: a smaller file whose outputs, operators, arena and buffer
alignment are unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploy.tflite_compact import BUFFER_ALIGNMENT, compact_model
from deploy.tflm_arena import predict_arena, read_model
from lut.opspec import OpSpec

BLOCK = OpSpec(
    op="mbconv", in_channels=8, out_channels=8, height=12, width=12, kernel=3, expansion=3
)


def _outputs(data: bytes) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rng = np.random.default_rng(0)
    found = []
    for _ in range(3):
        interpreter.set_tensor(source["index"], rng.integers(-128, 128, source["shape"], np.int8))
        interpreter.invoke()
        found.append(interpreter.get_tensor(target["index"]).copy())
    return np.stack(found)


def _buffer_starts(data: bytes) -> list[int]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    starts = []
    for index in range(model.BuffersLength()):
        buffer = model.Buffers(index)
        if buffer.DataLength():
            starts.append(buffer._tab.Vector(buffer._tab.Offset(4)))
    return starts


def test_compacting_keeps_the_model_and_drops_inner_names(tmp_path: Path) -> None:
    from deploy.exporters import _convert_int8  # the converter's file, before compacting
    from deploy.formats import ExportJob
    from profilers.export import op_model

    module, example = op_model(BLOCK)
    calibration = np.random.default_rng(0).random((4, *example.shape[1:]), dtype=np.float32)
    job = ExportJob(module.eval(), tuple(example.shape[1:]), calibration, tmp_path, nhwc=True)
    original = tmp_path / "block.tflite"
    _convert_int8(job, original)
    compact = tmp_path / "compact.tflite"
    compact.write_bytes(compact_model(original.read_bytes()))
    assert compact.stat().st_size < original.stat().st_size
    assert np.array_equal(_outputs(original.read_bytes()), _outputs(compact.read_bytes()))
    before, after = read_model(original).subgraphs[0], read_model(compact).subgraphs[0]
    kept = {*before.inputs, *before.outputs}
    assert [t.name for i, t in enumerate(after.tensors) if t.name] == [
        before.tensors[i].name for i in sorted(kept)
    ]
    assert [op.opcodeIndex for op in after.operators] == [op.opcodeIndex for op in before.operators]
    assert predict_arena(compact).arena_bytes == predict_arena(original).arena_bytes
    starts = _buffer_starts(compact.read_bytes())
    assert starts and all(start % BUFFER_ALIGNMENT == 0 for start in starts)
