/* What engine/ops.c needs from the CUDA backend: open the device, get its op table. Built from the
 * .cu files of engine/cuda/ where nvcc is found, else from none.c. Not for kernels. */
#ifndef HASTEN_CUDA_H
#define HASTEN_CUDA_H

#include <stddef.h>
#include "engine/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Initialises the first CUDA device, its stream and cuBLAS, once. Returns 0, or -1 with one line
 * in why (no CUDA in this build, no device, a driver too old). Later calls return the first
 * result. */
int cuda_open(char *why, size_t len);

/* The op table, or NULL before a successful cuda_open. */
const engine_ops *cuda_table(void);

/* "NVIDIA H100 80GB HBM3, 132 SMs, CUDA 13.0" after a successful cuda_open, else "". */
const char *cuda_describe(void);

#ifdef __cplusplus
}
#endif

#endif
