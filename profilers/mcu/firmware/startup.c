/* Cortex-M start-up for QEMU's mps2 boards: the vector table, reset into newlib's semihosting
 * crt0, and a 64-bit counter of SysTick ticks (the wrap interrupt counts the high part). Under
 * `-icount shift=0` every guest instruction advances virtual time by 1 ns, so the counter is a
 * deterministic function of the executed instructions (SYSCLK 25 MHz: 40 instructions a tick). */
#include <stdint.h>

extern void _start(void);
extern uint32_t __stack;

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_wraps;

void Reset_Handler(void) {
  _start();
  for (;;) {
  }
}

void SysTick_Handler(void) { systick_wraps++; }

/* A fault ends QEMU through semihosting SYS_EXIT, so the host sees an exit, not a hang. */
void Fault_Handler(void) {
  register uint32_t operation __asm__("r0") = 0x18;
  register uint32_t reason __asm__("r1") = 0x20023;
  __asm__ volatile("bkpt 0xab" : : "r"(operation), "r"(reason));
  for (;;) {
  }
}

__attribute__((section(".vectors"), used)) void (*const hwnas_vectors[16])(void) = {
    (void (*)(void))&__stack, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler,
    SysTick_Handler,
};

void hwnas_counter_start(void) {
  SYST_CSR = 0;
  systick_wraps = 0;
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 7; /* processor clock, interrupt on wrap, enabled */
}

uint64_t hwnas_counter_read(void) {
  uint32_t high, low;
  do {
    high = systick_wraps;
    low = SYST_CVR;
  } while (high != systick_wraps);
  return ((uint64_t)high << 24) + (SYST_RELOAD - low);
}
