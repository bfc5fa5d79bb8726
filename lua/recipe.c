/* Recipe files in and out of train_config: runs a recipe in a sandboxed Lua state, checks every
 * field against tables of field descriptors (one table serves reading, writing and messages) and
 * writes a resolved config back as Lua. Not the plugin sandbox and not a general Lua bridge. */
#include "lua/recipe.h"
#include "datasets/datasets.h"
#include "engine/nn.h"
#include "lua/plugin.h"
#include "lua/sandbox.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#define MEM_CAP_MIB 64
#define MEM_CAP     ((size_t)MEM_CAP_MIB << 20)
#define MAX_INSTR   10000000LL        /* a recipe builds one table; ten million means a runaway loop */
#define MAX_DEPTH   16                /* nested residual blocks */
#define PATH_LEN    160
#define COUNT(a)    ((int)(sizeof(a) / sizeof((a)[0])))

typedef struct reader {
    lua_State *L;
    const char *name;     /* file or chunk name, first word of every message */
    const char *file;     /* file to load, or NULL for text */
    const char *text;
    char chunk[256];      /* "=name" for text chunks, so Lua's messages say name:line: */
    train_config *c;
    char *err;
    size_t errlen;
    int depth;            /* residual nesting while reading layers */
    int failed;           /* a field check failed; err says why */
} reader;

enum ftype { FT_FLOAT, FT_DOUBLE, FT_INT, FT_U64, FT_BOOL, FT_TEXT, FT_CUSTOM };
enum range { R_ANY, R_POS, R_NONNEG, R_GE1, R_FRAC, R_FRAC_LT1, R_FRAC_GT0, R_AMOUNT, R_CONTEXT };
/* F_ARG: positional argument of an nn.* constructor, required; F_CLASSES: an int that may be
 * nn.classes, CONFIG_CLASSES (the data's number of classes) at the model's top level */
enum { F_REQ = 1, F_ARG = 2, F_CLASSES = 4 };

/* nn.classes in a recipe: a light userdata no number or string can pass for. */
static const char classes_token;

/* One recipe field: where it lives in its C struct, its type and accepted range. FT_CUSTOM
 * fields bring their own reader and writer (and say in `what` what they expect). */
typedef struct field {
    const char *key;
    enum ftype type;
    size_t off;
    enum range range;
    int flags;
    size_t size;          /* FT_TEXT: buffer size */
    const char *what;
    int (*read)(reader *r, int idx, const char *path, void *base);
    int (*write)(FILE *f, const void *base, int indent);
} field;

static const struct { double lo, hi; int lo_open, hi_open; const char *text; } ranges[] = {
    [R_ANY]      = { -INFINITY, INFINITY, 0, 0, "" },
    [R_POS]      = { 0, INFINITY, 1, 0, "> 0" },
    [R_NONNEG]   = { 0, INFINITY, 0, 0, ">= 0" },
    [R_GE1]      = { 1, INFINITY, 0, 0, ">= 1" },
    [R_FRAC]     = { 0, 1, 0, 0, "in [0, 1]" },
    [R_FRAC_LT1] = { 0, 1, 0, 1, "in [0, 1)" },
    [R_FRAC_GT0] = { 0, 1, 1, 0, "in (0, 1]" },
    [R_AMOUNT]   = { 0, 1e15, 1, 0, "in (0, 1e15]" },   /* as config_parse_budget */
    [R_CONTEXT]  = { 2, 4096, 0, 0, "in [2, 4096]" },   /* as data_text_windows */
};

#define FLD(st, k, t, m, rg, fl) \
    { .key = (k), .type = (t), .off = offsetof(st, m), .range = (rg), .flags = (fl) }
#define TEXT(st, k, m) \
    { .key = (k), .type = FT_TEXT, .off = offsetof(st, m), .size = sizeof(((st *)0)->m) }
#define CUSTOM(k, fl, w, rd, wr) \
    { .key = (k), .type = FT_CUSTOM, .flags = (fl), .what = (w), .read = (rd), .write = (wr) }

static int read_body(reader *r, int idx, const char *path, void *base);
static int read_betas(reader *r, int idx, const char *path, void *base);
static int write_betas(FILE *f, const void *base, int indent);
static int read_augment(reader *r, int idx, const char *path, void *base);
static int write_augment(FILE *f, const void *base, int indent);
static int read_every(reader *r, int idx, const char *path, void *base);
static int read_data(reader *r, int idx, const char *path, void *base);
static int write_data(FILE *f, const void *base, int indent);
static int read_model(reader *r, int idx, const char *path, void *base);
static int write_model(FILE *f, const void *base, int indent);
static int read_optim(reader *r, int idx, const char *path, void *base);
static int write_optim(FILE *f, const void *base, int indent);
static int read_schedule(reader *r, int idx, const char *path, void *base);
static int write_schedule(FILE *f, const void *base, int indent);
static int read_budget(reader *r, int idx, const char *path, void *base);
static int write_budget(FILE *f, const void *base, int indent);
static int read_eval(reader *r, int idx, const char *path, void *base);
static int write_eval(FILE *f, const void *base, int indent);
static int read_target(reader *r, int idx, const char *path, void *base);
static int write_target(FILE *f, const void *base, int indent);
static int read_plugins(reader *r, int idx, const char *path, void *base);
static int write_plugins(FILE *f, const void *base, int indent);

/* ---- the field tables ---- */

#define LF(k, t, m, rg, fl) FLD(layer_spec, k, t, m, rg, fl)
#define LNAME TEXT(layer_spec, "name", name)
static const field linear_fields[] = {
    LF("out", FT_INT, out, R_GE1, F_ARG | F_CLASSES), LF("bias", FT_BOOL, bias, R_ANY, 0), LNAME };
static const field conv_fields[] = {
    LF("out", FT_INT, out, R_GE1, F_ARG | F_CLASSES), LF("k", FT_INT, k, R_GE1, F_ARG),
    LF("pad", FT_INT, pad, R_NONNEG, 0), LF("stride", FT_INT, stride, R_GE1, 0),
    LF("bias", FT_BOOL, bias, R_ANY, 0), LNAME };
static const field pool_fields[] = {
    LF("k", FT_INT, k, R_GE1, F_ARG), LF("stride", FT_INT, stride, R_GE1, 0), LNAME };
static const field batchnorm_fields[] = {
    LF("momentum", FT_FLOAT, momentum, R_FRAC, 0), LF("eps", FT_FLOAT, eps, R_POS, 0),
    LF("ghost", FT_INT, ghost, R_NONNEG, 0), LNAME };
static const field dropout_fields[] = { LF("p", FT_FLOAT, p, R_FRAC_LT1, F_ARG), LNAME };
static const field plain_fields[] = { LNAME };
static const field se_fields[] = { LF("out", FT_INT, out, R_GE1, F_ARG), LNAME };
static const field embed_fields[] = {
    LF("out", FT_INT, out, R_GE1, F_ARG), LF("vocab", FT_INT, vocab, R_NONNEG, 0),
    LF("positions", FT_BOOL, positions, R_ANY, 0), LNAME };
static const field layernorm_fields[] = { LF("eps", FT_FLOAT, eps, R_POS, 0), LNAME };
static const field attention_fields[] = {
    LF("heads", FT_INT, heads, R_GE1, F_ARG), LF("alibi", FT_BOOL, alibi, R_ANY, 0), LNAME };
static const field residual_fields[] = {
    CUSTOM("body", F_REQ, "a list of layers", read_body, NULL), LNAME };

static const struct { const field *f; int n; } layer_fields[LAYER_KIND_COUNT] = {
    [LAYER_LINEAR]    = { linear_fields, COUNT(linear_fields) },
    [LAYER_CONV]      = { conv_fields, COUNT(conv_fields) },
    [LAYER_MAXPOOL]   = { pool_fields, COUNT(pool_fields) },
    [LAYER_AVGPOOL]   = { pool_fields, COUNT(pool_fields) },
    [LAYER_GAP]       = { plain_fields, COUNT(plain_fields) },
    [LAYER_BATCHNORM] = { batchnorm_fields, COUNT(batchnorm_fields) },
    [LAYER_RELU]      = { plain_fields, COUNT(plain_fields) },
    [LAYER_GELU]      = { plain_fields, COUNT(plain_fields) },
    [LAYER_DROPOUT]   = { dropout_fields, COUNT(dropout_fields) },
    [LAYER_FLATTEN]   = { plain_fields, COUNT(plain_fields) },
    [LAYER_RESIDUAL]  = { residual_fields, COUNT(residual_fields) },
    [LAYER_SE]        = { se_fields, COUNT(se_fields) },
    [LAYER_EMBED]     = { embed_fields, COUNT(embed_fields) },
    [LAYER_LAYERNORM] = { layernorm_fields, COUNT(layernorm_fields) },
    [LAYER_ATTENTION] = { attention_fields, COUNT(attention_fields) },
};

#define OF(k, t, m, rg) FLD(optim_spec, k, t, m, rg, 0)
static const field sgd_fields[] = {
    OF("lr", FT_FLOAT, lr, R_POS), OF("momentum", FT_FLOAT, momentum, R_FRAC_LT1),
    OF("nesterov", FT_BOOL, nesterov, R_ANY), OF("weight_decay", FT_FLOAT, weight_decay, R_NONNEG),
    OF("decay_all", FT_BOOL, decay_all, R_ANY) };
static const field adamw_fields[] = {
    OF("lr", FT_FLOAT, lr, R_POS),
    CUSTOM("betas", 0, "a list of two numbers in [0, 1)", read_betas, write_betas),
    OF("eps", FT_FLOAT, eps, R_POS), OF("weight_decay", FT_FLOAT, weight_decay, R_NONNEG),
    OF("decay_all", FT_BOOL, decay_all, R_ANY) };
static const field beta_fields[] = {
    OF("1", FT_FLOAT, beta1, R_FRAC_LT1), OF("2", FT_FLOAT, beta2, R_FRAC_LT1) };
static const struct { const char *name; const field *f; int n; } optims[] = {
    [OPTIM_SGD]   = { "sgd", sgd_fields, COUNT(sgd_fields) },
    [OPTIM_ADAMW] = { "adamw", adamw_fields, COUNT(adamw_fields) },
};

/* The first two apply to every schedule; peak and pct_up only to one_cycle. */
static const field sched_fields[] = {
    FLD(sched_spec, "warmup", FT_FLOAT, warmup, R_FRAC, 0),
    FLD(sched_spec, "final", FT_FLOAT, final_frac, R_FRAC, 0),
    FLD(sched_spec, "peak", FT_FLOAT, peak, R_POS, 0),
    FLD(sched_spec, "pct_up", FT_FLOAT, pct_up, R_FRAC_GT0, 0) };

static const field augment_fields[] = {
    FLD(train_config, "crop", FT_INT, crop_pad, R_NONNEG, 0),
    FLD(train_config, "flip", FT_BOOL, flip, R_ANY, 0) };
static const field data_fields[] = {
    TEXT(train_config, "path", data_path),
    FLD(train_config, "context", FT_INT, context, R_CONTEXT, 0),
    CUSTOM("augment", 0, "a table { crop = N, flip = true }", read_augment, write_augment) };

/* Indexed by enum budget_unit. */
static const field budget_fields[] = {
    FLD(budget_spec, "steps", FT_DOUBLE, amount, R_AMOUNT, 0),
    FLD(budget_spec, "epochs", FT_DOUBLE, amount, R_AMOUNT, 0),
    FLD(budget_spec, "samples", FT_DOUBLE, amount, R_AMOUNT, 0),
    FLD(budget_spec, "seconds", FT_DOUBLE, amount, R_AMOUNT, 0) };
static const field target_fields[] = {
    FLD(train_config, "test_acc", FT_DOUBLE, target_value, R_FRAC_GT0, 0),
    FLD(train_config, "test_loss", FT_DOUBLE, target_value, R_POS, 0) };
static const field eval_fields[] = {
    CUSTOM("every", F_REQ, "\"epoch\", a number of steps or \"Nep\"", read_every, NULL) };

static const char want_data[] = "a dataset name or { \"name\", path = \"dir\", augment = {...} }",
    want_optim[] = "\"sgd\", \"adamw\" or { \"sgd\", lr = ... }",
    want_schedule[] = "a schedule name or { \"name\", warmup = ... }",
    want_target[] = "{ test_acc = X }, { test_loss = X } or false",
    want_plugins[] = "a list of plugin names or { \"name\", key = value }";

static const field recipe_fields[] = {
    CUSTOM("data", 0, want_data, read_data, write_data),
    CUSTOM("model", F_REQ, "nn.sequential { layers... }", read_model, write_model),
    CUSTOM("optim", 0, want_optim, read_optim, write_optim),
    CUSTOM("schedule", 0, want_schedule, read_schedule, write_schedule),
    FLD(train_config, "batch", FT_INT, batch, R_GE1, 0),
    CUSTOM("budget", 0, "{ epochs = N } or text like \"5ep\"", read_budget, write_budget),
    CUSTOM("eval", 0, "{ every = ... }", read_eval, write_eval),
    CUSTOM("target", 0, want_target, read_target, write_target),
    FLD(train_config, "seed", FT_U64, seed, R_NONNEG, 0),
    FLD(train_config, "threads", FT_INT, threads, R_NONNEG, 0),
    CUSTOM("plugins", 0, want_plugins, read_plugins, write_plugins),
};

/* ---- numbers and names ---- */

/* Whole numbers plainly ("10", not "1e+01"); others in the shortest "%.Ng" that reads back as
 * the same float (single) or double. */
static void fmt_number(char *buf, size_t n, double v, int single)
{
    if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, n, "%.0f", v);
    else for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        double back = strtod(buf, NULL);
        if (single ? (float)back == (float)v : back == v) break;
    }
    for (char *s = buf; *s; s++)   /* a decimal-comma locale must not leak into Lua text */
        if (*s == ',') *s = '.';
}

/* Plugin parameter text for the number at idx: integers as integers, floats shortest. */
static void param_number(lua_State *L, int idx, char *buf, size_t n)
{
    if (lua_isinteger(L, idx)) snprintf(buf, n, "%lld", (long long)lua_tointeger(L, idx));
    else fmt_number(buf, n, lua_tonumber(L, idx), 0);
}

/* 1 if s is exactly what param_number makes of the Lua number it spells, so it can be written
 * unquoted and still come back as the same text. */
static int canonical_number(const char *s)
{
    char buf[64], *end;
    if (!(*s == '-' || *s == '.' || (*s >= '0' && *s <= '9'))) return 0;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (end != s && !*end) {
        if (errno) return 0;
        snprintf(buf, sizeof buf, "%lld", i);
        return !strcmp(buf, s);
    }
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d)) return 0;
    fmt_number(buf, sizeof buf, d, 0);
    return !strcmp(buf, s);
}

static void join_names(char *out, size_t size, const char *const *names, int n)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", names[i]);
}

static int field_names(const field *fs, int n, const char **names)
{
    for (int i = 0; i < n; i++) names[i] = fs[i].key;
    return n;
}

/* ---- messages ---- */

static int fail(reader *r, const char *path, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: %s%s%s", r->name, path, *path ? ": " : "", msg);
    r->failed = 1;
    return -1;
}

/* The value at idx as a message shows it: 0.5, "text", nil, a table. Pushes nothing. */
static const char *describe(lua_State *L, int idx, char *buf, size_t n)
{
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: param_number(L, idx, buf, n); break;
    case LUA_TBOOLEAN: snprintf(buf, n, "%s", lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNIL: case LUA_TNONE: snprintf(buf, n, "nil"); break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        snprintf(buf, n, "\"%.40s%s\"", s, len > 40 ? "..." : "");
        break;
    case LUA_TFUNCTION: snprintf(buf, n, "a function (missing () after it?)"); break;
    default: snprintf(buf, n, "a %s", luaL_typename(L, idx)); break;
    }
    return buf;
}

static int bad(reader *r, const char *path, const char *want, int idx)
{
    char got[96];
    return fail(r, path, "expected %s, got %s", want, describe(r->L, idx, got, sizeof got));
}

static int unknown_name(reader *r, const char *path, const char *what, const char *word,
                        const char *const *names, int n)
{
    char list[300];
    const char *near = config_nearest_name(word, names, n);
    if (near) return fail(r, path, "unknown %s '%.60s' (did you mean '%s'?)", what, word, near);
    join_names(list, sizeof list, names, n);
    return fail(r, path, "unknown %s '%.60s' (expected one of %s)", what, word, list);
}

static const char *expectation(const field *f, char *buf, size_t n)
{
    switch (f->type) {
    case FT_BOOL: return "true or false";
    case FT_TEXT: snprintf(buf, n, "a string of at most %zu bytes", f->size - 1); return buf;
    case FT_CUSTOM: return f->what;
    case FT_INT: case FT_U64:
        snprintf(buf, n, "an integer %s%s", ranges[f->range].text, f->flags & F_CLASSES ? " or nn.classes" : "");
        return buf;
    default: snprintf(buf, n, "a number %s", ranges[f->range].text); return buf;
    }
}

static void join_path(char *out, const char *path, const char *key)
{
    if (snprintf(out, PATH_LEN, "%s%s%s", path, *path ? "." : "", key) >= PATH_LEN)
        strcpy(out + PATH_LEN - 4, "...");
}

/* ---- reading: generic ---- */

static int in_range(double v, enum range rg)
{
    if (rg != R_ANY && !isfinite(v)) return 0;
    int lo = ranges[rg].lo_open ? v > ranges[rg].lo : v >= ranges[rg].lo;
    int hi = ranges[rg].hi_open ? v < ranges[rg].hi : v <= ranges[rg].hi;
    return lo && hi;
}

/* Reads the value at idx into base per f; 0, or -1 with the error set. */
static int read_value(reader *r, int idx, const char *path, const field *f, void *base)
{
    lua_State *L = r->L;
    char *dst = (char *)base + f->off, want[96];
    size_t len;
    double v;

    if (f->type == FT_CUSTOM) return f->read(r, idx, path, base);
    if ((f->flags & F_CLASSES) && lua_touserdata(L, idx) == &classes_token) {
        if (r->depth)   /* inner layers are not the run's own copy to resolve (nn_build refuses) */
            return fail(r, path, "nn.classes (the data's number of classes) is for a layer at the model's "
                        "top level, not inside a block");
        *(int *)dst = CONFIG_CLASSES;
        return 0;
    }
    if (f->type == FT_BOOL) {
        if (!lua_isboolean(L, idx)) goto bad;
        *(int *)dst = lua_toboolean(L, idx);
        return 0;
    }
    if (f->type == FT_TEXT) {
        if (lua_type(L, idx) != LUA_TSTRING) goto bad;
        const char *s = lua_tolstring(L, idx, &len);
        if (len >= f->size || strlen(s) != len) goto bad;
        memcpy(dst, s, len + 1);
        return 0;
    }
    if (lua_type(L, idx) != LUA_TNUMBER) goto bad;
    v = lua_tonumber(L, idx);
    if (!in_range(v, f->range)) goto bad;
    int integral = lua_isinteger(L, idx) || v == floor(v);
    switch (f->type) {
    case FT_FLOAT:
        if (fabs(v) > FLT_MAX) goto bad;
        *(float *)dst = (float)v;
        break;
    case FT_DOUBLE: *(double *)dst = v; break;
    case FT_INT:
        if (!integral || v > INT_MAX || v < INT_MIN) goto bad;
        *(int *)dst = (int)v;
        break;
    case FT_U64:
        if (!integral || v >= 18446744073709551616.0) goto bad;
        *(uint64_t *)dst = lua_isinteger(L, idx) ? (uint64_t)lua_tointeger(L, idx) : (uint64_t)v;
        break;
    default: break;
    }
    return 0;
bad:
    return bad(r, path, expectation(f, want, sizeof want), idx);
}

static const field *find_field(const field *fs, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(fs[i].key, key)) return &fs[i];
    return NULL;
}

/* Fails on any key of the table at idx that is not a field of fs ([1] allowed when has_head). */
static int check_keys(reader *r, int idx, const char *path, const field *fs, int n, int has_head)
{
    lua_State *L = r->L;
    const char *names[16];
    char key[96];
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (has_head && lua_isinteger(L, -1) && lua_tointeger(L, -1) == 1) continue;
        if (lua_type(L, -1) == LUA_TSTRING && find_field(fs, n, lua_tostring(L, -1))) continue;
        int rc = lua_type(L, -1) == LUA_TSTRING
            ? unknown_name(r, path, "field", lua_tostring(L, -1), names, field_names(fs, n, names))
            : fail(r, path, "unexpected entry [%s]; expected named fields (key = value)",
                   describe(L, -1, key, sizeof key));
        lua_pop(L, 1);
        return rc;
    }
    return 0;
}

/* Reads the table at idx field by field into base: unknown keys, then each field in order. */
static int read_fields(reader *r, int idx, const char *path, const field *fs, int n, void *base,
                       int has_head)
{
    lua_State *L = r->L;
    char sub[PATH_LEN], want[96];
    if (!lua_istable(L, idx)) return bad(r, path, "a table", idx);
    if (check_keys(r, idx, path, fs, n, has_head)) return -1;
    for (int i = 0; i < n; i++) {
        join_path(sub, path, fs[i].key);
        lua_pushstring(L, fs[i].key);
        lua_rawget(L, idx);
        int rc = 0;
        if (!lua_isnil(L, -1)) rc = read_value(r, lua_gettop(L), sub, &fs[i], base);
        else if (fs[i].flags & (F_REQ | F_ARG))
            rc = fail(r, sub, "missing; expected %s", expectation(&fs[i], want, sizeof want));
        lua_pop(L, 1);
        if (rc) return -1;
    }
    return 0;
}

/* The name of a value written "name" or { "name", ... }, copied into out. 0, or -1 with the
 * error set (not a string, empty, too long). */
static int head_name(reader *r, int idx, const char *path, const char *want, char *out, size_t size)
{
    lua_State *L = r->L;
    size_t len;
    int rc = 0;
    if (lua_istable(L, idx)) lua_rawgeti(L, idx, 1);
    else lua_pushvalue(L, idx);
    if (lua_type(L, -1) != LUA_TSTRING) rc = bad(r, path, want, lua_istable(L, idx) ? idx : -1);
    else {
        const char *s = lua_tolstring(L, -1, &len);
        if (!len || len >= size || strlen(s) != len)
            rc = fail(r, path, "name \"%.40s\" must be 1 to %zu bytes", s, size - 1);
        else memcpy(out, s, len + 1);
    }
    lua_pop(L, 1);
    return rc;
}

/* Checks the value at idx is a list (keys 1..n only) and stores n. */
static int read_list(reader *r, int idx, const char *path, const char *want, int *n)
{
    lua_State *L = r->L;
    char key[96];
    if (!lua_istable(L, idx)) return bad(r, path, want, idx);
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= len)
            continue;
        describe(L, -1, key, sizeof key);
        lua_pop(L, 1);
        return fail(r, path, "unexpected key %s; expected %s", key, want);
    }
    *n = (int)len;
    return 0;
}

/* Reads a table holding exactly one of the fields fs into base; returns its index, or -1. */
static int one_of(reader *r, int idx, const char *path, const field *fs, int n, void *base)
{
    lua_State *L = r->L;
    const char *names[8];
    char list[200], sub[PATH_LEN];
    int found = -1, count = 0;
    if (check_keys(r, idx, path, fs, n, 0)) return -1;
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, fs[i].key);
        if (lua_rawget(L, idx) != LUA_TNIL) found = i, count++;
        lua_pop(L, 1);
    }
    if (count != 1) {
        join_names(list, sizeof list, names, field_names(fs, n, names));
        return fail(r, path, "expected %sone of %s", count ? "only " : "", list);
    }
    join_path(sub, path, fs[found].key);
    lua_pushstring(L, fs[found].key);
    lua_rawget(L, idx);
    int rc = read_value(r, lua_gettop(L), sub, &fs[found], base);
    lua_pop(L, 1);
    return rc ? -1 : found;
}

/* ---- reading: the recipe's parts ---- */

static int read_layer(reader *r, int idx, const char *path, layer_spec *l);

/* Reads a list of layers into a fresh array attached to *out at once, so config_free finds it
 * whatever fails later. */
static int read_layers(reader *r, int idx, const char *path, layer_spec **out, int *count)
{
    lua_State *L = r->L;
    char sub[PATH_LEN];
    int n;
    if (lua_istable(L, idx)) {
        int single = lua_rawgeti(L, idx, 1) == LUA_TSTRING;
        lua_pop(L, 1);
        if (single) return fail(r, path, "expected a list of layers (nn.sequential { ... }), got one layer");
    }
    if (read_list(r, idx, path, "a list of layers: nn.sequential { ... }", &n)) return -1;
    if (n == 0) return fail(r, path, "expected at least one layer");
    if (!(*out = calloc((size_t)n, sizeof **out))) return fail(r, path, "out of memory");
    *count = n;
    for (int i = 0; i < n; i++) {
        snprintf(sub, sizeof sub, "%s[%d]", path, i + 1);
        lua_rawgeti(L, idx, i + 1);
        int rc = read_layer(r, lua_gettop(L), sub, &(*out)[i]);
        lua_pop(L, 1);
        if (rc) return -1;
    }
    return 0;
}

static int read_layer(reader *r, int idx, const char *path, layer_spec *l)
{
    const char *names[LAYER_KIND_COUNT], *want = "a layer such as nn.linear(10)";
    char kind_name[64];
    luaL_checkstack(r->L, 8, "recipe layers");
    if (!lua_istable(r->L, idx)) return bad(r, path, want, idx);
    if (head_name(r, idx, path, want, kind_name, sizeof kind_name)) return -1;
    int k = config_layer_kind(kind_name);
    if (k < 0) {
        for (int i = 0; i < LAYER_KIND_COUNT; i++) names[i] = config_layer_name(i);
        return unknown_name(r, path, "layer", kind_name, names, LAYER_KIND_COUNT);
    }
    *l = (layer_spec){ .kind = k, .bias = 1, .momentum = 0.1f, .eps = 1e-5f, .positions = 1 };
    if (read_fields(r, idx, path, layer_fields[k].f, layer_fields[k].n, l, 1)) return -1;
    if (!l->stride) l->stride = (k == LAYER_MAXPOOL || k == LAYER_AVGPOOL) ? l->k : 1;
    return 0;
}

static int read_body(reader *r, int idx, const char *path, void *base)
{
    layer_spec *l = base;
    if (r->depth >= MAX_DEPTH) return fail(r, path, "residual blocks nested deeper than %d", MAX_DEPTH);
    r->depth++;
    int rc = read_layers(r, idx, path, &l->inner, &l->n_inner);
    r->depth--;
    return rc;
}

static int read_model(reader *r, int idx, const char *path, void *base)
{
    train_config *c = base;
    return read_layers(r, idx, path, &c->layers, &c->n_layers);
}

static int read_betas(reader *r, int idx, const char *path, void *base)
{
    char sub[PATH_LEN];
    int n;
    if (read_list(r, idx, path, "a list of two numbers in [0, 1)", &n)) return -1;
    if (n != 2) return fail(r, path, "expected two numbers { b1, b2 }, got %d", n);
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s[%d]", path, i + 1);
        lua_rawgeti(r->L, idx, i + 1);
        int rc = read_value(r, lua_gettop(r->L), sub, &beta_fields[i], base);
        lua_pop(r->L, 1);
        if (rc) return -1;
    }
    return 0;
}

static int read_augment(reader *r, int idx, const char *path, void *base)
{
    return read_fields(r, idx, path, augment_fields, COUNT(augment_fields), base, 0);
}

/* A name the registry knows; "text" also needs data.path, the file it reads. */
static int read_data(reader *r, int idx, const char *path, void *base)
{
    train_config *c = base;
    const char *names[16];
    char sub[PATH_LEN];
    int n = 0;
    if (head_name(r, idx, path, want_data, c->dataset, sizeof c->dataset)) return -1;
    const data_info *d = data_info_find(c->dataset);
    if (!d) {
        for (const char *const *s = data_names(); *s && n < COUNT(names); s++) names[n++] = *s;
        return unknown_name(r, path, "dataset", c->dataset, names, n);
    }
    if (lua_istable(r->L, idx) && read_fields(r, idx, path, data_fields, COUNT(data_fields), c, 1)) return -1;
    join_path(sub, path, "path");
    if (d->format == DATA_FORMAT_TEXT && !d->n_files && !c->data_path[0])
        return fail(r, sub, "missing; dataset \"%s\" reads the file it names: { \"%s\", path = \"FILE\" }",
                    d->name, d->name);
    return 0;
}

static int read_optim(reader *r, int idx, const char *path, void *base)
{
    train_config *c = base;
    const char *names[] = { optims[0].name, optims[1].name };
    char name[64];
    if (head_name(r, idx, path, want_optim, name, sizeof name)) return -1;
    int k = !strcmp(name, "sgd") ? OPTIM_SGD : !strcmp(name, "adamw") ? OPTIM_ADAMW : -1;
    if (k < 0) return unknown_name(r, path, "optimizer", name, names, COUNT(names));
    c->optim.kind = k;
    if (!lua_istable(r->L, idx)) return 0;
    return read_fields(r, idx, path, optims[k].f, optims[k].n, &c->optim, 1);
}

static int read_schedule(reader *r, int idx, const char *path, void *base)
{
    train_config *c = base;
    const char *names[SCHED_KIND_COUNT];
    char name[64];
    if (head_name(r, idx, path, want_schedule, name, sizeof name)) return -1;
    int k = config_sched_kind(name);
    if (k < 0) {
        for (int i = 0; i < SCHED_KIND_COUNT; i++) names[i] = config_sched_name(i);
        return unknown_name(r, path, "schedule", name, names, SCHED_KIND_COUNT);
    }
    c->schedule.kind = k;
    if (!lua_istable(r->L, idx)) return 0;
    return read_fields(r, idx, path, sched_fields, k == SCHED_ONE_CYCLE ? 4 : 2, &c->schedule, 1);
}

static int read_budget(reader *r, int idx, const char *path, void *base)
{
    train_config *c = base;
    const char *want = "{ epochs = N } (or steps, samples, seconds) or text like \"5ep\", \"30s\", \"2000steps\"";
    if (lua_type(r->L, idx) == LUA_TSTRING)
        return config_parse_budget(lua_tostring(r->L, idx), &c->budget) ? bad(r, path, want, idx) : 0;
    if (!lua_istable(r->L, idx)) return bad(r, path, want, idx);
    int k = one_of(r, idx, path, budget_fields, COUNT(budget_fields), &c->budget);
    if (k < 0) return -1;
    c->budget.unit = k;
    return 0;
}

static int read_every(reader *r, int idx, const char *path, void *base)
{
    train_config *c = base;
    budget_spec b = { BUDGET_EPOCHS, 1 };
    int t = lua_type(r->L, idx);
    if (t == LUA_TNUMBER) b = (budget_spec){ BUDGET_STEPS, lua_tonumber(r->L, idx) };
    else if (t != LUA_TSTRING) return bad(r, path, eval_fields[0].what, idx);
    else if (strcmp(lua_tostring(r->L, idx), "epoch") && config_parse_budget(lua_tostring(r->L, idx), &b))
        return bad(r, path, eval_fields[0].what, idx);
    if ((b.unit != BUDGET_STEPS && b.unit != BUDGET_EPOCHS) || !(b.amount >= 1) || b.amount > INT_MAX
        || b.amount != floor(b.amount))
        return bad(r, path, eval_fields[0].what, idx);
    c->eval_every_steps = b.unit == BUDGET_STEPS ? (int)b.amount : 0;
    c->eval_every_epochs = b.unit == BUDGET_EPOCHS ? (int)b.amount : 0;
    return 0;
}

static int read_eval(reader *r, int idx, const char *path, void *base)
{
    return read_fields(r, idx, path, eval_fields, COUNT(eval_fields), base, 0);
}

static int read_target(reader *r, int idx, const char *path, void *base)
{
    train_config *c = base;
    if (lua_isboolean(r->L, idx) && !lua_toboolean(r->L, idx)) {
        c->target_metric[0] = 0;
        return 0;
    }
    if (!lua_istable(r->L, idx)) return bad(r, path, want_target, idx);
    int k = one_of(r, idx, path, target_fields, COUNT(target_fields), c);
    if (k < 0) return -1;
    snprintf(c->target_metric, sizeof c->target_metric, "%s", target_fields[k].key);
    return 0;
}

/* One plugin parameter: key at -2, value at -1; stored as text. */
static int read_param(reader *r, const char *path, plugin_spec *p)
{
    lua_State *L = r->L;
    char sub[PATH_LEN], key[96];
    size_t klen, len, vsize = sizeof p->values[0];
    if (lua_type(L, -2) != LUA_TSTRING)
        return fail(r, path, "unexpected entry [%s]; parameters are key = value",
                    describe(L, -2, key, sizeof key));
    const char *k = lua_tolstring(L, -2, &klen);
    join_path(sub, path, k);
    if (!klen || klen >= sizeof p->keys[0] || strlen(k) != klen)
        return fail(r, sub, "parameter names are 1 to %zu bytes", sizeof p->keys[0] - 1);
    if (p->n_params == CONFIG_MAX_PARAMS)
        return fail(r, path, "at most %d parameters per plugin", CONFIG_MAX_PARAMS);
    char *v = p->values[p->n_params];
    switch (lua_type(L, -1)) {
    case LUA_TNUMBER: param_number(L, -1, v, vsize); break;
    case LUA_TBOOLEAN: snprintf(v, vsize, "%s", lua_toboolean(L, -1) ? "true" : "false"); break;
    case LUA_TSTRING: {
        const char *s = lua_tolstring(L, -1, &len);
        if (len >= vsize || strlen(s) != len)
            return fail(r, sub, "text values are at most %zu bytes", vsize - 1);
        memcpy(v, s, len + 1);
        break;
    }
    default: return bad(r, sub, "a number, a boolean or a string", -1);
    }
    memcpy(p->keys[p->n_params++], k, klen + 1);
    return 0;
}

/* Parameters sorted by key: Lua's table order is arbitrary, the config's should not be. */
static void sort_params(plugin_spec *p)
{
    for (int i = 1; i < p->n_params; i++)
        for (int j = i; j > 0 && strcmp(p->keys[j - 1], p->keys[j]) > 0; j--) {
            char k[sizeof p->keys[0]], v[sizeof p->values[0]];
            memcpy(k, p->keys[j], sizeof k), memcpy(v, p->values[j], sizeof v);
            memcpy(p->keys[j], p->keys[j - 1], sizeof k), memcpy(p->values[j], p->values[j - 1], sizeof v);
            memcpy(p->keys[j - 1], k, sizeof k), memcpy(p->values[j - 1], v, sizeof v);
        }
}

static int read_plugin(reader *r, int idx, const char *path, plugin_spec *p)
{
    lua_State *L = r->L;
    memset(p, 0, sizeof *p);
    if (head_name(r, idx, path, "a plugin name or { \"name\", key = value }", p->name, sizeof p->name))
        return -1;
    if (!lua_istable(L, idx)) return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int rc = lua_isinteger(L, -2) && lua_tointeger(L, -2) == 1 ? 0 : read_param(r, path, p);
        lua_pop(L, 1);
        if (rc) {
            lua_pop(L, 1);
            return -1;
        }
    }
    sort_params(p);
    return 0;
}

static int read_plugins(reader *r, int idx, const char *path, void *base)
{
    train_config *c = base;
    char sub[PATH_LEN];
    int n;
    if (read_list(r, idx, path, want_plugins, &n)) return -1;
    if (n > CONFIG_MAX_PLUGINS) return fail(r, path, "at most %d plugins, got %d", CONFIG_MAX_PLUGINS, n);
    for (int i = 0; i < n; i++) {
        snprintf(sub, sizeof sub, "%s[%d]", path, i + 1);
        lua_rawgeti(r->L, idx, i + 1);
        int rc = read_plugin(r, lua_gettop(r->L), sub, &c->plugins[i]);
        lua_pop(r->L, 1);
        if (rc) return -1;
    }
    c->n_plugins = n;
    return 0;
}

/* nn.<kind>(args..., opts): a plain table { "kind", arg = ..., opt = ... }; the recipe reader
 * checks the values, this only places them. Upvalue 1: the layer kind. */
static int nn_layer_ctor(lua_State *L)
{
    int kind = (int)lua_tointeger(L, lua_upvalueindex(1));
    const char *name = config_layer_name(kind), *args[4];
    const field *fs = layer_fields[kind].f;
    int nargs = 0, top = lua_gettop(L);
    for (int i = 0; i < layer_fields[kind].n; i++)
        if (fs[i].flags & F_ARG) args[nargs++] = fs[i].key;
    int opts = nargs + 1;
    if (top > opts) return luaL_error(L, "nn.%s: expected at most %d arguments, got %d", name, opts, top);
    for (int i = 0; i < nargs; i++)
        if (lua_isnoneornil(L, i + 1)) return luaL_error(L, "nn.%s: argument %d (%s) is missing", name, i + 1, args[i]);
    if (!lua_isnoneornil(L, opts) && !lua_istable(L, opts))
        return luaL_error(L, "nn.%s: argument %d: expected a table of options, got %s", name, opts,
                          luaL_typename(L, opts));
    lua_settop(L, opts);   /* the new table goes above the options slot, present or not */
    lua_createtable(L, 1, nargs + 4);
    int t = lua_gettop(L);
    lua_pushstring(L, name);
    lua_rawseti(L, t, 1);
    if (lua_istable(L, opts)) {
        lua_pushnil(L);
        while (lua_next(L, opts)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "nn.%s: options are named (key = value)", name);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t);
        }
    }
    for (int i = 0; i < nargs; i++) {
        lua_pushstring(L, args[i]);
        if (lua_rawget(L, t) != LUA_TNIL)
            return luaL_error(L, "nn.%s: '%s' is an argument, not an option", name, args[i]);
        lua_pop(L, 1);
        lua_pushstring(L, args[i]);
        lua_pushvalue(L, i + 1);
        lua_rawset(L, t);
    }
    return 1;
}

/* nn.residual { layers..., name = "..." }: { "residual", body = { layers... }, name = ... }. */
static int nn_residual(lua_State *L)
{
    if (!lua_istable(L, 1))
        return luaL_error(L, "nn.residual: expected a list of layers, got %s", luaL_typename(L, 1));
    lua_settop(L, 1);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    lua_createtable(L, 1, 2);          /* 2: the layer */
    lua_createtable(L, (int)n, 0);     /* 3: its body */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        int in_body = lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 && lua_tointeger(L, -2) <= n;
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, in_body ? 3 : 2);
    }
    lua_pushstring(L, "body");
    lua_pushvalue(L, 3);
    lua_rawset(L, 2);
    lua_pushstring(L, "residual");
    lua_rawseti(L, 2, 1);
    lua_settop(L, 2);
    return 1;
}

static int nn_sequential(lua_State *L)
{
    if (!lua_istable(L, 1))
        return luaL_error(L, "nn.sequential: expected a list of layers, got %s", luaL_typename(L, 1));
    lua_settop(L, 1);
    return 1;
}

/* nn.<anything else>(...) gives { "name" }, so that a misspelt layer is reported by the reader
 * as "model[3]: unknown layer 'convv' (did you mean 'conv'?)" rather than as a nil call. */
static int nn_unknown(lua_State *L)
{
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_rawseti(L, -2, 1);
    return 1;
}

static int nn_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    lua_settop(L, 2);
    lua_pushcclosure(L, nn_unknown, 1);
    return 1;
}

static void open_nn(lua_State *L)
{
    lua_newtable(L);
    for (int k = 0; k < LAYER_KIND_COUNT; k++) {
        if (k == LAYER_RESIDUAL) lua_pushcfunction(L, nn_residual);
        else {
            lua_pushinteger(L, k);
            lua_pushcclosure(L, nn_layer_ctor, 1);
        }
        lua_setfield(L, -2, config_layer_name(k));
    }
    lua_pushcfunction(L, nn_sequential);
    lua_setfield(L, -2, "sequential");
    lua_pushlightuserdata(L, (void *)&classes_token);
    lua_setfield(L, -2, "classes");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, nn_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setglobal(L, "nn");
}

/* Runs in protected mode: any Lua error (syntax, runtime, memory, the hook) lands in pcall;
 * field check failures return with r->failed set. */
static int run_recipe(lua_State *L)
{
    reader *r = lua_touserdata(L, 1);
    open_nn(L);
    int st = r->file ? luaL_loadfilex(L, r->file, "t")
                     : luaL_loadbufferx(L, r->text, strlen(r->text), r->chunk, "t");
    if (st != LUA_OK) return lua_error(L);
    lua_call(L, 0, 1);
    int t = lua_gettop(L);
    if (!lua_istable(L, t))
        bad(r, "", "the recipe to return a table: return { data = ..., model = ... }", t);
    else
        read_fields(r, t, "", recipe_fields, COUNT(recipe_fields), r->c, 0);
    return 0;
}

static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 32 || *s == 127) *s = ' ';
}

static int load(reader *r)
{
    sandbox sb;
    int st = LUA_ERRRUN;
    config_defaults(r->c);
    lua_State *L = sandbox_new(&sb, MEM_CAP, "recipe");
    if (!L) {
        snprintf(r->err, r->errlen, "%s: out of memory", r->name);
        goto fail;
    }
    r->L = L;
    lua_pushcfunction(L, run_recipe);
    lua_pushlightuserdata(L, r);
    sandbox_arm(L, &sb, MAX_INSTR, 0);
    st = lua_pcall(L, 1, 0, 0);
    if (st != LUA_OK) {
        const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
        size_t nl = strlen(r->name);
        if (sb.denied && (st == LUA_ERRMEM || strstr(msg, "not enough memory")))
            snprintf(r->err, r->errlen, "%s: recipe went over its %d MiB memory cap", r->name, MEM_CAP_MIB);
        else if (!strncmp(msg, r->name, nl) && msg[nl] == ':')
            snprintf(r->err, r->errlen, "%s", msg);
        else
            snprintf(r->err, r->errlen, "%s: %s", r->name, msg);
    }
    lua_close(L);
    r->L = NULL;
    if (st != LUA_OK || r->failed) goto fail;
    return 0;
fail:
    one_line(r->err);
    config_free(r->c);
    config_defaults(r->c);
    return -1;
}

int recipe_load(const char *path, train_config *c, char *err, size_t errlen)
{
    char scratch[1];
    reader r = { .name = path ? path : "(null)", .file = path, .c = c,
                 .err = err && errlen ? err : scratch, .errlen = err && errlen ? errlen : 1 };
    if (!path || strlen(path) >= sizeof c->recipe_path) {
        config_defaults(c);
        snprintf(r.err, r.errlen, "%.200s: recipe path missing or longer than %zu bytes", r.name,
                 sizeof c->recipe_path - 1);
        return -1;
    }
    if (load(&r)) return -1;
    memcpy(c->recipe_path, path, strlen(path) + 1);
    return 0;
}

int recipe_load_string(const char *text, const char *chunkname, train_config *c, char *err,
                       size_t errlen)
{
    char scratch[1];
    reader r = { .name = chunkname ? chunkname : "recipe", .text = text ? text : "", .c = c,
                 .err = err && errlen ? err : scratch, .errlen = err && errlen ? errlen : 1 };
    snprintf(r.chunk, sizeof r.chunk, "=%s", r.name);
    return load(&r);
}

/* ---- plugins: checked against the catalogue, and --plugin options ---- */

/* plug_check on one entry alone: it names neither the entry nor where it came from. */
static int check_one(const plug_catalog *cat, const plugin_spec *p, char *err, size_t errlen)
{
    train_config *one = calloc(1, sizeof *one);
    if (!one) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    one->n_plugins = 1;
    one->plugins[0] = *p;
    int rc = plug_check(cat, one, err, errlen);
    free(one);
    return rc;
}

int recipe_check_plugins(const train_config *c, const plug_catalog *cat, char *err, size_t errlen)
{
    char msg[512];
    for (int i = 0; i < c->n_plugins; i++) {
        const plug_info *info = plug_find(cat, c->plugins[i].name);
        if (check_one(cat, &c->plugins[i], msg, sizeof msg) || (info && !plug_fits_model(info, c, msg, sizeof msg))) {
            snprintf(err, errlen, "%s: plugins[%d]: %s", c->recipe_path[0] ? c->recipe_path : "recipe", i + 1, msg);
            return -1;
        }
    }
    return plug_check(cat, c, err, errlen);   /* the list as a whole: roles, a plugin twice */
}

/* e with p's parameters over it, into *out (sorted by key): 0, or -1 when that makes too many. */
static int merge_params(const plugin_spec *e, const plugin_spec *p, plugin_spec *out)
{
    plugin_spec m = *e;
    for (int i = 0; i < p->n_params; i++) {
        int k = 0;
        while (k < m.n_params && strcmp(m.keys[k], p->keys[i])) k++;
        if (k == CONFIG_MAX_PARAMS) return -1;
        if (k == m.n_params) memcpy(m.keys[m.n_params++], p->keys[i], sizeof m.keys[0]);
        memcpy(m.values[k], p->values[i], sizeof m.values[0]);
    }
    sort_params(&m);
    *out = m;
    return 0;
}

/* "--plugin ARG: <message>" into err; returns -1. */
static int option_fail(char *err, size_t errlen, const char *arg, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "--plugin %s: %s", arg, msg);
    return -1;
}

int recipe_plugin_option(train_config *c, const char *arg, const plug_catalog *cat, char *err, size_t errlen)
{
    plugin_spec p, merged;
    char msg[512];
    if (plug_parse_arg(arg, &p, err, errlen)) return -1;
    const char *colon = strchr(arg, ':');
    int items = 1;
    for (const char *s = colon ? colon + 1 : ""; *s; s++) items += *s == ',';
    if (colon && !p.n_params)   /* plug_parse_arg skips empty items: "ema:", "ema:a=1," */
        return option_fail(err, errlen, arg, "no key=value after ':' (expected NAME or NAME:key=value,...)");
    if (colon && p.n_params != items)
        return option_fail(err, errlen, arg, "an empty item in its parameter list (expected NAME:key=value,...)");
    for (int i = 0; i < p.n_params; i++)
        for (int j = i + 1; j < p.n_params; j++)
            if (!strcmp(p.keys[i], p.keys[j])) return option_fail(err, errlen, arg, "parameter '%s' given twice", p.keys[i]);
    if (check_one(cat, &p, msg, sizeof msg)) return option_fail(err, errlen, arg, "%s", msg);
    int found = 0;
    for (int pass = 0; pass < 2; pass++)   /* every entry named so can take it before any does */
        for (int i = 0; i < c->n_plugins; i++) {
            if (strcmp(c->plugins[i].name, p.name)) continue;
            if (merge_params(&c->plugins[i], &p, pass ? &c->plugins[i] : &merged))
                return option_fail(err, errlen, arg, "%s would have more than %d parameters", p.name, CONFIG_MAX_PARAMS);
            found = 1;
        }
    if (found) return 0;
    if (c->n_plugins == CONFIG_MAX_PLUGINS) return option_fail(err, errlen, arg, "at most %d plugins a run", CONFIG_MAX_PLUGINS);
    sort_params(&p);
    c->plugins[c->n_plugins++] = p;
    return 0;
}

/* ---- writing ---- */

static void write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 32 || ch == 127) fprintf(f, "\\%03u", ch);   /* three digits: never runs into a following digit */
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void write_float(FILE *f, double v, int single)
{
    char num[40];
    fmt_number(num, sizeof num, v, single);
    fputs(num, f);
}

static int write_value(FILE *f, const field *fd, const void *base, int indent)
{
    const char *src = (const char *)base + fd->off;
    switch (fd->type) {
    case FT_FLOAT: write_float(f, *(const float *)src, 1); break;
    case FT_DOUBLE: write_float(f, *(const double *)src, 0); break;
    case FT_INT:
        if ((fd->flags & F_CLASSES) && *(const int *)src == CONFIG_CLASSES) fputs("nn.classes", f);
        else fprintf(f, "%d", *(const int *)src);
        break;
    case FT_U64: fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)src); break;
    case FT_BOOL: fputs(*(const int *)src ? "true" : "false", f); break;
    case FT_TEXT: write_string(f, src); break;
    case FT_CUSTOM: return fd->write ? fd->write(f, base, indent) : -1;
    }
    return 0;
}

/* Whether write_inline shows the field: not the skipped flags, not an empty name ("" = auto). */
static int shown(const field *fd, const void *base, int skip)
{
    if (fd->flags & skip) return 0;
    if (fd->type == FT_TEXT) return ((const char *)base + fd->off)[0] != 0;
    return 1;
}

/* { "head", key = value, ... } on one line. */
static int write_inline(FILE *f, const char *head, const field *fs, int n, const void *base, int skip,
                        int indent)
{
    const char *sep = " ";
    fputc('{', f);
    if (head) {
        fputc(' ', f);
        write_string(f, head);
        sep = ", ";
    }
    for (int i = 0; i < n; i++) {
        if (!shown(&fs[i], base, skip)) continue;
        fprintf(f, "%s%s = ", sep, fs[i].key);
        if (write_value(f, &fs[i], base, indent)) return -1;
        sep = ", ";
    }
    fputs(" }", f);
    return 0;
}

static int write_layers(FILE *f, const layer_spec *l, int n, int indent);

/* nn.kind(args..., { options }) or nn.residual { ... }. */
static int write_layer(FILE *f, const layer_spec *l, int indent)
{
    const char *name = config_layer_name(l->kind), *sep = "";
    if (!name) return -1;
    if (l->kind == LAYER_RESIDUAL) {
        fputs("nn.residual {\n", f);
        if (write_layers(f, l->inner, l->n_inner, indent + 2)) return -1;
        if (l->name[0]) {
            fprintf(f, "%*sname = ", indent + 2, "");
            write_string(f, l->name);
            fputs(",\n", f);
        }
        fprintf(f, "%*s}", indent, "");
        return 0;
    }
    const field *fs = layer_fields[l->kind].f;
    int n = layer_fields[l->kind].n, opts = 0;
    fprintf(f, "nn.%s(", name);
    for (int i = 0; i < n; i++) {
        if (!(fs[i].flags & F_ARG)) {
            opts += shown(&fs[i], l, F_ARG);
            continue;
        }
        fputs(sep, f);
        write_value(f, &fs[i], l, indent);
        sep = ", ";
    }
    if (opts) {
        fputs(sep, f);
        write_inline(f, NULL, fs, n, l, F_ARG, indent);
    }
    fputc(')', f);
    return 0;
}

static int write_layers(FILE *f, const layer_spec *l, int n, int indent)
{
    for (int i = 0; i < n; i++) {
        fprintf(f, "%*s", indent, "");
        if (write_layer(f, &l[i], indent)) return -1;
        fputs(",\n", f);
    }
    return 0;
}

static int write_model(FILE *f, const void *base, int indent)
{
    const train_config *c = base;
    fputs("nn.sequential {\n", f);
    if (write_layers(f, c->layers, c->n_layers, indent + 2)) return -1;
    fprintf(f, "%*s}", indent, "");
    return 0;
}

static int write_betas(FILE *f, const void *base, int indent)
{
    const optim_spec *o = base;
    (void)indent;
    fputs("{ ", f);
    write_float(f, o->beta1, 1);
    fputs(", ", f);
    write_float(f, o->beta2, 1);
    fputs(" }", f);
    return 0;
}

static int write_augment(FILE *f, const void *base, int indent)
{
    return write_inline(f, NULL, augment_fields, COUNT(augment_fields), base, 0, indent);
}

/* A text is not augmented and images have no context: neither field is written where it means
 * nothing (read back, it takes its default, which nothing reads). */
static int write_data(FILE *f, const void *base, int indent)
{
    const train_config *c = base;
    const data_info *d = data_info_find(c->dataset);
    const char *moot = d && d->format == DATA_FORMAT_TEXT ? "augment" : "context";
    field fs[COUNT(data_fields)];
    int n = 0;
    for (int i = 0; i < COUNT(data_fields); i++)
        if (strcmp(data_fields[i].key, moot)) fs[n++] = data_fields[i];
    return write_inline(f, c->dataset, fs, n, c, 0, indent);
}

static int write_optim(FILE *f, const void *base, int indent)
{
    const train_config *c = base;
    if ((unsigned)c->optim.kind >= (unsigned)COUNT(optims)) return -1;
    const field *fs = optims[c->optim.kind].f;
    return write_inline(f, optims[c->optim.kind].name, fs, optims[c->optim.kind].n, &c->optim, 0, indent);
}

static int write_schedule(FILE *f, const void *base, int indent)
{
    const train_config *c = base;
    const char *name = config_sched_name(c->schedule.kind);
    if (!name) return -1;
    return write_inline(f, name, sched_fields, c->schedule.kind == SCHED_ONE_CYCLE ? 4 : 2,
                        &c->schedule, 0, indent);
}

static int write_budget(FILE *f, const void *base, int indent)
{
    const train_config *c = base;
    if ((unsigned)c->budget.unit >= (unsigned)COUNT(budget_fields)) return -1;
    return write_inline(f, NULL, &budget_fields[c->budget.unit], 1, &c->budget, 0, indent);
}

static int write_eval(FILE *f, const void *base, int indent)
{
    const train_config *c = base;
    (void)indent;
    if (c->eval_every_steps > 0) fprintf(f, "{ every = %d }", c->eval_every_steps);
    else if (c->eval_every_epochs <= 1) fputs("{ every = \"epoch\" }", f);
    else fprintf(f, "{ every = \"%dep\" }", c->eval_every_epochs);
    return 0;
}

static int write_target(FILE *f, const void *base, int indent)
{
    const train_config *c = base;
    if (!c->target_metric[0]) {
        fputs("false", f);
        return 0;
    }
    const field *fd = find_field(target_fields, COUNT(target_fields), c->target_metric);
    return fd ? write_inline(f, NULL, fd, 1, c, 0, indent) : -1;
}

static int is_identifier(const char *s)
{
    static const char *const keywords[] = {
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
        "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" };
    for (const char *p = s; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';
        if (!alpha && (p == s || *p < '0' || *p > '9')) return 0;
    }
    for (int i = 0; i < COUNT(keywords); i++)
        if (!strcmp(s, keywords[i])) return 0;
    return *s != 0;
}

static int write_plugins(FILE *f, const void *base, int indent)
{
    const train_config *c = base;
    if (c->n_plugins < 0 || c->n_plugins > CONFIG_MAX_PLUGINS) return -1;
    if (!c->n_plugins) {
        fputs("{}", f);
        return 0;
    }
    fputs("{\n", f);
    for (int i = 0; i < c->n_plugins; i++) {
        const plugin_spec *p = &c->plugins[i];
        if (p->n_params < 0 || p->n_params > CONFIG_MAX_PARAMS) return -1;
        fprintf(f, "%*s{ ", indent + 2, "");
        write_string(f, p->name);
        for (int j = 0; j < p->n_params; j++) {
            fputs(", ", f);
            if (is_identifier(p->keys[j])) fputs(p->keys[j], f);
            else {
                fputc('[', f);
                write_string(f, p->keys[j]);
                fputc(']', f);
            }
            fputs(" = ", f);
            const char *v = p->values[j];
            if (!strcmp(v, "true") || !strcmp(v, "false") || canonical_number(v)) fputs(v, f);
            else write_string(f, v);
        }
        fputs(" },\n", f);
    }
    fprintf(f, "%*s}", indent, "");
    return 0;
}

int recipe_write(const train_config *c, FILE *f)
{
    fputs("-- hasten recipe, resolved: every field explicit.\n", f);
    if (c->recipe_path[0]) {
        fputs("-- from: ", f);
        for (const char *s = c->recipe_path; *s; s++)
            fputc((unsigned char)*s < 32 ? '?' : *s, f);
        fputc('\n', f);
    }
    fputs("return {\n", f);
    for (int i = 0; i < COUNT(recipe_fields); i++) {
        fprintf(f, "  %s = ", recipe_fields[i].key);
        if (write_value(f, &recipe_fields[i], c, 2)) return -1;
        fputs(",\n", f);
    }
    fputs("}\n", f);
    return fflush(f) || ferror(f) ? -1 : 0;
}

int recipe_load_from_run(const char *dir, train_config *c, char *err, size_t errlen)
{
    char path[1100];
    struct stat st;
    snprintf(path, sizeof path, "%s/recipe.lua", dir);
    if (stat(path, &st) && errno == ENOENT) {
        config_defaults(c);
        snprintf(err, errlen, "%s: %s", dir, stat(dir, &st) ? strerror(errno) : "not a run folder (no recipe.lua)");
        return -1;
    }
    return recipe_load(path, c, err, errlen);
}

nn_model *recipe_load_run(const char *dir, int h, int w, int ch, int vocab, train_config *c, char *err,
                          size_t errlen)
{
    char path[1100], why[256];
    snprintf(path, sizeof path, "%s/recipe.lua", dir);
    if (recipe_load_from_run(dir, c, err, errlen)) return NULL;
    config_take_data_sizes(c->layers, c->n_layers, vocab);
    nn_model *m = nn_build(c->layers, c->n_layers, h, w, ch, c->seed, why, sizeof why);
    if (!m) {
        snprintf(err, errlen, "%s: %s", path, why);
        config_free(c);
        config_defaults(c);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long len = -1;
    int ok = 0;
    if (f && !fseek(f, 0, SEEK_END)) len = ftell(f);
    if (len >= 0 && (buf = malloc((size_t)len + 1)) && !fseek(f, 0, SEEK_SET) && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        if (nn_state_unpack(m, buf, (size_t)len, why, sizeof why)) snprintf(err, errlen, "%s: %s", path, why);
        else ok = 1;
    } else {
        snprintf(err, errlen, "%s: cannot read it (%s); a run leaves it when it finishes", path,
                 f ? "read error" : strerror(errno));
    }
    if (f) fclose(f);
    free(buf);
    if (ok) {
        for (int i = 0; i < c->n_plugins; i++)
            if (!strcmp(c->plugins[i].name, "alibi")) nn_set_alibi(m, 1);
        return m;
    }
    nn_free(m);
    config_free(c);
    config_defaults(c);
    return NULL;
}
