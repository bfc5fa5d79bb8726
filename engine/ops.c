/* Picking and opening devices; the table of each. The tables themselves live with their kernels
 * (engine/cpu/ops_cpu.c, engine/cuda/). */
#include "engine/ops.h"
#include "engine/check.h"
#include "engine/cuda/cuda.h"
#include <stdio.h>
#include <string.h>

const engine_ops *ops_for(device_kind d)
{
    if (d == DEVICE_CPU) return &ops_cpu;
    const engine_ops *o = cuda_table();
    CHECK(o, "a CUDA tensor before the CUDA device was opened");
    return o;
}

int ops_open(device_kind d, char *why, size_t len)
{
    return d == DEVICE_CPU ? 0 : cuda_open(why, len);
}

int ops_pick(const char *name, device_kind *d, char *why, size_t len, char *note, size_t note_len)
{
    char reason[256];
    if (!name || !strcmp(name, "cpu")) {
        *d = DEVICE_CPU;
        return 0;
    }
    if (!strcmp(name, "cuda")) {
        if (ops_open(DEVICE_CUDA, why, len)) return -1;
        *d = DEVICE_CUDA;
        return 0;
    }
    if (strcmp(name, "auto")) {
        snprintf(why, len, "--device %s: expected cpu, cuda or auto", name);
        return -2;
    }
    if (!ops_open(DEVICE_CUDA, reason, sizeof reason)) {
        *d = DEVICE_CUDA;
        return 0;
    }
    *d = DEVICE_CPU;
    if (note) snprintf(note, note_len, "--device auto: using the CPU: %s", reason);
    return 0;
}

const char *ops_device_name(device_kind d) { return d == DEVICE_CUDA ? "cuda" : "cpu"; }

const char *ops_cuda_describe(void) { return cuda_describe(); }
