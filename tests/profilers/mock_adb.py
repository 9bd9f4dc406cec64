"""A MOCK of `adb` with one MOCK Android device, for the adb bridge's tests: no phone exists here.

It keeps the device's storage in a folder ($MOCK_ADB_STATE/storage), answers `getprop`, `nproc`,
`mkdir -p`, `sha256sum`, `taskset MASK ...` and `get-state`, and runs `benchmark_model` (a file
at the binary's path in its storage) by timing the pushed `.tflite` file with ai-edge-litert on
this machine, printing what LiteRT's benchmark_model prints (its log lines, the `count=` lines
with p5/median/p95, the summary line, the memory footprint, and the "Run Order" table with
--enable_op_profiling=true). A file $MOCK_ADB_STATE/gone_after holding N makes the device
disappear after N more benchmark invocations (adb's "device not found" from then on) until the
test deletes $MOCK_ADB_STATE/offline.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

STATE = Path(os.environ["MOCK_ADB_STATE"])
STORAGE = STATE / "storage"
PROPS = {
    "ro.product.model": "Mock Pixel",
    "ro.product.manufacturer": "MockCo",
    "ro.soc.model": "MockSoC 9000",
    "ro.board.platform": "mock",
    "ro.build.version.release": "15",
    "ro.build.version.sdk": "35",
    "ro.product.cpu.abi": "arm64-v8a",
}
VERSION = "2.19.0"


def on_device(path: str) -> Path:
    return STORAGE / path.lstrip("/")


def gone() -> bool:
    return (STATE / "offline").exists()


def count_invocation() -> None:
    counter = STATE / "gone_after"
    if not counter.exists():
        return
    left = int(counter.read_text()) - 1
    if left <= 0:
        counter.unlink()
        (STATE / "offline").touch()
    else:
        counter.write_text(str(left))


def benchmark_model(args: list[str]) -> int:
    options = dict(a.removeprefix("--").split("=", 1) for a in args if a.startswith("--"))
    graph = on_device(options["graph"])
    threads = int(options.get("num_threads", 1))
    warmup_runs = int(options.get("warmup_runs", 1))
    num_runs = int(options.get("num_runs", 50))
    profiling = options.get("enable_op_profiling", "false") == "true"
    print("INFO: STARTING!")
    print(f"INFO: Tensorflow Version : {VERSION}")
    print("INFO: Log parameter values verbosely: [0]")
    print(f"INFO: Num threads: [{threads}]")
    print(f"INFO: Graph: [{options['graph']}]")
    print(f"INFO: #threads used for CPU inference: [{threads}]")
    if not graph.is_file():
        print(f"ERROR: Could not open '{options['graph']}'.")
        print("ERROR: Benchmarking failed.")
        return 1
    print(f"INFO: Loaded model {options['graph']}")
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    start = time.perf_counter()
    interpreter = Interpreter(model_path=str(graph), num_threads=threads)
    interpreter.allocate_tensors()
    init_us = (time.perf_counter() - start) * 1e6
    print("INFO: Initialized TensorFlow Lite runtime.")
    print("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    print(f"INFO: The input model file size (MB): {graph.stat().st_size / 1e6:g}")
    print(f"INFO: Initialized session in {init_us / 1e3:g}ms.")
    detail = interpreter.get_input_details()[0]
    data = np.random.default_rng(0).standard_normal(detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], data)

    def runs(count: int) -> list[float]:
        times = []
        for _ in range(count):
            begin = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - begin) * 1e6)
        return times

    warm = runs(warmup_runs)
    print(
        f"INFO: Running benchmark for at least {warmup_runs} iterations and at least "
        f"{options.get('warmup_min_secs', '0.5')} seconds but terminate if exceeding "
        f"{options.get('max_secs', '150')} seconds."
    )
    print(f"INFO: {stats(warm)}\n")
    timed = runs(num_runs)
    print(
        f"INFO: Running benchmark for at least {num_runs} iterations and at least "
        f"{options.get('min_secs', '1')} seconds but terminate if exceeding "
        f"{options.get('max_secs', '150')} seconds."
    )
    print(f"INFO: {stats(timed)}\n")
    if profiling:
        avg_ms = statistics.mean(timed) / 1e3
        print("Profiling Info for Benchmark Initialization:")
        print("============================== Run Order ==============================")
        print(
            "\t             [node type]\t          [first]\t  [avg ms]\t      [%]\t    [cdf%]"
            "\t  [mem KB]\t[times called]\t[Name]"
        )
        print(
            f"\t     TfLiteXNNPackDelegate\t    {warm[0] / 1e3:.3f}\t    {avg_ms:.3f}\t"
            "  100.000%\t  100.000%\t     0.000\t        1\t[output]:0"
        )
        print(
            "============================== Top by Computation Time =============================="
        )
    print(
        f"INFO: Inference timings in us: Init: {init_us:g}, First inference: {warm[0]:g}, "
        f"Warmup (avg): {statistics.mean(warm):g}, Inference (avg): {statistics.mean(timed):g}"
    )
    print(
        "INFO: Note: as the benchmark tool itself affects memory footprint, the following is "
        "only APPROXIMATE to the actual memory footprint of the model at runtime. Take the "
        "information at your discretion."
    )
    print("INFO: Memory footprint delta from the start of the tool (MB): init=3.5 overall=4.25")
    count_invocation()
    return 0


def stats(times: list[float]) -> str:
    ordered = sorted(times)

    def pick(q: float) -> int:
        return int(ordered[min(int(q * len(ordered)), len(ordered) - 1)])

    first, curr = int(times[0]), int(times[-1])
    return (
        f"count={len(times)} first={first} curr={curr} min={int(ordered[0])} "
        f"max={int(ordered[-1])} avg={statistics.mean(times):g} "
        f"std={int(statistics.pstdev(times))} p5={pick(0.05)} median={pick(0.5)} p95={pick(0.95)}"
    )


def shell(command: str) -> int:
    """What the device's sh does with the few commands the bridge sends."""
    for part in command.split("||")[0].split("&&"):
        words = [w for w in shlex.split(part.replace("2>&1", "").replace("2>/dev/null", ""))]
        if "|" in words:
            words = words[: words.index("|")]
        if not words:
            continue
        if words[0] == "taskset":
            words = words[2:]
        name, args = words[0], words[1:]
        if name == "getprop":
            for key, value in PROPS.items():
                print(f"[{key}]: [{value}]")
        elif name == "nproc":
            print(os.cpu_count() or 1)
        elif name == "mkdir":
            on_device(args[-1]).mkdir(parents=True, exist_ok=True)
        elif name == "sha256sum":
            path = on_device(args[0])
            if not path.is_file():
                print(f"sha256sum: {args[0]}: No such file or directory")
                return 1
            print(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {args[0]}")
        elif on_device(name).is_file() and name.endswith("benchmark_model"):
            if args == ["--help"]:
                print(f"INFO: Tensorflow Version : {VERSION}")
                print("usage: benchmark_model --graph=...")
                continue
            code = benchmark_model(args)
            if code:
                return code
        else:
            print(f"/system/bin/sh: {name}: not found")
            return 127
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["-s"]:
        serial, argv = argv[1], argv[2:]
        if serial != "MOCK0001":
            print(f"error: device '{serial}' not found", file=sys.stderr)
            return 1
    if gone():
        print("error: device 'MOCK0001' not found", file=sys.stderr)
        return 1
    command, args = argv[0], argv[1:]
    if command == "get-state":
        print("device")
        return 0
    if command == "push":
        target = on_device(args[1])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(args[0]).read_bytes())
        print(f"{args[0]}: 1 file pushed, 0 skipped.")
        return 0
    if command == "shell":
        return shell(" ".join(args))
    print(f"adb: unknown command {command}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
