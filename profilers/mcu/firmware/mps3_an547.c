/* Board support for QEMU's mps3-an547 (Cortex-M55, hard float, MVE): the FPU and MVE start
 * disabled, and the first floating-point or vector instruction would fault. Granting CP10/CP11
 * full access from `.preinit_array` runs before any constructor and before main(); newlib's
 * crt0 ahead of it (stack, heap, .bss) uses neither. */
#include <stdint.h>

#define CPACR (*(volatile uint32_t *)0xE000ED88)

static void hwnas_enable_fpu_and_mve(void) {
  CPACR |= 0xFu << 20;
  __asm__ volatile("dsb\n isb" ::: "memory");
}

__attribute__((section(".preinit_array"), used)) static void (*const hwnas_board_init)(void) =
    hwnas_enable_fpu_and_mve;
