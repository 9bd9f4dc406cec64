"""The built-in formats: fp32 ONNX (dynamo exporter) and TFLite (litert-torch), int8 ONNX (ORT
static QDQ quantisation) and full-integer TFLite (PT2E), and TensorRT engines built from ONNX."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from common.files import write_atomically
from common.quiet import silenced
from deploy.contract import pixel_max
from deploy.formats import ExportFailed, ExportJob, register_format, unsupported_op_message
from deploy.tflite_compact import compact_tflite

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MAX_DYNAMIC_BATCH = 4096


@contextlib.contextmanager
def conversion_errors(fmt: str) -> Iterator[None]:
    """A converter's exception → ExportFailed with one line naming the op it cannot express."""
    try:
        yield
    except ExportFailed:
        raise
    except Exception as exc:
        raise ExportFailed(unsupported_op_message(fmt, exc)) from exc


@register_format("onnx", "model.onnx", runtime="onnxruntime")
def export_onnx(job: ExportJob, path: Path) -> None:
    """One self-contained file (weights inside), input "input", output "logits"."""
    import onnx
    import torch

    def write(tmp: Path) -> None:
        dynamic = None
        if job.dynamic_batch:
            dynamic = ({0: torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_BATCH)},)
        with silenced(), torch.no_grad():
            torch.onnx.export(
                job.graph_module(),
                (job.example(),),
                str(tmp),
                dynamo=True,
                external_data=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=dynamic,
                verbose=False,
            )
        onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)

    with conversion_errors("onnx"):
        write_atomically(path, write)


@register_format("tflite", "model.tflite", runtime="litert")
def export_tflite(job: ExportJob, path: Path) -> None:
    """fp32 TFLite; NCHW input and output unless `job.nhwc` (channel-last, as LiteRT expects)."""
    import torch

    def write(tmp: Path) -> None:
        with silenced():
            import litert_torch

            module, example = _channel_layout(job, litert_torch)
            with torch.no_grad():
                edge_model = litert_torch.convert(module.eval(), (example,))
            edge_model.export(str(tmp))

    with conversion_errors("tflite"):
        write_atomically(path, write)


@register_format("onnx-int8", "model.int8.onnx", runtime="onnxruntime", int8=True, needs=("onnx",))
def export_onnx_int8(job: ExportJob, path: Path) -> None:
    """ONNX Runtime static quantisation in QDQ form (int8 weights per channel, int8 activations,
    float input and output), pre-processed by `quant_pre_process`, calibrated on the job's
    calibration images (min-max)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(job.calibration_input(i) for i in range(len(job.calibration)))

        def get_next(self) -> dict[str, Any] | None:
            item = next(self.items, None)
            return None if item is None else {INPUT_NAME: item}

    with conversion_errors("onnx-int8"), tempfile.TemporaryDirectory() as scratch:
        source = job.produced.get("onnx")
        if source is None:
            source = Path(scratch) / "model.onnx"
            export_onnx(job, source)
        prepared = Path(scratch) / "prepared.onnx"
        with silenced():
            quant_pre_process(str(source), str(prepared))

        def write(tmp: Path) -> None:
            with silenced():
                quantize_static(
                    str(prepared),
                    str(tmp),
                    Batches(),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                )

        write_atomically(path, write)


@register_format("tflite-int8", "model.int8.tflite", runtime="litert", int8=True)
def export_tflite_int8(job: ExportJob, path: Path) -> None:
    """Full-integer TFLite: int8 weights, activations, input and output (what microcontrollers
    and mobile NPUs take), per-channel symmetric weights, ranges calibrated with PT2E observers
    on the job's calibration images (min-max, like ONNX Runtime's default). The input's range
    is the pixels' whole range, not what calibration saw, so an 8-bit pixel p maps exactly to
    q = p − 128: scale 1/255 for [0, 1] floats, 1 for 0..255, zero point −128; or, where the
    normalisation folds into the input (`ExportJob.folded_input`), the same q carries the
    normalised pixel and the file runs no normalisation op. Tensor names other than the
    input's and output's are dropped (`deploy.tflite_compact`): flash on a microcontroller."""

    def write(tmp: Path) -> None:
        with silenced():
            _convert_int8(job, tmp)
        compact_tflite(tmp)

    with conversion_errors("tflite-int8"):
        write_atomically(path, write)


def _convert_int8(job: ExportJob, path: Path) -> None:
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    module, calibration, input_range = _int8_source(job)
    example = torch.from_numpy(np.ascontiguousarray(calibration[:1]))
    module, example = _channel_layout_of(module, example, job.nhwc, litert_torch)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(_min_max_config())
    graph = torch.export.export(module.eval(), (example,)).module()
    _name_adds(graph)
    prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for image in calibration:
            prepared(_layout(torch.from_numpy(image[None]), job.nhwc))
    _declare_input_range(prepared, *input_range)
    quantised = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    edge_model = litert_torch.convert(
        quantised, (example,), quant_config=QuantConfig(pt2e_quantizer=quantizer)
    )
    edge_model.export(str(path))


def _int8_source(job: ExportJob) -> tuple[Any, np.ndarray, tuple[float, float]]:
    """The module the quantiser sees, its calibration images and its input's declared range:
    the network on normalised pixels where the normalisation folds into the input, else the
    job's module on the pixels' whole range."""
    folded = job.folded_input()
    if folded is not None:
        return folded
    return job.module, job.calibration, (0.0, pixel_max(job.pixels))


@register_format("tensorrt", "model.engine", runtime="tensorrt", needs=("onnx",), exact=False)
def export_tensorrt(job: ExportJob, path: Path) -> None:
    """A serialized TensorRT engine built from the ONNX file (fp16, or int8 from the QDQ file)."""
    from deploy import tensorrt

    reason = tensorrt.unavailable_reason()
    if reason:
        raise ExportFailed(f"tensorrt: {reason}")
    with conversion_errors("tensorrt"), tempfile.TemporaryDirectory() as scratch:
        source = job.produced.get("onnx-int8" if job.tensorrt_precision == "int8" else "onnx")
        if source is None:
            source = Path(scratch) / "model.onnx"
            make = export_onnx_int8 if job.tensorrt_precision == "int8" else export_onnx
            make(job, source)
        engine = tensorrt.build_engine(source, job.tensorrt_precision)
        write_atomically(path, lambda tmp: tmp.write_bytes(engine))


def _min_max_config() -> Any:
    """litert-torch's static int8 config (per-channel symmetric weights, per-tensor affine
    activations) with min-max activation observers: its histogram observers cost ~0.3 s per
    calibration image on a small network, and min-max ranges lose < 1 point here."""
    import dataclasses

    from litert_torch.quantize import pt2e_quantizer
    from torchao.quantization.pt2e.observer import MinMaxObserver

    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    activation = dataclasses.replace(
        config.input_activation, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12)
    )
    return dataclasses.replace(config, input_activation=activation, output_activation=activation)


def _name_adds(graph: Any) -> None:
    """Record `operator.add` as the source of each tensor `aten.add`, so the quantiser's `add`
    annotator finds it: it looks adds up by `source_fn_stack`, which a non-strict
    `torch.export` leaves out, and an unannotated add stays float (`DEQUANTIZE → ADD →
    QUANTIZE` around every residual instead of the int8 ADD kernel)."""
    import operator

    import torch

    for node in graph.graph.nodes:
        if node.target == torch.ops.aten.add.Tensor and "source_fn_stack" not in node.meta:
            node.meta["source_fn_stack"] = [(node.name, operator.add)]


def _declare_input_range(prepared: Any, low: float, high: float) -> None:
    """Set the observer of the graph's input to [low, high] after calibration."""
    import torch

    placeholder = next(node for node in prepared.graph.nodes if node.op == "placeholder")
    observers = [str(node.target) for node in _input_consumers(placeholder)]
    if not observers:  # the quantiser left the input float (a micro-model starting with a mean)
        return
    if len(observers) != 1:
        raise ExportFailed(f"tflite-int8: expected one observer of the input, found {observers}")
    observer = getattr(prepared, str(observers[0]))
    observer.min_val = torch.tensor(float(low))
    observer.max_val = torch.tensor(float(high))


_LAYOUT_OPS = ("permute", "view", "reshape", "contiguous", "clone")


def _input_consumers(placeholder: Any) -> list[Any]:
    """The observers that see the graph's input, through the layout ops an NHWC wrapper puts
    in front of the module (a permute to NCHW)."""
    found, pending = [], list(placeholder.users)
    while pending:
        node = pending.pop()
        if node.op == "call_module" and str(node.target).startswith("activation_post_process"):
            found.append(node)
        elif node.op == "call_function" and any(op in str(node.target) for op in _LAYOUT_OPS):
            pending.extend(node.users)
    return found


def _layout(tensor: Any, nhwc: bool) -> Any:
    return tensor.permute(0, 2, 3, 1).contiguous() if nhwc and tensor.dim() == 4 else tensor


def _channel_layout(job: ExportJob, litert_torch: Any) -> tuple[Any, Any]:
    """The module and example the fp32 converter sees (it casts uint8 pixels first)."""
    return _channel_layout_of(job.graph_module(), job.example(), job.nhwc, litert_torch)


def _channel_layout_of(module: Any, example: Any, nhwc: bool, litert_torch: Any) -> tuple[Any, Any]:
    """`module` and `example`, wrapped for NHWC input and output if asked."""
    if not nhwc or example.dim() != 4:
        return module, example
    import torch

    with torch.no_grad():
        output = module(example)
    outputs = [0] if output.dim() == 4 else []
    wrapped = litert_torch.to_channel_last_io(module, args=[0], outputs=outputs)
    return wrapped, _layout(example, True)
