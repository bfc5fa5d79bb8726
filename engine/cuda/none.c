/* The CUDA backend of a build made without nvcc: says so, and has no table. */
#include "engine/cuda/cuda.h"
#include <stdio.h>

int cuda_open(char *why, size_t len)
{
    snprintf(why, len, "this build has no CUDA support (nvcc was not found at build time)");
    return -1;
}

const engine_ops *cuda_table(void) { return NULL; }

const char *cuda_describe(void) { return ""; }
