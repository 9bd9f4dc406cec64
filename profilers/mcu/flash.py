"""Flash an MCU project needs, measured: a `c-array` project (the model as a const array, a
TFLite Micro `main.cc` registering the given operators) built for the core, its text + data
bytes (`arm-none-eabi-size`: code, read-only data with the model, initialised data). Also what
each operator adds to a project with none, read from the linker's map: the input sections
--gc-sections keeps for it (a section several operators pull in is linked once), and its other
bytes (its part of main(), alignment fill)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profilers.mcu.build import _section_sizes as section_sizes
from profilers.mcu.build import build_program
from profilers.mcu.toolchain import Core

# The smallest file a program can hold in place of a model: the operators' code is what it links.
PLACEHOLDER_MODEL = bytes(16)
NOT_IN_FLASH = (".bss", ".heap", ".stack", ".noinit", ".debug", ".comment", ".ARM.attributes")
_INPUT = re.compile(
    r"^ (?P<name>[^\s*]\S*)(?:\s+0x[0-9a-f]+\s+0x(?P<size>[0-9a-f]+)\s+(?P<obj>\S.*))?$"
)
_CONTINUED = re.compile(r"^\s+0x[0-9a-f]+\s+0x(?P<size>[0-9a-f]+)\s+(?P<obj>\S.*)$")
_FILL = re.compile(r"^ \*fill\*\s+0x[0-9a-f]+\s+0x(?P<size>[0-9a-f]+)")
_OUTPUT = re.compile(r"^(?P<name>\.\S+)")


@dataclass(frozen=True)
class LinkedProgram:
    """A built project's flash (text + data) and the input sections in it: (section, object)
    → bytes, objects named without their build folder."""

    flash_bytes: int
    sections: dict[tuple[str, str], int]


@contextmanager
def built_project(core: Core, model: bytes, operators: list[str]) -> Iterator[Path]:
    """The c-array project of `model` registering `operators`, built; yields its ELF (its
    linker map beside it, `<elf>.map`)."""
    from deploy.c_array import MIN_ARENA_BYTES, MODEL_DATA_H, main_cc, model_data_cc

    with tempfile.TemporaryDirectory(prefix="hwnas-flash-") as scratch:
        folder = Path(scratch)
        (folder / "model_data.h").write_text(MODEL_DATA_H)
        (folder / "model_data.cc").write_text(model_data_cc(model))
        (folder / "main.cc").write_text(main_cc(operators, MIN_ARENA_BYTES))
        sources = [folder / "model_data.cc", folder / "main.cc"]
        yield build_program(core, sources, folder / "a.elf", link_map=folder / "a.elf.map")


def flash_bytes(elf: Path) -> int:
    sizes = section_sizes(elf)
    return sizes["text"] + sizes["data"]


def program_flash_bytes(core: Core, model: bytes, operators: list[str]) -> int:
    """text + data of the c-array project of `model` registering `operators`."""
    with built_project(core, model, operators) as elf:
        return flash_bytes(elf)


def linked_program(core: Core, operators: list[str]) -> LinkedProgram:
    """The placeholder-model project registering `operators`: its flash and input sections."""
    with built_project(core, PLACEHOLDER_MODEL, operators) as elf:
        text = elf.with_name(elf.name + ".map").read_text()
        return LinkedProgram(flash_bytes(elf), map_sections(text))


def map_sections(text: str) -> dict[tuple[str, str], int]:
    """The input sections a GNU ld map places in flash (alignment fill as ("*fill*", output
    section)), each with its bytes."""
    sections: dict[tuple[str, str], int] = {}
    body = text.split("Linker script and memory map", 1)[-1].splitlines()
    output, pending = "", ""
    for line in body:
        if (found := _OUTPUT.match(line)) is not None:
            output, pending = found["name"], ""
            continue
        if output.startswith(NOT_IN_FLASH) or not output:
            continue
        if (fill := _FILL.match(line)) is not None:
            key = ("*fill*", output)
            sections[key] = sections.get(key, 0) + int(fill["size"], 16)
        elif pending and (more := _CONTINUED.match(line)) is not None:
            _add(sections, pending, more["obj"], int(more["size"], 16))
            pending = ""
        elif (found := _INPUT.match(line)) is not None:
            if found["size"] is None:
                pending = found["name"]
            else:
                _add(sections, found["name"], found["obj"], int(found["size"], 16))
    return sections


def _add(sections: dict[tuple[str, str], int], name: str, obj: str, size: int) -> None:
    if size:
        key = (name, _object_name(obj))
        sections[key] = sections.get(key, 0) + size


def _object_name(path: str) -> str:
    """`libtflm.a(conv.o)` or `1-main.o`: without the folder, which differs between builds."""
    return path.rsplit("/", 1)[-1]


def operator_code(core: Core, operators: list[str]) -> dict[str, Any]:
    """`base`: the flash of a project registering no operator, less its placeholder model;
    `shared`: [operators, bytes] for each group of input sections the same operators pull in
    beyond the base's (linked once however many of them a project registers); `own`: per
    operator, the rest of what registering it adds (its part of main(), fill);
    `several`: what a project registering two operators adds beyond those (the op resolver's
    code for more than one operator)."""
    base = linked_program(core, [])
    pulled: dict[tuple[str, str], set[str]] = {}
    sizes: dict[tuple[str, str], int] = {}
    own = {}
    for operator in operators:
        program = linked_program(core, [operator])
        new = {k: v for k, v in program.sections.items() if k not in base.sections}
        for key, size in new.items():
            pulled.setdefault(key, set()).add(operator)
            sizes[key] = size
        own[operator] = program.flash_bytes - base.flash_bytes - sum(new.values())
    groups: dict[tuple[str, ...], int] = {}
    for key, users in pulled.items():
        group = tuple(sorted(users))
        groups[group] = groups.get(group, 0) + sizes[key]
    table: dict[str, Any] = {
        "base": base.flash_bytes - len(PLACEHOLDER_MODEL),
        "shared": [[list(users), size] for users, size in sorted(groups.items())],
        "own": own,
        "several": 0,
    }
    if len(operators) >= 2:
        from deploy.mcu_memory import code_bytes

        pair = operators[:2]
        linked = linked_program(core, pair).flash_bytes - len(PLACEHOLDER_MODEL)
        table["several"] = linked - code_bytes(pair, table)
    return table
