"""`hwnas arch`, `hwnas predict`, `hwnas measure`: architectures, their predicted and measured
latency."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from lut.measurement import Measurement
from lut.predictor import Prediction, predict
from lut.store import Device, LutStore
from service.cli.common import (
    add_arch_inputs,
    add_tenant_argument,
    make_backend,
    open_store,
    positive_int,
    print_json_line,
    progress_bar,
    read_arch_inputs,
    stdout,
    user_errors,
)
from service.cli.mcu_options import add_mcu_arguments, backend_options

# What the mcu backend's measurements add to a JSON line: the emulated board's counts and bytes.
MCU_FIELDS = ("instructions", "arena_bytes", "flash_bytes", "clock_mhz", "estimate")


def register(sub: Any) -> None:
    parser = sub.add_parser("arch", help="sample, decode and list architectures and spaces")
    arch_sub = parser.add_subparsers(dest="arch_command", metavar="ARCH_COMMAND")
    arch_sub.required = True
    p = arch_sub.add_parser("random", help="random architectures of a space, one per line")
    p.add_argument("--space", required=True, help="search space, e.g. fbnet or fbnet@r160_w0.75")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-n", "--count", type=int, default=1, help="how many (default 1)")
    p.set_defaults(handler=run_random)
    p = arch_sub.add_parser("show", help="decode an architecture: its ops and shapes")
    add_arch_inputs(p)
    p.set_defaults(handler=run_show)
    p = arch_sub.add_parser("spaces", help="the registered search spaces")
    p.set_defaults(handler=run_spaces)

    p = sub.add_parser("predict", help="LUT-predicted latency of architectures on a device")
    add_arch_inputs(p)
    p.add_argument("--device", required=True, help="device whose LUT to use")
    p.add_argument("--backend", help="pick the LUT of this backend when a device has several")
    p.add_argument("--raw", action="store_true", help="ignore the calibration (fixed costs only)")
    p.add_argument("--json", action="store_true", help="one JSON object per architecture")
    p.set_defaults(handler=run_predict)

    p = sub.add_parser("measure", help="measure architectures end to end on this machine")
    add_arch_inputs(p)
    p.add_argument("--backend", required=True, help="runtime: onnxruntime, litert, torch, ...")
    p.add_argument("--threads", type=int, default=1, help="runtime threads (default 1)")
    p.add_argument(
        "--device",
        help="also store the results as end-to-end runs of this device (measured as its LUT "
        "was: with its drift reference, if it has one)",
    )
    p.add_argument("--quick", action="store_true", help="a fast, looser protocol")
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=1,
        help="time every architecture this many times, in rounds over all of them (each round "
        "in its own shuffled order, each run in a fresh session), and pool the samples: on a "
        "shared or virtual CPU one run of a network varies by several percent from the next "
        "(default 1)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per architecture")
    add_mcu_arguments(p)
    add_tenant_argument(p)
    p.set_defaults(handler=run_measure)


def run_random(args: argparse.Namespace) -> int:
    from search.spaces.base import space_from_string

    if not 1 <= args.count <= 100_000:
        raise _usage("-n must be between 1 and 100000")
    with user_errors():
        space = space_from_string(args.space)
    for arch in space.iter_random(args.seed, args.count):
        stdout.print(arch.to_string(), soft_wrap=True)
    return 0


def run_show(args: argparse.Namespace) -> int:
    for text in read_arch_inputs(args):
        space, arch = _parse(text)
        table = Table("#", "op", "input", "output", title=arch.to_string())
        for i, spec in enumerate(space.decode(arch)):
            table.add_row(str(i), spec.short(), str(spec.input_shape), str(spec.output_shape))
        stdout.print(table)
    return 0


def run_spaces(args: argparse.Namespace) -> int:
    from search.spaces.base import space_from_string, space_names

    table = Table("space", "defaults", "layers", "ops", "description")
    for name in space_names():
        space = space_from_string(name)
        table.add_row(
            name,
            space.params.to_header(),
            str(len(space.layers)),
            str(len(space.distinct_opspecs())),
            space.definition.description,
        )
    stdout.print(table)
    return 0


def _parse(text: str) -> Any:
    from search.spaces.base import parse_architecture

    with user_errors():
        return parse_architecture(text)


def _usage(message: str) -> Exception:
    from service.cli.common import UsageProblem

    return UsageProblem(message)


def predict_architecture(store: LutStore, device: Device, text: str, *, raw: bool) -> Prediction:
    space, arch = _parse(text)
    specs = space.decode(arch)
    calibration = None if raw else store.calibration(device, space.spec_string)
    with user_errors():
        return predict(
            specs, store.lookup(device, specs), device.fixed_costs, calibration, device=device.name
        )


def run_predict(args: argparse.Namespace) -> int:
    items = read_arch_inputs(args)
    store = open_store()
    with user_errors():
        device = store.resolve_device(args.device, args.backend)
    parsed = [(text, _parse(text)[1].to_string()) for text in items]  # validate all first
    rows = []
    for _text, arch in parsed:
        p = predict_architecture(store, device, arch, raw=args.raw)
        row = {
            "arch": arch,
            "latency_ms": p.latency_ms,
            "device": device.name,
            "backend": device.backend,
            **p.to_dict(),
            **_predicted_memory(store, device, arch),
        }
        if args.json:
            print_json_line(row)
        rows.append(row)
    if not args.json:
        memory = any("sram_bytes" in r for r in rows)
        table = Table(
            "arch", "predicted ms", "LUT sum ms", "ops", "calibrated",
            *(["SRAM KiB", "flash KiB"] if memory else []),
        )  # fmt: skip
        for r in rows:
            table.add_row(
                _short(r["arch"]),
                f"{r['latency_ms']:.4f}",
                f"{r['raw_sum_ms']:.4f}",
                str(r["n_ops"]),
                "yes" if r["calibrated"] else "no",
                *([_kib(r.get("sram_bytes")), _kib(r.get("flash_bytes"))] if memory else []),
            )
        stdout.print(table)
    return 0


def _predicted_memory(store: LutStore, device: Device, text: str) -> dict[str, Any]:
    """On an MCU device whose LUT holds each op's arena: the architecture's SRAM (tensor arena)
    and flash composed from it (`search.memory_budgets.arch_memory`)."""
    if device.backend != "mcu":
        return {}
    from search.memory_budgets import arch_memory

    space, arch = _parse(text)
    try:
        memory = arch_memory(store, device, space.decode(arch))
    except ValueError as exc:
        return {"memory_note": str(exc)}
    return {"sram_bytes": memory.sram_bytes, "flash_bytes": memory.flash_bytes}


def run_measure(args: argparse.Namespace) -> int:
    from profilers.e2e import measure_in_rounds
    from profilers.in_network import lut_fingerprint
    from profilers.runner import use_lut_drift_reference

    networks = [_parse(t) for t in read_arch_inputs(args)]
    backend = make_backend(args.backend, args.threads, args.quick, options=backend_options(args))
    store = open_store() if args.device else None
    device = None
    if store is not None:
        fingerprint = lut_fingerprint(store, args.device, backend)
        with user_errors():
            device = store.register_device(args.device, fingerprint, owner=args.tenant)
    rows = []
    with progress_bar() as progress, user_errors():
        if device is not None:
            use_lut_drift_reference(backend, device)
        task = progress.add_task("measuring", total=len(networks) * args.rounds, status="")

        def measured(i: int, m: Measurement) -> None:
            progress.advance(task)
            if args.rounds == 1:  # stream: one line as soon as each is measured
                rows.append(_measured_row(store, device, backend, networks[i], [m], args.json))

        runs = measure_in_rounds(backend, networks, args.rounds, measured)
        if args.rounds > 1:  # in the input's order
            rows = [
                _measured_row(store, device, backend, n, r, args.json)
                for n, r in zip(networks, runs, strict=True)
            ]
    if not args.json:
        table = Table(
            "arch", "median ms", "p10", "p90", "n", *(["rounds"] if args.rounds > 1 else [])
        )
        for r in rows:
            table.add_row(
                _short(r["arch"]),
                f"{r['median_ms']:.4f}",
                f"{r['p10_ms']:.4f}",
                f"{r['p90_ms']:.4f}",
                str(r["n"]),
                *(
                    [" ".join(f"{x:.4f}" for x in r["extra"]["rounds_median_ms"])]
                    if args.rounds > 1
                    else []
                ),
            )
        stdout.print(table)
    return 0


def _measured_row(
    store: LutStore | None,
    device: Device | None,
    backend: Any,
    network: tuple[Any, Any],
    runs: list[Measurement],
    as_json: bool,
) -> dict[str, Any]:
    """One architecture's result over its rounds: stored as an end-to-end run of `device` if
    given, printed as a JSON line with `as_json`."""
    space, parsed = network
    arch = parsed.to_string()
    m = Measurement.pooled(runs)
    if store is not None and device is not None:
        store.add_e2e(device, arch, space.spec_string, m)
    row = {
        "arch": arch,
        "latency_ms": m.median_ms,
        "backend": backend.name,
        "threads": backend.threads,
        **{k: m.extra[k] for k in MCU_FIELDS if k in m.extra},
        **m.to_dict(samples=False),
    }
    if as_json:
        print_json_line(row)
    return row


def _kib(value: int | None) -> str:
    return "—" if value is None else f"{value / 1024:.1f}"


def _short(arch: str, width: int = 70) -> str:
    return arch if len(arch) <= width else arch[: width - 1] + "…"
