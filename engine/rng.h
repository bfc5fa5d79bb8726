/* Seeded, splittable random numbers (xoshiro128+ style, 64-bit state via splitmix64).
 * Deterministic across runs and machines; not for cryptography. */
#ifndef HASTEN_RNG_H
#define HASTEN_RNG_H

#include <stdint.h>

typedef struct rng { uint64_t s[2]; } rng;

/* Seeds r from seed and a stream id so independent users of one seed do not correlate. */
void rng_seed(rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(rng *r);
/* Uniform in [0, 1). */
float rng_uniform(rng *r);
/* Uniform integer in [0, n). */
uint32_t rng_below(rng *r, uint32_t n);
/* Standard normal (Box-Muller). */
float rng_normal(rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(rng *r, int *idx, int n);

#endif
