/* main_avr.c: serial harness of a graphrec-port model on an AVR (UART0, polled).
 * See avr_run.c for the protocol. Generated code: MODEL_H names the model header. */
#include <avr/io.h>
#include <stdint.h>
#include MODEL_H

extern uint8_t __heap_start;

static void uart_init(void) {
    UBRR0H = 0;
    UBRR0L = 1; /* 1 Mbit/s at 16 MHz with U2X */
    UCSR0A = (uint8_t)(1 << U2X0);
    UCSR0B = (uint8_t)((1 << RXEN0) | (1 << TXEN0));
    UCSR0C = (uint8_t)((1 << UCSZ01) | (1 << UCSZ00));
}
static uint8_t rx(void) { while (!(UCSR0A & (1 << RXC0))) {} return UDR0; }
static void tx(uint8_t b) { while (!(UCSR0A & (1 << UDRE0))) {} UDR0 = b; }

/* Paint the free SRAM between the end of .bss and the stack with 0xA5; the bytes still
 * painted at the end were never touched by the stack. */
static void paint(void) __attribute__((noinline));
static void paint(void) {
    uint8_t *p = &__heap_start;
    uint8_t *top = (uint8_t *)SP - 24;
    while (p < top) *p++ = 0xA5;
}
static uint16_t untouched(void) {
    const uint8_t *p = &__heap_start;
    uint16_t n = 0;
    while (p <= (const uint8_t *)RAMEND && *p == 0xA5) { ++p; ++n; }
    return n;
}

int main(void) {
    uint16_t k;
    uart_init();
    paint();
    for (;;) {
        uint8_t c;
        tx('R');
        c = rx();
        if (c == 'I') {
            uint8_t *in = (uint8_t *)MODEL_INPUT();
            const uint8_t *out;
            for (k = 0; k < MODEL_INPUT_BYTES; ++k) in[k] = rx();
            GPIOR0 = 1;
            MODEL_RUN();
            GPIOR0 = 2;
            out = (const uint8_t *)MODEL_OUTPUT();
            tx('O');
            for (k = 0; k < MODEL_OUTPUT_BYTES; ++k) tx(out[k]);
        } else if (c == 'S') {
            uint16_t heap = (uint16_t)&__heap_start, u = untouched();
            tx('S');
            tx((uint8_t)(heap & 0xFF)); tx((uint8_t)(heap >> 8));
            tx((uint8_t)(u & 0xFF)); tx((uint8_t)(u >> 8));
        }
    }
}
