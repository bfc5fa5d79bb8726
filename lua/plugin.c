/* The plugin catalogue: finds plugin files, validates what they return (hasten.plugin{...}) and
 * types their parameters. Not for running them: plugin_host.c does that. */
#include "lua/plugin.h"
#include "lua/plugin_priv.h"
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef HASTEN_SHARE
#define HASTEN_SHARE "/usr/local/share/hasten"
#endif

#define META_MEM    (16u << 20)
#define META_INSTR  10000000LL
#define COUNT(a)    ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const components[] = { "data", "function", "optimization" };
static const char *const actions[] = { "remove", "restrict", "reorder", "replace", "retrofit" };
static const char *const whens[] = { "once", "every step", "scheduled", "phase", "periodic" };

static int one_of(const char *v, const char *const *set, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, set[i])) return 1;
    return 0;
}

static void flatten_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t') *s = ' ';
}

/* ---- metadata ----------------------------------------------------------------------------- */

/* hasten.plugin{...} marks the table so a file returning something else is caught. */
static int plugin_mark(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushboolean(L, 1);
    lua_setfield(L, 1, "__hasten_plugin");
    lua_settop(L, 1);
    return 1;
}


/* Reads a string field into out; returns 0, or -1 with err. */
static int get_text(lua_State *L, int t, const char *key, char *out, size_t len, int required,
                    const char *file, char *err, size_t errlen)
{
    lua_getfield(L, t, key);
    int ty = lua_type(L, -1);
    if (ty == LUA_TNIL && !required) { lua_pop(L, 1); return 0; }
    if (ty != LUA_TSTRING || !lua_rawlen(L, -1)) {
        snprintf(err, errlen, "%s: field '%s': expected a non-empty string, got %s", file, key,
                 ty == LUA_TSTRING ? "an empty string" : lua_typename(L, ty));
        lua_pop(L, 1);
        return -1;
    }
    snprintf(out, len, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
}

static int read_param(lua_State *L, int idx, const char *name, plug_param *p, const char *file,
                      char *err, size_t errlen)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    p->min = -INFINITY;
    p->max = INFINITY;
    if (!lua_istable(L, idx)) {
        snprintf(err, errlen, "%s: params.%s: expected a table { default = ..., doc = ... }", file, name);
        return -1;
    }
    lua_getfield(L, idx, "default");
    int ty = lua_type(L, -1);
    lua_getfield(L, idx, "integer");
    int integer = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (ty == LUA_TNUMBER) {
        p->type = integer ? PLUG_INTEGER : PLUG_NUMBER;   /* default = 1 is still a real number */
        p->def = lua_tonumber(L, -1);
    } else if (ty == LUA_TBOOLEAN) {
        p->type = PLUG_BOOLEAN;
        p->def = lua_toboolean(L, -1);
    } else if (ty == LUA_TSTRING) {
        p->type = PLUG_STRING;
        snprintf(p->sdef, sizeof p->sdef, "%s", lua_tostring(L, -1));
    } else {
        lua_pop(L, 1);
        snprintf(err, errlen, "%s: params.%s.default: expected a number, boolean or string, got %s",
                 file, name, lua_typename(L, ty));
        return -1;
    }
    lua_pop(L, 1);
    static const char *const bounds[] = { "min", "max" };
    for (int b = 0; b < 2; b++) {
        lua_getfield(L, idx, bounds[b]);
        if (!lua_isnil(L, -1)) {
            if (!lua_isnumber(L, -1) || p->type == PLUG_BOOLEAN || p->type == PLUG_STRING) {
                snprintf(err, errlen, "%s: params.%s.%s: expected a number for a numeric parameter", file, name, bounds[b]);
                lua_pop(L, 1);
                return -1;
            }
            *(b ? &p->max : &p->min) = lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
    if ((p->type == PLUG_NUMBER || p->type == PLUG_INTEGER) && (p->def < p->min || p->def > p->max)) {
        snprintf(err, errlen, "%s: params.%s: default %g is outside [%g, %g]", file, name, p->def, p->min, p->max);
        return -1;
    }
    char doc[160] = "";
    if (get_text(L, idx, "doc", doc, sizeof doc, 1, file, err, errlen)) {
        char field[64];
        snprintf(field, sizeof field, "params.%s.doc", name);
        snprintf(err, errlen, "%s: field '%s': expected a non-empty string", file, field);
        return -1;
    }
    snprintf(p->doc, sizeof p->doc, "%s", doc);
    lua_getfield(L, idx, "required");
    p->required = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return 0;
}

static int event_index(const char *name)
{
    for (int e = 0; e < EV_COUNT; e++)
        if (!strcmp(trainer_event_name(e), name)) return e;
    return -1;
}

/* The plugin's `layers` field ({ "conv", "maxpool" }: the model needs one of these kinds) into
 * info->layers. Returns 0, or -1 with err naming the file and the value. */
static int read_layers(lua_State *L, int t, const char *file, plug_info *info, char *err, size_t errlen)
{
    if (lua_getfield(L, t, "layers") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: field 'layers': expected a list of layer kinds ({ \"conv\", \"maxpool\" })", file);
        lua_pop(L, 1);
        return -1;
    }
    for (int i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
        int kind = lua_type(L, -1) == LUA_TSTRING ? config_layer_kind(lua_tostring(L, -1)) : -1;
        if (kind < 0) {
            snprintf(err, errlen, "%s: layers[%d] = '%s': not a layer kind (conv, linear, maxpool, batchnorm, "
                     "residual, ...)", file, i, luaL_tolstring(L, -1, NULL));
            lua_pop(L, 3);   /* the string, the value, the list */
            return -1;
        }
        info->layers |= 1u << kind;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);   /* the nil that ended the list, the list */
    return 0;
}

/* Validates the plugin table at the top of L's stack into info. */
static int read_info(lua_State *L, const char *file, plug_info *info, char *err, size_t errlen)
{
    int t = lua_gettop(L);
    static const char *const known[] = { "name", "title", "summary", "reference", "taxonomy",
                                         "data", "exclusive", "overlaps", "layers", "params", "__hasten_plugin" };
    if (!lua_istable(L, t)) {
        snprintf(err, errlen, "%s: a plugin must return hasten.plugin { name = ..., ... }", file);
        return -1;
    }
    lua_getfield(L, t, "__hasten_plugin");
    int marked = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!marked) {
        snprintf(err, errlen, "%s: return hasten.plugin { ... }, not a plain table", file);
        return -1;
    }
    if (get_text(L, t, "name", info->name, sizeof info->name, 1, file, err, errlen) ||
        get_text(L, t, "title", info->title, sizeof info->title, 1, file, err, errlen) ||
        get_text(L, t, "summary", info->summary, sizeof info->summary, 1, file, err, errlen) ||
        get_text(L, t, "reference", info->reference, sizeof info->reference, 1, file, err, errlen))
        return -1;
    static const char *const kinds[] = { "images", "text" };
    if (get_text(L, t, "data", info->data, sizeof info->data, 0, file, err, errlen)) return -1;
    if (info->data[0] && !one_of(info->data, kinds, COUNT(kinds))) {
        snprintf(err, errlen, "%s: data = '%s': expected \"images\" or \"text\" (or no data field: any)", file, info->data);
        return -1;
    }
    if (get_text(L, t, "exclusive", info->exclusive, sizeof info->exclusive, 0, file, err, errlen) ||
        get_text(L, t, "overlaps", info->overlaps, sizeof info->overlaps, 0, file, err, errlen) ||
        read_layers(L, t, file, info, err, errlen))
        return -1;
    for (const char *c = info->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) {
            snprintf(err, errlen, "%s: name '%s': use lower-case letters, digits and _", file, info->name);
            return -1;
        }
    lua_getfield(L, t, "taxonomy");
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: field 'taxonomy': expected { component = ..., action = ..., when = ... }", file);
        return -1;
    }
    int tx = lua_gettop(L);
    struct { const char *key; char *out; size_t len; const char *const *set; int n; } tax[] = {
        { "component", info->component, sizeof info->component, components, COUNT(components) },
        { "action", info->action, sizeof info->action, actions, COUNT(actions) },
        { "when", info->when, sizeof info->when, whens, COUNT(whens) },
    };
    for (int i = 0; i < 3; i++) {
        if (get_text(L, tx, tax[i].key, tax[i].out, tax[i].len, 1, file, err, errlen)) return -1;
        if (!one_of(tax[i].out, tax[i].set, tax[i].n)) {
            char list[128] = "";
            for (int k = 0; k < tax[i].n; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", tax[i].set[k]);
            snprintf(err, errlen, "%s: taxonomy.%s = '%s': expected one of %s", file, tax[i].key, tax[i].out, list);
            return -1;
        }
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "params");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1)) {
            snprintf(err, errlen, "%s: field 'params': expected a table of parameters", file);
            return -1;
        }
        int pt = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, pt)) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                snprintf(err, errlen, "%s: params: keys must be parameter names", file);
                return -1;
            }
            if (info->n_params == CONFIG_MAX_PARAMS) {
                snprintf(err, errlen, "%s: params: at most %d parameters", file, CONFIG_MAX_PARAMS);
                return -1;
            }
            if (read_param(L, lua_gettop(L), lua_tostring(L, -2), &info->params[info->n_params++], file, err, errlen))
                return -1;
            lua_pop(L, 1);
        }
        /* lua_next order is arbitrary: sort by name so listings are stable. */
        for (int i = 1; i < info->n_params; i++)
            for (int j = i; j > 0 && strcmp(info->params[j - 1].name, info->params[j].name) > 0; j--) {
                plug_param x = info->params[j]; info->params[j] = info->params[j - 1]; info->params[j - 1] = x;
            }
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        int ev = event_index(key);
        if (lua_isfunction(L, -1)) {
            if (ev < 0) {
                const char *events[EV_COUNT];
                for (int e = 0; e < EV_COUNT; e++) events[e] = trainer_event_name(e);
                const char *near = config_nearest_name(key, events, EV_COUNT);
                if (near) snprintf(err, errlen, "%s: handler '%s' is not an event: did you mean '%s'?", file, key, near);
                else snprintf(err, errlen, "%s: handler '%s' is not an event (events: fit_start, epoch_start, "
                              "batch_start, before_forward, ..., fit_end)", file, key);
                return -1;
            }
            info->events |= 1u << ev;
        } else if (event_index(key) >= 0) {
            snprintf(err, errlen, "%s: handler '%s' must be a function, not a %s", file, key, luaL_typename(L, -1));
            return -1;
        } else if (!one_of(key, known, COUNT(known))) {
            snprintf(err, errlen, "%s: unknown field '%s'", file, key);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

static int base_name_matches(const char *path, const char *name)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(name);
    return !strncmp(b, name, n) && !strcmp(b + n, ".lua");
}

/* Runs a plugin chunk (file or source) in L and leaves its table on the stack. */
int plug_load_chunk(lua_State *L, sandbox *sb, const char *path, const char *source, const char *name,
                      char *err, size_t errlen)
{
    char chunk[128];
    snprintf(chunk, sizeof chunk, "=%s.lua", name);
    int st = source ? luaL_loadbufferx(L, source, strlen(source), chunk, "t") : luaL_loadfilex(L, path, "t");
    if (st == LUA_OK) {
        sandbox_arm(L, sb, META_INSTR, CALL_SECS);
        st = lua_pcall(L, 0, 1, 0);
    }
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (sb->denied) snprintf(err, errlen, "%s: over its memory cap while loading", path);
        else snprintf(err, errlen, "%s", msg ? msg : "error");
        flatten_line(err);
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

static int load_info(const char *path, const char *source, const char *name, plug_info *info, char *err, size_t errlen)
{
    sandbox sb;
    lua_State *L = sandbox_new(&sb, META_MEM, "plugin");
    if (!L) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    plug_open_hasten(L);
    memset(info, 0, sizeof *info);
    snprintf(info->path, sizeof info->path, "%s", path);
    int rc = plug_load_chunk(L, &sb, source ? NULL : path, source, name, err, errlen);
    if (!rc) rc = read_info(L, path, info, err, errlen);
    if (!rc && !source && !base_name_matches(path, info->name)) {
        snprintf(err, errlen, "%s: name '%s' must match the file name", path, info->name);
        rc = -1;
    }
    lua_close(L);
    return rc;
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const plug_info *)a)->name, ((const plug_info *)b)->name);
}

static int add_info(plug_catalog *cat, const plug_info *info)
{
    for (int i = 0; i < cat->n; i++)
        if (!strcmp(cat->items[i].name, info->name)) {   /* later folders override */
            free(cat->items[i].source);
            cat->items[i] = *info;
            return 0;
        }
    plug_info *n = realloc(cat->items, (size_t)(cat->n + 1) * sizeof *n);
    if (!n) return -1;
    cat->items = n;
    cat->items[cat->n++] = *info;
    qsort(cat->items, (size_t)cat->n, sizeof *cat->items, cmp_info);
    return 0;
}

static void add_error(plug_catalog *cat, const char *msg)
{
    if (cat->n_errors < COUNT(cat->errors)) snprintf(cat->errors[cat->n_errors++], sizeof cat->errors[0], "%s", msg);
}

static int is_dir(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

const char *plug_share_dir(void)
{
    static char dir[600];
    if (dir[0]) return dir;
    /* Next to the binary first (<prefix>/bin/hasten -> <prefix>/share/hasten), so an install with
     * any PREFIX finds its files; then the folder the build was configured for. */
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(dir, sizeof dir, "%s/../share/hasten", exe);
            if (is_dir(dir)) return dir;
        }
    }
    snprintf(dir, sizeof dir, "%s", HASTEN_SHARE);
    return dir;
}

int plug_default_dirs(char dirs[][512], int max, const char *extra)
{
    int n = 0;
    const char *home = getenv("HOME");
    if (n < max) {
        if (is_dir("plugins")) snprintf(dirs[n++], 512, "plugins");
        else snprintf(dirs[n++], 512, "%s/plugins", plug_share_dir());
    }
    if (home && n < max) snprintf(dirs[n++], 512, "%s/.config/hasten/plugins", home);
    if (extra && n < max) snprintf(dirs[n++], 512, "%s", extra);
    return n;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int plug_catalog_load(plug_catalog *cat, char dirs[][512], int ndirs)
{
    memset(cat, 0, sizeof *cat);
    for (int d = 0; d < ndirs; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        char *names[512];
        int n = 0;
        struct dirent *e;
        while ((e = readdir(dir)) && n < COUNT(names)) {
            size_t len = strlen(e->d_name);
            if (len > 4 && !strcmp(e->d_name + len - 4, ".lua") && e->d_name[0] != '.') names[n++] = strdup(e->d_name);
        }
        closedir(dir);
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        for (int i = 0; i < n; i++) {
            char path[1024], err[300], stem[256];
            plug_info info;
            snprintf(path, sizeof path, "%s/%s", dirs[d], names[i]);
            snprintf(stem, sizeof stem, "%.*s", (int)strlen(names[i]) - 4, names[i]);
            if (load_info(path, NULL, stem, &info, err, sizeof err)) add_error(cat, err);
            else if (add_info(cat, &info)) return -1;
            free(names[i]);
        }
    }
    return 0;
}

int plug_catalog_add_source(plug_catalog *cat, const char *name, const char *source, char *err, size_t errlen)
{
    plug_info info;
    char path[128];
    snprintf(path, sizeof path, "(%s)", name);
    if (load_info(path, source, name, &info, err, errlen)) return -1;
    info.source = strdup(source);
    return add_info(cat, &info);
}

void plug_catalog_free(plug_catalog *cat)
{
    for (int i = 0; i < cat->n; i++) free(cat->items[i].source);
    free(cat->items);
    memset(cat, 0, sizeof *cat);
}

const plug_info *plug_find(const plug_catalog *cat, const char *name)
{
    for (int i = 0; i < cat->n; i++)
        if (!strcmp(cat->items[i].name, name)) return &cat->items[i];
    return NULL;
}

/* ---- parameters --------------------------------------------------------------------------- */

int plug_parse_arg(const char *arg, plugin_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof *spec);
    const char *colon = strchr(arg, ':');
    size_t nlen = colon ? (size_t)(colon - arg) : strlen(arg);
    if (!nlen || nlen >= sizeof spec->name) {
        snprintf(err, errlen, "--plugin %s: expected NAME[:key=value,...]", arg);
        return -1;
    }
    memcpy(spec->name, arg, nlen);
    if (!colon) return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", colon + 1);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv || spec->n_params == CONFIG_MAX_PARAMS ||
            (size_t)(eq - kv) >= sizeof spec->keys[0] || strlen(eq + 1) >= sizeof spec->values[0]) {
            snprintf(err, errlen, "--plugin %s: '%s' is not key=value", arg, kv);
            return -1;
        }
        *eq = 0;
        snprintf(spec->keys[spec->n_params], sizeof spec->keys[0], "%s", kv);
        snprintf(spec->values[spec->n_params++], sizeof spec->values[0], "%s", eq + 1);
    }
    return 0;
}

typedef struct typed_value { double num; const char *str; } typed_value;

/* Types the text value of parameter def; returns 0 or -1 with err. */
static int type_value(const plug_param *def, const char *plugin, const char *text, typed_value *out,
                      char *err, size_t errlen)
{
    char *end;
    out->str = text;
    switch (def->type) {
    case PLUG_BOOLEAN:
        if (!strcmp(text, "true") || !strcmp(text, "1")) out->num = 1;
        else if (!strcmp(text, "false") || !strcmp(text, "0")) out->num = 0;
        else goto bad;
        return 0;
    case PLUG_STRING:
        return 0;
    default:
        out->num = strtod(text, &end);
        if (end == text || *end || !isfinite(out->num)) goto bad;
        if (def->type == PLUG_INTEGER && out->num != floor(out->num)) goto bad;
        if (out->num < def->min || out->num > def->max) {
            snprintf(err, errlen, "plugin %s: %s = %s is outside [%g, %g]", plugin, def->name, text, def->min, def->max);
            return -1;
        }
        return 0;
    }
bad:
    snprintf(err, errlen, "plugin %s: %s = '%s': expected %s", plugin, def->name, text,
             def->type == PLUG_BOOLEAN ? "true or false" : def->type == PLUG_INTEGER ? "an integer" : "a number");
    return -1;
}

static const plug_param *find_param(const plug_info *info, const char *name)
{
    for (int i = 0; i < info->n_params; i++)
        if (!strcmp(info->params[i].name, name)) return &info->params[i];
    return NULL;
}

/* Checks one plugin_spec against its info, optionally pushing the typed parameter table. */
int plug_typed_params(lua_State *L, const plug_info *info, const plugin_spec *ps, char *err, size_t errlen)
{
    for (int i = 0; i < ps->n_params; i++) {
        const plug_param *def = find_param(info, ps->keys[i]);
        if (!def) {
            char known[256] = "";
            for (int k = 0; k < info->n_params; k++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "", info->params[k].name);
            snprintf(err, errlen, "plugin %s: unknown parameter '%s' (known: %s)", ps->name, ps->keys[i],
                     info->n_params ? known : "none");
            return -1;
        }
        typed_value v;
        if (type_value(def, ps->name, ps->values[i], &v, err, errlen)) return -1;
    }
    for (int k = 0; k < info->n_params; k++) {
        const plug_param *def = &info->params[k];
        int given = 0;
        for (int i = 0; i < ps->n_params; i++)
            if (!strcmp(ps->keys[i], def->name)) given = def->type != PLUG_STRING || ps->values[i][0];
        if (def->required && !given) {
            snprintf(err, errlen, "plugin %s: parameter '%s' must be set: %s", ps->name, def->name, def->doc);
            return -1;
        }
    }
    if (!L) return 0;
    lua_createtable(L, 0, info->n_params);
    for (int k = 0; k < info->n_params; k++) {
        const plug_param *def = &info->params[k];
        typed_value v = { def->def, def->sdef };
        for (int i = 0; i < ps->n_params; i++)
            if (!strcmp(ps->keys[i], def->name)) type_value(def, ps->name, ps->values[i], &v, err, errlen);
        if (def->type == PLUG_BOOLEAN) lua_pushboolean(L, v.num != 0);
        else if (def->type == PLUG_STRING) lua_pushstring(L, v.str);
        else if (def->type == PLUG_INTEGER) lua_pushinteger(L, (lua_Integer)v.num);
        else lua_pushnumber(L, v.num);
        lua_setfield(L, -2, def->name);
    }
    return 0;
}

/* No plugin twice in a run, and no two that take the same exclusive role (METHODS.md's
 * composition rules: one weight-averaging method at a time). */
static int check_roles(const plug_catalog *cat, const train_config *cfg, char *err, size_t errlen)
{
    for (int j = 1; j < cfg->n_plugins; j++)
        for (int i = 0; i < j; i++) {
            const plug_info *a = plug_find(cat, cfg->plugins[i].name), *b = plug_find(cat, cfg->plugins[j].name);
            if (a == b) {
                snprintf(err, errlen, "plugin %s is listed twice (plugins %d and %d of the run): give it once, "
                         "with all its parameters", a->name, i + 1, j + 1);
                return -1;
            }
            if (a->exclusive[0] && !strcmp(a->exclusive, b->exclusive)) {
                snprintf(err, errlen, "plugins %s and %s both take the role \"%s\", which one plugin of a run "
                         "may have: keep one", a->name, b->name, a->exclusive);
                return -1;
            }
        }
    return 0;
}

/* The catalogue's line for a file NAME.lua that failed to load, or NULL. */
static const char *load_error(const plug_catalog *cat, const char *name)
{
    char file[80];
    snprintf(file, sizeof file, "%s.lua:", name);
    for (int i = 0; i < cat->n_errors; i++) {
        const char *at = strstr(cat->errors[i], file);
        if (at && (at == cat->errors[i] || at[-1] == '/')) return cat->errors[i];
    }
    return NULL;
}

int plug_check(const plug_catalog *cat, const train_config *cfg, char *err, size_t errlen)
{
    for (int i = 0; i < cfg->n_plugins; i++) {
        const plug_info *info = plug_find(cat, cfg->plugins[i].name);
        const char *broken = info ? NULL : load_error(cat, cfg->plugins[i].name);
        if (broken) {
            snprintf(err, errlen, "plugin '%s' did not load: %s", cfg->plugins[i].name, broken);
            return -1;
        }
        if (!info) {
            snprintf(err, errlen, "plugin '%s' not found (hasten plugins lists them)", cfg->plugins[i].name);
            return -1;
        }
        if (plug_typed_params(NULL, info, &cfg->plugins[i], err, errlen)) return -1;
    }
    return check_roles(cat, cfg, err, errlen);
}

const char *plug_data_label(const data_set *ds)
{
    if (strcmp(ds->name, "text") || !ds->source[0]) return ds->name;
    const char *base = strrchr(ds->source, '/');
    return base ? base + 1 : ds->source;
}

int plug_check_data(const plug_catalog *cat, const train_config *cfg, const data_set *ds, char *err,
                    size_t errlen)
{
    const char *kind = ds->tokens ? "text" : "images";
    for (int i = 0; i < cfg->n_plugins; i++) {
        const plug_info *info = plug_find(cat, cfg->plugins[i].name);
        if (info && info->data[0] && strcmp(info->data, kind)) {
            snprintf(err, errlen, "plugin %s needs %s data; %s is %s", info->name,
                     !strcmp(info->data, "text") ? "text" : "image", plug_data_label(ds),
                     ds->tokens ? "a text corpus" : "an image set");
            return -1;
        }
    }
    return 0;
}

static int has_layer(const layer_spec *l, int n, unsigned kinds)
{
    for (int i = 0; i < n; i++)
        if ((kinds >> l[i].kind & 1) || has_layer(l[i].inner, l[i].n_inner, kinds)) return 1;
    return 0;
}

void plug_layers_text(const plug_info *info, char *out, size_t len)
{
    const char *names[LAYER_KIND_COUNT];
    int n = 0;
    for (int k = 0; k < LAYER_KIND_COUNT; k++)
        if (info->layers >> k & 1) names[n++] = config_layer_name((enum layer_kind)k);
    if (len) out[0] = 0;
    for (int i = 0; i < n && strlen(out) + 1 < len; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
}

int plug_fits_model(const plug_info *info, const train_config *cfg, char *err, size_t errlen)
{
    if (!info->layers || has_layer(cfg->layers, cfg->n_layers, info->layers)) return 1;
    if (!err) return 0;
    char list[256];
    plug_layers_text(info, list, sizeof list);
    snprintf(err, errlen, "plugin %s needs a %s layer; the model has none", info->name, list);
    return 0;
}

void plug_open_hasten(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, plugin_mark);
    lua_setfield(L, -2, "plugin");
    lua_setglobal(L, "hasten");
}
