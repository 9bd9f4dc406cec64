"""What ONNX Runtime will run for a model file: its graph after ORT's optimisations, as a sorted
list of canonical nodes. Two files with equal lists run the same kernels on the same weights'
shapes, so they cost the same; `compare_exporters` puts torch's two ONNX exporters side by side
with it (`benchmarks/exporter_parity.py` and the tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

if TYPE_CHECKING:
    import numpy as np
    import torch


@dataclass(frozen=True)
class ExporterComparison:
    """Per exporter ("torchscript", "dynamo"): optimised graph, output on the example, seconds."""

    graphs: dict[str, list[str]]
    outputs: dict[str, np.ndarray]
    export_s: dict[str, float]

    @property
    def same_graph(self) -> bool:
        return self.graphs["torchscript"] == self.graphs["dynamo"]

    @property
    def max_abs_diff(self) -> float:
        return float(abs(self.outputs["torchscript"] - self.outputs["dynamo"]).max())


def compare_exporters(
    module: torch.nn.Module, example: torch.Tensor, workdir: Path
) -> ExporterComparison:
    """Export `module` (eval mode) with both exporters into `workdir`, so both files carry the
    same weights, and run each file on `example`."""
    import onnxruntime as ort

    from profilers.export import export_onnx_dynamo, export_onnx_torchscript

    graphs, outputs, times = {}, {}, {}
    for name, export in (("torchscript", export_onnx_torchscript), ("dynamo", export_onnx_dynamo)):
        model = workdir / f"{name}.onnx"
        start = time.perf_counter()
        export(module.eval(), example, model)
        times[name] = time.perf_counter() - start
        graphs[name] = optimised_nodes(model, workdir / f"{name}.opt.onnx")
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        outputs[name] = session.run(None, {"input": example.numpy()})[0]
    return ExporterComparison(graphs, outputs, times)


def optimised_nodes(model: Path, saved: Path, *, threads: int = 1) -> list[str]:
    """The canonical nodes of `model` once ORT has optimised it (all optimisations, the CPU
    provider, as the profiler runs it); the optimised model is written to `saved`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(saved)
    options.log_severity_level = 3  # saving an NCHWc-optimised model warns each time
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return canonical_nodes(onnx.load(str(saved)))


def canonical_nodes(model: onnx.ModelProto) -> list[str]:
    """Each node as 'domain:op(attributes)[weight shapes]', sorted: names and order left out,
    attributes at their defaults dropped. Reshape's `allowzero` is dropped too: it only matters
    for a target shape with a 0, which a constant shape of these models never has."""
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attributes = ",".join(
            f"{a.name}={onnx.helper.get_attribute_value(a)!r}"
            for a in sorted(node.attribute, key=lambda a: a.name)
            if not _is_default(node, a)
        )
        weights = [str(shapes[i]) for i in node.input if i in shapes]
        nodes.append(f"{node.domain or 'ai.onnx'}:{node.op_type}({attributes}){weights}")
    return sorted(nodes)


def _is_default(node: onnx.NodeProto, attribute: onnx.AttributeProto) -> bool:
    if node.op_type == "Reshape" and attribute.name == "allowzero":
        return True
    try:
        schema = onnx.defs.get_schema(node.op_type, domain=node.domain)
    except onnx.defs.SchemaError:
        return False
    default = schema.attributes.get(attribute.name)
    if default is None or not default.default_value.name:
        return False
    value = onnx.helper.get_attribute_value(attribute)
    return bool(value == onnx.helper.get_attribute_value(default.default_value))
