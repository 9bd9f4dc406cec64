"""Smaller .tflite files for flash: the converter names every tensor after the PyTorch module path
it came from (tens of kilobytes in a small network, which a microcontroller stores in flash and
never reads). The rewrite keeps the input and output names, the signature and every buffer's
16-byte alignment (the converter's, which kernels reading int32 biases and int8 weights in
place rely on); the graph and the weights are unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BUFFER_ALIGNMENT = 16
FILE_IDENTIFIER = b"TFL3"


def compact_tflite(path: Path) -> None:
    """Rewrite the .tflite file at `path` without its inner tensors' names."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(compact_model(data))


def compact_model(data: bytes) -> bytes:
    """The model `data` with every tensor name but the subgraphs' inputs' and outputs' emptied.
    A model whose buffers live outside the flatbuffer (offset/size, files over 2 GB) comes back
    unchanged: rewriting it would move the data they point at."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    if any((buffer.offset or 0) > 1 for buffer in model.buffers or []):
        return data
    for subgraph in model.subgraphs or []:
        _drop_inner_names(subgraph)
    model.buffers = [_AlignedBuffer(buffer) for buffer in model.buffers or []]
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _drop_inner_names(subgraph: Any) -> None:
    keep = {
        int(i)
        for i in [
            *(subgraph.inputs if subgraph.inputs is not None else ()),
            *(subgraph.outputs if subgraph.outputs is not None else ()),
        ]
    }
    for index, tensor in enumerate(subgraph.tensors or []):
        if index not in keep:
            tensor.name = b""


class _AlignedBuffer:
    """A schema buffer that packs its bytes at BUFFER_ALIGNMENT (the generated `BufferT.Pack`
    packs them at 1); `ModelT.Pack` calls `Pack` on each of its buffers."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def Pack(self, builder: Any) -> Any:
        from ai_edge_litert import schema_py_generated as schema

        data = None
        if self.buffer.data is not None:
            payload = np.asarray(self.buffer.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.buffer.offset)
        schema.BufferAddSize(builder, self.buffer.size)
        return schema.BufferEnd(builder)
