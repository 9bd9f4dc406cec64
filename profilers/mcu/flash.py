"""Flash an MCU project needs, measured: a `c-array` project (the model as a const array, a
TFLite Micro `main.cc` registering the given operators) built for the core, its text + data
bytes (`arm-none-eabi-size`: code, read-only data with the model, initialised data). Also the
per-operator code a project links, each operator alone against a project with none."""

from __future__ import annotations

import tempfile
from pathlib import Path

from profilers.mcu.build import _section_sizes as section_sizes
from profilers.mcu.build import build_program
from profilers.mcu.toolchain import Core

# The smallest file a program can hold in place of a model: the operators' code is what it links.
PLACEHOLDER_MODEL = bytes(16)


def program_flash_bytes(core: Core, model: bytes, operators: list[str]) -> int:
    """text + data of the c-array project of `model` registering `operators`."""
    from deploy.c_array import MIN_ARENA_BYTES, MODEL_DATA_H, main_cc, model_data_cc

    with tempfile.TemporaryDirectory(prefix="hwnas-flash-") as scratch:
        folder = Path(scratch)
        (folder / "model_data.h").write_text(MODEL_DATA_H)
        (folder / "model_data.cc").write_text(model_data_cc(model))
        (folder / "main.cc").write_text(main_cc(operators, MIN_ARENA_BYTES))
        elf = build_program(core, [folder / "model_data.cc", folder / "main.cc"], folder / "a.elf")
        sizes = section_sizes(elf)
    return sizes["text"] + sizes["data"]


def operator_code_bytes(core: Core, operators: list[str]) -> dict[str, int]:
    """`base`: a project registering no operator, less its placeholder model; then each
    operator's code: the project registering it alone, less the project with none."""
    empty = program_flash_bytes(core, PLACEHOLDER_MODEL, [])
    sizes = {"base": empty - len(PLACEHOLDER_MODEL)}
    for operator in operators:
        sizes[operator] = program_flash_bytes(core, PLACEHOLDER_MODEL, [operator]) - empty
    return sizes
