"""The `c-array` format: the full-integer TFLite model as C source an MCU project compiles —
`model_data.cc/.h` (the file as a 16-byte aligned byte array) and a minimal TFLite Micro
`main.cc` that registers the model's operators, runs it once and prints its output."""

from __future__ import annotations

import tempfile
from pathlib import Path

from common.files import write_text_atomically
from deploy.exporters import export_tflite_int8  # registered first: c-array starts from it
from deploy.formats import ExportFailed, ExportJob, register_format

MIN_ARENA_BYTES = 64 * 1024  # the fallback's floor, for a model the arena model does not cover
ARENA_MARGIN_BYTES = 1024
BYTES_PER_LINE = 16


@register_format(
    "c-array", "model_data.cc", runtime="", int8=True, needs=("tflite-int8",), verifiable=False
)
def export_c_array(job: ExportJob, path: Path) -> None:
    """model_data.cc at `path`, model_data.h and main.cc beside it, from the job's
    `tflite-int8` file (exported now if the job has none)."""
    source = job.produced.get("tflite-int8")
    with tempfile.TemporaryDirectory() as scratch:
        if source is None:
            source = Path(scratch) / "model.int8.tflite"
            export_tflite_int8(job, source)
        write_c_project(source, path.parent)


def write_c_project(tflite: Path, out_dir: Path, *, arena_bytes: int | None = None) -> list[Path]:
    """model_data.h, model_data.cc and main.cc for `tflite` in `out_dir`, with the arena
    `default_arena_bytes` sizes; main.cc lets `-DTENSOR_ARENA_BYTES=` override it."""
    from deploy.memory import tflite_operators

    data = Path(tflite).read_bytes()
    operators = tflite_operators(tflite)
    if arena_bytes is None:
        arena_bytes = default_arena_bytes(tflite)
    files = {
        "model_data.h": MODEL_DATA_H,
        "model_data.cc": model_data_cc(data),
        "main.cc": main_cc(operators, arena_bytes),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        write_text_atomically(out_dir / name, text)
    return [out_dir / name for name in files]


MODEL_DATA_H = """// The model as a byte array (written by hwnas).
#ifndef HWNAS_MODEL_DATA_H_
#define HWNAS_MODEL_DATA_H_

extern const unsigned char g_model_data[];
extern const unsigned int g_model_data_len;

#endif  // HWNAS_MODEL_DATA_H_
"""


def default_arena_bytes(tflite: Path) -> int:
    """The arena TFLite Micro with CMSIS-NN allocates for the model (`deploy.tflm_arena`, exact
    on a Cortex-M; the larger of the DSP and MVE builds', as the project may be built for
    either) plus ARENA_MARGIN_BYTES, rounded up to a KiB: the SRAM a search's budget counted,
    not a multiple of it. For a model the arena model does not cover, twice the greedy plan of
    its tensors plus 32 KiB, at least 64 KiB."""
    from deploy.memory import tflite_memory
    from deploy.tflm_arena import predict_arena
    from deploy.tflm_kernels import KERNEL_SETS

    try:
        needed = max(predict_arena(tflite, k).arena_bytes for k in KERNEL_SETS)
        needed += ARENA_MARGIN_BYTES
    except ValueError:
        planned = int(tflite_memory(tflite)["arena_greedy_bytes"])
        needed = max(MIN_ARENA_BYTES, 2 * planned + 32 * 1024)
    return -(-needed // 1024) * 1024


def model_data_cc(data: bytes) -> str:
    lines = [
        ", ".join(f"0x{byte:02x}" for byte in data[i : i + BYTES_PER_LINE])
        for i in range(0, len(data), BYTES_PER_LINE)
    ]
    body = ",\n    ".join(lines)
    return (
        "// The model as a byte array (written by hwnas). TFLite Micro reads it in place, from\n"
        "// flash, so it is const and 16-byte aligned.\n"
        '#include "model_data.h"\n\n'
        f"alignas(16) const unsigned char g_model_data[] = {{\n    {body}\n}};\n"
        f"const unsigned int g_model_data_len = {len(data)};\n"
    )


def resolver_method(operator: str) -> str:
    """TFLite's builtin operator name → MicroMutableOpResolver's method: CONV_2D → AddConv2D."""
    if not operator or not operator.replace("_", "").isalnum():
        raise ExportFailed(f"c-array: cannot register operator {operator!r}")
    parts = operator.split("_")
    return "Add" + "".join(p.upper() if p[0].isdigit() else p.capitalize() for p in parts if p)


def main_cc(operators: list[str], arena_bytes: int) -> str:
    registrations = "\n".join(f"  resolver.{resolver_method(op)}();" for op in operators)
    return MAIN_CC.format(
        count=max(1, len(operators)), registrations=registrations, arena=arena_bytes
    )


MAIN_CC = """// A minimal TFLite Micro program for the exported model (written by hwnas): registers the
// model's operators, runs it once on a fixed input pattern and prints the arena it used and the
// output's bytes. Replace the input loop with the sensor's data (int8: pixel - 128).
#include <cstdint>
#include <cstdio>

#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef TENSOR_ARENA_BYTES
#define TENSOR_ARENA_BYTES {arena}
#endif

alignas(16) static uint8_t tensor_arena[TENSOR_ARENA_BYTES];

int main() {{
  const tflite::Model* model = tflite::GetModel(g_model_data);
  static tflite::MicroMutableOpResolver<{count}> resolver;
{registrations}
  static tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, TENSOR_ARENA_BYTES);
  if (interpreter.AllocateTensors() != kTfLiteOk) {{
    printf("AllocateTensors failed\\n");
    return 1;
  }}
  TfLiteTensor* input = interpreter.input(0);
  for (size_t i = 0; i < input->bytes; ++i) input->data.uint8[i] = (uint8_t)(i * 7u + 3u);
  if (interpreter.Invoke() != kTfLiteOk) {{
    printf("Invoke failed\\n");
    return 2;
  }}
  TfLiteTensor* output = interpreter.output(0);
  printf("arena_used %u\\n", (unsigned)interpreter.arena_used_bytes());
  printf("output ");
  for (size_t i = 0; i < output->bytes; ++i) printf("%02x", output->data.uint8[i]);
  printf("\\n");
  return 0;
}}
"""
