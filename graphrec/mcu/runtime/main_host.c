/* main_host.c: run a graphrec-port model on the host, inputs on stdin, outputs on stdout
 * (raw bytes, one inference per MODEL_INPUT_BYTES). */
#include <stdio.h>
#include MODEL_H

int main(void) {
    for (;;) {
        size_t got = fread((void *)MODEL_INPUT(), 1, MODEL_INPUT_BYTES, stdin);
        if (got == 0) return 0;
        if (got != MODEL_INPUT_BYTES) return 2;
        MODEL_RUN();
        if (fwrite((const void *)MODEL_OUTPUT(), 1, MODEL_OUTPUT_BYTES, stdout) != MODEL_OUTPUT_BYTES)
            return 3;
    }
}
