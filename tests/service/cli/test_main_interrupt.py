"""The CLI's top level: a Ctrl-C that interrupts a C extension's import (which then raises
ImportError from the KeyboardInterrupt, as onnxruntime's does) ends it as a Ctrl-C does —
exit 130 and one line, no traceback — while any other ImportError still propagates."""

from __future__ import annotations

import argparse

import pytest

from service.cli import main as cli_main


def _run_handler(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> int:
    def handler(_: argparse.Namespace) -> int:
        raise error

    parser = argparse.ArgumentParser()
    parser.set_defaults(handler=handler)
    monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
    return cli_main.main([])


def _import_interrupted() -> ImportError:
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("initialization failed") from interrupt
    except ImportError as exc:
        return exc


def test_an_import_a_ctrl_c_interrupted_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_handler(monkeypatch, _import_interrupted()) == 130
    assert capsys.readouterr().err == "hwnas: interrupted; everything measured so far is saved\n"


def test_any_other_import_error_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportError, match="no module"):
        _run_handler(monkeypatch, ImportError("no module named x"))
