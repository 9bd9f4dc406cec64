"""The firmware's job image and report lines (no emulator needed)."""

from __future__ import annotations

import struct

import pytest

from profilers.mcu.protocol import JOB_MAGIC, FirmwareError, job_image, parse_report

REPORT = """hwnas firmware 1 arena 8388608
hwnas model 2816 arena_used 5392 input 3072
hwnas invoke 0 4200
hwnas invoke 1 4100
semihosting noise
hwnas op 0 PAD 300
hwnas op 1 CONV_2D 3800
hwnas output 4 00ff7f80
hwnas done 0
"""


def test_job_image_is_header_then_model() -> None:
    image = job_image(b"TFL3model", invokes=3, print_output=True)
    assert struct.unpack("<4I", image[:16]) == (JOB_MAGIC, 9, 3, 1)
    assert image[16:] == b"TFL3model"
    with pytest.raises(ValueError, match="invokes"):
        job_image(b"x", invokes=0)


def test_report_lines_are_parsed() -> None:
    report = parse_report(REPORT)
    assert report.arena_used_bytes == 5392
    assert report.model_bytes == 2816
    assert report.invoke_ticks == (4200, 4100)
    assert report.op_ticks == (("PAD", 300), ("CONV_2D", 3800))
    assert report.output == bytes([0, 255, 127, 128])


def test_firmware_error_and_unfinished_run_raise() -> None:
    with pytest.raises(FirmwareError, match="AllocateTensors failed"):
        parse_report("hwnas firmware 1 arena 8\nhwnas error AllocateTensors failed\n")
    with pytest.raises(FirmwareError, match="did not finish"):
        parse_report(REPORT.replace("hwnas done 0\n", ""))
