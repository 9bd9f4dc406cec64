"""What ONNX Runtime will run for a model file: its graph after ORT's optimisations, as a sorted
list of canonical nodes. Two files with equal lists run the same kernels on the same weights'
shapes, so they cost the same; `benchmarks/exporter_parity.py` and the tests compare exporters
with it."""

from __future__ import annotations

from pathlib import Path

import onnx


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
