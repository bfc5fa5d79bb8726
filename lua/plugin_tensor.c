/* Tensors as Lua sees them: userdata views of engine tensors or tensors a plugin owns, with
 * vectorised methods implemented in C (engine/tensor_ops.c). No per-element work in Lua. */
#include "lua/plugin_priv.h"
#include "engine/tensor_ops.h"
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

plug_host *plug_host_of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

ltensor *plug_check_tensor(lua_State *L, int i)
{
    ltensor *u = luaL_checkudata(L, i, TENSOR_MT);
    nn_model *m = u->host->t->model;   /* model views follow a rebuilt model */
    if (u->kind == VIEW_WEIGHTS) u->t = &m->weights;
    else if (u->kind == VIEW_GRADS) u->t = &m->grads;
    else if (u->kind == VIEW_STATS) u->t = &m->stats;
    else if (u->kind == VIEW_PARAM && u->generation != u->host->model_generation)
        luaL_error(L, "this layer tensor belongs to the model before ctx.model:insert rebuilt it");
    return u;
}

void plug_push_view(lua_State *L, plug_host *h, tensor *t)
{
    ltensor *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    u->t = t;
    u->host = h;
    luaL_setmetatable(L, TENSOR_MT);
}

void plug_push_model_view(lua_State *L, plug_host *h, tensor *t, int kind)
{
    plug_push_view(L, h, t);
    ltensor *u = lua_touserdata(L, -1);
    u->kind = kind;
    u->generation = h->model_generation;
}

/* Charges bytes of tensor memory to the plugin memory cap, collecting garbage first where that
 * frees enough (Lua sees a tensor as a small userdata, so its collector learns of the bytes only
 * here); raises the cap error otherwise. */
static void charge(lua_State *L, plug_host *h, size_t bytes)
{
    if (sandbox_charge(&h->sb, (long long)bytes)) {
        lua_gc(L, LUA_GCCOLLECT);
        h->sb.denied = 0;
        if (sandbox_charge(&h->sb, (long long)bytes))
            luaL_error(L, "not enough memory: a tensor of %d MiB is over the plugin memory cap", (int)(bytes >> 20));
    }
    if (bytes >= 1024) lua_gc(L, LUA_GCSTEP, (int)(bytes >> 10));   /* as if Lua had allocated it */
}

/* The pooled buffer on dev that best fits n floats (the smallest large enough), or -1. */
static int pool_find(const plug_host *h, device_kind dev, size_t n)
{
    int best = -1;
    for (int i = 0; i < h->n_pool; i++)
        if (h->pool[i].device == dev && h->pool[i].cap >= n && (best < 0 || h->pool[i].cap < h->pool[best].cap))
            best = i;
    return best;
}

/* A new owned tensor of the given shape, zeroed, charged to the plugin memory cap. On a device
 * its buffer may be a pooled one: no allocation (on a GPU, no wait for the device) per step. */
ltensor *plug_push_owned(lua_State *L, plug_host *h, device_kind dev, int ndim, const int *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    int i = dev != DEVICE_CPU ? pool_find(h, dev, n) : -1;
    charge(L, h, (i >= 0 ? h->pool[i].cap : n) * sizeof(float));   /* may collect: appends to the pool */
    tensor buf = { .device = dev };
    if (i >= 0) {
        buf = h->pool[i];
        h->pool[i] = h->pool[--h->n_pool];
    }
    ltensor *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    u->host = h;
    u->t = &u->own;
    u->own = buf;
    luaL_setmetatable(L, TENSOR_MT);
    tensor_resize(&u->own, ndim, shape);
    tensor_zero(&u->own);
    return u;
}

static int t_gc(lua_State *L)
{
    ltensor *u = plug_check_tensor(L, 1);
    if (u->t == &u->own && u->own.cap) {
        plug_host *h = u->host;
        size_t bytes = u->own.cap * sizeof(float);
        sandbox_charge(&h->sb, -(long long)bytes);
        size_t pooled = bytes;
        for (int i = 0; i < h->n_pool; i++) pooled += h->pool[i].cap * sizeof(float);
        if (u->own.device != DEVICE_CPU && h->n_pool < PLUG_POOL && pooled <= RUN_MEM) {
            h->pool[h->n_pool++] = u->own;
        } else {
            tensor_free(&u->own);
        }
        memset(&u->own, 0, sizeof u->own);
    }
    return 0;
}

static void same_size(lua_State *L, const tensor *a, const tensor *b)
{
    if (a->n != b->n) luaL_error(L, "tensors differ in size: %d and %d elements", (int)a->n, (int)b->n);
}

static int t_size(lua_State *L) { lua_pushinteger(L, (lua_Integer)plug_check_tensor(L, 1)->t->n); return 1; }

static int t_shape(lua_State *L)
{
    tensor *t = plug_check_tensor(L, 1)->t;
    for (int i = 0; i < t->ndim; i++) lua_pushinteger(L, t->shape[i]);
    return t->ndim;
}

static int t_clone(lua_State *L)
{
    ltensor *u = plug_check_tensor(L, 1);
    ltensor *c = plug_push_owned(L, u->host, u->t->device, u->t->ndim, u->t->shape);
    tensor_assign(c->t, u->t);
    return 1;
}

static int t_copy(lua_State *L)
{
    tensor *a = plug_check_tensor(L, 1)->t, *b = plug_check_tensor(L, 2)->t;
    same_size(L, a, b);
    tensor_assign(a, b);
    lua_settop(L, 1);
    return 1;
}

static int t_fill(lua_State *L)
{
    tensor_fill(plug_check_tensor(L, 1)->t, (float)luaL_checknumber(L, 2));
    lua_settop(L, 1);
    return 1;
}

/* t:add_(x [, alpha]) with x a tensor or a number. */
static int t_add(lua_State *L)
{
    tensor *a = plug_check_tensor(L, 1)->t;
    if (lua_isnumber(L, 2)) tensor_add_scalar_(a, (float)lua_tonumber(L, 2));
    else {
        tensor *b = plug_check_tensor(L, 2)->t;
        same_size(L, a, b);
        tensor_add_(a, b, (float)luaL_optnumber(L, 3, 1));
    }
    lua_settop(L, 1);
    return 1;
}

static int t_mul(lua_State *L)
{
    tensor *a = plug_check_tensor(L, 1)->t;
    if (lua_isnumber(L, 2)) tensor_scale_(a, (float)lua_tonumber(L, 2));
    else {
        tensor *b = plug_check_tensor(L, 2)->t;
        same_size(L, a, b);
        tensor_mul_(a, b);
    }
    lua_settop(L, 1);
    return 1;
}

static int t_lerp(lua_State *L)
{
    tensor *a = plug_check_tensor(L, 1)->t, *b = plug_check_tensor(L, 2)->t;
    same_size(L, a, b);
    tensor_lerp_(a, b, (float)luaL_checknumber(L, 3));
    lua_settop(L, 1);
    return 1;
}

static int t_clamp(lua_State *L)
{
    tensor_clamp_(plug_check_tensor(L, 1)->t, (float)luaL_checknumber(L, 2), (float)luaL_checknumber(L, 3));
    lua_settop(L, 1);
    return 1;
}

/* t:exp_([s]): t = exp(s t), s 1 by default. */
static int t_exp(lua_State *L)
{
    tensor_exp_(plug_check_tensor(L, 1)->t, (float)luaL_optnumber(L, 2, 1));
    lua_settop(L, 1);
    return 1;
}

static int t_pow(lua_State *L)
{
    tensor_pow_(plug_check_tensor(L, 1)->t, (float)luaL_checknumber(L, 2));
    lua_settop(L, 1);
    return 1;
}

/* t:center_rows_(): each slice along the first dimension minus its mean, on t's device. */
static int t_center_rows(lua_State *L)
{
    ltensor *u = plug_check_tensor(L, 1);
    tensor *scratch = &u->host->centring;
    if (scratch->device != u->t->device) {   /* a host tensor after a device one, or back */
        tensor_free(scratch);
        scratch->device = u->t->device;
    }
    tensor_center_rows_(u->t, scratch);
    lua_settop(L, 1);
    return 1;
}

static int t_smooth(lua_State *L)
{
    double a = luaL_checknumber(L, 2);
    luaL_argcheck(L, a >= 0 && a <= 1, 2, "alpha must be in [0, 1]");
    tensor_smooth_(plug_check_tensor(L, 1)->t, (float)a);
    lua_settop(L, 1);
    return 1;
}

static int t_reduce(lua_State *L, int what)
{
    tensor *t = plug_check_tensor(L, 1)->t;
    double v = what == 0 ? tensor_sum(t) : what == 1 ? tensor_sum(t) / (t->n ? (double)t->n : 1)
             : what == 2 ? tensor_norm(t) : what == 3 ? tensor_max(t) : tensor_min(t);
    lua_pushnumber(L, v);
    return 1;
}
static int t_sum(lua_State *L) { return t_reduce(L, 0); }
static int t_mean(lua_State *L) { return t_reduce(L, 1); }
static int t_norm(lua_State *L) { return t_reduce(L, 2); }
static int t_max(lua_State *L) { return t_reduce(L, 3); }
static int t_min(lua_State *L) { return t_reduce(L, 4); }

/* Reads an index tensor (0-based row numbers stored as floats) into ints; n rows expected. */
int *plug_index_list(lua_State *L, int i, int rows, int *count)
{
    tensor *t = plug_check_tensor(L, i)->t;
    if (t->device != DEVICE_CPU) luaL_error(L, "an index tensor must live on the host (make it with topk or rng:perm)");
    int *idx = malloc((t->n ? t->n : 1) * sizeof *idx);
    if (!idx) luaL_error(L, "not enough memory");
    for (size_t k = 0; k < t->n; k++) {
        float v = t->data[k];
        if (v < 0 || v >= rows || v != floorf(v)) {
            free(idx);
            luaL_error(L, "index %f out of range for %d rows", (double)v, rows);
        }
        idx[k] = (int)v;
    }
    *count = (int)t->n;
    return idx;
}

static int t_mix_rows(lua_State *L)
{
    tensor *t = plug_check_tensor(L, 1)->t;
    int n, rows = t->shape[0];
    int *perm = plug_index_list(L, 2, rows, &n);
    float lam = (float)luaL_checknumber(L, 3);
    if (n != rows) { free(perm); return luaL_error(L, "mix_rows_: permutation has %d entries for %d rows", n, rows); }
    tensor_mix_rows_(t, perm, lam);
    free(perm);
    lua_settop(L, 1);
    return 1;
}

/* t:topk(k) -> index tensor of the k largest values (0-based positions). */
static int t_topk(lua_State *L)
{
    ltensor *u = plug_check_tensor(L, 1);
    int k = (int)luaL_checkinteger(L, 2);
    if (k < 0) k = 0;
    if (k > (int)u->t->n) k = (int)u->t->n;
    int *idx = malloc((size_t)(k ? k : 1) * sizeof *idx);
    if (!idx) return luaL_error(L, "not enough memory");
    tensor_topk(u->t, k, idx);
    ltensor *r = plug_push_owned(L, u->host, DEVICE_CPU, 1, &k);   /* indices live on the host */
    for (int i = 0; i < k; i++) r->t->data[i] = (float)idx[i];
    free(idx);
    return 1;
}

/* t:orthogonalize_([steps]): Newton-Schulz towards U V^T of t as a matrix (its first dimension as rows, the rest
 * flattened into columns). */
static int t_orthogonalize(lua_State *L)
{
    tensor *t = plug_check_tensor(L, 1)->t;
    lua_Integer steps = luaL_optinteger(L, 2, 5);
    luaL_argcheck(L, steps >= 1 && steps <= 20, 2, "steps must be in 1..20");
    if (t->ndim < 2) return luaL_error(L, "orthogonalize_: a matrix is needed, this tensor has 1 dimension");
    tensor_orthogonalize_(t, (int)steps);
    lua_settop(L, 1);
    return 1;
}

/* t:magnitude_mask(fraction) -> a tensor of t's shape, 0 at the fraction of t's entries of least
 * magnitude and 1 elsewhere; and the number of zeros. */
static int t_magnitude_mask(lua_State *L)
{
    ltensor *u = plug_check_tensor(L, 1);
    double f = luaL_checknumber(L, 2);
    luaL_argcheck(L, f >= 0 && f <= 1, 2, "fraction must be in [0, 1]");
    ltensor *m = plug_push_owned(L, u->host, u->t->device, u->t->ndim, u->t->shape);
    lua_pushinteger(L, (lua_Integer)tensor_magnitude_mask(u->t, f, m->t));
    return 2;
}

/* images:patch_cov(k) -> (D, D) uncentred covariance of the k x k patches, D = k*k*channels. */
static int t_patch_cov(lua_State *L)
{
    ltensor *u = plug_check_tensor(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    const tensor *x = u->t;
    if (x->ndim != 4) return luaL_error(L, "patch_cov: images (n, h, w, c) are needed");
    if (k < 1 || k > x->shape[1] || k > x->shape[2] || k * k * x->shape[3] > 256)
        return luaL_error(L, "patch_cov: patch side %d does not fit these %dx%dx%d images", (int)k,
                          x->shape[1], x->shape[2], x->shape[3]);
    int d = (int)(k * k * x->shape[3]);
    ltensor *c = plug_push_owned(L, u->host, x->device, 2, (int[]){ d, d });
    tensor_patch_cov(c->t, x, (int)k);
    return 1;
}

/* w:whiten_(cov [, eps]): whitening filters from a patch covariance (conv weights). */
static int t_whiten(lua_State *L)
{
    tensor *w = plug_check_tensor(L, 1)->t, *cov = plug_check_tensor(L, 2)->t;
    double eps = luaL_optnumber(L, 3, 5e-4);
    luaL_argcheck(L, eps > 0, 3, "eps must be > 0");
    if (cov->ndim != 2 || cov->shape[0] != cov->shape[1] || w->ndim < 2 || w->n != (size_t)w->shape[0] * cov->shape[0])
        return luaL_error(L, "whiten_: a (out, k, k, c) weight and a (k*k*c)-square covariance are needed");
    if (tensor_whiten_(w, cov, (float)eps)) return luaL_error(L, "whiten_: the eigensolver failed on this covariance");
    lua_settop(L, 1);
    return 1;
}

static int t_dirac(lua_State *L)
{
    tensor *w = plug_check_tensor(L, 1)->t;
    if (w->ndim == 4 ? w->shape[1] % 2 == 0 || w->shape[1] != w->shape[2] : w->ndim != 2)
        return luaL_error(L, "dirac_: a conv weight with an odd square kernel, or a matrix, is needed");
    tensor_dirac_(w);
    lua_settop(L, 1);
    return 1;
}

/* t's values on the host: t's own data on the CPU, else a copy in *copy (freed by the caller). */
static float *host_data(const tensor *t, tensor *copy)
{
    if (t->device == DEVICE_CPU) return t->data;
    tensor_copy(copy, t);
    return copy->data;
}

/* g:clip_units_(w, clip [, eps]) -> g and the units clipped. Adaptive gradient clipping (Brock et
 * al. 2021): each unit's gradient, a slice of g along its first dimension (a vector is one unit),
 * is scaled down to at most clip times the norm of the same slice of w, taken as at least eps.
 * Worked on the host: a device tensor goes there and back. */
static int t_clip_units(lua_State *L)
{
    tensor *g = plug_check_tensor(L, 1)->t, *w = plug_check_tensor(L, 2)->t;
    double clip = luaL_checknumber(L, 3), eps = luaL_optnumber(L, 4, 1e-3);
    luaL_argcheck(L, clip > 0, 3, "clip must be > 0");
    luaL_argcheck(L, eps > 0, 4, "eps must be > 0");
    same_size(L, g, w);
    int units = g->ndim >= 2 ? g->shape[0] : 1, clipped = 0;
    size_t per = units ? g->n / (size_t)units : 0;
    tensor gc = {0}, wc = {0};
    float *gd = g->n ? host_data(g, &gc) : NULL;
    const float *wd = g->n ? host_data(w, &wc) : NULL;
    for (int u = 0; u < units && per; u++) {
        double gn = 0, wn = 0;
        for (size_t i = (size_t)u * per; i < (size_t)(u + 1) * per; i++) {
            gn += (double)gd[i] * gd[i];
            wn += (double)wd[i] * wd[i];
        }
        double most = clip * fmax(sqrt(wn), eps);
        gn = sqrt(gn);
        if (gn <= most) continue;
        float scale = (float)(most / gn);
        for (size_t i = (size_t)u * per; i < (size_t)(u + 1) * per; i++) gd[i] *= scale;
        clipped++;
    }
    if (clipped && g->device != DEVICE_CPU) tensor_from_host(g, gd);
    tensor_free(&gc);
    tensor_free(&wc);
    lua_settop(L, 1);
    lua_pushinteger(L, clipped);
    return 2;
}

/* t:get(i) -> element i (1-based, flat): for inspection and tests, not for loops. */
static int t_get(lua_State *L)
{
    tensor *t = plug_check_tensor(L, 1)->t;
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 1 || (size_t)i > t->n)
        return luaL_error(L, "t:get(%d): index out of range 1..%d (1-based)", (int)i, (int)t->n);
    lua_pushnumber(L, tensor_get(t, (size_t)(i - 1)));
    return 1;
}

/* tostring(t) -> "tensor(2x3)"; "tensor()" for no dimensions (a batch before its first step). */
static int t_tostring(lua_State *L)
{
    tensor *t = plug_check_tensor(L, 1)->t;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "tensor(");
    for (int i = 0; i < t->ndim; i++) {
        char d[16];
        snprintf(d, sizeof d, "%s%d", i ? "x" : "", t->shape[i]);
        luaL_addstring(&b, d);
    }
    luaL_addchar(&b, ')');
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg tensor_methods[] = {
    { "size", t_size }, { "shape", t_shape }, { "clone", t_clone }, { "copy_", t_copy },
    { "fill_", t_fill }, { "add_", t_add }, { "mul_", t_mul }, { "lerp_", t_lerp },
    { "clamp_", t_clamp }, { "smooth_", t_smooth }, { "sum", t_sum }, { "mean", t_mean },
    { "norm", t_norm }, { "max", t_max }, { "min", t_min }, { "mix_rows_", t_mix_rows },
    { "topk", t_topk }, { "get", t_get }, { "orthogonalize_", t_orthogonalize },
    { "magnitude_mask", t_magnitude_mask }, { "patch_cov", t_patch_cov }, { "whiten_", t_whiten },
    { "dirac_", t_dirac }, { "clip_units_", t_clip_units }, { "exp_", t_exp }, { "pow_", t_pow },
    { "center_rows_", t_center_rows }, { NULL, NULL },
};
#define COUNT_METHODS ((int)(sizeof tensor_methods / sizeof *tensor_methods) - 1)

/* t.name for a name that is no method, and t[i]: an error saying what to write instead (Lua would
 * give nil, and the mistake would surface later as "attempt to call a nil value"). */
static int t_index(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *key = lua_tostring(L, 2);
        lua_pushvalue(L, 2);
        if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
        const char *names[COUNT_METHODS];
        for (int i = 0; i < COUNT_METHODS; i++) names[i] = tensor_methods[i].name;
        const char *near = config_nearest_name(key, names, COUNT_METHODS);
        if (near) return luaL_error(L, "a tensor has no method '%s': did you mean '%s'?", key, near);
        return luaL_error(L, "a tensor has no method '%s' (docs/plugins.md, Tensors, lists them)", key);
    }
    return luaL_error(L, "a tensor is not indexed with t[%s]: t:get(i) reads element i (1-based), and per-element "
                      "work belongs in tensor methods", luaL_tolstring(L, 2, NULL));
}

static int t_newindex(lua_State *L)
{
    return luaL_error(L, "a tensor's elements are not assigned with t[%s] = v: use tensor methods (fill_, copy_, "
                      "mul_, ...)", luaL_tolstring(L, 2, NULL));
}

/* hasten.zeros(d1, d2, ...) -> a plugin-owned tensor. */
static int l_zeros(lua_State *L)
{
    int nd = lua_gettop(L), shape[4];
    luaL_argcheck(L, nd >= 1 && nd <= 4, 1, "1 to 4 dimensions");
    for (int i = 0; i < nd; i++) {
        lua_Integer d = luaL_checkinteger(L, i + 1);
        luaL_argcheck(L, d >= 1 && d <= (1 << 28), i + 1, "dimension out of range");
        shape[i] = (int)d;
    }
    plug_host *h = plug_host_of(L);
    plug_push_owned(L, h, h->t->model->device, nd, shape);   /* next to the model it will meet */
    return 1;
}


void plug_open_tensors(lua_State *L, plug_host *h)
{
    lua_getglobal(L, "hasten");
    lua_pushlightuserdata(L, h);
    lua_pushcclosure(L, l_zeros, 1);
    lua_setfield(L, -2, "zeros");
    lua_pop(L, 1);
    luaL_newmetatable(L, TENSOR_MT);
    lua_newtable(L);
    luaL_setfuncs(L, tensor_methods, 0);
    lua_pushcclosure(L, t_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, t_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, t_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, t_size);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, t_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}
