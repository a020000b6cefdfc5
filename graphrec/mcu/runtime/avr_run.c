/* avr_run: run a graphrec-port firmware in simavr, feeding inputs and reading outputs
 * over the simulated UART0, and timing each inference by cycle counts.
 *
 *   avr_run MCU FREQ_HZ FIRMWARE.elf INPUTS.bin OUTPUTS.bin IN_BYTES OUT_BYTES MAX_CYCLES [EXT.bin]
 *
 * With EXT.bin, an external SPI memory holding that image is attached to SPI0, selected
 * by the SS pin (PB2 on the ATmega328P, PB0 on the ATmega2560) driven low; it answers the
 * READ command of 23LC1024-style serial SRAMs: 0x03, a 24-bit address, then one byte per
 * exchange from consecutive addresses.
 *
 * Protocol (the firmware's side is main_avr.c): the firmware sends 'R' when it waits for
 * a command; 'I' + IN_BYTES runs one inference, answered by 'O' + OUT_BYTES; 'S' asks
 * for the stack figures, answered by 'S' + heap start (2 bytes) + untouched stack bytes
 * (2 bytes). The firmware writes 1 to GPIOR0 before an inference and 2 after it; the
 * cycles between the two writes are the inference's.
 * Prints one JSON object on stdout; exit status 0 on success. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>
#include <simavr/sim_io.h>
#include <simavr/avr_uart.h>
#include <simavr/avr_spi.h>
#include <simavr/avr_ioport.h>

#define GPIOR0_DATA_ADDR 0x3E

static avr_t *avr;
static avr_irq_t *uart_in;
static uint8_t *pending; static size_t pending_len, pending_pos;
static int xoff;
static uint8_t *inputs; static size_t n_inputs_bytes, in_bytes, out_bytes, n_samples, sent_samples;
static FILE *out_file;
static int state; /* 0 wait R, 1 reading O payload, 2 reading S payload, 3 done */
static size_t got; static uint8_t sbuf[4];
static uint64_t *cycles; static size_t n_cycles; static avr_cycle_count_t t0;
static int protocol_error;
static unsigned heap_start, stack_unused;
static uint8_t *ext; static size_t ext_size; static int ext_selected, ext_phase;
static uint32_t ext_addr; static avr_irq_t *spi_in, *spi_out; static unsigned long ext_reads;

static int cs_pin;
static void on_port(struct avr_irq_t *irq, uint32_t v, void *p) {
    int sel = !(v & (1u << cs_pin));
    (void)irq; (void)p;
    if (sel != ext_selected) { ext_selected = sel; ext_phase = 0; }
}
static void on_spi(struct avr_irq_t *irq, uint32_t v, void *p) {
    uint8_t reply = 0xFF;
    (void)irq; (void)p;
    if (ext_selected) {
        if (ext_phase == 0) { ext_phase = (v == 0x03) ? 1 : 9; ext_addr = 0; }
        else if (ext_phase <= 3) { ext_addr = (ext_addr << 8) | (v & 0xFF); ext_phase++; }
        else if (ext_phase == 4) {
            reply = ext_addr < ext_size ? ext[ext_addr] : 0xFF;
            ext_addr++; ext_reads++;
        }
    }
    avr_raise_irq(spi_in, reply);
}

static void pump(void) {
    while (!xoff && pending_pos < pending_len) avr_raise_irq(uart_in, pending[pending_pos++]);
}
static void queue(const uint8_t *b, size_t n) {
    memcpy(pending, b, n); pending_len = n; pending_pos = 0; pump();
}
static void on_xon(struct avr_irq_t *irq, uint32_t v, void *p) { (void)irq; (void)v; (void)p; xoff = 0; pump(); }
static void on_xoff(struct avr_irq_t *irq, uint32_t v, void *p) { (void)irq; (void)v; (void)p; xoff = 1; }

static void on_byte(struct avr_irq_t *irq, uint32_t value, void *param) {
    uint8_t b = (uint8_t)value; (void)irq; (void)param;
    if (state == 0) {
        if (b == 'R') {
            if (sent_samples < n_samples) {
                pending[0] = 'I';
                memcpy(pending + 1, inputs + sent_samples * in_bytes, in_bytes);
                sent_samples++;
                pending_len = in_bytes + 1; pending_pos = 0; pump();
            } else {
                uint8_t c = 'S'; queue(&c, 1);
            }
        } else if (b == 'O') { state = 1; got = 0; }
        else if (b == 'S') { state = 2; got = 0; }
        else protocol_error = 1;
    } else if (state == 1) {
        fputc(b, out_file);
        if (++got == out_bytes) state = 0;
    } else if (state == 2) {
        sbuf[got++] = b;
        if (got == 4) {
            heap_start = sbuf[0] | (sbuf[1] << 8);
            stack_unused = sbuf[2] | (sbuf[3] << 8);
            state = 3;
        }
    }
}

static void on_gpior(struct avr_t *a, avr_io_addr_t addr, uint8_t v, void *param) {
    (void)param;
    a->data[addr] = v;
    if (v == 1) t0 = a->cycle;
    else if (v == 2 && n_cycles < n_samples) cycles[n_cycles++] = a->cycle - t0;
}

int main(int argc, char **argv) {
    elf_firmware_t fw;
    FILE *f;
    long sz;
    unsigned long long max_cycles;
    uint32_t flags = 0;
    size_t i;
    int st;
    if (argc != 9 && argc != 10) {
        fprintf(stderr, "usage: avr_run MCU FREQ FW.elf IN.bin OUT.bin IN_BYTES OUT_BYTES MAX_CYCLES [EXT.bin]\n");
        return 2;
    }
    in_bytes = strtoul(argv[6], 0, 10); out_bytes = strtoul(argv[7], 0, 10);
    max_cycles = strtoull(argv[8], 0, 10);
    f = fopen(argv[4], "rb");
    if (!f) { fprintf(stderr, "avr_run: cannot open %s\n", argv[4]); return 2; }
    fseek(f, 0, SEEK_END); sz = ftell(f); fseek(f, 0, SEEK_SET);
    n_inputs_bytes = (size_t)sz; inputs = malloc(n_inputs_bytes + 1);
    if (fread(inputs, 1, n_inputs_bytes, f) != n_inputs_bytes) { fprintf(stderr, "avr_run: short read\n"); return 2; }
    fclose(f);
    if (in_bytes == 0 || n_inputs_bytes % in_bytes) { fprintf(stderr, "avr_run: input size is not a multiple of %zu\n", in_bytes); return 2; }
    n_samples = n_inputs_bytes / in_bytes;
    pending = malloc(in_bytes + 8);
    cycles = calloc(n_samples + 1, sizeof(uint64_t));
    out_file = fopen(argv[5], "wb");
    if (!out_file) { fprintf(stderr, "avr_run: cannot write %s\n", argv[5]); return 2; }

    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(argv[3], &fw) != 0) { fprintf(stderr, "avr_run: cannot read %s\n", argv[3]); return 2; }
    strncpy(fw.mmcu, argv[1], sizeof fw.mmcu - 1);
    fw.frequency = (uint32_t)strtoul(argv[2], 0, 10);
    avr = avr_make_mcu_by_name(fw.mmcu);
    if (!avr) { fprintf(stderr, "avr_run: simavr does not know %s\n", fw.mmcu); return 2; }
    avr_init(avr);
    avr->log = 0;
    avr_load_firmware(avr, &fw);
    avr->frequency = fw.frequency;

    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_byte, 0);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, 0);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, 0);
    avr_register_io_write(avr, GPIOR0_DATA_ADDR, on_gpior, 0);
    if (argc == 10) {
        FILE *e = fopen(argv[9], "rb");
        cs_pin = strcmp(fw.mmcu, "atmega2560") == 0 ? 0 : 2;
        if (!e) { fprintf(stderr, "avr_run: cannot open %s\n", argv[9]); return 2; }
        fseek(e, 0, SEEK_END); ext_size = (size_t)ftell(e); fseek(e, 0, SEEK_SET);
        ext = malloc(ext_size + 1);
        if (fread(ext, 1, ext_size, e) != ext_size) { fprintf(stderr, "avr_run: short read\n"); return 2; }
        fclose(e);
        /* simavr 1.6 names SPI0 by the number 0, later versions by the character '0' */
        spi_in = avr_io_getirq(avr, AVR_IOCTL_SPI_GETIRQ(0), SPI_IRQ_INPUT);
        spi_out = avr_io_getirq(avr, AVR_IOCTL_SPI_GETIRQ(0), SPI_IRQ_OUTPUT);
        if (!spi_in || !spi_out) {
            spi_in = avr_io_getirq(avr, AVR_IOCTL_SPI_GETIRQ('0'), SPI_IRQ_INPUT);
            spi_out = avr_io_getirq(avr, AVR_IOCTL_SPI_GETIRQ('0'), SPI_IRQ_OUTPUT);
        }
        if (!spi_in || !spi_out) { fprintf(stderr, "avr_run: no SPI0 in this simavr\n"); return 2; }
        avr_irq_register_notify(spi_out, on_spi, 0);
        avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), IOPORT_IRQ_REG_PORT), on_port, 0);
    }

    st = cpu_Running;
    while (state != 3 && !protocol_error && avr->cycle < max_cycles) {
        st = avr_run(avr);
        if (st == cpu_Done || st == cpu_Crashed) break;
    }
    fclose(out_file);
    printf("{\"samples\": %zu, \"completed\": %zu, \"state\": %d, \"cpu_state\": %d, "
           "\"protocol_error\": %d, \"total_cycles\": %llu, \"heap_start\": %u, "
           "\"stack_unused\": %u, \"external_reads\": %lu, \"cycles\": [",
           n_samples, n_cycles, state, st, protocol_error, (unsigned long long)avr->cycle,
           heap_start, stack_unused, ext_reads);
    for (i = 0; i < n_cycles; ++i) printf("%s%llu", i ? ", " : "", (unsigned long long)cycles[i]);
    printf("]}\n");
    return (state == 3 && !protocol_error && n_cycles == n_samples) ? 0 : 1;
}
