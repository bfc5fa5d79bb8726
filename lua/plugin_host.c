/* The per-run plugin host: one sandboxed Lua state per run holding the run's plugins, the ctx
 * they see (batch, model, optimizer, rng, requests), and the trainer hook that calls their
 * handlers in recipe order (reversed on after_* events). */
#include "lua/plugin_priv.h"
#include "engine/tensor_ops.h"
#include "lua/recipe.h"
#include <errno.h>
#include <limits.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ctx ------------------------------------------------------------------------------------ */

/* A line in the run's log.txt and to the host's log callback, under the plugin's name. */
static void host_log(plug_host *h, const char *name, const char *line)
{
    if (h->t->log) runlog_log(h->t->log, "[%s] %s", name, line);
    if (h->log) h->log(h->log_ud, name, line);
}

static int c_log(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    luaL_Buffer b;
    int top = lua_gettop(L);   /* the buffer may push a box of its own: count the arguments first */
    luaL_buffinit(L, &b);
    for (int i = 2; i <= top; i++) {
        if (i > 2) luaL_addchar(&b, ' ');
        (void)luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    host_log(h, h->current ? h->current->info->name : "?", lua_tostring(L, -1));
    return 0;
}

static int c_metric(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    const char *name = luaL_checkstring(L, 2);
    double v = luaL_checknumber(L, 3);
    if (!isfinite(v))   /* metrics.jsonl has no NaN: it would read as 0 */
        return luaL_error(L, "ctx:metric('%s', %f): the value must be a finite number", name, v);
    if (trainer_metric(h->t, name, (float)v))
        return luaL_error(L, "ctx:metric('%s'): use a plain identifier that is not a record field (step, "
                          "seconds, lr, test_acc, ...), at most %d names a run", name, TRAINER_MAX_EXTRA);
    return 0;
}

static int c_score(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    int n = h->t->x.shape[0];
    tensor_resize(&h->scores, 1, &n);
    if (trainer_score(h->t, h->scores.data)) return luaL_error(L, "%s", h->t->error);
    plug_push_view(L, h, &h->scores);
    return 1;
}

static int c_echo(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    lua_Integer n = luaL_checkinteger(L, 2);
    if (h->event != EV_BATCH_START) return luaL_error(L, "ctx:echo is for batch_start");
    if (n < 0 || trainer_echo(h->t, (int)n)) return luaL_error(L, "ctx:echo(%d): bad count", (int)n);
    return 0;
}

static int c_regrad(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    if (h->event != EV_AFTER_BACKWARD) return luaL_error(L, "ctx:regrad is for after_backward");
    if (trainer_regrad(h->t)) return luaL_error(L, "%s", h->t->error);
    return 0;
}

/* batch:select(idx): keep those rows. */
static int b_select(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    int n, *idx = plug_index_list(L, 2, h->t->x.shape[0], &n);
    int rc = trainer_select(h->t, idx, n);
    free(idx);
    if (rc) return luaL_error(L, "batch:select: need 1 to %d distinct rows", h->t->x.shape[0]);
    return 0;
}

/* batch:labels() -> index tensor of each row's class: the loaded labels on the CPU; on a device,
 * the largest target of each row (the same until a plugin mixes targets). */
static int b_labels(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    trainer *t = h->t;
    int n = t->x.shape[0] * trainer_tokens(t), k = t->data->classes;   /* text: a label per token */
    ltensor *u = plug_push_owned(L, h, DEVICE_CPU, 1, &n);
    if (t->model->device == DEVICE_CPU) {
        for (int i = 0; i < n; i++) u->t->data[i] = (float)t->labels[i];
        return 1;
    }
    tensor host = {0};
    tensor_copy(&host, &t->targets);
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (host.data[(size_t)i * k + j] > host.data[(size_t)i * k + best]) best = j;
        u->t->data[i] = (float)best;
    }
    tensor_free(&host);
    return 1;
}

static int b_size(lua_State *L) { lua_pushinteger(L, plug_host_of(L)->t->x.shape[0]); return 1; }

static int b_dims(lua_State *L)
{
    tensor *x = &plug_host_of(L)->t->x;
    lua_pushinteger(L, x->shape[1]);
    lua_pushinteger(L, x->shape[2]);
    return 2;
}

/* The host's image scratch, on the device of batch x (emptied when x moved). */
static tensor *batch_images(plug_host *h, const tensor *x)
{
    if (h->images.device != x->device) {
        tensor_free(&h->images);
        h->images = (tensor){ .device = x->device };
    }
    return &h->images;
}

/* The image operations below read the inputs as N x H x W x C and the targets as a row per image:
 * on text (a row per token) they would index past the batch. */
static void need_images(lua_State *L, const plug_host *h, const char *op)
{
    if (h->t->data->tokens) luaL_error(L, "batch:%s: %s is text, not images", op, plug_data_label(h->t->data));
}

/* batch:resize(h, w): bilinear resize of the inputs. */
static int b_resize(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    need_images(L, h, "resize");
    lua_Integer oh = luaL_checkinteger(L, 2), ow = luaL_optinteger(L, 3, oh);
    if (oh < 1 || ow < 1 || oh > 4096 || ow > 4096) return luaL_error(L, "batch:resize(%d, %d): bad size", (int)oh, (int)ow);
    if (h->event != EV_BATCH_START && h->event != EV_BEFORE_FORWARD)
        return luaL_error(L, "batch:resize is for batch_start or before_forward");
    tensor *x = &h->t->x;
    if (oh == x->shape[1] && ow == x->shape[2]) return 0;
    tensor_resize_bilinear(batch_images(h, x), x, (int)oh, (int)ow);
    tensor_copy(x, &h->images);
    return 0;
}

/* batch:truncate(len): text only; each example's first len tokens, inputs, targets and labels. */
static int b_truncate(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    lua_Integer len = luaL_checkinteger(L, 2);
    if (h->event != EV_BATCH_START && h->event != EV_BEFORE_FORWARD)
        return luaL_error(L, "batch:truncate is for batch_start or before_forward");
    if (!h->t->data->tokens) return luaL_error(L, "batch:truncate: %s is images, not text", h->t->data->name);
    int cur = trainer_tokens(h->t);
    if (len < 1 || len > cur) return luaL_error(L, "batch:truncate(%d): the windows are %d tokens", (int)len, cur);
    trainer_truncate(h->t, (int)len);
    return 0;
}

/* k sorted indices drawn without replacement from 0..n-1. */
static void draw_sorted(rng *r, int n, int k, int *out)
{
    int all[n];
    for (int i = 0; i < n; i++) all[i] = i;
    for (int i = 0; i < k; i++) {   /* partial Fisher-Yates */
        int j = i + (int)rng_below(r, (uint32_t)(n - i)), t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    for (int i = 1; i < k; i++)   /* insertion sort: k is an image side */
        for (int j = i; j > 0 && all[j - 1] > all[j]; j--) { int t = all[j]; all[j] = all[j - 1]; all[j - 1] = t; }
    memcpy(out, all, (size_t)k * sizeof *out);
}

/* batch:colout(p_row [, p_col]): drops a random fraction of the image rows and of the columns,
 * the same ones for the whole batch, so the inputs shrink. Returns the new height and width. */
static int b_colout(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    need_images(L, h, "colout");
    double pr = luaL_checknumber(L, 2), pc = luaL_optnumber(L, 3, pr);
    if (!(pr >= 0 && pr < 1 && pc >= 0 && pc < 1)) return luaL_error(L, "batch:colout: fractions must be in [0, 1)");
    if (h->event != EV_BATCH_START && h->event != EV_BEFORE_FORWARD)
        return luaL_error(L, "batch:colout is for batch_start or before_forward");
    tensor *x = &h->t->x;
    int H = x->shape[1], W = x->shape[2];
    int kh = H - (int)floor(pr * H + 0.5), kw = W - (int)floor(pc * W + 0.5);
    if (kh < 1) kh = 1;
    if (kw < 1) kw = 1;
    if (kh < H || kw < W) {
        int rows[H], cols[W];
        draw_sorted(&h->rng, H, kh, rows);
        draw_sorted(&h->rng, W, kw, cols);
        tensor_take_grid(batch_images(h, x), x, rows, kh, cols, kw);
        tensor_copy(x, &h->images);
    }
    lua_pushinteger(L, kh);
    lua_pushinteger(L, kw);
    return 2;
}

static int *perm_arg(lua_State *L, int i, plug_host *h)
{
    int n, rows = h->t->x.shape[0];
    int *perm = plug_index_list(L, i, rows, &n);
    if (n != rows) { free(perm); luaL_error(L, "permutation has %d entries for %d rows", n, rows); }
    return perm;
}

/* batch:mix(perm, lam): mixup of inputs and soft targets with the same lambda. */
static int b_mix(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    need_images(L, h, "mix");
    int *perm = perm_arg(L, 2, h);
    float lam = (float)luaL_checknumber(L, 3);
    tensor_mix_rows_(&h->t->x, perm, lam);
    tensor_mix_rows_(&h->t->targets, perm, lam);
    free(perm);
    return 0;
}

/* batch:cutmix(perm, lam): paste a box of area (1 - lam) from each partner, mix targets by the
 * box's true area; returns that lambda. */
static int b_cutmix(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    need_images(L, h, "cutmix");
    int *perm = perm_arg(L, 2, h);
    double lam = luaL_checknumber(L, 3);
    tensor *x = &h->t->x;
    int H = x->shape[1], W = x->shape[2];
    double cut = sqrt(1 - lam);
    int bh = (int)(H * cut), bw = (int)(W * cut);
    int cy = (int)rng_below(&h->rng, (uint32_t)H), cx = (int)rng_below(&h->rng, (uint32_t)W);
    int y0 = cy - bh / 2, x0 = cx - bw / 2, y1 = y0 + bh, x1 = x0 + bw;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y1 > H) y1 = H;
    if (x1 > W) x1 = W;
    tensor_box_(x, perm, y0, x0, y1 - y0, x1 - x0, 0);
    float real = 1.0f - (float)((y1 - y0) * (x1 - x0)) / (float)(H * W);
    tensor_mix_rows_(&h->t->targets, perm, real);
    free(perm);
    lua_pushnumber(L, real);
    return 1;
}

/* batch:cutout(size [, value]): a random square per image set to value (default 0, the mean). */
static int b_cutout(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    need_images(L, h, "cutout");
    lua_Integer size = luaL_checkinteger(L, 2);
    luaL_argcheck(L, size >= 1, 2, "size must be >= 1");
    tensor_cutout_(&h->t->x, (int)size, (float)luaL_optnumber(L, 3, 0), &h->rng);
    return 0;
}

/* ---- model and optimizer -------------------------------------------------------------------- */

static nn_layer *layer_arg(lua_State *L, int i)
{
    nn_model *m = plug_host_of(L)->t->model;
    nn_layer *l = NULL;
    if (lua_type(L, i) == LUA_TSTRING) l = nn_find_layer(m, lua_tostring(L, i));
    else {
        lua_Integer k = luaL_checkinteger(L, i);
        if (k >= 1 && k <= m->n_layers) l = &m->layers[k - 1];
    }
    if (!l) luaL_error(L, "no layer %s", luaL_tolstring(L, i, NULL));
    return l;
}

static int layer_frozen(const nn_layer *l)
{
    for (int i = 0; i < l->n_params; i++)
        if (!l->params[i]->frozen) return 0;
    return l->n_params > 0;
}

static int count_layer_params(const nn_layer *l)
{
    int n = l->n_params + (l->proj ? l->proj->n_params : 0);
    if (l->branch)
        for (int i = 0; i < l->branch->n_layers; i++) n += count_layer_params(&l->branch->layers[i]);
    return n;
}

/* model:layer(i or name) -> { index, name, kind, params, frozen, tensors } and, where the kind
 * has them, out, k and stride (a pool's stride 0 reads as its window). */
static int m_layer(lua_State *L)
{
    nn_layer *l = layer_arg(L, 2);
    nn_model *m = plug_host_of(L)->t->model;
    const layer_spec *s = &l->spec;
    lua_createtable(L, 0, 9);
    if (s->kind == LAYER_LINEAR || s->kind == LAYER_CONV) {
        lua_pushinteger(L, s->out);
        lua_setfield(L, -2, "out");
    }
    if (s->kind == LAYER_CONV || s->kind == LAYER_MAXPOOL || s->kind == LAYER_AVGPOOL) {
        lua_pushinteger(L, s->k);
        lua_setfield(L, -2, "k");
        lua_pushinteger(L, s->stride > 0 ? s->stride : s->kind == LAYER_CONV ? 1 : s->k);
        lua_setfield(L, -2, "stride");
    }
    lua_pushinteger(L, (lua_Integer)(l - m->layers) + 1);
    lua_setfield(L, -2, "index");
    lua_pushstring(L, l->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, config_layer_name(l->spec.kind));
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, count_layer_params(l));
    lua_setfield(L, -2, "params");
    lua_pushboolean(L, layer_frozen(l));
    lua_setfield(L, -2, "frozen");
    /* tensors = { { name, value, grad }, ... } for the layer's own parameters */
    plug_host *h = plug_host_of(L);
    lua_createtable(L, l->n_params, 0);
    for (int i = 0; i < l->n_params; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, l->params[i]->name);
        lua_setfield(L, -2, "name");
        plug_push_model_view(L, h, &l->params[i]->w, VIEW_PARAM);
        lua_setfield(L, -2, "value");
        plug_push_model_view(L, h, &l->params[i]->g, VIEW_PARAM);
        lua_setfield(L, -2, "grad");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "tensors");
    return 1;
}

/* Pushes { name, value, grad, layer } for each parameter of l (and its nested layers) with two or
 * more dimensions, appending to the list at the top of the stack. */
static void push_matrices(lua_State *L, plug_host *h, const nn_layer *l, int index)
{
    for (int i = 0; i < l->n_params; i++) {
        nn_param *p = l->params[i];
        if (p->w.ndim < 2) continue;
        lua_createtable(L, 0, 4);
        lua_pushstring(L, p->name);
        lua_setfield(L, -2, "name");
        plug_push_model_view(L, h, &p->w, VIEW_PARAM);
        lua_setfield(L, -2, "value");
        plug_push_model_view(L, h, &p->g, VIEW_PARAM);
        lua_setfield(L, -2, "grad");
        lua_pushinteger(L, index);
        lua_setfield(L, -2, "layer");
        lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    }
    if (l->proj) push_matrices(L, h, l->proj, index);
    if (l->branch)
        for (int i = 0; i < l->branch->n_layers; i++) push_matrices(L, h, &l->branch->layers[i], index);
}

/* model:matrices() -> every weight matrix (conv filters count as (out, k*k*in)), nested ones
 * included, in layer order: { name, value, grad, layer = the top-level layer's index }. */
static int m_matrices(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    nn_model *m = h->t->model;
    lua_newtable(L);
    for (int i = 0; i < m->n_layers; i++) push_matrices(L, h, &m->layers[i], i + 1);
    return 1;
}

/* model:need_any_size(): for a method that changes the image size; stops the run, naming the layer
 * and the fix, when the model takes one size only. A linear layer flattens whatever reaches it, so
 * one before any global average pool fixes the image size (a flatten alone does not, nor do
 * convolutions, pools and squeeze-excite gates). */
static int m_need_any_size(lua_State *L)
{
    nn_model *m = plug_host_of(L)->t->model;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *l = &m->layers[i];
        if (l->spec.kind == LAYER_GAP) break;
        if (l->spec.kind != LAYER_LINEAR) continue;
        lua_pushfstring(L, "%s takes exactly %d input features (a linear layer with no gap before it), so the "
                        "images cannot change size; use a model with global average pooling (nn.gap()) before "
                        "its linear head, e.g. recipe fmnist_cnn_gap", l->name, (int)l->params[0]->w.shape[1]);
        return lua_error(L);   /* no position: the plugin's line says nothing to its user */
    }
    return 0;
}

static int m_layers(lua_State *L) { lua_pushinteger(L, plug_host_of(L)->t->model->n_layers); return 1; }

static int m_freeze(lua_State *L)
{
    nn_layer_freeze(layer_arg(L, 2), lua_isnone(L, 3) ? 1 : lua_toboolean(L, 3));
    return 0;
}

/* Options of an insert spec (field key of the table at t), or def when absent; a value of another
 * type is an error naming the field. */
static int opt_int(lua_State *L, int t, const char *key, int def)
{
    lua_getfield(L, t, key);
    int whole = 0;
    lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &whole) : 0;
    if (lua_isnil(L, -1)) v = def;
    else if (!whole || v < INT_MIN || v > INT_MAX)
        luaL_error(L, "model:insert: %s must be an integer, got %s", key, luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    return (int)v;
}

static double opt_num(lua_State *L, int t, const char *key, double def)
{
    lua_getfield(L, t, key);
    int ok = lua_isnil(L, -1) || lua_type(L, -1) == LUA_TNUMBER;
    if (!ok) luaL_error(L, "model:insert: %s must be a number, got %s", key, luaL_tolstring(L, -1, NULL));
    double v = lua_isnil(L, -1) ? def : lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* true / false as in recipes (bias = false); 1 / 0 as well. */
static int opt_bool(lua_State *L, int t, const char *key, int def)
{
    lua_getfield(L, t, key);
    int v = def;
    if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1);
    else if (lua_isinteger(L, -1) && (lua_tointeger(L, -1) == 0 || lua_tointeger(L, -1) == 1)) v = (int)lua_tointeger(L, -1);
    else if (!lua_isnil(L, -1)) luaL_error(L, "model:insert: %s must be true or false, got %s", key, luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    return v;
}

/* Appends every batch norm of m, nested ones too, to out (up to max); returns the new count. */
static int collect_norms(nn_model *m, nn_layer **out, int n, int max)
{
    for (int i = 0; i < m->n_layers; i++) {
        nn_layer *l = &m->layers[i];
        if (l->spec.kind == LAYER_BATCHNORM && n < max) out[n++] = l;
        if (l->branch) n = collect_norms(l->branch, out, n, max);
    }
    return n;
}

/* model:refresh_stats([batches]): every batch norm's running statistics recomputed for the weights
 * in place, as the plain mean over that many batches of training examples (0, the default, and at
 * most: an epoch's worth) drawn at random without augmentation, forward in training mode (what
 * SWA asks of averaged weights: Izmailov et al. 2018). The weights are untouched. Not between a
 * step's forward and backward (its forwards replace the layers' saved activations). On the training
 * clock: from eval_start or eval_end, where the trainer counts no time, its time is added. Returns
 * the examples used. */
static int m_refresh_stats(lua_State *L)
{
    enum { MAX_NORMS = 256 };
    plug_host *h = plug_host_of(L);
    trainer *t = h->t;
    nn_model *m = t->model;
    lua_Integer want = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, want >= 0, 2, "batches must be >= 0 (0 = an epoch)");
    if (h->event == EV_AFTER_FORWARD || h->event == EV_BEFORE_LOSS || h->event == EV_AFTER_LOSS)
        return luaL_error(L, "model:refresh_stats: not between a step's forward and its backward (it runs forwards of its own)");
    nn_layer *bn[MAX_NORMS];
    int nbn = collect_norms(m, bn, 0, MAX_NORMS);
    const data_split *train = &t->data->train;
    int size = t->cfg->batch < train->n ? t->cfg->batch : train->n, epoch = train->n / size;
    int batches = want > 0 && want < epoch ? (int)want : epoch;
    if (!nbn) batches = 0;
    int *idx = malloc((size_t)train->n * sizeof *idx);
    if (!idx) return luaL_error(L, "not enough memory");
    for (int i = 0; i < train->n; i++) idx[i] = i;
    rng_shuffle(&h->rng, idx, train->n);
    float momentum[MAX_NORMS];
    int ghost[MAX_NORMS];
    for (int j = 0; j < nbn; j++) {
        momentum[j] = bn[j]->spec.momentum;
        ghost[j] = bn[j]->spec.ghost;
        bn[j]->spec.ghost = 0;   /* statistics over the whole batch */
    }
    tensor x = { .device = m->device }, targets = { .device = m->device };
    data_batch b = {0};
    char failed[256] = "";
    double t0 = trainer_now();
    for (int k = 0; k < batches && !failed[0]; k++) {
        for (int j = 0; j < nbn; j++) bn[j]->spec.momentum = 1.0f / (float)(k + 1);   /* a running mean */
        trainer_gather(t, DEVDATA_TRAIN, idx + (size_t)k * size, size, &b, &x, &targets);
        if (!nn_forward(m, &x, 1)) snprintf(failed, sizeof failed, "%s", m->err);
    }
    for (int j = 0; j < nbn; j++) {
        bn[j]->spec.momentum = momentum[j];
        bn[j]->spec.ghost = ghost[j];
    }
    if (h->event == EV_EVAL_START || h->event == EV_EVAL_END) {
        m->ops->sync();   /* a GPU's queued forwards are part of that time */
        t->train_seconds += trainer_now() - t0;
    }
    data_batch_free(&b);
    tensor_free(&x);
    tensor_free(&targets);
    free(idx);
    if (failed[0]) return luaL_error(L, "model:refresh_stats: %s", failed);
    lua_pushinteger(L, (lua_Integer)batches * size);
    return 1;
}

/* model:insert(pos, kind [, opts]): at fit_start, a new layer before position pos (1-based;
 * layers() + 1 appends), e.g. model:insert(9, "dropout", { p = 0.1 }). Rebuilds the model. */
static int m_insert(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    lua_Integer pos = luaL_checkinteger(L, 2);
    const char *kind = luaL_checkstring(L, 3);
    int k = config_layer_kind(kind), o = 4;
    if (k < 0) return luaL_error(L, "model:insert: unknown layer kind '%s'", kind);
    if (!lua_isnoneornil(L, o)) luaL_checktype(L, o, LUA_TTABLE);
    else { lua_newtable(L); o = lua_gettop(L); }
    layer_spec spec = { .kind = (enum layer_kind)k };
    spec.out = opt_int(L, o, "out", 0);
    spec.k = opt_int(L, o, "k", k == LAYER_CONV ? 3 : 2);
    spec.stride = opt_int(L, o, "stride", k == LAYER_CONV ? 1 : 0);
    spec.pad = opt_int(L, o, "pad", 0);
    spec.bias = opt_bool(L, o, "bias", 1);
    spec.p = (float)opt_num(L, o, "p", 0.5);
    spec.momentum = (float)opt_num(L, o, "momentum", 0.1);
    spec.eps = (float)opt_num(L, o, "eps", 1e-5);
    if ((k == LAYER_LINEAR || k == LAYER_CONV || k == LAYER_SE) && spec.out < 1)
        return luaL_error(L, "model:insert: a %s layer needs out >= 1", kind);
    if (spec.p < 0 || spec.p >= 1) return luaL_error(L, "model:insert: p must be in [0, 1)");
    char err[256];
    if (h->event != EV_FIT_START) return luaL_error(L, "model:insert is for fit_start");
    if (trainer_insert_layer(h->t, (int)pos - 1, &spec, err, sizeof err)) return luaL_error(L, "model:insert: %s", err);
    h->model_generation++;
    return 0;
}

/* model:configure(i or name, { ghost = n, momentum = m, eps = e } or { p = p } or { skip = b,
 * scale = s }): changes a batch norm's, a dropout's or a residual block's settings for this run,
 * from the next forward on. */
static int m_configure(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    nn_layer *l = layer_arg(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    layer_spec *spec = trainer_layer_spec(h->t, (int)(l - h->t->model->layers));
    int bn = l->spec.kind == LAYER_BATCHNORM, drop = l->spec.kind == LAYER_DROPOUT, res = l->spec.kind == LAYER_RESIDUAL;
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : NAN;
        if (bn && !strcmp(k, "ghost")) {
            if (!(v >= 0 && v <= 1 << 20) || v != floor(v)) return luaL_error(L, "model:configure: ghost must be a whole number >= 0");
            l->spec.ghost = spec->ghost = (int)v;
        } else if (bn && !strcmp(k, "momentum")) {
            if (!(v > 0 && v <= 1)) return luaL_error(L, "model:configure: momentum must be in (0, 1]");
            l->spec.momentum = spec->momentum = (float)v;
        } else if (bn && !strcmp(k, "eps")) {
            if (!(v > 0)) return luaL_error(L, "model:configure: eps must be > 0");
            l->spec.eps = spec->eps = (float)v;
        } else if (drop && !strcmp(k, "p")) {
            if (!(v >= 0 && v < 1)) return luaL_error(L, "model:configure: p must be in [0, 1)");
            l->spec.p = spec->p = (float)v;
        } else if (res && !strcmp(k, "skip")) {   /* per step, not part of the spec */
            l->skip = lua_toboolean(L, -1);
        } else if (res && !strcmp(k, "scale")) {
            if (!(v > 0 && v < 1e6)) return luaL_error(L, "model:configure: scale must be > 0");
            l->scale = (float)v;
        } else {
            return luaL_error(L, "model:configure: %s has no setting '%s' (%s)", l->name, k,
                              bn ? "ghost, momentum, eps" : drop ? "p" : res ? "skip, scale"
                              : "none: batchnorm, dropout and residual layers have some");
        }
    }
    return 0;
}

/* model:alibi([on]): every attention layer, nested ones too, adds ALiBi's distance biases (on,
 * the default) and the embeddings' position tables go unused and frozen; off restores both.
 * Returns the number of attention layers. */
static int m_alibi(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    int on = lua_isnone(L, 2) ? 1 : lua_toboolean(L, 2);
    int n = nn_set_alibi(h->t->model, on);
    if (n == 0) return luaL_error(L, "model:alibi: the model has no attention layer");
    layer_spec *first = trainer_layer_spec(h->t, 0);   /* a rebuild keeps the embedding's setting */
    if (first && first->kind == LAYER_EMBED) first->positions = !on;
    lua_pushinteger(L, n);
    return 1;
}

/* ctx:teacher(dir): at fit_start, loads the model a finished run left in dir (its recipe.lua and
 * weights.bin) as this run's teacher, on this run's device. */
static int c_teacher(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    const char *dir = luaL_checkstring(L, 2);
    if (h->event != EV_FIT_START) return luaL_error(L, "ctx:teacher is for fit_start");
    char err[1400];
    train_config tc;
    const data_set *ds = h->t->data;
    nn_model *m = recipe_load_run(dir, ds->h, ds->w, ds->c, ds->classes, &tc, err, sizeof err);
    if (!m) return luaL_error(L, "teacher: %s", err);
    if (strcmp(tc.dataset, ds->name)) snprintf(err, sizeof err, "%s trained on %s, this run uses %s", dir, tc.dataset, ds->name);
    else if (nn_to_device(m, h->t->model->device)) snprintf(err, sizeof err, "%s", m->err);
    else err[0] = 0;
    config_free(&tc);
    if (err[0]) {
        nn_free(m);
        return luaL_error(L, "teacher: %s", err);
    }
    nn_free(h->teacher);
    h->teacher = m;
    return 0;
}

/* ctx:teacher_probs([temperature]) -> (B, K) softmax of the teacher's logits on this step's
 * inputs, at that temperature (default 1). */
static int c_teacher_probs(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    double temp = luaL_optnumber(L, 2, 1);
    luaL_argcheck(L, temp > 0, 2, "temperature must be > 0");
    if (!h->teacher) return luaL_error(L, "no teacher: call ctx:teacher(dir) at fit_start");
    const tensor *out = nn_forward(h->teacher, &h->t->x, 0);
    if (!out) return luaL_error(L, "teacher: %s", h->teacher->err);
    int k = h->t->data->classes, n = (int)(out->n / (size_t)k);   /* text: a row per token */
    ltensor *u = plug_push_owned(L, h, out->device, 2, (int[]){ n, k });
    tensor_assign(u->t, out);
    tensor_softmax_rows_(u->t, (float)temp);
    return 1;
}

/* data:augment([{ crop = N, flip = true | false | "alternate" }]): at fit_start, before the loader
 * starts, changes the recipe's augmentation for this run. Returns the settings in force. */
static int d_augment(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    data_augment *a = &h->t->aug;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (h->event != EV_FIT_START) return luaL_error(L, "data:augment is for fit_start (the loader has started)");
        for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            if (!strcmp(k, "crop")) {
                lua_Integer c = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
                if (c < 0 || c > 64) return luaL_error(L, "data:augment: crop must be an integer in 0..64");
                a->crop_pad = (int)c;
            } else if (!strcmp(k, "flip")) {
                if (lua_isboolean(L, -1)) a->flip = lua_toboolean(L, -1) ? DATA_FLIP_RANDOM : DATA_FLIP_OFF;
                else if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "alternate"))
                    a->flip = DATA_FLIP_ALTERNATE;
                else return luaL_error(L, "data:augment: flip must be true, false or \"alternate\"");
            } else return luaL_error(L, "data:augment: unknown field '%s' (crop, flip)", k);
        }
    }
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, a->crop_pad);
    lua_setfield(L, -2, "crop");
    if (a->flip == DATA_FLIP_ALTERNATE) lua_pushliteral(L, "alternate");
    else lua_pushboolean(L, a->flip == DATA_FLIP_RANDOM);
    lua_setfield(L, -2, "flip");
    return 1;
}

/* data:score() -> a host tensor (train size) of each training example's loss under the current
 * model (evaluation mode, no augmentation); on the training clock, like any plugin work. */
static int d_score(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    int n = h->t->data->train.n;
    ltensor *u = plug_push_owned(L, h, DEVICE_CPU, 1, &n);
    trainer_score_train(h->t, u->t->data);
    return 1;
}

/* data:keep(idx): train on these examples only (an index tensor of training-split rows), from the
 * next epoch on; at fit_start or epoch_end. */
static int d_keep(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    if (h->event != EV_FIT_START && h->event != EV_EPOCH_END)
        return luaL_error(L, "data:keep is for fit_start or epoch_end (an epoch boundary)");
    int n;
    int *idx = plug_index_list(L, 2, h->t->data->train.n, &n);
    char err[256];
    int rc = trainer_keep_examples(h->t, idx, n, err, sizeof err);
    free(idx);
    if (rc) return luaL_error(L, "data:keep: %s", err);
    return 0;
}

/* model:low_precision([on]): bf16 matrix products with fp32 master weights (CUDA only). */
static int m_low_precision(lua_State *L)
{
    nn_model *m = plug_host_of(L)->t->model;
    if (nn_set_low_precision(m, lua_isnone(L, 2) ? 1 : lua_toboolean(L, 2))) return luaL_error(L, "%s", m->err);
    return 0;
}

static optim_group *group_arg(lua_State *L, int i)
{
    optim *o = &plug_host_of(L)->t->opt;
    const char *name = luaL_optstring(L, i, "decay");
    for (int g = 0; g < OPTIM_GROUPS; g++)
        if (!strcmp(o->groups[g].name, name)) return &o->groups[g];
    luaL_error(L, "no parameter group '%s' (groups: decay, no_decay)", name);
    return NULL;
}

/* optim.lr / optim.momentum / optim.weight_decay read the decay group; assigning sets every
 * group (lr keeps each group's lr_scale). optim.base_lr, .kind ("sgd", "adamw") and .nesterov are
 * the recipe's, read-only. */
static int o_index(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    const char *k = luaL_checkstring(L, 2);
    const optim_group *g = &h->t->opt.groups[OPTIM_GROUP_DECAY];
    if (!strcmp(k, "lr")) lua_pushnumber(L, g->lr);
    else if (!strcmp(k, "momentum")) lua_pushnumber(L, g->momentum);
    else if (!strcmp(k, "weight_decay")) lua_pushnumber(L, g->weight_decay);
    else if (!strcmp(k, "base_lr")) lua_pushnumber(L, h->t->cfg->optim.lr);
    else if (!strcmp(k, "kind")) lua_pushstring(L, h->t->cfg->optim.kind == OPTIM_ADAMW ? "adamw" : "sgd");
    else if (!strcmp(k, "nesterov")) lua_pushboolean(L, h->t->cfg->optim.nesterov);
    else {
        lua_getmetatable(L, 1);
        lua_getfield(L, -1, "methods");
        lua_pushstring(L, k);
        if (lua_rawget(L, -2) == LUA_TNIL) {   /* raw: the methods table is strict */
            static const char *const fields[] = { "lr", "momentum", "weight_decay", "base_lr", "kind", "nesterov",
                                                  "get", "set" };
            const char *near = config_nearest_name(k, fields, (int)(sizeof fields / sizeof *fields));
            return luaL_error(L, "ctx.optim has no field '%s'%s%s%s", k,
                              near ? ": did you mean '" : " (lr, momentum, weight_decay, base_lr, kind, nesterov, get, set)",
                              near ? near : "", near ? "'?" : "");
        }
    }
    return 1;
}

static int o_newindex(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "lr") && strcmp(k, "momentum") && strcmp(k, "weight_decay"))   /* before the value's type */
        return luaL_error(L, "optim.%s cannot be set (lr, momentum, weight_decay)", k);
    float v = (float)luaL_checknumber(L, 3);
    if (!isfinite(v) || v < 0) return luaL_error(L, "optim.%s = %f: expected a finite value >= 0", k, (double)v);
    for (int g = 0; g < OPTIM_GROUPS; g++) {
        optim_group *grp = &h->t->opt.groups[g];
        if (!strcmp(k, "lr")) grp->lr = v * grp->lr_scale;
        else if (!strcmp(k, "momentum")) grp->momentum = v;
        else if (g == OPTIM_GROUP_DECAY || h->t->cfg->optim.decay_all) grp->weight_decay = v;
    }
    return 0;
}

/* optim:get(group, field) / optim:set(group, field, value) for one parameter group. */
static float *group_field(lua_State *L, optim_group *g, const char *f)
{
    if (!strcmp(f, "lr")) return &g->lr;
    if (!strcmp(f, "lr_scale")) return &g->lr_scale;
    if (!strcmp(f, "momentum")) return &g->momentum;
    if (!strcmp(f, "weight_decay")) return &g->weight_decay;
    luaL_error(L, "no group field '%s' (lr, lr_scale, momentum, weight_decay)", f);
    return NULL;
}

static int o_get(lua_State *L)
{
    lua_pushnumber(L, *group_field(L, group_arg(L, 2), luaL_checkstring(L, 3)));
    return 1;
}

static int o_set(lua_State *L)
{
    float v = (float)luaL_checknumber(L, 4);
    if (!isfinite(v) || v < 0) return luaL_error(L, "optim:set: expected a finite value >= 0");
    *group_field(L, group_arg(L, 2), luaL_checkstring(L, 3)) = v;
    return 0;
}

/* ---- rng ------------------------------------------------------------------------------------ */

static int r_uniform(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
    lua_pushnumber(L, lo + (hi - lo) * rng_uniform(&h->rng));
    return 1;
}

static int r_normal(lua_State *L) { lua_pushnumber(L, rng_normal(&plug_host_of(L)->rng)); return 1; }

static int r_int(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 1 && n <= 0x7fffffff, 2, "n must be in [1, 2^31)");
    lua_pushinteger(L, 1 + rng_below(&plug_host_of(L)->rng, (uint32_t)n));
    return 1;
}

/* Gamma(a, 1) by Marsaglia and Tsang; Beta from two gammas. */
static double gamma_sample(rng *r, double a)
{
    if (a < 1) return gamma_sample(r, a + 1) * pow(rng_uniform(r) + 1e-12, 1.0 / a);
    double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = rng_normal(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = rng_uniform(r);
        if (log(u + 1e-12) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

static int r_beta(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    double a = luaL_checknumber(L, 2), b = luaL_optnumber(L, 3, a);
    luaL_argcheck(L, a > 0 && b > 0, 2, "beta parameters must be > 0");
    double x = gamma_sample(&h->rng, a), y = gamma_sample(&h->rng, b);
    lua_pushnumber(L, x / (x + y));
    return 1;
}

/* rng:normal_(t [, std]) fills t with N(0, std^2) and returns it. */
static int r_normal_fill(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    tensor *t = plug_check_tensor(L, 2)->t;
    float sd = (float)luaL_optnumber(L, 3, 1);
    float *buf = malloc((t->n ? t->n : 1) * sizeof *buf);
    if (!buf) return luaL_error(L, "not enough memory");
    for (size_t i = 0; i < t->n; i++) buf[i] = sd * rng_normal(&h->rng);
    tensor_from_host(t, buf);   /* the draws are made on the host: the same numbers on any device */
    free(buf);
    lua_settop(L, 2);
    return 1;
}

/* rng:perm(n) -> index tensor holding a random permutation of 0..n-1. */
static int r_perm(lua_State *L)
{
    plug_host *h = plug_host_of(L);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 1 && n <= (1 << 24), 2, "n out of range");
    int nn = (int)n, *idx = malloc((size_t)nn * sizeof *idx);
    if (!idx) return luaL_error(L, "not enough memory");
    for (int i = 0; i < nn; i++) idx[i] = i;
    rng_shuffle(&h->rng, idx, nn);
    ltensor *u = plug_push_owned(L, h, DEVICE_CPU, 1, &nn);   /* indices live on the host */
    for (int i = 0; i < nn; i++) u->t->data[i] = (float)idx[i];
    free(idx);
    return 1;
}

/* Sets functions with the host as upvalue into the table at the top of the stack. */
/* A method of a ctx table, called through this: a dot call (ctx.log("x")) passes something other
 * than the table first, and would read its arguments one place off. Upvalues: the host, the
 * method, its full name ("ctx:log"). */
static int method_call(lua_State *L)
{
    if (!lua_istable(L, 1)) {
        char dot[96];
        snprintf(dot, sizeof dot, "%s", lua_tostring(L, lua_upvalueindex(3)));
        *strchr(dot, ':') = '.';
        return luaL_error(L, "%s(...) needs a colon: %s(...)", dot, lua_tostring(L, lua_upvalueindex(3)));
    }
    return lua_tocfunction(L, lua_upvalueindex(2))(L);
}

/* Reading a field a ctx table lacks is a typo (ctx.lossses), not nil. Upvalue: the table's name. */
static int strict_index(lua_State *L)
{
    const char *names[64], *what = lua_tostring(L, lua_upvalueindex(1));
    int n = 0;
    for (lua_pushnil(L); n < 64 && lua_next(L, 1); lua_pop(L, 1))
        if (lua_type(L, -2) == LUA_TSTRING) names[n++] = lua_tostring(L, -2);
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    const char *near = key ? config_nearest_name(key, names, n) : NULL;
    if (near) return luaL_error(L, "%s has no field '%s': did you mean '%s'?", what, key, near);
    return luaL_error(L, "%s has no field '%s' (docs/plugins.md lists them)", what, luaL_tolstring(L, 2, NULL));
}

/* Setting a field a ctx table lacks: ctx is the run's, one for all its plugins, so a value kept
 * there would be another plugin's to read or clobber. Upvalue: the table's name. */
static int strict_newindex(lua_State *L)
{
    const char *what = lua_tostring(L, lua_upvalueindex(1)), *key = luaL_tolstring(L, 2, NULL);
    return luaL_error(L, "%s.%s cannot be set: ctx belongs to the run and all its plugins; keep this "
                      "plugin's own values in p (p.%s = ...)", what, key, key);
}

/* Makes adding a field to the table at idx (a set_funcs table named what) an error. */
static void seal(lua_State *L, int idx, const char *what)
{
    if (!lua_getmetatable(L, idx)) return;
    lua_pushstring(L, what);
    lua_pushcclosure(L, strict_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
}

/* The functions fns into the table on top of the stack, each with the host as upvalue 1. With
 * what (the table's path: "ctx.batch"), they are methods, checked for a colon call, and the table
 * gets a metatable that makes reading a missing field an error; without, metamethods. */
static void set_funcs(lua_State *L, plug_host *h, const luaL_Reg *fns, const char *what)
{
    for (; fns->name; fns++) {
        lua_pushlightuserdata(L, h);
        if (what) {
            lua_pushcfunction(L, fns->func);
            lua_pushfstring(L, "%s:%s", what, fns->name);
            lua_pushcclosure(L, method_call, 3);
        } else {
            lua_pushcclosure(L, fns->func, 1);
        }
        lua_setfield(L, -2, fns->name);
    }
    if (!what) return;
    lua_newtable(L);
    lua_pushstring(L, what);
    lua_pushcclosure(L, strict_index, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

static void update_ctx(plug_host *h, trainer_event ev);

static void build_ctx(plug_host *h)
{
    lua_State *L = h->L;
    trainer *t = h->t;
    static const luaL_Reg ctx_fns[] = { { "log", c_log }, { "metric", c_metric }, { "score", c_score },
                                        { "echo", c_echo }, { "regrad", c_regrad }, { "teacher", c_teacher },
                                        { "teacher_probs", c_teacher_probs }, { NULL, NULL } };
    static const luaL_Reg batch_fns[] = { { "select", b_select }, { "labels", b_labels },
                                          { "size", b_size }, { "dims", b_dims },
                                          { "resize", b_resize }, { "colout", b_colout }, { "mix", b_mix }, { "cutmix", b_cutmix },
                                          { "cutout", b_cutout }, { "truncate", b_truncate }, { NULL, NULL } };
    static const luaL_Reg model_fns[] = { { "layer", m_layer }, { "layers", m_layers }, { "freeze", m_freeze },
                                          { "low_precision", m_low_precision }, { "insert", m_insert },
                                          { "configure", m_configure }, { "matrices", m_matrices },
                                          { "alibi", m_alibi }, { "need_any_size", m_need_any_size },
                                          { "refresh_stats", m_refresh_stats }, { NULL, NULL } };
    static const luaL_Reg data_fns[] = { { "augment", d_augment }, { "score", d_score }, { "keep", d_keep },
                                         { NULL, NULL } };
    static const luaL_Reg optim_fns[] = { { "get", o_get }, { "set", o_set }, { NULL, NULL } };
    static const luaL_Reg optim_meta[] = { { "__index", o_index }, { "__newindex", o_newindex }, { NULL, NULL } };
    static const luaL_Reg rng_fns[] = { { "uniform", r_uniform }, { "normal", r_normal }, { "int", r_int },
                                        { "beta", r_beta }, { "perm", r_perm },
                                        { "normal_", r_normal_fill }, { NULL, NULL } };
    lua_newtable(L);                       /* ctx */
    set_funcs(L, h, ctx_fns, "ctx");
    lua_newtable(L);                       /* ctx.batch */
    set_funcs(L, h, batch_fns, "ctx.batch");
    plug_push_view(L, h, &t->x);
    lua_setfield(L, -2, "inputs");
    plug_push_view(L, h, &t->targets);
    lua_setfield(L, -2, "targets");
    plug_push_view(L, h, &t->weight);
    lua_setfield(L, -2, "weights");
    lua_setfield(L, -2, "batch");
    lua_newtable(L);                       /* ctx.model */
    set_funcs(L, h, model_fns, "ctx.model");
    plug_push_model_view(L, h, &t->model->weights, VIEW_WEIGHTS);
    lua_setfield(L, -2, "weights");
    plug_push_model_view(L, h, &t->model->grads, VIEW_GRADS);
    lua_setfield(L, -2, "grads");
    plug_push_model_view(L, h, &t->model->stats, VIEW_STATS);
    lua_setfield(L, -2, "stats");
    lua_setfield(L, -2, "model");
    lua_newtable(L);                       /* ctx.data */
    set_funcs(L, h, data_fns, "ctx.data");
    lua_pushstring(L, t->data->name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, t->data->train.n);
    lua_setfield(L, -2, "size");
    lua_pushstring(L, t->data->tokens ? "text" : "images");
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, t->data->tokens);
    lua_setfield(L, -2, "tokens");
    lua_setfield(L, -2, "data");
    lua_newtable(L);                       /* ctx.optim: a proxy */
    lua_newtable(L);
    set_funcs(L, h, optim_meta, NULL);
    lua_newtable(L);
    set_funcs(L, h, optim_fns, "ctx.optim");
    lua_setfield(L, -2, "methods");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "optim");
    lua_newtable(L);                       /* ctx.rng */
    set_funcs(L, h, rng_fns, "ctx.rng");
    lua_setfield(L, -2, "rng");
    plug_push_view(L, h, &t->loss);
    lua_setfield(L, -2, "losses");
    lua_pushinteger(L, t->data->classes);
    lua_setfield(L, -2, "classes");
    h->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    update_ctx(h, EV_FIT_START);   /* its fields exist before adding fields is refused */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ctx_ref);
    static const char *const subs[] = { "batch", "model", "data", "rng" };
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        char name[16];
        snprintf(name, sizeof name, "ctx.%s", subs[i]);
        lua_getfield(L, -1, subs[i]);
        seal(L, -1, name);
        lua_pop(L, 1);
    }
    seal(L, -1, "ctx");
    lua_pop(L, 1);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = lua_pushfstring(L, "error object is a %s, not a message (error('...') takes a string)",
                                    luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void update_ctx(plug_host *h, trainer_event ev)
{
    lua_State *L = h->L;
    trainer *t = h->t;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ctx_ref);
    lua_pushnumber(L, t->progress);
    lua_setfield(L, -2, "progress");
    lua_pushinteger(L, t->step);
    lua_setfield(L, -2, "step");
    lua_pushinteger(L, t->epoch);
    lua_setfield(L, -2, "epoch");
    lua_pushinteger(L, t->samples);
    lua_setfield(L, -2, "samples");
    lua_pushnumber(L, t->train_seconds);
    lua_setfield(L, -2, "elapsed");
    lua_pushstring(L, trainer_event_name(ev));
    lua_setfield(L, -2, "event");
    lua_pop(L, 1);
}

static int call_handler(plug_host *h, const instance *in, trainer_event ev)
{
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->traceback_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, in->handler[ev]);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ctx_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, in->params_ref);
    h->current = in;
    sandbox_arm(L, &h->sb, CALL_INSTR, CALL_SECS);
    int st = lua_pcall(L, 2, 0, -4);
    lua_sethook(L, NULL, 0, 0);
    h->current = NULL;
    if (st == LUA_OK) {
        lua_pop(L, 1);
        return 0;
    }
    const char *msg = lua_tostring(L, -1);
    char first[512];
    if (h->sb.denied || st == LUA_ERRMEM)
        snprintf(first, sizeof first, "over its memory cap of %u MiB", RUN_MEM >> 20);
    else {
        snprintf(first, sizeof first, "%s", msg ? msg : "error");
        char *nl = strchr(first, '\n');
        if (nl) *nl = 0;
    }
    if (h->t->log && msg) runlog_log(h->t->log, "plugin %s failed at %s: %s", in->info->name, trainer_event_name(ev), msg);
    trainer_fail(h->t, "plugin %s at %s: %s", in->info->name, trainer_event_name(ev), first);
    lua_pop(L, 2);
    return -1;
}

/* At fit_start, once the run's log is open: a warning for each pair of plugins that share an
 * overlapping role (METHODS.md: the input-size methods compound). They run as asked. */
static void warn_overlaps(plug_host *h)
{
    for (int j = 1; j < h->n; j++)
        for (int i = 0; i < j; i++) {
            const plug_info *a = h->inst[i].info, *b = h->inst[j].info;
            if (!a->overlaps[0] || strcmp(a->overlaps, b->overlaps)) continue;
            char line[256];
            snprintf(line, sizeof line, "warning: %s and %s overlap (\"%s\"): their effects compound, so neither "
                     "reads as its own result", a->name, b->name, a->overlaps);
            host_log(h, b->name, line);
        }
}

/* The step's weights and targets, as the after_loss handlers find them, into h->loss_inputs (CPU
 * batches only: on a GPU the loss is recomputed without looking, as comparing would wait for it). */
static void save_loss_inputs(plug_host *h, const trainer *t)
{
    if (t->targets.device != DEVICE_CPU) return;
    int len = (int)(t->weight.n + t->targets.n);
    tensor_resize(&h->loss_inputs, 1, &len);
    memcpy(h->loss_inputs.data, t->weight.data, t->weight.n * sizeof(float));
    memcpy(h->loss_inputs.data + t->weight.n, t->targets.data, t->targets.n * sizeof(float));
}

/* Whether the after_loss handlers changed the weights or targets that the loss gradient came from. */
static int loss_inputs_changed(const plug_host *h, const trainer *t)
{
    if (t->targets.device != DEVICE_CPU || h->loss_inputs.n != t->weight.n + t->targets.n) return 1;
    return memcmp(h->loss_inputs.data, t->weight.data, t->weight.n * sizeof(float)) ||
           memcmp(h->loss_inputs.data + t->weight.n, t->targets.data, t->targets.n * sizeof(float));
}

static int host_hook(trainer *t, trainer_event ev, void *ud)
{
    plug_host *h = ud;
    if (ev == EV_FIT_START) warn_overlaps(h);
    int reverse = trainer_event_reversed(ev);
    int updated = 0;
    h->event = ev;
    for (int k = 0; k < h->n; k++) {
        const instance *in = &h->inst[reverse ? h->n - 1 - k : k];
        if (in->handler[ev] == LUA_NOREF) continue;
        if (!updated) {
            update_ctx(h, ev);
            updated = 1;
            if (ev == EV_AFTER_LOSS) save_loss_inputs(h, t);
        }
        if (call_handler(h, in, ev)) return -1;
    }
    /* weights or targets set from the losses weigh this step's backward pass */
    if (ev == EV_AFTER_LOSS && updated && loss_inputs_changed(h, t)) trainer_reloss(t);
    return 0;
}

static int load_instance(plug_host *h, instance *in, const plug_info *info, const plugin_spec *ps,
                         char *err, size_t errlen)
{
    lua_State *L = h->L;
    in->info = info;
    for (int e = 0; e < EV_COUNT; e++) in->handler[e] = LUA_NOREF;
    if (plug_load_chunk(L, &h->sb, info->source ? NULL : info->path, info->source, info->name, err, errlen)) return -1;
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: did not return its plugin table", info->path);
        return -1;
    }
    for (int e = 0; e < EV_COUNT; e++) {
        if (!(info->events & (1u << e))) continue;
        lua_getfield(L, -1, trainer_event_name(e));
        in->handler[e] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    in->table_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (plug_typed_params(L, info, ps, err, errlen)) return -1;
    in->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

plug_host *plug_host_new(trainer *t, const plug_catalog *cat, const train_config *cfg,
                         plug_log_fn log, void *log_ud, char *err, size_t errlen)
{
    plug_host *h = calloc(1, sizeof *h);
    if (!h) { snprintf(err, errlen, "out of memory"); return NULL; }
    h->t = t;
    h->log = log;
    h->log_ud = log_ud;
    if (!cfg->n_plugins) return h;
    if (plug_check(cat, cfg, err, errlen)) goto fail;
    if (plug_check_data(cat, cfg, t->data, err, errlen)) goto fail;
    h->L = sandbox_new(&h->sb, RUN_MEM, "plugin");
    if (!h->L) { snprintf(err, errlen, "out of memory"); goto fail; }
    rng_seed(&h->rng, cfg->seed, 77);
    plug_open_hasten(h->L);
    plug_open_tensors(h->L, h);
    lua_pushcfunction(h->L, traceback);
    h->traceback_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
    build_ctx(h);
    for (int i = 0; i < cfg->n_plugins; i++) {
        if (load_instance(h, &h->inst[i], plug_find(cat, cfg->plugins[i].name), &cfg->plugins[i], err, errlen))
            goto fail;
        h->n++;
    }
    if (trainer_add_hook(t, host_hook, h)) {
        snprintf(err, errlen, "too many trainer hooks");
        goto fail;
    }
    return h;
fail:
    plug_host_free(h);
    return NULL;
}

void plug_host_free(plug_host *h)
{
    if (!h) return;
    if (h->L) lua_close(h->L);   /* runs __gc of owned tensors first */
    for (int i = 0; i < h->n_pool; i++) tensor_free(&h->pool[i]);
    tensor_free(&h->scores);
    tensor_free(&h->images);
    tensor_free(&h->centring);
    tensor_free(&h->loss_inputs);
    nn_free(h->teacher);
    free(h);
}
