/* The bare polling floor for bench/floor.sh: what a 1 s poll of the farm costs with
 * nothing done to the values. One libmodbus TCP connection, 125-register reads of
 * every unit id's registers once a second, the values summed (so the reads are used).
 *   floor HOST PORT UNITS REGS */
#include <modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: floor HOST PORT UNITS REGS\n"); return 2; }
    int units = atoi(argv[3]), regs = atoi(argv[4]);
    modbus_t *ctx = modbus_new_tcp(argv[1], atoi(argv[2]));
    if (!ctx || modbus_connect(ctx) == -1) { perror("connect"); return 1; }
    uint16_t buf[125];
    unsigned long long sum = 0, errors = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        for (int u = 1; u <= units; u++) {
            modbus_set_slave(ctx, u);
            for (int a = 0; a < regs; a += 125) {
                int n = regs - a < 125 ? regs - a : 125;
                if (modbus_read_registers(ctx, a, n, buf) != n) { errors++; continue; }
                for (int i = 0; i < n; i++) sum += buf[i];
            }
        }
        if (errors) fprintf(stderr, "errors %llu\n", errors), errors = 0;
        next.tv_sec += 1;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    printf("%llu\n", sum);
}
