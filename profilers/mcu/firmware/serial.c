/* The profiling firmware's serial transport: the mps2 boards' UART0 (an Arm CMSDK APB UART at
 * 0x40004000), polled. QEMU connects it to its first `-serial` backend (`-serial pty` gives a
 * pseudo-terminal the host opens with pyserial); a board's own UART driver would replace this. */
#include <stdint.h>

#define UART_DATA (*(volatile uint32_t *)0x40004000)
#define UART_STATE (*(volatile uint32_t *)0x40004004)
#define UART_CTRL (*(volatile uint32_t *)0x40004008)
#define UART_BAUDDIV (*(volatile uint32_t *)0x40004010)
#define UART_TX_FULL 1u
#define UART_RX_FULL 2u

void hwnas_serial_init(void) {
  UART_BAUDDIV = 16; /* the smallest divisor the CMSDK UART accepts */
  UART_CTRL = 3;     /* transmitter and receiver on */
}

void hwnas_serial_write(const char *text) {
  for (; *text; ++text) {
    while (UART_STATE & UART_TX_FULL) {
    }
    UART_DATA = (uint8_t)*text;
  }
}

void hwnas_serial_read(uint8_t *into, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    while (!(UART_STATE & UART_RX_FULL)) {
    }
    into[i] = (uint8_t)UART_DATA;
  }
}
