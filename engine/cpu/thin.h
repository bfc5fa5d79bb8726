/* Thin products in registers: the building blocks of cpu_sgemm's thin paths (parallel.c) and of
 * the convolutions that never build a patch matrix (kernels.c). "Thin": at most THIN_K values on
 * the short side and at most THIN_N outputs, a multiple of THIN_BLOCK. Internal to engine/cpu/. */
#ifndef HASTEN_CPU_THIN_H
#define HASTEN_CPU_THIN_H

#include <stddef.h>
#include <string.h>

enum { THIN_K = 16, THIN_N = 64, THIN_BLOCK = 8 };

/* THIN_BLOCK floats as one vector (GCC and Clang vector extensions; AVX where the build targets
 * it, two SSE halves otherwise). */
typedef float thin_vec __attribute__((vector_size(THIN_BLOCK * sizeof(float))));

/* Rows lo..hi of C (ldc) = alpha A bt + beta C, with A's rows K values long (lda) and bt (K, N)
 * row-major. Inlined with constant N and K where the caller knows them: the loops then unroll. */
static inline __attribute__((always_inline)) void
thin_rows_nk(const float *restrict A, int lda, const float *restrict bt, float *restrict C, int ldc,
             const int N, const int K, float alpha, float beta, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        const float *restrict a = A + i * (size_t)lda;
        float *restrict c = C + i * (size_t)ldc;
        for (int o0 = 0; o0 < N; o0 += THIN_BLOCK) {
            thin_vec acc = { 0 }, b;
            for (int j = 0; j < K; j++) {
                memcpy(&b, bt + (size_t)j * N + o0, sizeof b);
                acc += a[j] * b;
            }
            thin_vec out = alpha * acc;
            if (beta != 0) {   /* beta 0: C is not read, it may hold anything */
                thin_vec old;
                memcpy(&old, c + o0, sizeof old);
                out += beta * old;
            }
            memcpy(c + o0, &out, sizeof out);
        }
    }
}

/* part (N, M) += A^T B over `rows` rows, A (rows, M) with lda and B (rows, N) with ldb: THIN_BLOCK
 * columns of A at a time, summed in N vectors that stay in registers over all the rows. */
static inline __attribute__((always_inline)) void
thin_tn_acc(const float *restrict A, int lda, const float *restrict B, int ldb, int M, const int N,
            size_t rows, float *restrict part)
{
    for (int m0 = 0; m0 < M; m0 += THIN_BLOCK) {
        thin_vec acc[THIN_K];
        for (int j = 0; j < N; j++) memcpy(&acc[j], part + (size_t)j * M + m0, sizeof acc[j]);
        for (size_t i = 0; i < rows; i++) {
            thin_vec av;
            memcpy(&av, A + i * (size_t)lda + m0, sizeof av);
            const float *restrict b = B + i * (size_t)ldb;
            for (int j = 0; j < N; j++) acc[j] += b[j] * av;
        }
        for (int j = 0; j < N; j++) memcpy(part + (size_t)j * M + m0, &acc[j], sizeof acc[j]);
    }
}

#endif
