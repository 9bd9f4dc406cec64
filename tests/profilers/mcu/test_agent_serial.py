"""`hwnas-agent --via serial`: the agent drives a board running the serial firmware — here the
emulated board on QEMU's `-serial pty` — for a real server, and its LUT entries hold the same
counts as the mcu backend's runs on QEMU's loader."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lut.store import LutStore
from profilers.agent.main import main
from profilers.backends.mcu_backend import McuBackend
from profilers.mcu.build import Firmware, ensure_firmware
from profilers.mcu.emulator import emulated_serial_board
from profilers.mcu.toolchain import get_core
from service.crud.agent_tasks import create_opspec_tasks
from tests.profilers.mcu.test_backend import CONV, LINEAR
from tests.service.agent_helpers import wait_for
from tests.service.fixtures import REPO, Server, service_env, start_server, stop_process


def test_serial_bridge_needs_the_mcu_backend_and_a_port(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HWNAS_AGENT_KEY", "k")
    base = ["--server", "http://127.0.0.1:9", "--name", "board", "--via", "serial"]
    assert main([*base, "--backend", "litert", "--port", "/dev/null"]) == 2
    assert "use --backend mcu" in capsys.readouterr().err
    assert main([*base, "--backend", "mcu"]) == 2
    assert "needs --port" in capsys.readouterr().err
    assert main([*base, "--backend", "mcu", "--port", "/dev/no-such-tty"]) == 2
    assert "no such serial device" in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serial_agent_profiles_ops_on_the_emulated_board_over_a_pty(
    m4_firmware: Firmware, mcu_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("serial", reason="pyserial is not installed")
    core = get_core("m4")
    serial_build = ensure_firmware(core, transport="serial")
    env = service_env(tmp_path / "home")
    base_url, process = start_server(env)
    server = Server(base_url, env, process)
    log = tmp_path / "agent.log"
    store = LutStore(f"sqlite:///{tmp_path / 'home' / 'hwnas.db'}")
    with emulated_serial_board(core, serial_build.elf) as port:
        command = [sys.executable, "-m", "profilers.agent.main", "--server", base_url]
        command += ["--name", "board-emulated", "--backend", "mcu", "--via", "serial"]
        command += ["--port", port, "--poll", "0.2"]
        agent_env = {
            **env,
            "HWNAS_AGENT_KEY": server.key("agent"),
            "HWNAS_MCU_DIR": str(mcu_dir),
        }
        agent = subprocess.Popen(
            command, env=agent_env, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: store.devices("board-emulated"), 180, "registration", log)
            device = store.resolve_device("board-emulated")
            assert device.fingerprint["bridge"] == "serial"
            assert device.fingerprint["serial_port"] == port
            assert device.fingerprint["firmware"] == serial_build.fingerprint["firmware_sources"]
            create_opspec_tasks(store, device, [CONV, LINEAR], 8, None)
            wait_for(lambda: not store.missing(device, [CONV, LINEAR]), 300, "both ops", log)
            entries = store.lookup(device, [CONV, LINEAR])
        finally:
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(timeout=120)
            store.close()
            stop_process(process)
    assert code == 0, log.read_text()[-3000:]
    local = McuBackend(cache_dir=tmp_path / "local")
    for spec in (CONV, LINEAR):
        expected = local.measure_op(spec).extra
        got = entries[spec.key].extra
        assert got["instructions"] == expected["instructions"]
        assert got["op_instructions"] == expected["op_instructions"]
        assert got["arena_bytes"] == expected["arena_bytes"]
