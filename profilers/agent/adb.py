"""Android phones through adb: each file is pushed to the device once and timed there by LiteRT's
`benchmark_model` (pinned with `taskset`, as nn-Meter does); its output is parsed into the same
measurement record as the local timers'. The host runs the agent; the phone runs only the
benchmark binary.

`benchmark_model` prints statistics, not its runs, so a sample of the protocol is one
invocation: `--warmup_runs` warm-up runs, then `--num_runs` runs whose median (its mean, for
binaries that print no median) is the sample. The protocol's repeats-until-the-median's-CI
rule then runs over invocations (at least 6), and a drift reference pairs every invocation
with one of the reference model's.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lut.measurement import Measurement
from profilers.agent.client import TargetGone
from profilers.base import PROFILER_VERSION
from profilers.protocol import MeasureProtocol, time_runs
from profilers.timers.base import REFERENCE, FileTimer

DEFAULT_BINARY = "/data/local/tmp/benchmark_model"
DEFAULT_WORKDIR = "/data/local/tmp/hwnas"
RUNS_PER_SAMPLE = 10
# adb's own words for a device that went away (unplugged, rebooting, unauthorised).
_GONE = re.compile(
    r"device (?:'[^']*' )?not found|no devices/emulators found|device offline|"
    r"device unauthorized|device still authorizing|closed|protocol fault",
    re.IGNORECASE,
)
PROPS = {
    "model": "ro.product.model",
    "manufacturer": "ro.product.manufacturer",
    "soc": "ro.soc.model",
    "board": "ro.board.platform",
    "android_version": "ro.build.version.release",
    "sdk": "ro.build.version.sdk",
    "abi": "ro.product.cpu.abi",
}


class BenchmarkFailed(RuntimeError):
    """benchmark_model ran but did not time the file (its last lines say why)."""


class AdbDevice:
    """One device, by serial, through the `adb` executable."""

    def __init__(self, adb: str = "adb", serial: str | None = None, timeout_s: float = 600):
        self.adb, self.serial, self.timeout_s = adb, serial, timeout_s

    def _command(self, *args: str) -> list[str]:
        return [self.adb, *(["-s", self.serial] if self.serial else []), *args]

    def run(self, *args: str, timeout_s: float | None = None) -> str:
        """adb's output; TargetGone when the device is not there, RuntimeError otherwise."""
        try:
            done = subprocess.run(
                self._command(*args),
                capture_output=True,
                text=True,
                timeout=timeout_s or self.timeout_s,
            )
        except subprocess.TimeoutExpired:
            limit = timeout_s or self.timeout_s
            raise TargetGone(f"adb {args[0]} did not answer in {limit:g} s") from None
        except FileNotFoundError:
            message = f"no adb executable {self.adb!r}: install Android's platform-tools"
            raise RuntimeError(message) from None
        output = done.stdout + done.stderr
        if _GONE.search(output) and (done.returncode != 0 or output.startswith("error:")):
            raise TargetGone(output.strip().splitlines()[-1])
        if done.returncode != 0:
            raise RuntimeError(f"adb {' '.join(args)[:200]} failed: {output.strip()[-500:]}")
        return done.stdout

    def shell(self, command: str, timeout_s: float | None = None) -> str:
        return self.run("shell", command, timeout_s=timeout_s)

    def push(self, local: Path, remote: str) -> None:
        self.run("push", str(local), remote)

    def online(self) -> bool:
        try:
            return self.run("get-state", timeout_s=10).strip() == "device"
        except (TargetGone, RuntimeError):
            return False

    def properties(self) -> dict[str, str]:
        """`getprop` as a dict."""
        found = re.findall(r"^\[([^\]]+)\]: \[([^\]]*)\]", self.shell("getprop"), re.MULTILINE)
        return dict(found)


@dataclass(frozen=True)
class BenchmarkRun:
    """What one benchmark_model invocation printed (times in ms)."""

    count: int
    avg_ms: float
    median_ms: float | None
    std_ms: float | None
    init_ms: float | None
    first_ms: float | None
    peak_memory_mb: float | None
    version: str | None
    op_profile: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sample_ms(self) -> float:
        return self.median_ms if self.median_ms is not None else self.avg_ms


_STATS = re.compile(r"count=(\d+)(?P<rest>.*)")
_FIELD = re.compile(r"(\w+)=([-+0-9.e]+)")
_TIMINGS = re.compile(
    r"Inference timings in us: Init: ([0-9.e+]+), First inference: ([0-9.e+]+), "
    r"Warmup \(avg\): ([0-9.e+]+), Inference \(avg\): ([0-9.e+]+)"
)
_MEMORY = re.compile(
    r"(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): "
    r"init=([0-9.e+]+) overall=([0-9.e+]+)"
)
_VERSION = re.compile(r"(?:Tensorflow|TensorFlow|LiteRT) Version\s*:\s*(\S+)")


def parse_benchmark_output(text: str) -> BenchmarkRun:
    """The regular runs' statistics of benchmark_model's log (the last `count=` line), the
    summary line, the memory footprint, the version where printed, and the per-op table of
    `--enable_op_profiling` ("Run Order") where present."""
    stats = [m for m in (_STATS.search(line) for line in text.splitlines()) if m]
    timings = _TIMINGS.search(text)
    if not stats or timings is None:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise BenchmarkFailed(f"benchmark_model timed nothing: {tail[-500:]}")
    last = stats[-1]
    fields = {k: float(v) for k, v in _FIELD.findall(last.group("rest"))}
    memory = _MEMORY.search(text)
    version = _VERSION.search(text)
    return BenchmarkRun(
        count=int(last.group(1)),
        avg_ms=fields.get("avg", float(timings.group(4))) / 1e3,
        median_ms=fields["median"] / 1e3 if "median" in fields else None,
        std_ms=fields["std"] / 1e3 if "std" in fields else None,
        init_ms=float(timings.group(1)) / 1e3,
        first_ms=float(timings.group(2)) / 1e3,
        peak_memory_mb=float(memory.group(2)) if memory else None,
        version=version.group(1) if version else None,
        op_profile=_run_order(text),
    )


def _run_order(text: str) -> list[dict[str, Any]]:
    """The rows of the first "Run Order" table: node type, avg ms, name."""
    rows: list[dict[str, Any]] = []
    inside = False
    for line in text.splitlines():
        if "= Run Order =" in line:
            if rows:
                break
            inside = True
            continue
        if inside:
            if "=====" in line:
                break
            cells = [c.strip() for c in line.split("\t") if c.strip()]
            if len(cells) >= 8 and not cells[0].startswith("["):
                try:
                    rows.append({"type": cells[0], "avg_ms": float(cells[2]), "name": cells[-1]})
                except ValueError:
                    continue
    return rows


def bridge_protocol(protocol: MeasureProtocol) -> MeasureProtocol:
    """The protocol over invocations: no invocation-level warm-up (each invocation warms up
    itself, `--warmup_runs`), and the CI checked every 2 samples from 6 on."""
    return replace(protocol, warmup_runs=0, warmup_s=0.0, min_runs=6, check_every=2)


class BenchmarkModelTimer(FileTimer):
    """LiteRT on an Android device: `benchmark_model` over adb."""

    name = "litert"
    suffix = ".tflite"
    layout = "NHWC"

    def __init__(
        self,
        device: AdbDevice,
        *,
        binary: str = DEFAULT_BINARY,
        workdir: str = DEFAULT_WORKDIR,
        cpus: str | None = None,
        runs_per_sample: int = RUNS_PER_SAMPLE,
        op_profiling: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if cpus is not None and not re.fullmatch(r"[0-9a-fA-F]{1,16}", cpus):
            raise ValueError(f"--cpus is taskset's hexadecimal CPU mask (e.g. f0), not {cpus!r}")
        if runs_per_sample < 1:
            raise ValueError("runs per sample must be at least 1")
        self.adb, self.binary, self.workdir = device, binary, workdir.rstrip("/")
        self.cpus, self.runs_per_sample, self.op_profiling = cpus, runs_per_sample, op_profiling
        self._pushed: set[str] = set()
        self._binary_identity: tuple[str | None, str] | None = None
        self._adb_reference: tuple[Path, Callable[[], float]] | None = None

    # -- what the device is ------------------------------------------------------------------
    def binary_identity(self) -> tuple[str | None, str]:
        """(the version the binary prints, if any; its sha256)."""
        if self._binary_identity is None:
            listed = self.adb.shell(f"sha256sum {shlex.quote(self.binary)} 2>&1 || true")
            digest = listed.split()[0] if listed.split() else ""
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise RuntimeError(
                    f"no benchmark_model at {self.binary} on the device ({listed.strip()[:200]}): "
                    "push it there (see README, 'Android phones') or pass --benchmark-binary"
                )
            probe = self.adb.shell(f"{shlex.quote(self.binary)} --help 2>&1 | head -n 20 || true")
            version = _VERSION.search(probe)
            self._binary_identity = (version.group(1) if version else None, digest)
        return self._binary_identity

    def runtime_version(self) -> str:
        version, digest = self.binary_identity()
        return f"benchmark_model {version or 'unversioned'} (sha256 {digest[:16]})"

    def provider(self) -> str:
        return "XNNPACK (benchmark_model)"

    def fingerprint(self) -> dict[str, Any]:
        props = self.adb.properties()
        device = {key: props.get(prop) for key, prop in PROPS.items()}
        cores = self.adb.shell("nproc 2>/dev/null || true").strip()
        return {
            "backend": self.name,
            "runtime_version": self.runtime_version(),
            "provider": self.provider(),
            "threads": self.threads,
            "precision": "fp32",
            "cpu_model": device["soc"] or device["board"] or props.get("ro.hardware"),
            "cpu_cores": int(cores) if cores.isdigit() else 0,
            "machine": device["abi"],
            "system": f"Android {device['android_version']}",
            "accelerator": None,
            "bridge": "adb",
            "device_model": f"{device['manufacturer']} {device['model']}",
            "sdk": device["sdk"],
            "cpus": self.cpus,
            "benchmark_sha256": self.binary_identity()[1],
            "profiler_version": PROFILER_VERSION,
        }

    # -- timing on the device ----------------------------------------------------------------
    def load(self, path: Path, example: Any = None) -> Callable[[], object]:
        raise NotImplementedError("files run on the device, by benchmark_model")

    def warm_up_runtime(self) -> None:
        """Nothing to warm up here: each invocation is a fresh process on the device."""

    def _remote(self, path: Path) -> str:
        """The file on the device, pushed once (named by its content)."""
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        remote = f"{self.workdir}/{digest}{self.suffix}"
        if remote not in self._pushed:
            self.adb.shell(f"mkdir -p {shlex.quote(self.workdir)}")
            self.adb.push(Path(path), remote)
            self._pushed.add(remote)
        return remote

    def benchmark(self, remote: str) -> BenchmarkRun:
        """One invocation on the device."""
        protocol = self.protocol
        args = [
            self.binary,
            f"--graph={remote}",
            f"--num_threads={self.threads}",
            f"--warmup_runs={max(protocol.warmup_runs, 1)}",
            f"--warmup_min_secs={protocol.warmup_s:g}",
            f"--num_runs={self.runs_per_sample}",
            "--min_secs=0",
            f"--max_secs={max(protocol.time_cap_s, 1.0):g}",
            f"--enable_op_profiling={'true' if self.op_profiling else 'false'}",
        ]
        command = " ".join(shlex.quote(a) for a in args)
        if self.cpus is not None:
            command = f"taskset {self.cpus} {command}"
        try:
            return parse_benchmark_output(self.adb.shell(f"{command} 2>&1"))
        except TargetGone:
            self._pushed.clear()  # a rebooted device may have lost its files
            raise

    def _invocations(self, remote: str, runs: list[BenchmarkRun]) -> Callable[[], float]:
        def sample() -> float:
            run = self.benchmark(remote)
            runs.append(run)
            return run.sample_ms

        return sample

    def time_file(
        self, path: Path, example: Any = None, *, extra: dict[str, Any] | None = None
    ) -> Measurement:
        remote = self._remote(path)
        runs: list[BenchmarkRun] = []
        measurement = time_runs(
            self._invocations(remote, runs),
            bridge_protocol(self.protocol),
            extra=extra,
            reference=self.drift_reference(),
        )
        peaks = [r.peak_memory_mb for r in runs if r.peak_memory_mb is not None]
        recorded = {**self._extra(path, runs), **measurement.extra}
        if peaks:
            recorded["peak_memory_method"] = "benchmark_model-footprint"
        return Measurement.from_samples(
            measurement.samples_ms,
            warmup=max(self.protocol.warmup_runs, 1),  # each invocation's own warm-up runs
            peak_memory_bytes=int(max(peaks) * 2**20) if peaks else None,
            extra=recorded,
        )

    def _extra(self, path: Path, runs: Sequence[BenchmarkRun]) -> dict[str, Any]:
        first = runs[0] if runs else None
        extra: dict[str, Any] = {
            "backend": self.name,
            "provider": self.provider(),
            "threads": self.threads,
            "cpus": self.cpus,
            "bridge": "adb",
            "model_file": path.name,
            "sample": f"median of {self.runs_per_sample} runs of one benchmark_model invocation",
            "peak_memory_method": "unsupported",
        }
        if first is not None:
            extra.update(init_ms=first.init_ms, first_inference_ms=first.first_ms)
            if first.op_profile:
                extra["op_profile"] = first.op_profile
        return extra

    def measure_drift_reference(self) -> float:
        return time_runs(self._reference_timer(), bridge_protocol(self.protocol)).median_ms

    def _reference_timer(self) -> Callable[[], float]:
        if self.support_files is None:
            raise ValueError("the adb timer has no drift reference model")
        path = self.support_files(REFERENCE)
        if self._adb_reference is None or self._adb_reference[0] != path:
            self._adb_reference = (path, self._invocations(self._remote(path), []))
        return self._adb_reference[1]

    def wait_until_back(self, stop: Any, log: Callable[[str], None], poll_s: float = 2.0) -> None:
        """Block until the device answers again (or `stop` is set)."""
        log(f"waiting for device {self.adb.serial or '(the only one)'} to come back")
        while not stop.is_set() and not self.adb.online():
            stop.wait(poll_s)
        if not stop.is_set():
            self._pushed.clear()
            log("device is back")
