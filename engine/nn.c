/* Layers as forward/backward pairs over NHWC activations, and sequential models of them.
 * Shapes are checked at build time for the recipe's geometry and again per batch, because
 * plugins may change the input size between steps. */
#include "engine/nn.h"
#include "engine/check.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <time.h>

typedef struct build_ctx {
    nn_model *top;        /* receives every parameter */
    rng init;
    int counters[LAYER_KIND_COUNT];
    char *err;
    size_t errlen;
} build_ctx;

static nn_model *build_model(build_ctx *b, const layer_spec *specs, int n, int *h, int *w, int *c,
                             const char *prefix);

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

static nn_param *add_param(build_ctx *b, nn_layer *l, const char *what, int ndim, const int *shape,
                           int no_decay)
{
    nn_param *p = calloc(1, sizeof *p);
    CHECK(p, "out of memory");
    snprintf(p->name, sizeof p->name, "%s.%s", l->name, what);
    tensor_resize(&p->w, ndim, shape);
    tensor_resize(&p->g, ndim, shape);
    tensor_zero(&p->w);
    tensor_zero(&p->g);
    p->no_decay = no_decay;
    l->params[l->n_params++] = p;
    nn_model *m = b->top;
    m->params = realloc(m->params, (size_t)(m->n_params + 1) * sizeof *m->params);
    CHECK(m->params, "out of memory");
    m->params[m->n_params++] = p;
    return p;
}

/* Normal weights of standard deviation sd (embeddings: small, as GPT-2's; layer norms follow). */
static void init_normal(build_ctx *b, nn_param *p, float sd)
{
    for (size_t i = 0; i < p->w.n; i++) p->w.data[i] = sd * rng_normal(&b->init);
}

/* He normal: keeps activation variance steady through ReLU layers. */
static void init_he(build_ctx *b, nn_param *p, int fan_in) { init_normal(b, p, sqrtf(2.0f / (float)fan_in)); }

static void add_weight_bias(build_ctx *b, nn_layer *l, int ndim, const int *shape, int fan_in, int out)
{
    init_he(b, add_param(b, l, "weight", ndim, shape, 0), fan_in);
    if (l->spec.bias) add_param(b, l, "bias", 1, &out, 1);
}

static int pool_out(int size, int k, int s) { return size >= k ? (size - k) / s + 1 : 0; }
static int conv_out(int size, int k, int s, int pad) { return size + 2 * pad >= k ? (size + 2 * pad - k) / s + 1 : 0; }
static int pool_stride(const layer_spec *s) { return s->stride > 0 ? s->stride : s->k; }

/* Sets up one layer for inputs (h, w, c), updating them to its output geometry. */
static int build_layer(build_ctx *b, nn_layer *l, const layer_spec *s, int *h, int *w, int *c,
                       const char *prefix)
{
    l->spec = *s;
    l->spec.inner = NULL;
    l->spec.n_inner = 0;
    int idx = ++b->counters[s->kind];
    if (s->name[0]) snprintf(l->name, sizeof l->name, "%s%s", prefix, s->name);
    else snprintf(l->name, sizeof l->name, "%s%s%d", prefix, config_layer_name(s->kind), idx);

    if ((s->kind == LAYER_LINEAR || s->kind == LAYER_CONV) && s->out == CONFIG_CLASSES)
        return fail(b->err, b->errlen, "%s: nn.classes (the data's number of classes) is for a layer at the "
                    "model's top level, not inside a block", l->name);
    if ((s->kind == LAYER_LINEAR || s->kind == LAYER_CONV || s->kind == LAYER_EMBED) && s->out < 1)
        return fail(b->err, b->errlen, "%s: needs out >= 1, got %d", l->name, s->out);
    switch (s->kind) {
    case LAYER_LINEAR: {
        int in = *h * *w * *c;
        add_weight_bias(b, l, 2, (int[]){s->out, in}, in, s->out);
        *h = *w = 1;
        *c = s->out;
        break;
    }
    case LAYER_CONV: {
        int oh = conv_out(*h, s->k, s->stride, s->pad), ow = conv_out(*w, s->k, s->stride, s->pad);
        if (oh < 1 || ow < 1)
            return fail(b->err, b->errlen, "%s: kernel %d does not fit a %dx%d input with padding %d",
                        l->name, s->k, *h, *w, s->pad);
        int fan_in = s->k * s->k * *c;
        add_weight_bias(b, l, 4, (int[]){s->out, s->k, s->k, *c}, fan_in, s->out);
        *h = oh; *w = ow; *c = s->out;
        break;
    }
    case LAYER_MAXPOOL:
    case LAYER_AVGPOOL: {
        int st = pool_stride(s);
        int oh = pool_out(*h, s->k, st), ow = pool_out(*w, s->k, st);
        if (oh < 1 || ow < 1)
            return fail(b->err, b->errlen, "%s: window %d is larger than its %dx%d input",
                        l->name, s->k, *h, *w);
        *h = oh; *w = ow;
        break;
    }
    case LAYER_GAP:
        *h = *w = 1;
        break;
    case LAYER_BATCHNORM: {
        nn_param *g = add_param(b, l, "gamma", 1, c, 1);
        add_param(b, l, "beta", 1, c, 1);
        tensor_fill(&g->w, 1.0f);
        tensor_resize(&l->run_mean, 1, c);
        tensor_resize(&l->run_var, 1, c);
        tensor_zero(&l->run_mean);
        tensor_fill(&l->run_var, 1.0f);
        if (l->spec.momentum <= 0) l->spec.momentum = 0.1f;
        if (l->spec.eps <= 0) l->spec.eps = 1e-5f;
        break;
    }
    case LAYER_FLATTEN:
        *c = *h * *w * *c;
        *h = *w = 1;
        break;
    case LAYER_RESIDUAL: {
        char sub[64];
        int bh = *h, bw = *w, bc = *c;
        snprintf(sub, sizeof sub, "%s.", l->name);
        l->branch = build_model(b, s->inner, s->n_inner, &bh, &bw, &bc, sub);
        if (!l->branch) return -1;
        if (bh != *h || bw != *w || bc != *c) {
            int st = (*h + bh - 1) / bh;
            if (conv_out(*h, 1, st, 0) != bh || conv_out(*w, 1, st, 0) != bw)
                return fail(b->err, b->errlen, "%s: branch maps %dx%d to %dx%d, which no strided "
                            "shortcut can match", l->name, *h, *w, bh, bw);
            layer_spec ps = { .kind = LAYER_CONV, .out = bc, .k = 1, .stride = st, .bias = 0 };
            snprintf(ps.name, sizeof ps.name, "proj");
            l->proj = calloc(1, sizeof *l->proj);
            CHECK(l->proj, "out of memory");
            int ph = *h, pw = *w, pc = *c;
            if (build_layer(b, l->proj, &ps, &ph, &pw, &pc, sub)) return -1;
        }
        *h = bh; *w = bw; *c = bc;
        break;
    }
    case LAYER_SE: {   /* gates = sigmoid(fc2(relu(fc1(channel means)))); the geometry stays */
        int r = s->out;
        if (r < 1) return fail(b->err, b->errlen, "%s: needs out >= 1 hidden units", l->name);
        init_he(b, add_param(b, l, "fc1.weight", 2, (int[]){ r, *c }, 0), *c);
        add_param(b, l, "fc1.bias", 1, &r, 1);
        init_he(b, add_param(b, l, "fc2.weight", 2, (int[]){ *c, r }, 0), r);
        add_param(b, l, "fc2.bias", 1, c, 1);
        break;
    }
    case LAYER_EMBED: {   /* token ids (1, T, 1) -> (1, T, out): a table row per id, plus its position's */
        if (*h != 1 || *c != 1)
            return fail(b->err, b->errlen, "%s: expects a sequence of token ids (1x T x1), got %dx%dx%d: "
                        "embed reads text data", l->name, *h, *w, *c);
        if (s->vocab < 1)
            return fail(b->err, b->errlen, "%s: vocab is not known (set vocab = N, or train on a text "
                        "dataset, which gives its own)", l->name);
        int d = s->out;
        init_normal(b, add_param(b, l, "weight", 2, (int[]){ s->vocab, d }, 1), 0.02f);
        init_normal(b, add_param(b, l, "pos", 2, (int[]){ *w, d }, 1), 0.02f);
        *c = d;
        break;
    }
    case LAYER_LAYERNORM: {
        tensor_fill(&add_param(b, l, "gamma", 1, c, 1)->w, 1.0f);
        add_param(b, l, "beta", 1, c, 1);
        if (l->spec.eps <= 0) l->spec.eps = 1e-5f;
        break;
    }
    case LAYER_ATTENTION: {   /* (1, T, 3 D) queries, keys and values -> (1, T, D), causal */
        int hd = s->heads;
        if (hd < 1) return fail(b->err, b->errlen, "%s: needs heads >= 1", l->name);
        if (*h != 1)
            return fail(b->err, b->errlen, "%s: attends along a sequence (height 1), got a %dx%d input",
                        l->name, *h, *w);
        if (*c % (3 * hd)) {
            int d = (*c + hd - 1) / hd * hd;   /* the width to attend at: this one, rounded to the heads */
            return fail(b->err, b->errlen, "%s: %d input channels are not queries, keys and values of "
                        "%d heads (3 x heads x head size); put nn.conv(%d, 1) before it to attend at width %d",
                        l->name, *c, hd, 3 * d, d);
        }
        *c /= 3;
        break;
    }
    case LAYER_RELU: case LAYER_GELU: case LAYER_DROPOUT:
        break;
    default:
        return fail(b->err, b->errlen, "layer kind %d is not known", (int)s->kind);
    }
    return 0;
}

static nn_model *build_model(build_ctx *b, const layer_spec *specs, int n, int *h, int *w, int *c,
                             const char *prefix)
{
    nn_model *m = calloc(1, sizeof *m);
    CHECK(m, "out of memory");
    m->layers = calloc((size_t)(n > 0 ? n : 1), sizeof *m->layers);
    CHECK(m->layers, "out of memory");
    m->n_layers = n;
    m->in_h = *h; m->in_w = *w; m->in_c = *c;
    m->device = DEVICE_CPU;
    m->ops = &ops_cpu;
    for (int i = 0; i < n; i++) {
        if (build_layer(b, &m->layers[i], &specs[i], h, w, c, prefix)) {
            nn_free(m);
            return NULL;
        }
    }
    m->out_features = *h * *w * *c;
    return m;
}

/* Moves every parameter and gradient into one allocation each (llm.c style), so whole-model
 * operations (EMA, SAM, norms) are single passes over m->weights / m->grads. */
static void carve_flat(nn_model *m)
{
    size_t total = nn_param_count(m), off = 0;
    int n = (int)total;
    tensor_resize(&m->weights, 1, &n);
    tensor_resize(&m->grads, 1, &n);
    tensor_zero(&m->grads);
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = m->params[i];
        memcpy(m->weights.data + off, p->w.data, p->w.n * sizeof(float));
        int shape[4], nd = p->w.ndim;
        memcpy(shape, p->w.shape, sizeof shape);
        tensor_free(&p->w);
        tensor_free(&p->g);
        tensor_view(&p->w, m->weights.data + off, nd, shape);
        tensor_view(&p->g, m->grads.data + off, nd, shape);
        off += p->w.n;
    }
}

/* Calls fn on each batch-norm layer of m, nested ones included, in order. */
static void each_norm(nn_model *m, void (*fn)(nn_layer *l, void *ud), void *ud)
{
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *l = &m->layers[i];
        if (l->spec.kind == LAYER_BATCHNORM) fn(l, ud);
        if (l->branch) each_norm(l->branch, fn, ud);
    }
}

typedef struct stats_walk { float *base; size_t off; int copy; } stats_walk;

static void count_stats(nn_layer *l, void *ud) { ((stats_walk *)ud)->off += 2 * l->run_mean.n; }

/* Points l's running statistics into the flat buffer (copying their values first when asked). */
static void view_stats(nn_layer *l, void *ud)
{
    stats_walk *w = ud;
    tensor *st[] = { &l->run_mean, &l->run_var };
    for (int k = 0; k < 2; k++) {
        int c = st[k]->shape[0];
        if (w->copy) {
            memcpy(w->base + w->off, st[k]->data, (size_t)c * sizeof(float));
            tensor_free(st[k]);
        }
        *st[k] = (tensor){ .device = st[k]->device };
        tensor_view(st[k], w->base + w->off, 1, &c);
        w->off += (size_t)c;
    }
}

/* The running statistics into one allocation too: averaging methods (SWA) treat them as a whole. */
static void carve_stats(nn_model *m)
{
    stats_walk w = {0};
    each_norm(m, count_stats, &w);
    int n = (int)w.off;
    tensor_resize(&m->stats, 1, &n);   /* (0) without batch norm: still a vector plugins can clone */
    w = (stats_walk){ .base = m->stats.data, .copy = 1 };
    each_norm(m, view_stats, &w);
}

nn_model *nn_build(const layer_spec *specs, int n, int h, int w, int c, uint64_t seed,
                   char *err, size_t errlen)
{
    if (n < 1) {
        fail(err, errlen, "the model has no layers");
        return NULL;
    }
    nn_model *holder = calloc(1, sizeof *holder);
    CHECK(holder, "out of memory");
    build_ctx b = { .top = holder, .err = err, .errlen = errlen };
    rng_seed(&b.init, seed, 1);
    nn_model *m = build_model(&b, specs, n, &h, &w, &c, "");
    if (m) {
        m->params = holder->params;
        m->n_params = holder->n_params;
        rng_seed(&m->rng, seed, 2);
        carve_flat(m);
        carve_stats(m);
    } else {
        for (int i = 0; i < holder->n_params; i++) {
            nn_param *p = holder->params[i];
            tensor_free(&p->w); tensor_free(&p->g);
            free(p);
        }
        free(holder->params);
    }
    free(holder);
    return m;
}

static void free_layer(const nn_model *m, nn_layer *l)
{
    tensor_free(&l->out); tensor_free(&l->dx); tensor_free(&l->col); tensor_free(&l->aux);
    tensor_free(&l->run_mean); tensor_free(&l->run_var);
    if (l->arg) m->ops->free(l->arg);
    l->arg = NULL;
    l->arg_cap = 0;
    if (l->branch) {
        l->branch->params = NULL;   /* owned by the top model */
        l->branch->n_params = 0;
        nn_free(l->branch);
    }
    if (l->proj) { free_layer(m, l->proj); free(l->proj); }
}

void nn_free(nn_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) free_layer(m, &m->layers[i]);
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = m->params[i];
        tensor_free(&p->w); tensor_free(&p->g); tensor_free(&p->m); tensor_free(&p->v);
        free(p);
    }
    free(m->params);
    tensor_free(&m->weights);
    tensor_free(&m->grads);
    tensor_free(&m->stats);
    free(m->layers);
    free(m);
}

/* ---- forward ------------------------------------------------------------------------------ */

static const tensor *forward_layers(nn_model *m, nn_model *top, const tensor *x, int train);

/* The 2x2, stride-2 max pool right after batch norm l's fused ReLU, when the device does the three
 * as one (bn_pool_forward) and an h x w input fills whole windows; else NULL. */
static nn_layer *pool_partner(const nn_model *m, nn_layer *l, int h, int w)
{
    size_t i = (size_t)(l - m->layers);
    if (!l->fused || !m->ops->bn_pool_forward || h % 2 || w % 2 || i + 2 >= (size_t)m->n_layers) return NULL;
    nn_layer *p = &m->layers[i + 2];
    return p->spec.kind == LAYER_MAXPOOL && p->spec.k == 2 && pool_stride(&p->spec) == 2 ? p : NULL;
}

/* A max pool's output and argmax buffer for n outputs. */
static void pool_reserve(const engine_ops *o, nn_layer *l, int n, int oh, int ow, int c)
{
    tensor_resize4(&l->out, n, oh, ow, c);
    if (l->out.n > l->arg_cap) {
        if (l->arg) o->free(l->arg);
        l->arg = o->alloc(l->out.n * sizeof *l->arg);
        l->arg_cap = l->out.n;
    }
}

static int shape_err(nn_model *top, const nn_layer *l, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int shape_err(nn_model *top, const nn_layer *l, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(top->err, sizeof top->err, "%s: %s", l->name, msg);
    return -1;
}

static nn_gemm_shape *rec_buf;
static int rec_cap, rec_n;

void nn_gemm_record(nn_gemm_shape *buf, int cap)
{
    rec_buf = buf;
    rec_cap = cap;
    rec_n = 0;
}

int nn_gemm_recorded(void) { return rec_n; }

static nn_layer_time *time_buf;
static int time_cap;

void nn_layer_timing(nn_layer_time *buf, int cap)
{
    time_buf = buf;
    time_cap = buf ? cap : 0;
    if (buf) memset(buf, 0, (size_t)cap * sizeof *buf);
}

/* Seconds on the monotonic clock once the device has done what was queued (layer timing only). */
static double layer_clock(const nn_model *m)
{
    struct timespec ts;
    m->ops->sync();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Adds seconds since t0 to layer i's forward or backward time; callers time top-level models only. */
static void layer_timed(const nn_model *m, int i, double t0, int backward)
{
    if (!time_buf || i >= time_cap) return;
    nn_layer_time *t = &time_buf[i];
    snprintf(t->name, sizeof t->name, "%s", m->layers[i].name);
    *(backward ? &t->backward : &t->forward) += layer_clock(m) - t0;
    if (!backward) t->calls++;
}

/* Notes a product's shape for nn_gemm_record; a convolution done without a patch matrix notes the
 * products it stands for, so the bench's roofline counts its arithmetic. */
static void gemm_note(int ta, int tb, int M, int N, int K, float beta, int count)
{
    if (rec_buf && rec_n < rec_cap) rec_buf[rec_n++] = (nn_gemm_shape){ ta, tb, M, N, K, beta, count };
}

/* C = op(A) op(B) + beta C on the model's device, in bf16 when the model asks for it. */
static void gemm(const nn_model *m, int ta, int tb, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_note(ta, tb, M, N, K, beta, 1);
    (m->low_precision ? m->ops->sgemm_bf16 : m->ops->sgemm)(ta, tb, M, N, K, 1, A, lda, B, ldb, beta, C, ldc);
}

/* count products at strides sa, sb, sc (attention's per window), fp32, recorded as one shape. */
static void gemm_batched(const nn_model *m, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                         int lda, size_t sa, const float *B, int ldb, size_t sb, float *C, int ldc, size_t sc,
                         int count)
{
    gemm_note(ta, tb, M, N, K, 0, count);
    m->ops->sgemm_batched(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, 0, C, ldc, sc, count);
}

/* Whether the device runs this convolution without a patch matrix (a first layer's on the CPU). */
static int conv_is_thin(const nn_model *m, const nn_layer *l, int C)
{
    const layer_spec *s = &l->spec;
    return m->ops->conv_thin && !(s->k == 1 && s->stride == 1 && s->pad == 0) && !m->low_precision &&
           m->ops->conv_thin(s->k, C, s->out);
}

static int conv_forward(const nn_model *m, nn_model *top, nn_layer *l, const tensor *x)
{
    const layer_spec *s = &l->spec;
    const tensor *wt = &l->params[0]->w;
    int N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    if (C != wt->shape[3]) return shape_err(top, l, "expects %d channels, got %d", wt->shape[3], C);
    int oh = conv_out(H, s->k, s->stride, s->pad), ow = conv_out(W, s->k, s->stride, s->pad);
    if (oh < 1 || ow < 1) return shape_err(top, l, "kernel %d does not fit a %dx%d input", s->k, H, W);
    int kkc = s->k * s->k * C, M = N * oh * ow;
    tensor_resize4(&l->out, N, oh, ow, s->out);
    if (conv_is_thin(m, l, C)) {
        gemm_note(0, 1, M, s->out, kkc, 0, 1);
        m->ops->conv_thin_forward(x->data, N, H, W, C, s->k, s->stride, s->pad, oh, ow, wt->data, s->out,
                                  l->out.data);
    } else {
        const float *col = x->data;
        if (!(s->k == 1 && s->stride == 1 && s->pad == 0)) {
            tensor_resize2(&l->col, M, kkc);
            m->ops->im2col(x->data, N, H, W, C, s->k, s->stride, s->pad, oh, ow, l->col.data);
            col = l->col.data;
        }
        gemm(m, 0, 1, M, s->out, kkc, col, kkc, wt->data, kkc, 0, l->out.data, s->out);
    }
    if (l->n_params > 1) m->ops->add_bias(l->out.data, l->params[1]->w.data, (size_t)M, s->out);
    return 0;
}

/* Causal multi-head attention over x (N, 1, T, 3D) = queries, keys, values, each D = heads x dh
 * wide: per head, P = softmax(Q K^T / sqrt(dh)) under the causal mask (and ALiBi's biases), kept
 * in aux (N, heads, T, T) for the backward; out (N, 1, T, D) = P V, heads side by side. */
static int attention_forward(const nn_model *m, nn_model *top, nn_layer *l, const tensor *x)
{
    const engine_ops *o = m->ops;
    int N = x->shape[0], T = x->shape[2], C = x->shape[3], hd = l->spec.heads;
    if (x->shape[1] != 1 || C % (3 * hd))
        return shape_err(top, l, "expects (1, T, 3 x %d heads x head size), got %dx%dx%d", hd, x->shape[1], T, C);
    int D = C / 3, dh = D / hd;
    size_t tt = (size_t)T * T, in = (size_t)T * C, out = (size_t)T * D;
    tensor_resize4(&l->aux, N, hd, T, T);
    tensor_resize4(&l->out, N, 1, T, D);
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < hd; h++)
        gemm_batched(m, 0, 1, T, T, dh, scale, x->data + h * dh, C, in, x->data + D + h * dh, C, in,
                     l->aux.data + h * tt, T, hd * tt, N);
    o->attn_softmax_forward(l->aux.data, (size_t)N * hd * T, T, hd, l->spec.alibi);
    for (int h = 0; h < hd; h++)
        gemm_batched(m, 0, 0, T, dh, T, 1, l->aux.data + h * tt, T, hd * tt, x->data + 2 * D + h * dh, C, in,
                     l->out.data + h * dh, D, out, N);
    return 0;
}

/* Through attention_forward: dV = P^T dO, dP = dO V^T, dS = softmax backward of dP (in col),
 * dQ = dS K / sqrt(dh), dK = dS^T Q / sqrt(dh), into dx (N, 1, T, 3D). */
static void attention_backward(const nn_model *m, nn_layer *l, const tensor *dout)
{
    const engine_ops *o = m->ops;
    const tensor *x = l->in;
    int N = x->shape[0], T = x->shape[2], C = x->shape[3], hd = l->spec.heads, D = C / 3, dh = D / hd;
    size_t tt = (size_t)T * T, in = (size_t)T * C, out = (size_t)T * D;
    const float *P = l->aux.data, *dO = dout->data, *X = x->data;
    tensor_resize4(&l->col, N, hd, T, T);
    float *dS = l->col.data, *dX = l->dx.data, scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < hd; h++) {
        gemm_batched(m, 1, 0, T, dh, T, 1, P + h * tt, T, hd * tt, dO + h * dh, D, out,
                     dX + 2 * D + h * dh, C, in, N);
        gemm_batched(m, 0, 1, T, T, dh, 1, dO + h * dh, D, out, X + 2 * D + h * dh, C, in,
                     dS + h * tt, T, hd * tt, N);
    }
    o->attn_softmax_backward(P, dS, (size_t)N * hd * T, T);
    for (int h = 0; h < hd; h++) {
        gemm_batched(m, 0, 0, T, dh, T, scale, dS + h * tt, T, hd * tt, X + D + h * dh, C, in,
                     dX + h * dh, C, in, N);
        gemm_batched(m, 1, 0, T, dh, T, scale, dS + h * tt, T, hd * tt, X + h * dh, C, in,
                     dX + D + h * dh, C, in, N);
    }
}

static int layer_forward(nn_model *m, nn_model *top, nn_layer *l, const tensor *x, int train)
{
    const layer_spec *s = &l->spec;
    const engine_ops *o = m->ops;
    int N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    l->in = x;
    switch (s->kind) {
    case LAYER_LINEAR: {
        const tensor *wt = &l->params[0]->w;
        int F = H * W * C, O = s->out;
        if (F != wt->shape[1])
            return shape_err(top, l, "expects %d input features, got %d (%dx%dx%d); use gap before it "
                             "to accept any image size", wt->shape[1], F, H, W, C);
        tensor_resize4(&l->out, N, 1, 1, O);
        gemm(m, 0, 1, N, O, F, x->data, F, wt->data, F, 0, l->out.data, O);
        if (l->n_params > 1) o->add_bias(l->out.data, l->params[1]->w.data, (size_t)N, O);
        return 0;
    }
    case LAYER_CONV:
        return conv_forward(m, top, l, x);
    case LAYER_MAXPOOL:
    case LAYER_AVGPOOL: {
        int st = pool_stride(s), oh = pool_out(H, s->k, st), ow = pool_out(W, s->k, st);
        if (oh < 1 || ow < 1) return shape_err(top, l, "window %d is larger than its %dx%d input", s->k, H, W);
        if (l->pooled) return 0;   /* the batch norm two layers back did it */
        if (s->kind == LAYER_AVGPOOL) {
            tensor_resize4(&l->out, N, oh, ow, C);
            o->avgpool_forward(x->data, N, H, W, C, s->k, st, oh, ow, l->out.data);
            return 0;
        }
        pool_reserve(o, l, N, oh, ow, C);
        o->maxpool_forward(x->data, N, H, W, C, s->k, st, oh, ow, l->out.data, l->arg);
        return 0;
    }
    case LAYER_GAP: {
        int k = H > W ? H : W;
        tensor_resize4(&l->out, N, 1, 1, C);
        o->avgpool_forward(x->data, N, H, W, C, k, 1, 1, 1, l->out.data);
        return 0;
    }
    case LAYER_SE: {
        const tensor *w1 = &l->params[0]->w;
        if (C != w1->shape[1]) return shape_err(top, l, "expects %d channels, got %d", w1->shape[1], C);
        int R = s->out, k = H > W ? H : W;
        tensor_resize2(&l->aux, N, 2 * C + R);
        float *sq = l->aux.data, *a = sq + (size_t)N * C, *e = a + (size_t)N * R;
        o->avgpool_forward(x->data, N, H, W, C, k, 1, 1, 1, sq);               /* (N, C) means */
        gemm(m, 0, 1, N, R, C, sq, C, w1->data, C, 0, a, R);
        o->add_bias(a, l->params[1]->w.data, (size_t)N, R);
        o->relu_forward(a, a, (size_t)N * R);                                  /* (N, R) */
        gemm(m, 0, 1, N, C, R, a, R, l->params[2]->w.data, R, 0, e, C);
        o->add_bias(e, l->params[3]->w.data, (size_t)N, C);
        o->sigmoid_forward(e, e, (size_t)N * C);                               /* (N, C) gates */
        tensor_resize(&l->out, 4, x->shape);
        o->channel_scale(x->data, e, x->n, H * W, C, l->out.data);
        return 0;
    }
    case LAYER_BATCHNORM: {
        if ((size_t)C != l->params[0]->w.n) return shape_err(top, l, "expects %zu channels, got %d", l->params[0]->w.n, C);
        /* ghost batch norm: training statistics per group of s->ghost examples, each group
         * moving the running statistics in turn; aux keeps one inv_std row per group */
        int g = train && s->ghost > 0 && s->ghost < N ? s->ghost : N, groups = (N + g - 1) / g;
        size_t per = (size_t)H * W;
        nn_layer *pool = pool_partner(m, l, H, W);
        tensor_resize(&l->out, 4, x->shape);   /* the ReLU's view; not written when pooled */
        tensor_resize2(&l->col, pool ? groups : (int)(N * per), C);   /* pooled: each group's mean */
        tensor_resize2(&l->aux, groups, C);
        if (pool) {
            pool_reserve(o, pool, N, H / 2, W / 2, C);
            tensor_resize4(&pool->col, N, H / 2, W / 2, C);   /* xhat at each argmax, for the backward */
        }
        l->pooled = pool != NULL;
        if (pool) pool->pooled = 1;
        for (int k = 0; k < groups; k++) {
            int n = k == groups - 1 ? N - k * g : g;
            size_t off = (size_t)k * g * per * C, rows = (size_t)n * per, poff = off / 4;
            if (pool) {   /* each group's argmax positions count from its own first example */
                o->bn_pool_forward(x->data + off, n, H, W, C, l->params[0]->w.data, l->params[1]->w.data,
                                   l->run_mean.data, l->run_var.data, s->momentum, s->eps, train,
                                   pool->out.data + poff, pool->arg + poff, pool->col.data + poff,
                                   l->col.data + (size_t)k * C,
                                   l->aux.data + (size_t)k * C);
                continue;
            }
            o->batchnorm_forward(x->data + off, rows, C, l->params[0]->w.data, l->params[1]->w.data,
                                  l->run_mean.data, l->run_var.data, s->momentum, s->eps, train,
                                  l->fused, l->out.data + off, l->col.data + off, l->aux.data + (size_t)k * C);
        }
        return 0;
    }
    case LAYER_RELU:
        if (l->fused) {   /* the batch norm before already applied it */
            if (l->out.cap) tensor_free(&l->out);
            tensor_view(&l->out, x->data, 4, x->shape);
            return 0;
        }
        tensor_resize(&l->out, 4, x->shape);
        o->relu_forward(x->data, l->out.data, x->n);
        return 0;
    case LAYER_GELU:
        tensor_resize(&l->out, 4, x->shape);
        o->gelu_forward(x->data, l->out.data, x->n);
        return 0;
    case LAYER_DROPOUT:
        tensor_resize(&l->out, 4, x->shape);
        if (!train || s->p <= 0) {
            o->copy(l->out.data, x->data, x->n * sizeof(float));
            return 0;
        }
        tensor_resize(&l->aux, 4, x->shape);
        o->dropout_forward(x->data, l->out.data, l->aux.data, x->n, s->p, rng_u64(&top->rng));
        return 0;
    case LAYER_FLATTEN:
        tensor_view(&l->out, x->data, 4, (int[]){N, 1, 1, H * W * C});
        return 0;
    case LAYER_EMBED: {
        const tensor *tab = &l->params[0]->w, *pos = &l->params[1]->w;
        if (H != 1 || C != 1) return shape_err(top, l, "expects token ids (1x T x1), got %dx%dx%d", H, W, C);
        if (s->positions && W > pos->shape[0])
            return shape_err(top, l, "a sequence of %d tokens is longer than its %d positions", W, pos->shape[0]);
        int d = tab->shape[1];
        tensor_resize4(&l->out, N, 1, W, d);
        o->embed_forward(x->data, (size_t)N * W, W, tab->data, s->positions ? pos->data : NULL, d, l->out.data);
        return 0;
    }
    case LAYER_LAYERNORM: {
        if ((size_t)C != l->params[0]->w.n) return shape_err(top, l, "expects %zu channels, got %d", l->params[0]->w.n, C);
        size_t rows = x->n / (size_t)C;
        tensor_resize(&l->out, 4, x->shape);
        tensor_resize2(&l->col, (int)rows, C);
        tensor_resize(&l->aux, 1, (int[]){ (int)rows });
        o->layernorm_forward(x->data, rows, C, l->params[0]->w.data, l->params[1]->w.data, s->eps,
                             l->out.data, l->col.data, l->aux.data);
        return 0;
    }
    case LAYER_ATTENTION:
        return attention_forward(m, top, l, x);
    case LAYER_RESIDUAL: {
        const tensor *sc = x;
        if (l->proj) {
            if (layer_forward(m, top, l->proj, x, train)) return -1;
            sc = &l->proj->out;
        }
        if (l->skip) {
            tensor_copy(&l->out, sc);
            return 0;
        }
        const tensor *br = forward_layers(l->branch, top, x, train);
        if (!br) return -1;
        if (!tensor_same_shape(br, sc))
            return shape_err(top, l, "branch output %dx%dx%d does not match the shortcut %dx%dx%d",
                             br->shape[1], br->shape[2], br->shape[3], sc->shape[1], sc->shape[2], sc->shape[3]);
        tensor_resize(&l->out, 4, br->shape);
        if (l->scale == 0 || l->scale == 1) o->add(br->data, sc->data, l->out.data, br->n);
        else {   /* out = shortcut + scale * branch */
            o->copy(l->out.data, sc->data, br->n * sizeof(float));
            o->map(OPS_AXPY, l->out.data, br->data, br->n, l->scale, 0);
        }
        return 0;
    }
    default:
        return shape_err(top, l, "unknown layer kind");
    }
}

/* A batch norm directly followed by a ReLU does both in one pass; decided per forward so that
 * layers inserted between them later are respected. */
static void mark_fusions(nn_model *m)
{
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *l = &m->layers[i];
        l->fused = l->pooled = 0;
        if (i > 0 && l->spec.kind == LAYER_RELU && m->layers[i - 1].spec.kind == LAYER_BATCHNORM)
            l->fused = m->layers[i - 1].fused = 1;
    }
}

static const tensor *forward_layers(nn_model *m, nn_model *top, const tensor *x, int train)
{
    mark_fusions(m);
    int timed = time_buf && m == top;
    for (int i = 0; i < m->n_layers; i++) {
        double t0 = timed ? layer_clock(m) : 0;
        if (layer_forward(m, top, &m->layers[i], x, train)) return NULL;
        if (timed) layer_timed(m, i, t0, 0);
        x = &m->layers[i].out;
    }
    return x;
}

const tensor *nn_forward(nn_model *m, const tensor *x, int train)
{
    m->err[0] = 0;
    if (x->ndim != 4) {
        snprintf(m->err, sizeof m->err, "input must be (N, H, W, C), got rank %d", x->ndim);
        return NULL;
    }
    /* Nested branches draw dropout masks from the top model's stream. */
    return forward_layers(m, m, x, train);
}

/* ---- backward ----------------------------------------------------------------------------- */

static int layer_trainable(const nn_layer *l)
{
    for (int i = 0; i < l->n_params; i++)
        if (!l->params[i]->frozen) return 1;
    if (l->proj && layer_trainable(l->proj)) return 1;
    if (l->branch)
        for (int i = 0; i < l->branch->n_layers; i++)
            if (layer_trainable(&l->branch->layers[i])) return 1;
    return 0;
}

static void backward_layers(nn_model *m, const tensor *dout, int need_dx, int top);

static void conv_backward(const nn_model *m, nn_layer *l, const tensor *dout, int need_dx)
{
    const layer_spec *s = &l->spec;
    const tensor *x = l->in;
    nn_param *wp = l->params[0];
    int N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    int oh = dout->shape[1], ow = dout->shape[2], M = N * oh * ow, kkc = s->k * s->k * C;
    int direct = s->k == 1 && s->stride == 1 && s->pad == 0;
    const float *col = direct ? x->data : l->col.data;
    if (!wp->frozen && conv_is_thin(m, l, C)) {
        gemm_note(1, 0, s->out, kkc, M, 1, 1);
        m->ops->conv_thin_wgrad(x->data, N, H, W, C, s->k, s->stride, s->pad, oh, ow, dout->data, s->out,
                                wp->g.data);
    } else if (!wp->frozen) {
        gemm(m, 1, 0, s->out, kkc, M, dout->data, s->out, col, kkc, 1, wp->g.data, kkc);
    }
    if (l->n_params > 1 && !l->params[1]->frozen) m->ops->sum_rows(dout->data, (size_t)M, s->out, l->params[1]->g.data);
    if (!need_dx) return;
    tensor_resize(&l->dx, 4, x->shape);
    if (direct) {
        gemm(m, 0, 0, M, C, s->out, dout->data, s->out, wp->w.data, C, 0, l->dx.data, C);
        return;
    }
    tensor_resize2(&l->aux, M, kkc);
    gemm(m, 0, 0, M, kkc, s->out, dout->data, s->out, wp->w.data, kkc, 0, l->aux.data, kkc);
    m->ops->col2im(l->aux.data, N, H, W, C, s->k, s->stride, s->pad, oh, ow, l->dx.data);
}

static void layer_backward(const nn_model *m, nn_layer *l, const tensor *dout, int need_dx)
{
    const layer_spec *s = &l->spec;
    const engine_ops *o = m->ops;
    const tensor *x = l->in;
    int N = x->shape[0], H = x->shape[1], W = x->shape[2], C = x->shape[3];
    if (need_dx && s->kind != LAYER_FLATTEN && s->kind != LAYER_CONV && !(s->kind == LAYER_RELU && l->fused) &&
        !(s->kind == LAYER_MAXPOOL && l->pooled))
        tensor_resize(&l->dx, 4, x->shape);
    switch (s->kind) {
    case LAYER_LINEAR: {
        nn_param *wp = l->params[0];
        int F = H * W * C, O = s->out;
        if (!wp->frozen) gemm(m, 1, 0, O, F, N, dout->data, O, x->data, F, 1, wp->g.data, F);
        if (l->n_params > 1 && !l->params[1]->frozen) o->sum_rows(dout->data, (size_t)N, O, l->params[1]->g.data);
        if (need_dx) gemm(m, 0, 0, N, F, O, dout->data, O, wp->w.data, F, 0, l->dx.data, F);
        break;
    }
    case LAYER_CONV:
        conv_backward(m, l, dout, need_dx);
        break;
    case LAYER_MAXPOOL:
        if (need_dx && l->pooled) {   /* the pooled gradient, on to the batch norm that pooled */
            if (l->dx.cap) tensor_free(&l->dx);
            tensor_view(&l->dx, dout->data, 4, dout->shape);
        } else if (need_dx)
            o->maxpool_backward(dout->data, l->arg, N, dout->n / (size_t)N, l->dx.data, x->n / (size_t)N);
        break;
    case LAYER_AVGPOOL:
        if (need_dx) {
            int st = pool_stride(s);
            o->avgpool_backward(dout->data, N, H, W, C, s->k, st, dout->shape[1], dout->shape[2], l->dx.data);
        }
        break;
    case LAYER_GAP:
        if (need_dx) o->avgpool_backward(dout->data, N, H, W, C, H > W ? H : W, 1, 1, 1, l->dx.data);
        break;
    case LAYER_SE: {
        int R = s->out, k = H > W ? H : W;
        size_t nc = (size_t)N * C, nr = (size_t)N * R;
        const float *sq = l->aux.data, *a = sq + nc, *e = a + nr;
        nn_param *w1 = l->params[0], *b1 = l->params[1], *w2 = l->params[2], *b2 = l->params[3];
        tensor_resize(&l->col, 1, (int[]){ (int)(x->n + 2 * nc + nr) });
        float *tmp = l->col.data, *du = tmp + x->n, *dz = du + nc, *ds = dz + nr;
        o->mul(dout->data, x->data, tmp, x->n);                       /* gate gradient: sum of dy x */
        o->avgpool_forward(tmp, N, H, W, C, k, 1, 1, 1, du);
        o->map(OPS_SCALE, du, NULL, nc, (float)(H * W), 0);
        o->sigmoid_backward(e, du, du, nc);
        if (!w2->frozen) gemm(m, 1, 0, C, R, N, du, C, a, R, 1, w2->g.data, R);
        if (!b2->frozen) o->sum_rows(du, (size_t)N, C, b2->g.data);
        gemm(m, 0, 0, N, R, C, du, C, w2->w.data, R, 0, dz, R);
        o->relu_backward(a, dz, dz, nr);
        if (!w1->frozen) gemm(m, 1, 0, R, C, N, dz, R, sq, C, 1, w1->g.data, C);
        if (!b1->frozen) o->sum_rows(dz, (size_t)N, R, b1->g.data);
        if (!need_dx) break;
        gemm(m, 0, 0, N, C, R, dz, R, w1->w.data, C, 0, ds, C);     /* through the channel means */
        o->channel_scale(dout->data, e, x->n, H * W, C, l->dx.data); /* through the gating */
        o->avgpool_backward(ds, N, H, W, C, k, 1, 1, 1, tmp);
        o->add(l->dx.data, tmp, l->dx.data, x->n);
        break;
    }
    case LAYER_BATCHNORM: {
        nn_param *g = l->params[0], *b = l->params[1];
        int groups = l->aux.shape[0], n = groups > 1 ? s->ghost : N;   /* as the forward grouped */
        size_t per = (size_t)H * W;
        const nn_layer *pool = l->pooled ? l + 2 : NULL;   /* dout is then the pool's gradient */
        for (int k = 0; k < groups; k++) {   /* dgamma and dbeta accumulate over the groups */
            int nk = k == groups - 1 ? N - k * n : n;
            size_t off = (size_t)k * n * per * C, rows = (size_t)nk * per, poff = off / 4;
            if (pool) {
                o->bn_pool_backward(dout->data + poff, pool->arg + poff, pool->col.data + poff, x->data + off,
                                    l->col.data + (size_t)k * C, l->aux.data + (size_t)k * C, nk, H, W, C,
                                    g->w.data, g->frozen ? NULL : g->g.data, b->frozen ? NULL : b->g.data,
                                    need_dx ? l->dx.data + off : NULL);
                continue;
            }
            o->batchnorm_backward(dout->data + off, l->fused ? l->out.data + off : NULL, l->col.data + off,
                                  l->aux.data + (size_t)k * C, rows, C, g->w.data, b->w.data,
                                  g->frozen ? NULL : g->g.data,
                                  b->frozen ? NULL : b->g.data, need_dx ? l->dx.data + off : NULL);
        }
        break;
    }
    case LAYER_RELU:
        if (need_dx && l->fused) {   /* the batch norm masks dy itself */
            if (l->dx.cap) tensor_free(&l->dx);
            tensor_view(&l->dx, dout->data, 4, x->shape);
        } else if (need_dx) {
            o->relu_backward(l->out.data, dout->data, l->dx.data, x->n);
        }
        break;
    case LAYER_GELU:
        if (need_dx) o->gelu_backward(x->data, dout->data, l->dx.data, x->n);
        break;
    case LAYER_DROPOUT:
        if (!need_dx) break;
        if (s->p <= 0 || l->aux.n != x->n) o->copy(l->dx.data, dout->data, x->n * sizeof(float));
        else o->mul(dout->data, l->aux.data, l->dx.data, x->n);
        break;
    case LAYER_FLATTEN:
        if (need_dx) tensor_view(&l->dx, dout->data, 4, x->shape);
        break;
    case LAYER_EMBED: {
        nn_param *tab = l->params[0], *pos = l->params[1];
        int d = tab->w.shape[1];
        o->embed_backward(x->data, (size_t)N * W, W, dout->data, d, tab->w.shape[0],
                          tab->frozen ? NULL : tab->g.data, s->positions && !pos->frozen ? pos->g.data : NULL);
        if (need_dx) o->zero(l->dx.data, x->n * sizeof(float));   /* ids have no gradient */
        break;
    }
    case LAYER_LAYERNORM: {
        nn_param *g = l->params[0], *b = l->params[1];
        o->layernorm_backward(dout->data, l->col.data, l->aux.data, x->n / (size_t)C, C, g->w.data,
                              g->frozen ? NULL : g->g.data, b->frozen ? NULL : b->g.data,
                              need_dx ? l->dx.data : NULL);
        break;
    }
    case LAYER_ATTENTION:
        if (need_dx) attention_backward(m, l, dout);
        break;
    case LAYER_RESIDUAL: {
        const float *dbranch = NULL;
        if (!l->skip) {
            const tensor *db = dout;
            if (l->scale != 0 && l->scale != 1) {   /* the branch's share of dout, in col */
                tensor_resize(&l->col, dout->ndim, dout->shape);
                o->copy(l->col.data, dout->data, dout->n * sizeof(float));
                o->map(OPS_SCALE, l->col.data, NULL, dout->n, l->scale, 0);
                db = &l->col;
            }
            backward_layers(l->branch, db, need_dx, 0);
            dbranch = l->branch->layers[0].dx.data;
        }
        const float *dsc = dout->data;
        if (l->proj) {
            layer_backward(m, l->proj, dout, need_dx);
            dsc = l->proj->dx.data;
        }
        if (!need_dx) break;
        if (dbranch) o->add(dsc, dbranch, l->dx.data, x->n);
        else o->copy(l->dx.data, dsc, x->n * sizeof(float));
        break;
    }
    default:
        break;
    }
}

/* Layer i produces dx only when an earlier layer will use it; layers before the first trainable
 * one are not visited at all (frozen prefixes make backward cheaper). */
static void backward_layers(nn_model *m, const tensor *dout, int need_dx, int top)
{
    int first = m->n_layers, timed = top && time_buf;
    for (int i = 0; i < m->n_layers; i++)
        if (layer_trainable(&m->layers[i])) { first = i; break; }
    for (int i = m->n_layers - 1; i >= 0 && (need_dx || i >= first); i--) {
        nn_layer *l = &m->layers[i];
        double t0 = timed ? layer_clock(m) : 0;
        layer_backward(m, l, dout, need_dx || first < i);
        if (timed) layer_timed(m, i, t0, 1);
        dout = &l->dx;
    }
}

void nn_backward(nn_model *m, const tensor *dout) { backward_layers(m, dout, 0, 1); }
void nn_backward_full(nn_model *m, const tensor *dout) { backward_layers(m, dout, 1, 1); }

void nn_zero_grad(nn_model *m)
{
    int frozen = 0;
    for (int i = 0; i < m->n_params; i++) frozen |= m->params[i]->frozen;
    if (!frozen) {   /* one pass over the flat buffer: one launch on a GPU */
        tensor_zero(&m->grads);
        return;
    }
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i]->frozen) tensor_zero(&m->params[i]->g);
}

size_t nn_param_count(const nn_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i]->w.n;
    return n;
}

/* ---- devices ------------------------------------------------------------------------------ */

/* An owned tensor's contents onto device d (a view is only re-tagged; the caller re-points it). */
static void move_tensor(tensor *t, device_kind d)
{
    if (t->device == d) return;
    tensor moved = { .device = d, .ndim = t->ndim };
    memcpy(moved.shape, t->shape, sizeof moved.shape);   /* an empty tensor keeps its shape */
    if (t->cap && t->n) tensor_copy(&moved, t);
    tensor_free(t);
    *t = moved;
}

/* Activations regrow on d at the next forward. */
static void move_layers(nn_model *m, device_kind d);

static void move_layer(nn_model *m, nn_layer *l, device_kind d)
{
    tensor *scratch[] = { &l->out, &l->dx, &l->col, &l->aux };
    for (size_t i = 0; i < sizeof scratch / sizeof *scratch; i++) {
        tensor_free(scratch[i]);
        scratch[i]->device = d;
    }
    l->run_mean.device = l->run_var.device = d;   /* views: nn_to_device re-points them */
    if (l->arg) m->ops->free(l->arg);
    l->arg = NULL;
    l->arg_cap = 0;
    l->in = NULL;
    if (l->proj) move_layer(m, l->proj, d);
    if (l->branch) move_layers(l->branch, d);
}

static void move_layers(nn_model *m, device_kind d)
{
    for (int i = 0; i < m->n_layers; i++) move_layer(m, &m->layers[i], d);
    m->device = d;
    m->ops = ops_for(d);
}

static void set_low_precision(nn_model *m, int on)
{
    m->low_precision = on;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].branch) set_low_precision(m->layers[i].branch, on);
}

int nn_to_device(nn_model *m, device_kind d)
{
    if (m->device == d) return 0;
    move_layers(m, d);
    move_tensor(&m->weights, d);
    move_tensor(&m->grads, d);
    move_tensor(&m->stats, d);
    stats_walk w = { .base = m->stats.data };
    each_norm(m, view_stats, &w);
    size_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = m->params[i];
        int shape[4], nd = p->w.ndim;
        memcpy(shape, p->w.shape, sizeof shape);
        p->w = (tensor){ .device = d };
        p->g = (tensor){ .device = d };
        tensor_view(&p->w, m->weights.data + off, nd, shape);
        tensor_view(&p->g, m->grads.data + off, nd, shape);
        move_tensor(&p->m, d);
        move_tensor(&p->v, d);
        off += p->w.n;
    }
    if (!m->ops->sgemm_bf16) set_low_precision(m, 0);
    return 0;
}

int nn_set_low_precision(nn_model *m, int on)
{
    if (on && !m->ops->sgemm_bf16) {
        snprintf(m->err, sizeof m->err, "bf16 matrix products need the CUDA device (this model is on "
                 "the %s; run with --device cuda)", ops_device_name(m->device));
        return -1;
    }
    set_low_precision(m, on != 0);
    return 0;
}

static const char state_magic[8] = "HSTNWTS";
enum { STATE_VERSION = 2, STATE_HEADER = 32, STATE_SHAPE = 5 * 4 };   /* a shape: rank, 4 dims */

/* A walk over a weights file's statistics (from p), counting negative running variances. */
typedef struct var_walk { const char *p; size_t off, bad; } var_walk;

static void count_negative_var(nn_layer *l, void *ud)
{
    var_walk *w = ud;
    size_t c = l->run_mean.n;
    for (size_t i = 0; i < c; i++) {   /* each layer's means, then its variances */
        float v;
        memcpy(&v, w->p + (w->off + c + i) * sizeof v, sizeof v);
        w->bad += v < 0;
    }
    w->off += 2 * c;
}

/* Counts the values of a weights file's body p, laid out as m's weights then statistics, that no
 * training leaves: infinities and NaNs, and batch-norm running variances below zero. */
static size_t unusable_state(nn_model *m, const char *p)
{
    size_t bad = 0, n = m->weights.n + m->stats.n;
    for (size_t i = 0; i < n; i++) {
        float v;   /* p need not be aligned */
        memcpy(&v, p + i * sizeof v, sizeof v);
        bad += !isfinite(v);
    }
    var_walk w = { .p = p + m->weights.n * sizeof(float) };
    each_norm(m, count_negative_var, &w);
    return bad + w.bad;
}

/* The shapes block of a version-2 file: the parameter count, then each parameter's rank and four
 * dimensions (unused ones 0), uint32 each. */
static size_t shapes_bytes(const nn_model *m) { return 4 + (size_t)m->n_params * STATE_SHAPE; }

/* Parameter i's shape as the file holds it: rank, then 4 dimensions (unused ones 0). */
static void param_shape(const nn_model *m, int i, uint32_t s[5])
{
    const tensor *w = &m->params[i]->w;
    memset(s, 0, 5 * sizeof *s);
    s[0] = (uint32_t)w->ndim;
    for (int d = 0; d < w->ndim && d < 4; d++) s[1 + d] = (uint32_t)w->shape[d];
}

static void put_shapes(const nn_model *m, char *p)
{
    uint32_t n = (uint32_t)m->n_params, s[5];
    memcpy(p, &n, 4);
    for (int i = 0; i < m->n_params; i++) {
        param_shape(m, i, s);
        memcpy(p + 4 + (size_t)i * STATE_SHAPE, s, sizeof s);
    }
}

/* "(32, 3, 3, 16)" for shape s (rank, dims) into out. */
static void format_shape(const uint32_t *s, char *out, size_t len)
{
    int n = snprintf(out, len, "(");
    for (uint32_t d = 0; d < s[0] && d < 4 && n < (int)len; d++)
        n += snprintf(out + n, len - (size_t)n, "%s%u", d ? ", " : "", s[1 + d]);
    if (n < (int)len) snprintf(out + n, len - (size_t)n, ")");
}

/* Checks a version-2 file's shapes block p against m's parameters: 0, or -1 with err naming the
 * first that differs. */
static int check_shapes(const nn_model *m, const char *p, char *err, size_t errlen)
{
    uint32_t n;
    memcpy(&n, p, 4);
    if (n != (uint32_t)m->n_params)
        return fail(err, errlen, "it holds %u parameter tensors, the recipe's model %d (a plugin may have changed "
                    "the model's layers)", n, m->n_params);
    for (int i = 0; i < m->n_params; i++) {
        uint32_t want[5], have[5];
        param_shape(m, i, want);
        memcpy(have, p + 4 + (size_t)i * STATE_SHAPE, sizeof have);
        if (memcmp(want, have, sizeof want)) {
            char a[64], b[64];
            format_shape(have, a, sizeof a);
            format_shape(want, b, sizeof b);
            return fail(err, errlen, "parameter %d is %s in the file, %s in the recipe's model (the recipe's "
                        "layers changed since the run)", i + 1, a, b);
        }
    }
    return 0;
}

void *nn_state_pack(const nn_model *m, size_t *len)
{
    uint64_t nw = m->weights.n, ns = m->stats.n;
    size_t body = (size_t)(nw + ns) * sizeof(float);
    *len = STATE_HEADER + body + shapes_bytes(m);
    char *buf = malloc(*len);
    CHECK(buf, "out of memory");
    uint32_t version = STATE_VERSION;
    memcpy(buf, state_magic, 8);
    memcpy(buf + 8, &version, 4);
    memcpy(buf + 16, &nw, 8);
    memcpy(buf + 24, &ns, 8);
    m->ops->download(buf + STATE_HEADER, m->weights.data, nw * sizeof(float));
    if (ns) m->ops->download(buf + STATE_HEADER + nw * sizeof(float), m->stats.data, ns * sizeof(float));
    put_shapes(m, buf + STATE_HEADER + body);
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)buf + STATE_HEADER, (uInt)(*len - STATE_HEADER));
    memcpy(buf + 12, &crc, 4);
    return buf;
}

int nn_state_unpack(nn_model *m, const void *buf, size_t len, char *err, size_t errlen)
{
    const char *b = buf;
    uint32_t version, crc;
    uint64_t nw, ns;
    if (len < STATE_HEADER || memcmp(b, state_magic, 8))
        return fail(err, errlen, "not a hasten weights file");
    memcpy(&version, b + 8, 4);
    memcpy(&crc, b + 12, 4);
    memcpy(&nw, b + 16, 8);
    memcpy(&ns, b + 24, 8);
    if (version != 1 && version != STATE_VERSION)   /* 1: the same without shapes and checksum */
        return fail(err, errlen, "weights file version %u; this hasten reads versions 1 and %d (rerun the "
                    "teacher with this hasten)", version, STATE_VERSION);
    if (nw != m->weights.n || ns != m->stats.n)
        return fail(err, errlen, "it holds %llu weights and %llu statistics, the recipe's model %zu and %zu "
                    "(a plugin may have changed the model's layers)", (unsigned long long)nw,
                    (unsigned long long)ns, m->weights.n, m->stats.n);
    size_t body = (size_t)(nw + ns) * sizeof(float), tail = 0;
    if (version != 1 && len >= STATE_HEADER + body + 4) {   /* the shapes block says its own length */
        uint32_t n;
        memcpy(&n, b + STATE_HEADER + body, 4);
        tail = 4 + (size_t)n * STATE_SHAPE;
    }
    if (len != STATE_HEADER + body + tail || (version != 1 && !tail)) return fail(err, errlen, "the file is truncated");
    if (version != 1) {
        if ((uint32_t)crc32(0L, (const Bytef *)b + STATE_HEADER, (uInt)(len - STATE_HEADER)) != crc)
            return fail(err, errlen, "its checksum does not match: the file is damaged (run it again)");
        if (check_shapes(m, b + STATE_HEADER + body, err, errlen)) return -1;
    }
    size_t bad = unusable_state(m, b + STATE_HEADER);
    if (bad)
        return fail(err, errlen, "%zu of its numbers are not finite, or are negative variances: the file is "
                    "damaged, or the run diverged (run it again)", bad);
    m->ops->upload(m->weights.data, b + STATE_HEADER, nw * sizeof(float));
    if (ns) m->ops->upload(m->stats.data, b + STATE_HEADER + nw * sizeof(float), ns * sizeof(float));
    return 0;
}

nn_layer *nn_find_layer(nn_model *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i].name, name)) return &m->layers[i];
    return NULL;
}

void nn_layer_freeze(nn_layer *l, int frozen)
{
    for (int i = 0; i < l->n_params; i++) l->params[i]->frozen = frozen;
    if (l->proj) nn_layer_freeze(l->proj, frozen);
    if (l->branch)
        for (int i = 0; i < l->branch->n_layers; i++) nn_layer_freeze(&l->branch->layers[i], frozen);
}

int nn_set_alibi(nn_model *m, int on)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *l = &m->layers[i];
        if (l->spec.kind == LAYER_ATTENTION) {
            l->spec.alibi = on;
            n++;
        } else if (l->spec.kind == LAYER_EMBED) {
            l->spec.positions = !on;
            l->params[1]->frozen = on;
        }
        if (l->branch) n += nn_set_alibi(l->branch, on);
    }
    return n;
}
