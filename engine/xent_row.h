/* One row of softmax cross-entropy with soft targets, shared by the CPU kernel and the CUDA
 * kernel so both compute exactly the same (double sums). Not a kernel: callers loop over rows. */
#ifndef HASTEN_XENT_ROW_H
#define HASTEN_XENT_ROW_H

#include <math.h>

#ifdef __CUDACC__
#define XENT_HD __host__ __device__
#else
#define XENT_HD
#endif

/* Loss of logits z (k) against soft targets t (k); *arg receives the argmax of z. With d not
 * NULL, d = s * (softmax(z) - t). */
XENT_HD static inline double xent_row(const float *z, const float *t, int k, float s, float *d, int *arg)
{
    float mx = z[0];
    int best = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > mx) { mx = z[j]; best = j; }
    double sum = 0;
    for (int j = 0; j < k; j++) sum += exp((double)(z[j] - mx));
    double lse = mx + log(sum), li = 0;
    for (int j = 0; j < k; j++) li += t[j] * (lse - z[j]);
    if (d)
        for (int j = 0; j < k; j++) d[j] = s * ((float)exp((double)z[j] - lse) - t[j]);
    *arg = best;
    return li;
}

#endif
