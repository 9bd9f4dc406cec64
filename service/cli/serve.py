"""`hwnas serve` (the REST API plus local workers), `hwnas worker` (more workers, here or on
other machines sharing the database and artifact directory) and `hwnas keys` (API keys)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from service.cli.common import EnvironmentProblem, UsageProblem, stderr


def register(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the REST API with local workers",
        description="Run the REST API (uvicorn) and HWNAS_WORKERS local worker processes. "
        "Settings come from HWNAS_* variables (HWNAS_DATABASE_URL, HWNAS_ARTIFACTS_DIR, "
        "HWNAS_ENVIRONMENT, HWNAS_ADMIN_KEY, ...).",
    )
    serve.add_argument("--host", help="address to bind (default HWNAS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default HWNAS_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="local worker processes (default 1)")
    serve.set_defaults(handler=run_serve)

    worker = sub.add_parser(
        "worker",
        help="run a job worker against the service database",
        description="Claim queued jobs from the database (HWNAS_DATABASE_URL) and run them, "
        "writing artifacts under HWNAS_ARTIFACTS_DIR. Run several on shared PostgreSQL and a "
        "shared artifact directory to scale out.",
    )
    worker.add_argument("--once", action="store_true", help="run at most one job, then exit")
    worker.add_argument("--id", dest="worker_id", help="worker name (default host:pid)")
    worker.set_defaults(handler=run_worker)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    keys_sub.required = True
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--scope", required=True, help="admin, user or agent")
    create.add_argument("--tenant", default="default", help="the tenant the key acts for")
    create.add_argument("--json", action="store_true", help="print id and key as JSON")
    create.set_defaults(handler=run_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.set_defaults(handler=run_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.set_defaults(handler=run_keys_revoke)


def load_service_settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from service.config import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise UsageProblem(f"bad setting {where}: {message}" if where else message) from None


def _engine(settings: Any) -> Any:
    from lut.store import DatabaseUnavailable, LutStore

    try:
        return LutStore(settings.database_url).engine
    except DatabaseUnavailable as exc:
        raise EnvironmentProblem(str(exc)) from None


def run_keys_create(args: argparse.Namespace) -> int:
    from service.auth import create_key

    engine = _engine(load_service_settings())
    try:
        key_id, key = create_key(engine, args.scope, args.tenant)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    if args.json:
        print(json.dumps({"id": key_id, "key": key, "scope": args.scope, "tenant": args.tenant}))
    else:
        stderr.print(f"key {key_id} (scope {args.scope}, tenant {args.tenant}); shown only once:")
        print(key)
    return 0


def run_keys_list(_args: argparse.Namespace) -> int:
    from service.auth import list_keys

    for row in list_keys(_engine(load_service_settings())):
        revoked = f" revoked {row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else ""
        print(f"{row['id']}  {row['scope']:<5}  {row['tenant']}  {row['prefix']}{revoked}")
    return 0


def run_keys_revoke(args: argparse.Namespace) -> int:
    from service.auth import revoke_key

    if not revoke_key(_engine(load_service_settings()), args.key_id):
        raise UsageProblem(f"no unrevoked key with id {args.key_id!r} (see `hwnas keys list`)")
    stderr.print(f"revoked {args.key_id}")
    return 0


def run_worker(args: argparse.Namespace) -> int:
    import logging

    from service.worker.runner import Worker

    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("hwnas").setLevel(logging.INFO)
    settings = load_service_settings()
    _engine(settings)  # fails early, in one line, if the database is unreachable
    worker = Worker(settings, worker_id=args.worker_id)
    # SIGTERM or Ctrl-C: hand the current job back to the queue (another worker resumes it)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run(once=args.once)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lut.store import DatabaseUnavailable
    from service.app import create_app

    settings = load_service_settings(host=args.host, port=args.port, workers=args.workers)
    _check_port_free(settings.host, settings.port)
    try:
        app = create_app(settings)
    except DatabaseUnavailable as exc:
        raise EnvironmentProblem(str(exc)) from None
    pool = LocalWorkers(settings.workers)
    stderr.print(
        f"hwnas API on http://{settings.host}:{settings.port} "
        f"({settings.database_url.split(':')[0]}, {settings.workers} local worker(s), "
        f"artifacts {settings.artifacts_dir})"
    )
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        pool.stop()
    return 0


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise EnvironmentProblem(f"cannot listen on {host}:{port}: {exc.strerror}") from None


class LocalWorkers:
    """`hwnas worker` processes beside the API (a search never blocks its event loop); one that
    dies is started again, at most once every RESTART_S per slot."""

    RESTART_S = 5.0

    def __init__(self, count: int) -> None:
        import threading

        self._lock = threading.Lock()  # no restart may slip in between stop()'s terminations
        self._preexec = _die_with_parent_hook()
        self.processes = [self._spawn(i) for i in range(count)]
        self._stopping = threading.Event()
        self._monitor = threading.Thread(target=self._watch, daemon=True)
        if count:
            self._monitor.start()

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        name = f"local-{os.getpid()}-{index}"
        command = [sys.executable, "-m", "service.cli", "worker", "--id", name]
        return subprocess.Popen(command, env=dict(os.environ), preexec_fn=self._preexec)

    def _watch(self) -> None:
        while not self._stopping.wait(self.RESTART_S):
            with self._lock:
                for index, process in enumerate(self.processes):
                    if process.poll() is not None and not self._stopping.is_set():
                        code = process.returncode
                        stderr.print(f"local worker {index} exited ({code}); restarting")
                        self.processes[index] = self._spawn(index)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A `preexec_fn` that has a local worker SIGTERMed when the API process dies, even when
    it is killed (Linux's PR_SET_PDEATHSIG), so no worker outlives its server; None elsewhere.
    libc is loaded here, in the parent: the hook itself runs between fork and exec, where
    nothing may import or allocate."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigterm)

    return hook
