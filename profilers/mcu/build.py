"""The profiling firmware for one Cortex-M core, built once from the TFLM kit and cached under
HWNAS_HOME: TFLM's own Makefile lists the library's sources and flags; only the kernels in
KERNEL_SET (the ops int8 micro-models and the spaces' networks use) are compiled, with CMSIS-NN."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.files import write_json_atomically
from common.paths import hwnas_home
from profilers.mcu.toolchain import (
    Core,
    check_serial_build,
    compiler_version,
    kit_dir,
    sources_override,
    tflm_commit,
    unavailable_reason,
)

FIRMWARE_VERSION = 1
FIRMWARE_SOURCES = Path(__file__).parent / "firmware"
# TFLM kernel files (and their `_common` halves) the firmware's op resolver registers.
KERNEL_SET = (
    "activations", "add", "concatenation", "conv", "depthwise_conv", "dequantize",
    "fully_connected", "hard_swish", "logistic", "mul", "pad", "pooling", "quantize", "reduce",
    "reshape", "softmax", "squeeze", "strided_slice", "transpose",
)  # fmt: skip
KERNEL_SUPPORT = ("kernel_util", "micro_tensor_utils")
FIRMWARE_COMMON = ("profiler_main.cc", "serial.c", "startup.c")
DEFAULT_TFLM_TARGET = "cortex_m_qemu"
LINK_ARCH_FLAGS = ("-mcpu=", "-mthumb", "-mfloat-abi=", "-mfpu=")
SKIPPED_CORE_PARTS = ("/signal/", "kissfft", "test_helper", "mock_micro_graph")
SKIPPED_CMSIS_NN = ("/LSTMFunctions/", "/SVDFunctions/")
TFLM_MAKEFILE = "tensorflow/lite/micro/tools/make/Makefile"


@dataclass(frozen=True)
class Firmware:
    """A built firmware: the ELF and what it was built from (`info["fingerprint"]`), how long its
    library's build took and its section sizes."""

    elf: Path
    info: dict[str, Any]

    @property
    def fingerprint(self) -> dict[str, Any]:
        return dict(self.info["fingerprint"])


def library_fingerprint(core: Core) -> dict[str, Any]:
    """What the TFLM library's objects depend on. A core built with another TFLM target than
    cortex_m_qemu (the M55's cortex_m_generic: hard float, MVE) names it; the cortex_m_qemu
    builds leave the key out, so their cached libraries keep their keys."""
    target = {} if core.tflm_target == DEFAULT_TFLM_TARGET else {"tflm_target": core.tflm_target}
    return {
        "core": core.cpu,
        "tflm_commit": tflm_commit(),
        "kernels": "cmsis_nn:" + ",".join(KERNEL_SET),
        "compiler": compiler_version(),
        **target,
    }


def firmware_files(core: Core) -> list[Path]:
    """The files of `firmware/` the core's firmware is built from: the common sources, its
    board's linker script and its board files."""
    names = sorted((*FIRMWARE_COMMON, core.linker_script, *core.board_sources))
    return [FIRMWARE_SOURCES / name for name in names]


def firmware_fingerprint(core: Core) -> dict[str, Any]:
    """Everything the firmware's counts depend on, save the emulator (the device records it).
    The sources' digest covers only the core's own files, so another board's files do not
    change it."""
    sources = hashlib.sha256()
    for path in firmware_files(core):
        sources.update(path.name.encode() + path.read_bytes())
    return {
        **library_fingerprint(core),
        "firmware_version": FIRMWARE_VERSION,
        "psram_address": f"{core.psram_address:#x}",
        "firmware_sources": sources.hexdigest()[:16],
    }


def mcu_dir() -> Path:
    """HWNAS_MCU_DIR, or `$HWNAS_HOME/mcu`: the extracted TFLM tree, libraries and firmware
    (several homes, or the test session's workers, may share one)."""
    override = os.environ.get("HWNAS_MCU_DIR")
    return Path(override).expanduser() if override else hwnas_home() / "mcu"


def _keyed_dir(kind: str, core: Core, fingerprint: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    return mcu_dir() / kind / f"{core.name}-{digest}"


TRANSPORTS = ("semihosting", "serial")


def ensure_firmware(
    core: Core, *, transport: str = "semihosting", jobs: int | None = None
) -> Firmware:
    """The cached firmware for `core`, built now (under file locks, so concurrent processes build
    it once) if this fingerprint was never built: the TFLM library first (minutes, once per
    library fingerprint), then the firmware's own two files linked against it (seconds).
    `transport`: "semihosting" (QEMU loads the job, one job per run) or "serial" (jobs arrive
    over the UART, one after another: QEMU's `-serial pty`, or a board's serial line).
    ValueError if it cannot be built here."""
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; valid: {', '.join(TRANSPORTS)}")
    if transport == "serial":
        check_serial_build(core)
    reason = unavailable_reason()
    if reason:
        raise ValueError(f"cannot build the MCU firmware: {reason}")
    jobs = jobs or os.cpu_count() or 1
    library = _ensure_library(core, jobs)
    target = _keyed_dir("firmware", core, {**firmware_fingerprint(core), "transport": transport})
    with _locked(target.with_name(target.name + ".lock")):
        if not (target / "firmware.json").is_file():
            _link_firmware(core, library, target, transport)
    return Firmware(target / "firmware.elf", json.loads((target / "firmware.json").read_text()))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _scratch_for(target: Path) -> Iterator[Path]:
    """A fresh folder beside `target` that becomes `target` when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        yield scratch
        shutil.rmtree(target, ignore_errors=True)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _ensure_library(core: Core, jobs: int) -> Path:
    target = _keyed_dir("tflm-lib", core, library_fingerprint(core))
    with _locked(target.with_name(target.name + ".lock")):
        if not (target / "library.json").is_file():
            _build_library(core, target, jobs)
    return target


def _build_library(core: Core, target: Path, jobs: int) -> None:
    start = time.perf_counter()
    tflm = _tflm_tree()
    with _scratch_for(target) as scratch:
        config = _tflm_config(tflm, core)
        (scratch / "Makefile").write_text(_library_makefile(tflm, config))
        _run(["make", "-s", f"-j{jobs}", "-C", str(scratch), "libtflm.a"], "TFLM library build")
        shutil.rmtree(scratch / "obj")
        info = {
            "fingerprint": library_fingerprint(core),
            "build_seconds": round(time.perf_counter() - start, 1),
            "build_jobs": jobs,
            "compiled_sources": len(config["sources"]),
            "cxxflags": _flags(tflm, config["CXXFLAGS"], config["INCLUDES"]),
            "ccflags": _flags(tflm, config["CCFLAGS"], config["INCLUDES"]),
        }
        write_json_atomically(scratch / "library.json", info)


def _link_firmware(core: Core, library: Path, target: Path, transport: str) -> None:
    with _scratch_for(target) as scratch:
        sources = [FIRMWARE_SOURCES / "profiler_main.cc", *_start_up(core)]
        defines: tuple[str, ...] = (f"-DHWNAS_PSRAM_ADDRESS={core.psram_address:#x}u",)
        if transport == "serial":
            sources.append(FIRMWARE_SOURCES / "serial.c")
            defines += ("-DHWNAS_SERIAL",)
        elf = _compile_and_link(core, library, sources, scratch / "firmware.elf", defines)
        lib = json.loads((library / "library.json").read_text())
        info = {
            "fingerprint": firmware_fingerprint(core),
            "transport": transport,
            "library_build_seconds": lib["build_seconds"],
            "library_build_jobs": lib["build_jobs"],
            "compiled_sources": lib["compiled_sources"],
            "sections": _section_sizes(elf),
        }
        write_json_atomically(scratch / "firmware.json", info)


def build_program(
    core: Core, sources: list[Path], elf: Path, *, link_map: Path | None = None
) -> Path:
    """An MCU project's sources (a `c-array` export's model_data.cc and main.cc, say) compiled
    with the firmware's flags and linked against the core's TFLM library and the firmware's
    start-up code and memory layout, so it runs on the same emulated board; with `link_map`,
    the linker writes its map there (every input section it kept, and where from)."""
    reason = unavailable_reason()
    if reason:
        raise ValueError(f"cannot build for the MCU: {reason}")
    library = _ensure_library(core, os.cpu_count() or 1)
    flags = (f"-Wl,-Map={link_map}",) if link_map else ()
    return _compile_and_link(core, library, [*sources, *_start_up(core)], elf, link_flags=flags)


def _start_up(core: Core) -> list[Path]:
    """The start-up code and the core's board files (the M55's turns its FPU and MVE on)."""
    return [FIRMWARE_SOURCES / "startup.c", *(FIRMWARE_SOURCES / n for n in core.board_sources)]


def _compile_and_link(
    core: Core,
    library: Path,
    sources: list[Path],
    elf: Path,
    defines: tuple[str, ...] = (),
    link_flags: tuple[str, ...] = (),
) -> Path:
    """Each source compiled with the library's flags (-O2; its folder on the include path),
    then linked with the library's architecture and float ABI, --gc-sections, against libtflm.a
    and the core's linker script (newlib's semihosting crt0: `rdimon.specs`)."""
    lib = json.loads((library / "library.json").read_text())
    objects = []
    with tempfile.TemporaryDirectory(prefix="hwnas-mcu-obj-") as scratch:
        for index, source in enumerate(sources):
            obj = Path(scratch) / f"{index}-{source.stem}.o"
            cxx = source.suffix in (".cc", ".cpp")
            tool = "arm-none-eabi-g++" if cxx else "arm-none-eabi-gcc"
            flags = shlex.split(lib["cxxflags"] if cxx else lib["ccflags"])
            _run([tool, *flags, *defines, f"-I{source.parent}", "-O2", "-c", str(source), "-o", str(obj)],
                 f"compile {source.name}")  # fmt: skip
            objects.append(str(obj))
        arch = [f for f in shlex.split(lib["ccflags"]) if f.startswith(LINK_ARCH_FLAGS)]
        script = FIRMWARE_SOURCES / core.linker_script
        _run(["arm-none-eabi-g++", *arch, "--specs=rdimon.specs", "-T", str(script),
              "-Wl,--gc-sections", *link_flags, "-o", str(elf), *objects,
              str(library / "libtflm.a"), "-lm"], "link")  # fmt: skip
    return elf


def _tflm_tree() -> Path:
    """The extracted `tflite-micro/` tree: HWNAS_TFLM_SOURCES's, or the kit's extracted once
    into HWNAS_HOME by its own setup.sh (which checks the tarballs' checksums)."""
    override = sources_override()
    if override is not None:
        return override / "tflite-micro"
    dest = mcu_dir() / f"tflm-{tflm_commit()}"
    with _locked(dest.with_name(dest.name + ".lock")):
        if not (dest / "tflite-micro").is_dir():
            shutil.rmtree(dest, ignore_errors=True)
            _run(["bash", str(kit_dir() / "setup.sh"), str(dest)], "TFLM kit setup")
    return dest / "tflite-micro"


def _tflm_config(tflm: Path, core: Core) -> dict[str, Any]:
    """Ask TFLM's Makefile for the library's sources and flags (the core's target, CMSIS-NN)."""
    variables = ("CXXFLAGS", "CCFLAGS", "INCLUDES")
    command = ["make", "-s", "-f", TFLM_MAKEFILE, *_tflm_target(core)]
    command += ["list_library_sources", "list_third_party_sources"]
    command += [f"print-{name}" for name in variables]
    # TFLM's Makefile runs python3 with numpy and pillow: this interpreter's environment has them.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    lines = _run(command, "TFLM configuration", cwd=tflm, env=env).splitlines()
    lines = [line for line in lines if line.strip() and "already exists" not in line]
    values = {name: _value(lines, name) for name in variables}
    listed = [line for line in lines if "=" not in line.split()[0]]
    library, third_party = listed[0].split(), listed[1].split()
    return {**values, "sources": _selected(library) + _selected_cmsis_nn(third_party)}


def _tflm_target(core: Core) -> list[str]:
    return [
        f"TARGET={core.tflm_target}",
        f"TARGET_ARCH={core.cpu}",
        "OPTIMIZED_KERNEL_DIR=cmsis_nn",
    ]


def _value(lines: list[str], name: str) -> str:
    for line in lines:
        if line.startswith(f"{name}="):
            return line[len(name) + 1 :]
    raise ValueError(f"TFLM's Makefile printed no {name}")


def _selected(sources: list[str]) -> list[str]:
    """The core sources, less signal processing and test helpers, and the kernels in the set."""
    keep = set(KERNEL_SET) | set(KERNEL_SUPPORT) | {f"{k}_common" for k in KERNEL_SET}
    chosen = []
    for source in sources:
        if any(part in source for part in SKIPPED_CORE_PARTS):
            continue
        is_kernel = "/kernels/" in source and "/kernels/internal/" not in source
        if is_kernel and Path(source).stem not in keep:
            continue
        chosen.append(source)
    return chosen


def _selected_cmsis_nn(sources: list[str]) -> list[str]:
    return [s for s in sources if not any(part in s for part in SKIPPED_CMSIS_NN)]


def _flags(tflm: Path, flags: str, includes: str) -> str:
    """TFLM's flags with its relative include folders made absolute."""
    absolute = [
        f"-I{tflm / flag[2:]}" if flag.startswith("-I") and not flag[2:].startswith("/") else flag
        for flag in includes.split()
    ]
    return " ".join([flags, *absolute])


def _library_makefile(tflm: Path, config: dict[str, Any]) -> str:
    """One rule per object, -Os for the framework and -O2 for kernels and CMSIS-NN as TFLM's own
    build does, archived into libtflm.a."""
    rules, objects = [], []
    for source in config["sources"]:
        obj = "obj/" + source.rsplit(".", 1)[0] + ".o"
        objects.append(obj)
        level = "-O2" if ("/kernels/" in source or "cmsis_nn/Source" in source) else "-Os"
        tool = "$(CXX) $(CXXFLAGS)" if source.endswith(".cc") else "$(CC) $(CCFLAGS)"
        rules.append(f"{obj}: {tflm / source}\n\t@mkdir -p $(dir $@)\n\t{tool} {level} -c $< -o $@")
    head = [
        "CXX := arm-none-eabi-g++",
        "CC := arm-none-eabi-gcc",
        f"CXXFLAGS := {_flags(tflm, config['CXXFLAGS'], config['INCLUDES'])}",
        f"CCFLAGS := {_flags(tflm, config['CCFLAGS'], config['INCLUDES'])}",
        f"OBJECTS := {' '.join(objects)}",
        "libtflm.a: $(OBJECTS)",
        "\tarm-none-eabi-ar rcs $@ $(OBJECTS)",
    ]
    return "\n".join(head + rules) + "\n"


def _section_sizes(elf: Path) -> dict[str, int]:
    """text, data and bss bytes of the ELF (`arm-none-eabi-size`, Berkeley format)."""
    out = _run(["arm-none-eabi-size", str(elf)], "size").splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def _run(
    command: list[str],
    what: str,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-20:]
        raise RuntimeError(f"{what} failed ({done.returncode}):\n" + "\n".join(tail))
    return done.stdout
