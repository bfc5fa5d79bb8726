/* The workbench's plugin catalogue and the choices made for the next run: loading the list,
 * checking parameter values, turning choices into plugin specs and run names.
 * Not for running plugins (lua/plugin.c does that) and not for drawing (tui/ui_panes.c). */
#include "tui/ui_catalog.h"
#include "tui/cli.h"
#include "lua/plugin.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void copy_param(ui_param *u, const plug_param *p)
{
    static const ui_param_type types[] = { UI_PARAM_NUMBER, UI_PARAM_INTEGER, UI_PARAM_BOOLEAN, UI_PARAM_STRING };
    snprintf(u->name, sizeof u->name, "%s", p->name);
    u->type = (unsigned)p->type < 4 ? types[p->type] : UI_PARAM_STRING;
    if (p->type == PLUG_STRING) snprintf(u->def, sizeof u->def, "%s", p->sdef);
    else if (p->type == PLUG_BOOLEAN) snprintf(u->def, sizeof u->def, "%s", p->def ? "true" : "false");
    else snprintf(u->def, sizeof u->def, "%g", p->def);
    u->min = p->min;
    u->max = p->max;
    u->required = p->required;
    snprintf(u->doc, sizeof u->doc, "%s", p->doc);
}

/* Why p does not suit the catalogue's recipe, in a few words, or NULL when it does. */
static const char *misfit(const ui_catalog *cat, const plug_info *p, char *buf, size_t len)
{
    if (cat->data[0] && p->data[0] && strcmp(cat->data, p->data))
        return !strcmp(p->data, "text") ? "text only" : "images only";
    if (!cat->model || plug_fits_model(p, cat->model, NULL, 0)) return NULL;
    char kinds[48];
    plug_layers_text(p, kinds, sizeof kinds);
    snprintf(buf, len, "no %s layer", kinds);
    return buf;
}

/* cat->left_out from the misfits' names and reasons: names of one reason together, reasons in the
 * order they first come. */
static void say_left_out(ui_catalog *cat, const char *const *names, char (*why)[64], int n)
{
    size_t used = 0, len = sizeof cat->left_out;
    cat->left_out[0] = 0;
    for (int i = 0; i < n && used < len; i++) {
        int first = 1;
        for (int k = 0; k < i; k++) first &= strcmp(why[k], why[i]) != 0;
        if (!first) continue;
        used += (size_t)snprintf(cat->left_out + used, len - used, "%s", used ? "; " : "");
        for (int j = i, m = 0; j < n && used < len; j++)
            if (!strcmp(why[j], why[i]))
                used += (size_t)snprintf(cat->left_out + used, len - used, "%s%s", m++ ? ", " : "", names[j]);
        if (used < len) used += (size_t)snprintf(cat->left_out + used, len - used, " (%s)", why[i]);
    }
}

int ui_catalog_load(ui_catalog *cat)
{
    char dirs[4][512];
    plug_catalog pc = {0};
    ui_catalog_free(cat);
    int nd = plug_default_dirs(dirs, 4, cli_plugin_path());
    snprintf(cat->dir, sizeof cat->dir, "%s%s", nd ? dirs[0] : "plugins",
             nd && dirs[0][strlen(dirs[0]) - 1] == '/' ? "" : "/");
    if (plug_catalog_load(&pc, dirs, nd)) snprintf(cat->error, sizeof cat->error, "out of memory");
    enum { MAX_LEFT = 32 };
    const char *left[MAX_LEFT];
    char why[MAX_LEFT][64];
    int n_left = 0;
    for (int i = 0; i < pc.n; i++) {
        const plug_info *p = &pc.items[i];
        char buf[64];
        const char *no = misfit(cat, p, buf, sizeof buf);
        if (no) {
            if (n_left < MAX_LEFT) {
                left[n_left] = p->name;
                snprintf(why[n_left++], sizeof why[0], "%s", no);
            }
            continue;
        }
        ui_plugin *u = ui_catalog_add(cat);
        if (!u) break;
        snprintf(u->name, sizeof u->name, "%s", p->name);
        snprintf(u->title, sizeof u->title, "%s", p->title);
        snprintf(u->summary, sizeof u->summary, "%s", p->summary);
        snprintf(u->reference, sizeof u->reference, "%s", p->reference);
        snprintf(u->component, sizeof u->component, "%s", p->component);
        snprintf(u->action, sizeof u->action, "%s", p->action);
        snprintf(u->when, sizeof u->when, "%s", p->when);
        snprintf(u->path, sizeof u->path, "%s", p->path);
        snprintf(u->exclusive, sizeof u->exclusive, "%s", p->exclusive);
        u->n_params = p->n_params < CONFIG_MAX_PARAMS ? p->n_params : CONFIG_MAX_PARAMS;
        for (int k = 0; k < u->n_params; k++) copy_param(&u->params[k], &p->params[k]);
    }
    if (pc.n_errors)
        snprintf(cat->error, sizeof cat->error, "%s%s", pc.errors[0], pc.n_errors > 1 ? " (and more)" : "");
    say_left_out(cat, left, why, n_left);   /* before the names it points into are freed */
    plug_catalog_free(&pc);
    ui_catalog_sort(cat);
    return cat->n;
}

ui_plugin *ui_catalog_add(ui_catalog *cat)
{
    if (cat->n == cat->cap) {
        int cap = cat->cap ? cat->cap * 2 : 16;
        ui_plugin *items = realloc(cat->items, (size_t)cap * sizeof *items);
        if (!items) return NULL;
        cat->items = items;
        cat->cap = cap;
    }
    ui_plugin *p = &cat->items[cat->n++];
    memset(p, 0, sizeof *p);
    for (int i = 0; i < CONFIG_MAX_PARAMS; i++) {
        p->params[i].min = -INFINITY;
        p->params[i].max = INFINITY;
    }
    return p;
}

static int rank(const char *word, const char *const *order, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(word, order[i])) return i;
    return n;
}

static int compare_plugins(const void *pa, const void *pb)
{
    static const char *const components[] = { "data", "function", "optimization" };
    static const char *const actions[] = { "remove", "restrict", "reorder", "replace", "retrofit" };
    const ui_plugin *a = pa, *b = pb;
    int d = rank(a->component, components, 3) - rank(b->component, components, 3);
    if (!d) d = rank(a->action, actions, 5) - rank(b->action, actions, 5);
    return d ? d : strcmp(a->name, b->name);
}

void ui_catalog_sort(ui_catalog *cat)
{
    if (cat->n > 1) qsort(cat->items, (size_t)cat->n, sizeof *cat->items, compare_plugins);
}

void ui_catalog_free(ui_catalog *cat)
{
    free(cat->items);
    cat->items = NULL;
    cat->n = cat->cap = 0;
    cat->error[0] = 0;
}

const ui_plugin *ui_catalog_find(const ui_catalog *cat, const char *name)
{
    for (int i = 0; i < cat->n; i++)
        if (!strcmp(cat->items[i].name, name)) return &cat->items[i];
    return NULL;
}

int ui_param_check(const ui_param *p, const char *text, char *err, size_t errlen)
{
    if (strlen(text) > 63) {
        snprintf(err, errlen, "%s: at most 63 characters", p->name);
        return -1;
    }
    if (p->type == UI_PARAM_STRING) return 0;
    if (p->type == UI_PARAM_BOOLEAN) {
        if (!strcmp(text, "true") || !strcmp(text, "false")) return 0;
        snprintf(err, errlen, "%s must be true or false", p->name);
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    while (*end == ' ') end++;
    if (end == text || *end || errno || !isfinite(v)) {
        snprintf(err, errlen, "%s must be a number", p->name);
        return -1;
    }
    if (p->type == UI_PARAM_INTEGER && v != floor(v)) {
        snprintf(err, errlen, "%s must be a whole number", p->name);
        return -1;
    }
    if (v < p->min || v > p->max) {
        if (isfinite(p->min) && isfinite(p->max))
            snprintf(err, errlen, "%s must be between %g and %g", p->name, p->min, p->max);
        else if (isfinite(p->min))
            snprintf(err, errlen, "%s must be at least %g", p->name, p->min);
        else
            snprintf(err, errlen, "%s must be at most %g", p->name, p->max);
        return -1;
    }
    return 0;
}

ui_choice *ui_choices_make(const ui_catalog *cat, const ui_choice *prev, int n_prev)
{
    if (cat->n == 0) return NULL;
    ui_choice *ch = calloc((size_t)cat->n, sizeof *ch);
    if (!ch) return NULL;
    for (int i = 0; i < cat->n; i++) {
        const ui_plugin *p = &cat->items[i];
        const ui_choice *old = NULL;
        for (int k = 0; k < n_prev && !old; k++)
            if (!strcmp(prev[k].name, p->name)) old = &prev[k];
        snprintf(ch[i].name, sizeof ch[i].name, "%s", p->name);
        ch[i].on = old ? old->on : 0;
        ch[i].n_params = p->n_params;
        for (int j = 0; j < p->n_params; j++) {
            const char *v = p->params[j].def;
            char err[8];
            for (int k = 0; old && k < old->n_params; k++)   /* keep a still-valid old value */
                if (!strcmp(old->keys[k], p->params[j].name) &&
                    !ui_param_check(&p->params[j], old->values[k], err, sizeof err))
                    v = old->values[k];
            snprintf(ch[i].keys[j], sizeof ch[i].keys[j], "%s", p->params[j].name);
            snprintf(ch[i].values[j], sizeof ch[i].values[j], "%s", v);
        }
    }
    return ch;
}

int ui_choices_specs(const ui_catalog *cat, const ui_choice *ch, plugin_spec *out, int cap)
{
    int n = 0;
    for (int i = 0; i < cat->n && ch && n < cap; i++) {
        if (!ch[i].on) continue;
        const ui_plugin *p = &cat->items[i];
        plugin_spec *s = &out[n++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", p->name);
        for (int j = 0; j < p->n_params && s->n_params < CONFIG_MAX_PARAMS; j++) {
            if (!strcmp(ch[i].values[j], p->params[j].def)) continue;
            snprintf(s->keys[s->n_params], sizeof s->keys[0], "%s", p->params[j].name);
            snprintf(s->values[s->n_params], sizeof s->values[0], "%s", ch[i].values[j]);
            s->n_params++;
        }
    }
    return n;
}

int ui_choices_check(const ui_catalog *cat, const ui_choice *ch, char *err, size_t errlen)
{
    for (int i = 0; i < cat->n && ch; i++) {
        if (!ch[i].on) continue;
        const ui_plugin *p = &cat->items[i];
        for (int j = 0; j < p->n_params; j++)
            if (p->params[j].required && !strcmp(ch[i].values[j], p->params[j].def)) {
                snprintf(err, errlen, "%s needs %s: set it with e", p->name, p->params[j].name);
                return -1;
            }
        for (int k = 0; k < i && p->exclusive[0]; k++)
            if (ch[k].on && !strcmp(cat->items[k].exclusive, p->exclusive)) {
                snprintf(err, errlen, "%s and %s both take the role \"%s\", which one plugin of a run may have: untick one",
                         cat->items[k].name, p->name, p->exclusive);
                return -1;
            }
    }
    return 0;
}

void ui_run_name(const plugin_spec *specs, int n, char *out, size_t len)
{
    size_t k = 0;
    out[0] = 0;
    if (n == 0) snprintf(out, len, "baseline");
    for (int i = 0; i < n && k < len; i++) {
        k += (size_t)snprintf(out + k, len - k, "%s%s", i ? "+" : "", specs[i].name);
        for (int j = 0; j < specs[i].n_params && k < len; j++)
            k += (size_t)snprintf(out + k, len - k, "%s%s=%s%s", j ? "," : "(", specs[i].keys[j],
                                  specs[i].values[j], j == specs[i].n_params - 1 ? ")" : "");
    }
}
