/* A small persistent thread pool for elementwise work, and the OpenBLAS thread setting.
 * Workers spin briefly, then sleep on a condition variable, so short ops start fast and idle
 * workers cost nothing. */
#include "engine/cpu/cpu.h"
#include "engine/cpu/thin.h"
#include "engine/check.h"
#include <cblas.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAX_THREADS 64
#define SPIN_ITERS 20000

static struct {
    int nthreads;
    pthread_t tid[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t wake, done_cv;
    atomic_uint generation;
    atomic_int pending;
    cpu_range_fn fn;
    void *ctx;
    size_t n;
    int chunks;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
           .done_cv = PTHREAD_COND_INITIALIZER };

/* A plain busy loop, not the PAUSE instruction: under KVM, PAUSE loops trigger pause-loop
 * exiting and the hypervisor deschedules the vCPU, which costs far more than the spin saves. */
static inline void spin_relax(void) { __asm__ volatile("" ::: "memory"); }

static void run_chunk(int i)
{
    size_t lo = pool.n * (size_t)i / (size_t)pool.chunks;
    size_t hi = pool.n * (size_t)(i + 1) / (size_t)pool.chunks;
    pool.fn(pool.ctx, lo, hi, i);
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen &&
               spins++ < SPIN_ITERS)
            spin_relax();
        if (g == seen) {
            pthread_mutex_lock(&pool.mu);
            while ((g = atomic_load(&pool.generation)) == seen)
                pthread_cond_wait(&pool.wake, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        /* Every worker reports, busy or not, so no worker can lag into the next job. */
        if (me < pool.chunks) run_chunk(me);
        if (atomic_fetch_sub(&pool.pending, 1) == 1) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done_cv);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

int cpu_threads_init(int n)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = cores > 0 ? (int)cores : 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    openblas_set_num_threads(1);
    /* The pool only grows; extra workers just sleep. */
    for (int i = pool.nthreads ? pool.nthreads : 1; i < n; i++) {
        CHECK(pthread_create(&pool.tid[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create");
        pthread_detach(pool.tid[i]);
    }
    if (n > pool.nthreads) pool.nthreads = n;
    return n;
}

int cpu_threads(void) { return pool.nthreads ? pool.nthreads : 1; }

int cpu_chunks(size_t n, size_t grain)
{
    size_t c = grain ? n / grain : n;
    if (c < 1) c = 1;
    if (c > (size_t)cpu_threads()) c = (size_t)cpu_threads();
    return (int)c;
}

void cpu_parallel(size_t n, size_t grain, cpu_range_fn fn, void *ctx)
{
    int chunks = cpu_chunks(n, grain);
    if (chunks == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunks = chunks;
    atomic_store(&pool.pending, pool.nthreads - 1);
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
    run_chunk(0);
    int spins = 0;
    while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0 && spins++ < SPIN_ITERS * 10)
        spin_relax();
    if (atomic_load(&pool.pending) > 0) {
        pthread_mutex_lock(&pool.mu);
        while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done_cv, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
}

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, split_m;
    float alpha, beta;
    const float *A, *B;
    float *C;
    const float *bt;   /* a thin product's B transposed, (K, N); NULL = OpenBLAS */
} gemm_args;

/* Thin products C = alpha A B^T + beta C over many rows, each row of A holding at most THIN_K
 * values (a first convolution's 3x3 patches of one channel: K = 9) and C a multiple of
 * THIN_BLOCK columns up to THIN_N. OpenBLAS packs both operands and scales C before such a
 * product, which costs more than the arithmetic; here each row's sums stay in registers. */
enum { THIN_MIN_ROWS = 1024 };

static int is_thin(int ta, int tb, int M, int N, int K)
{
    return !ta && tb && K <= THIN_K && N <= THIN_N && N % THIN_BLOCK == 0 && M >= THIN_MIN_ROWS;
}

static void thin_rows(const gemm_args *g, size_t lo, size_t hi)
{
#define THIN_AT(n, k) thin_rows_nk(g->A, g->lda, g->bt, g->C, g->ldc, n, k, g->alpha, g->beta, lo, hi)
    if (g->K == 9 && g->N == 16) THIN_AT(16, 9);
    else if (g->K == 9 && g->N == 32) THIN_AT(32, 9);
    else if (g->K == 9 && g->N == 64) THIN_AT(64, 9);
    else THIN_AT(g->N, g->K);
#undef THIN_AT
}

/* The transposed thin product, a first convolution's weight gradient: C (M, N) = alpha A^T B +
 * beta C with A (K, M) and B (K, N) over a long K (every output pixel of the batch), M a multiple
 * of THIN_BLOCK up to THIN_N and N <= THIN_K. Each chunk of the K rows sums into its own partial
 * (N, M), THIN_BLOCK rows of C at a time in N vectors; the partials are added in chunk order, so
 * the result does not depend on timing. */
enum { THIN_MAX_CHUNKS = 64 };

typedef struct {
    int M, N, lda, ldb;
    const float *A, *B;
    float *partial;      /* (chunks, N, M) */
} thin_tn_args;

static int is_thin_tn(int ta, int tb, int M, int N, int K)
{
    return ta && !tb && M <= THIN_N && M % THIN_BLOCK == 0 && N <= THIN_K && K >= THIN_MIN_ROWS;
}

static void thin_tn_range(void *p, size_t lo, size_t hi, int chunk)
{
    const thin_tn_args *a = p;
    float *part = a->partial + (size_t)chunk * a->N * a->M;
    const float *A = a->A + lo * (size_t)a->lda, *B = a->B + lo * (size_t)a->ldb;
    memset(part, 0, (size_t)a->N * a->M * sizeof *part);
    if (a->N == 9) thin_tn_acc(A, a->lda, B, a->ldb, a->M, 9, hi - lo, part);
    else thin_tn_acc(A, a->lda, B, a->ldb, a->M, a->N, hi - lo, part);
}

static void thin_tn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    size_t grain = (size_t)K / THIN_MAX_CHUNKS + 1;
    int chunks = cpu_chunks((size_t)K, grain);   /* at most the threads */
    float partial[chunks * N * M];
    thin_tn_args a = { M, N, lda, ldb, A, B, partial };
    cpu_parallel((size_t)K, grain, thin_tn_range, &a);
    for (int m = 0; m < M; m++)
        for (int j = 0; j < N; j++) {
            float sum = 0;
            for (int ch = 0; ch < chunks; ch++) sum += partial[((size_t)ch * N + j) * M + m];
            float *c = C + (size_t)m * ldc + j;
            *c = beta == 0 ? alpha * sum : alpha * sum + beta * *c;
        }
}

/* One slice of the output: rows of C when splitting M, columns when splitting N. */
static void gemm_range(void *p, size_t lo, size_t hi, int chunk)
{
    const gemm_args *g = p;
    int n = (int)(hi - lo);
    if (g->bt) {
        thin_rows(g, lo, hi);
    } else if (g->split_m) {
        const float *a = g->ta ? g->A + lo : g->A + lo * (size_t)g->lda;
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                    n, g->N, g->K, g->alpha, a, g->lda, g->B, g->ldb, g->beta, g->C + lo * (size_t)g->ldc, g->ldc);
    } else {
        const float *b = g->tb ? g->B + lo * (size_t)g->ldb : g->B + lo;
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                    g->M, n, g->K, g->alpha, g->A, g->lda, b, g->ldb, g->beta, g->C + lo, g->ldc);
    }
}

/* OpenBLAS runs single-threaded inside each slice: one thread system for the whole step, so
 * BLAS threads and pool workers never spin against each other on a small machine. */
void cpu_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    if (is_thin_tn(ta, tb, M, N, K)) {
        thin_tn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    gemm_args g = { ta, tb, M, N, K, lda, ldb, ldc, M >= N, alpha, beta, A, B, C, NULL };
    float bt[THIN_K * THIN_N];
    if (is_thin(ta, tb, M, N, K)) {
        for (int j = 0; j < K; j++)
            for (int o = 0; o < N; o++) bt[j * N + o] = B[(size_t)o * ldb + j];
        g.bt = bt;
    }
    double flops = 2.0 * M * N * K;
    size_t len = (size_t)(g.split_m ? M : N);
    cpu_parallel(len, flops < 2e5 ? len : 16, gemm_range, &g);
}
