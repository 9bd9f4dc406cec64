"""Reading the linker's map: the input sections --gc-sections kept in flash, named without the
build folder, alignment fill per output section; discarded sections and RAM left out."""

from __future__ import annotations

from profilers.mcu.flash import map_sections

MAP = """Discarded input sections
 .text.unused   0x00000000       0x40 libtflm.a(conv.o)

Linker script and memory map

.text           0x00000040      0x100
 *(.text*)
 .text._ZN6tflite4InitEv
                0x00000040       0x1c /tmp/x/libtflm.a(conv.o)
                0x00000040                tflite::Init()
 *fill*         0x0000005c        0x4
 .text.main     0x00000060       0x20 /tmp/hwnas-mcu-obj-1/1-main.o
.bss            0x00001000      0x400
 .bss           0x00001000      0x400 /tmp/hwnas-mcu-obj-1/1-main.o
"""


def test_the_linker_map_gives_the_kept_input_sections_in_flash() -> None:
    assert map_sections(MAP) == {
        (".text._ZN6tflite4InitEv", "libtflm.a(conv.o)"): 0x1C,
        ("*fill*", ".text"): 4,
        (".text.main", "1-main.o"): 0x20,
    }
