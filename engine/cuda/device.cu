/* The CUDA device: opening it, memory, cuBLAS products, scratch and staging, and the op table.
 * Kernels live in layers.cu, train.cu and sequence.cu. Not for choosing a device: engine/ops.c does that. */
#include "engine/cuda/common.cuh"
#include <cuda_bf16.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

cudaStream_t cuda_stream;
cublasHandle_t cuda_blas;
int cuda_sm_count = 132;

/* cuBLAS is loaded when the device opens, not at program start: its libraries add about 150 MB of
 * resident memory to every process, CPU runs included. These are the calls used. */
#define STR_(x) #x
#define STR(x) STR_(x)
static const char cublas_soname[] = "libcublas.so." STR(CUBLAS_VER_MAJOR);
static struct {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                              const void *, const void *, cudaDataType, int, const void *,
                              cudaDataType, int, const void *, void *, cudaDataType, int,
                              cublasComputeType_t, cublasGemmAlgo_t);
    cublasStatus_t (*sgemm_strided_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                            int, const float *, const float *, int, long long,
                                            const float *, int, long long, const float *, float *, int,
                                            long long, int);
    const char *(*status_string)(cublasStatus_t);
} blas;

const char *cuda_blas_status(cublasStatus_t s) { return blas.status_string ? blas.status_string(s) : "?"; }

/* Returns 0, or -1 with why. */
static int load_cublas(char *why, size_t len)
{
    void *lib = dlopen(cublas_soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, len, "cannot load %s (%s)", cublas_soname, dlerror());
        return -1;
    }
    *(void **)&blas.create = dlsym(lib, "cublasCreate_v2");
    *(void **)&blas.set_stream = dlsym(lib, "cublasSetStream_v2");
    *(void **)&blas.gemm_ex = dlsym(lib, "cublasGemmEx");
    *(void **)&blas.sgemm_strided_batched = dlsym(lib, "cublasSgemmStridedBatched");
    *(void **)&blas.status_string = dlsym(lib, "cublasGetStatusString");
    if (!blas.create || !blas.set_stream || !blas.gemm_ex || !blas.sgemm_strided_batched ||
        !blas.status_string) {
        snprintf(why, len, "%s lacks a function hasten calls (%s)", cublas_soname, dlerror());
        return -1;
    }
    return 0;
}

static int open_state;            /* 0 not tried, 1 open, -1 failed */
static char open_error[256], description[256];

/* ---- memory --------------------------------------------------------------------------------- */

static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 16);
    if (e != cudaSuccess)
        check_fail(__FILE__, __LINE__, "CUDA: cannot allocate %zu bytes of device memory (%s)", bytes,
                   cudaGetErrorString(e));
    return p;
}

static void dev_free(void *p) { if (p) CUDA_CHECK(cudaFree(p)); }

static void dev_zero(void *p, size_t bytes)
{
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cuda_stream));
}

static void dev_fill(float *p, float v, size_t n) { cuda_elementwise(EW_FILL, n, NULL, NULL, p, NULL, v, 0, 0); }

static void dev_copy(void *dst, const void *src, size_t bytes)
{
    if (bytes && dst != src) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_stream));
}

/* Host memory may be pageable: wait, so the caller can reuse it at once. */
static void dev_upload(void *dst, const void *host, size_t bytes)
{
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, cuda_stream));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream));
}

static void dev_download(void *host, const void *src, size_t bytes)
{
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, cuda_stream));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream));
}

static void dev_sync(void) { CUDA_CHECK(cudaStreamSynchronize(cuda_stream)); }

static struct { void *p; size_t cap; } scratch[SCRATCH_COUNT];

void *cuda_scratch(enum cuda_scratch_slot slot, size_t bytes)
{
    if (bytes > scratch[slot].cap) {
        if (scratch[slot].p) dev_sync();   /* kernels queued on the stream may still read it */
        dev_free(scratch[slot].p);
        size_t cap = bytes + bytes / 2;
        scratch[slot].p = dev_alloc(cap);
        scratch[slot].cap = cap;
    }
    return scratch[slot].p;
}

/* Pinned staging: a ring of host buffers, each reused only after its last copy has run. */
enum { STAGE_RING = 8 };
static struct { void *host; size_t cap; cudaEvent_t done; } stage[STAGE_RING];
static int stage_next;

void *cuda_stage(enum cuda_scratch_slot slot, const void *host, size_t bytes)
{
    void *dev = cuda_scratch(slot, bytes);
    if (!bytes) return dev;
    int k = stage_next++ % STAGE_RING;
    CUDA_CHECK(cudaEventSynchronize(stage[k].done));
    if (bytes > stage[k].cap) {
        if (stage[k].host) CUDA_CHECK(cudaFreeHost(stage[k].host));
        stage[k].cap = bytes + bytes / 2 > 4096 ? bytes + bytes / 2 : 4096;
        CUDA_CHECK(cudaMallocHost(&stage[k].host, stage[k].cap));
    }
    memcpy(stage[k].host, host, bytes);
    CUDA_CHECK(cudaMemcpyAsync(dev, stage[k].host, bytes, cudaMemcpyHostToDevice, cuda_stream));
    CUDA_CHECK(cudaEventRecord(stage[k].done, cuda_stream));
    return dev;
}

static struct { void *p; size_t cap; } fetched;

const void *cuda_fetch(const void *dev, size_t bytes)
{
    if (bytes > fetched.cap) {
        if (fetched.p) CUDA_CHECK(cudaFreeHost(fetched.p));
        fetched.cap = bytes > 4096 ? bytes : 4096;
        CUDA_CHECK(cudaMallocHost(&fetched.p, fetched.cap));
    }
    CUDA_CHECK(cudaMemcpyAsync(fetched.p, dev, bytes, cudaMemcpyDeviceToHost, cuda_stream));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream));
    return fetched.p;
}

/* ---- matrix products ------------------------------------------------------------------------ */

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. */
static void sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    CUBLAS_CHECK(blas.gemm_ex(cuda_blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                              N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C,
                              CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* count products at strides sa, sb, sc (floats), in one cuBLAS call: operands swapped as above. The
 * handle's default math mode keeps them fp32 (no TF32). */
static void sgemm_batched(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                          size_t sa, const float *B, int ldb, size_t sb, float beta, float *C, int ldc,
                          size_t sc, int count)
{
    if (M == 0 || N == 0 || count < 1) return;
    CUBLAS_CHECK(blas.sgemm_strided_batched(cuda_blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                            ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb,
                                            (long long)sb, A, lda, (long long)sa, &beta, C, ldc,
                                            (long long)sc, count));
}

/* A rows x cols fp32 matrix (leading dimension ld) rounded to bf16 (to nearest, ties to even)
 * into a dense copy whose rows are padded with zeros to ldo, a multiple of 8. */
__global__ void to_bf16_kernel(const float *in, unsigned rows, unsigned cols, unsigned ld, idiv ldo,
                               __nv_bfloat16 *out)
{
    CUDA_FOR32(i, rows * ldo.d) {
        unsigned c, r = idiv_qr(ldo, i, &c);
        out[i] = __float2bfloat16_rn(c < cols ? in[(size_t)r * ld + c] : 0.0f);
    }
}

static __nv_bfloat16 *to_bf16(const float *in, int rows, int cols, int ld, int ldo, __nv_bfloat16 *out)
{
    unsigned n = cuda_count32((size_t)rows * ldo, "bf16 matrix product");
    to_bf16_kernel<<<cuda_grid(n), CUDA_THREADS, 0, cuda_stream>>>(in, rows, cols, ld, idiv_make(ldo), out);
    CUDA_LAUNCHED();
    return out;
}

static int round8(int n) { return (n + 7) & ~7; }

/* The product of A and B rounded to bf16, accumulated and written in fp32 (by cuBLAS's bf16
 * kernels, tensor-core ones where its alignment rules allow).
 * cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF only permits that rounding: for shapes like fmnist_cnn's
 * (K = 9, ldc = 10) it ran its fp32 kernels and the products stayed fp32. Rounding the operands
 * here, into copies with rows aligned as the tensor cores want, makes every product bf16. */
static void sgemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    int a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
    int a_ld = round8(a_cols), b_ld = round8(b_cols);
    size_t a_n = ((size_t)a_rows * a_ld + 127) & ~(size_t)127;   /* B starts 256-byte aligned */
    __nv_bfloat16 *s = (__nv_bfloat16 *)cuda_scratch(SCRATCH_BF16, (a_n + (size_t)b_rows * b_ld) * 2);
    const __nv_bfloat16 *a = to_bf16(A, a_rows, a_cols, lda, a_ld, s);
    const __nv_bfloat16 *b = to_bf16(B, b_rows, b_cols, ldb, b_ld, s + a_n);
    CUBLAS_CHECK(blas.gemm_ex(cuda_blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                              N, M, K, &alpha, b, CUDA_R_16BF, b_ld, a, CUDA_R_16BF, a_ld, &beta, C,
                              CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* ---- small ops routed to the elementwise family --------------------------------------------- */

static void relu_forward(const float *x, float *y, size_t n) { cuda_elementwise(EW_RELU_F, n, x, NULL, y, NULL, 0, 0, 0); }
static void relu_backward(const float *y, const float *dy, float *dx, size_t n) { cuda_elementwise(EW_RELU_B, n, y, dy, dx, NULL, 0, 0, 0); }
static void gelu_forward(const float *x, float *y, size_t n) { cuda_elementwise(EW_GELU_F, n, x, NULL, y, NULL, 0, 0, 0); }
static void gelu_backward(const float *x, const float *dy, float *dx, size_t n) { cuda_elementwise(EW_GELU_B, n, x, dy, dx, NULL, 0, 0, 0); }
static void mul(const float *a, const float *b, float *out, size_t n) { cuda_elementwise(EW_MUL, n, a, b, out, NULL, 0, 0, 0); }
static void sigmoid_forward(const float *x, float *y, size_t n) { cuda_elementwise(EW_SIGMOID_F, n, x, NULL, y, NULL, 0, 0, 0); }
static void sigmoid_backward(const float *y, const float *dy, float *dx, size_t n) { cuda_elementwise(EW_SIGMOID_B, n, y, dy, dx, NULL, 0, 0, 0); }
static void add(const float *a, const float *b, float *out, size_t n) { cuda_elementwise(EW_ADD, n, a, b, out, NULL, 0, 0, 0); }

static void dropout_forward(const float *x, float *y, float *mask, size_t n, float p, uint64_t seed)
{
    cuda_elementwise(EW_DROPOUT, n, x, NULL, y, mask, p, 0, seed);
}

static void map(enum ops_map op, float *t, const float *a, size_t n, float s1, float s2)
{
    enum cuda_ew ew = EW_SCALE;
    switch (op) {
    case OPS_SCALE:      ew = EW_SCALE; break;
    case OPS_ADD_SCALAR: ew = EW_ADD_SCALAR; break;
    case OPS_AXPY:       ew = EW_AXPY; break;
    case OPS_LERP:       ew = EW_LERP; break;
    case OPS_MUL:        ew = EW_MUL_INPLACE; break;
    case OPS_CLAMP:      ew = EW_CLAMP; break;
    case OPS_EXP:        ew = EW_EXP; break;
    case OPS_POW:        ew = EW_POW; break;
    }
    cuda_elementwise(ew, n, a, NULL, t, NULL, s1, s2, 0);
}

static engine_ops table;

static void fill_table(void)
{
    table.name = "cuda";
    table.device = DEVICE_CUDA;
    table.alloc = dev_alloc; table.free = dev_free; table.zero = dev_zero; table.fill = dev_fill;
    table.copy = dev_copy; table.upload = dev_upload; table.download = dev_download; table.sync = dev_sync;
    table.sgemm = sgemm; table.sgemm_bf16 = sgemm_bf16;
    table.im2col = cuda_im2col; table.col2im = cuda_col2im;
    table.add_bias = cuda_add_bias; table.sum_rows = cuda_sum_rows;
    table.relu_forward = relu_forward; table.relu_backward = relu_backward;
    table.gelu_forward = gelu_forward; table.gelu_backward = gelu_backward;
    table.maxpool_forward = cuda_maxpool_forward; table.maxpool_backward = cuda_maxpool_backward;
    table.avgpool_forward = cuda_avgpool_forward; table.avgpool_backward = cuda_avgpool_backward;
    table.batchnorm_forward = cuda_batchnorm_forward; table.batchnorm_backward = cuda_batchnorm_backward;
    table.dropout_forward = dropout_forward; table.mul = mul; table.add = add;
    table.sigmoid_forward = sigmoid_forward; table.sigmoid_backward = sigmoid_backward;
    table.channel_scale = cuda_channel_scale;
    table.embed_forward = cuda_embed_forward; table.embed_backward = cuda_embed_backward;
    table.layernorm_forward = cuda_layernorm_forward; table.layernorm_backward = cuda_layernorm_backward;
    table.sgemm_batched = sgemm_batched;
    table.attn_softmax_forward = cuda_attn_softmax_forward;
    table.attn_softmax_backward = cuda_attn_softmax_backward;
    table.softmax_xent = cuda_softmax_xent;
    table.sgd_update = cuda_sgd_update; table.adamw_update = cuda_adamw_update;
    table.gather = cuda_gather; table.select_rows = cuda_select_rows;
    table.mix_rows = cuda_mix_rows; table.paste_boxes = cuda_paste_boxes;
    table.resize_bilinear = cuda_resize_bilinear; table.take_grid = cuda_take_grid;
    table.softmax_rows = cuda_softmax_rows;
    table.map = map; table.reduce = cuda_reduce;
}

/* ---- opening -------------------------------------------------------------------------------- */

static int open_device(void)
{
    int count = 0, runtime = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count < 1) {
        snprintf(open_error, sizeof open_error, "no CUDA device found (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
        cudaGetLastError();   /* clear the sticky error of a failed probe */
        return -1;
    }
    cudaDeviceProp prop;
    CUDA_CHECK(cudaSetDevice(0));
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    if (prop.major < 9) {
        snprintf(open_error, sizeof open_error, "CUDA device %s has compute capability %d.%d; this "
                 "build has code for 9.0 (Hopper) and newer", prop.name, prop.major, prop.minor);
        return -1;
    }
    if (load_cublas(open_error, sizeof open_error)) return -1;
    cuda_sm_count = prop.multiProcessorCount;
    CUDA_CHECK(cudaStreamCreateWithFlags(&cuda_stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(blas.create(&cuda_blas));
    CUBLAS_CHECK(blas.set_stream(cuda_blas, cuda_stream));
    for (int k = 0; k < STAGE_RING; k++)
        CUDA_CHECK(cudaEventCreateWithFlags(&stage[k].done, cudaEventDisableTiming));
    cudaRuntimeGetVersion(&runtime);
    snprintf(description, sizeof description, "%s, %d SMs, compute %d.%d, CUDA %d.%d", prop.name,
             prop.multiProcessorCount, prop.major, prop.minor, runtime / 1000, runtime % 1000 / 10);
    fill_table();
    return 0;
}

extern "C" int cuda_open(char *why, size_t len)
{
    if (!open_state) open_state = open_device() ? -1 : 1;
    if (open_state < 0) snprintf(why, len, "%s", open_error);
    return open_state > 0 ? 0 : -1;
}

extern "C" const engine_ops *cuda_table(void) { return open_state > 0 ? &table : NULL; }

extern "C" const char *cuda_describe(void) { return open_state > 0 ? description : ""; }
