/* The workbench's small panes, one job each: header, runs table, plugin catalogue, step-time bar,
 * log, footer keys, help and the too-small notice; plus the drawing helpers they share.
 * Not for the plot (tui/ui_plot.c) nor for keys and state changes (tui/ui_app.c). */
#include "tui/ui_app.h"
#include "engine/ops.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static const char *const glyph_utf8[UI_G_COUNT] = {
    "\u2500", "\u2502", "\u2514", "\u252c", "\u2524", "\u25c6", "\u2588", "\u2605", "\u25b6",
    "\u2501", "\u00b7", "\u2591", "\u2016",
};
static const char *const glyph_ascii[UI_G_COUNT] = {
    "-", "|", "+", "+", "+", "*", "#", "*", ">", "=", ".", ".", "=",
};

static const char *put_ellipsis = "\u2026";

void ui_put_ascii(int ascii) { put_ellipsis = ascii ? "~" : "\u2026"; }

/* ui_put's work; ellipsis NULL cuts without a mark. */
static void put_text(int y, int x, int w, attr_t attr, const char *ellipsis, const char *fmt, va_list ap)
{
    if (w <= 0) return;
    char buf[512], text[520];
    vsnprintf(buf, sizeof buf, fmt, ap);
    ui_clip_text(buf, w, ellipsis, text, sizeof text);   /* by columns, not bytes: names and bars may be UTF-8 */
    wchar_t wide[520];
    size_t n = mbstowcs(wide, text, 519);
    attron(attr);
    if (n == (size_t)-1) mvaddnstr(y, x, text, w);
    else mvaddnwstr(y, x, wide, w);
    attroff(attr);
}

void ui_put(int y, int x, int w, attr_t attr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_text(y, x, w, attr, put_ellipsis, fmt, ap);
    va_end(ap);
}

/* ui_put for a cell of the runs table, cut without a mark: the table sizes its columns for their
 * values, and a long run name gives way to the baseline's star. */
static void put_cell(int y, int x, int w, attr_t attr, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void put_cell(int y, int x, int w, attr_t attr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    put_text(y, x, w, attr, NULL, fmt, ap);
    va_end(ap);
}

void ui_glyph(const ui_app *a, int y, int x, int g, int n, attr_t attr)
{
    const char *s = a->utf8 ? glyph_utf8[g] : glyph_ascii[g];
    attron(attr);
    for (int i = 0; i < n; i++) mvaddstr(y, x + i, s);
    attroff(attr);
}

attr_t ui_attr(const ui_app *a, int pair)
{
    if (a->color) {
        attr_t extra = pair == UI_PAIR_BASELINE || pair == UI_PAIR_TITLE || pair == UI_PAIR_KEY ? A_BOLD : 0;
        return COLOR_PAIR(pair) | extra;
    }
    switch (pair) {
    case UI_PAIR_BASELINE: case UI_PAIR_KEY: case UI_PAIR_ERROR: case UI_PAIR_GOOD: case UI_PAIR_TITLE:
        return A_BOLD;
    case UI_PAIR_TARGET: return A_DIM;
    case UI_PAIR_BAR: case UI_PAIR_SELECT: return A_REVERSE;
    default: return A_NORMAL;
    }
}

int ui_run_pair(const ui_app *a, const ui_run *r)
{
    if (r == a->runs.baseline) return UI_PAIR_BASELINE;
    return UI_PAIR_RUN0 + (r->id - 1) % UI_RUN_COLORS;
}

void ui_title(const ui_app *a, ui_rect r, const char *name, const char *hint, int focused)
{
    int n = (int)strlen(name) + 2;
    ui_put(r.y, r.x, r.w, ui_attr(a, UI_PAIR_TITLE) | (focused ? A_UNDERLINE : 0), " %s", name);
    if (hint && hint[0]) ui_put(r.y, r.x + n, r.w - n, A_DIM, " %s", hint);
}

ui_run *ui_selected_run(ui_app *a)
{
    ui_runs *q = &a->runs;
    if (q->n == 0) return NULL;
    if (a->sel_run >= q->n) a->sel_run = q->n - 1;
    if (a->sel_run < 0) a->sel_run = 0;
    return q->v[a->sel_run];
}

/* ---- header ------------------------------------------------------------------------------ */

void ui_draw_header(ui_app *a, ui_rect r)
{
    attr_t bar = ui_attr(a, UI_PAIR_BAR);
    char budget[32], data[96], counts[48] = "";
    config_format_budget(&a->next_budget, budget, sizeof budget);
    int st = atomic_load(&a->runs.data_state);
    if (st == 1) {
        snprintf(data, sizeof data, "%s", a->runs.ds.name);
        snprintf(counts, sizeof counts, " %d/%d", a->runs.ds.train.n, a->runs.ds.test.n);
    } else snprintf(data, sizeof data, "%s (%s)", a->recipe.dataset, st ? "not loaded" : "loading");
    attron(bar);
    mvhline(r.y, r.x, ' ', r.w);
    attroff(bar);
    ui_put(r.y, r.x, r.w, bar | A_BOLD, " hasten%s", a->demo ? " demo" : "");
    int x = r.x + (a->demo ? 13 : 8);
    const char *sep = a->utf8 ? "\u00b7" : "|";
    char text[400], where[160];
    if (a->recipe.device == DEVICE_CUDA)   /* the GPU's name, before its details */
        snprintf(where, sizeof where, "cuda %.*s", (int)strcspn(ops_cuda_describe(), ","), ops_cuda_describe());
    else snprintf(where, sizeof where, "cpu | %d threads", a->threads);
    /* Narrow screens (80 columns in a lecture hall) lose the dataset's sizes first, then words. */
    int len = 0;
    for (int terse = 0; terse < 3; terse++) {
        if (terse == 2 && a->recipe.device != DEVICE_CUDA) snprintf(where, sizeof where, "cpu | %d thr", a->threads);
        len = snprintf(text, sizeof text, "| %s | %s%s | %s | batch %d | %s %s", a->recipe_name, data,
                       terse ? "" : counts, where, a->recipe.batch, terse == 2 ? "next" : "next run", budget);
        if (x + len <= r.x + r.w) break;
    }
    ui_put(r.y, x, r.w - x, bar, "%s", text);
    int end = r.x + r.w - (x + len > r.x + r.w);   /* a cut text ends in its ellipsis */
    if (a->utf8)   /* the same text with nicer separators, same width */
        for (int i = 0, col = x; i < len && col < end; i++, col++)
            if (text[i] == '|') ui_put(r.y, col, 1, bar, "%s", i ? sep : "\u2502");
    const char *help = "? help ";
    int hw = (int)strlen(help);
    if (x + len + 2 + hw <= r.x + r.w) ui_put(r.y, r.x + r.w - hw, hw, bar, "%s", help);
}

/* ---- runs ---------------------------------------------------------------------------------- */

/* The last evaluation value of the target metric (test_acc unless the recipe targets test_loss). */
static double last_quality(const ui_run *r, int loss)
{
    for (int i = r->n - 1; i >= 0; i--)
        if (r->rec[i].is_eval) return loss ? r->rec[i].test_loss : r->rec[i].test_acc;
    return NAN;
}

static const char *status_text(const ui_run *r)
{
    int s = atomic_load(&r->state);
    if (s == UI_RUN_RUNNING && r->paused) return "paused";
    return ui_run_state_name(s);
}

/* The runs table's columns: x offsets from the pane's left edge and widths, shared by the header
 * and the rows so they always line up. */
enum { COL_ID, COL_SWATCH, COL_NAME, COL_BUDGET, COL_STATUS, COL_PROGRESS, COL_STEP, COL_QUALITY,
       COL_TTT, COL_SPEEDUP, COL_COUNT };

typedef struct runs_cols { int x[COL_COUNT], w[COL_COUNT], bar; } runs_cols;

static runs_cols runs_columns(int width)
{
    runs_cols c = { .bar = width >= 100 ? 10 : 0 };
    /* Narrow panes drop the bar, then the step column (progress tells as much), then the budget
     * (two runs of one method at two budgets look alike without it). */
    int w[COL_COUNT] = { 4, 3, 0, width >= 70 ? 9 : 0, 9, c.bar + 6, width >= 90 ? 7 : 0, 10, 9, 8 }, fixed = 0;
    for (int i = 0; i < COL_COUNT; i++) fixed += w[i];
    w[COL_NAME] = width - fixed - 1 < 8 ? 8 : width - fixed - 1;
    for (int i = 0, x = 0; i < COL_COUNT; x += w[i++]) {
        c.x[i] = x;
        c.w[i] = w[i];
    }
    return c;
}

static void draw_run_row(ui_app *a, const ui_run *r, int y, int x0, int w, const runs_cols *c, int selected)
{
    ui_runs *q = &a->runs;
    int loss = !strcmp(a->recipe.target_metric, "test_loss"), s = atomic_load(&r->state);
    attr_t base = selected ? ui_attr(a, UI_PAIR_SELECT) : A_NORMAL;
    if (selected) {
        attron(base);
        mvhline(y, x0, ' ', w);
        attroff(base);
    }
    char budget[32], prog[80], step[24], qual[24], ttt[24], speed[24];
#define AT(col) y, x0 + c->x[col], c->w[col] - 1
    put_cell(AT(COL_ID), base, "%3d", r->id);
    ui_glyph(a, y, x0 + c->x[COL_SWATCH], UI_G_SWATCH, 2, selected ? base : ui_attr(a, ui_run_pair(a, r)));
    int star = r == q->baseline, nw = c->w[COL_NAME] - 1, shown = (int)strlen(r->name);
    if (star && shown > nw - 2) shown = nw - 2;   /* a long name gives way to the star */
    put_cell(y, x0 + c->x[COL_NAME], star ? nw - 2 : nw, base | (star ? A_BOLD : 0), "%s", r->name);
    if (star) put_cell(y, x0 + c->x[COL_NAME] + shown + 1, 1, base | A_BOLD, "%s", a->utf8 ? "\u2605" : "*");
    config_format_budget(&r->budget, budget, sizeof budget);
    if (c->w[COL_BUDGET]) put_cell(AT(COL_BUDGET), base, "%s", budget);
    attr_t sa = base | (s == UI_RUN_FAILED ? ui_attr(a, UI_PAIR_ERROR) : s == UI_RUN_RUNNING ? A_BOLD : 0);
    put_cell(AT(COL_STATUS), sa, "%s", status_text(r));
    double frac = s == UI_RUN_QUEUED ? 0 : r->progress;
    if (c->bar) {
        ui_format_bar(frac, c->bar, a->utf8, prog, sizeof prog);
        put_cell(y, x0 + c->x[COL_PROGRESS], c->bar, selected ? base : ui_attr(a, ui_run_pair(a, r)), "%s", prog);
    }
    if (s != UI_RUN_QUEUED) put_cell(y, x0 + c->x[COL_PROGRESS] + c->bar, 5, base, "%4.0f%%", 100 * frac);
    snprintf(step, sizeof step, r->n ? "%ld" : "--", r->n ? r->rec[r->n - 1].step : 0L);
    double qv = last_quality(r, loss);
    snprintf(qual, sizeof qual, isfinite(qv) ? "%.4f" : "--", qv);
    double mine = ui_run_ttt(r);
    ui_format_duration(mine, ttt, sizeof ttt);
    double sp = ui_run_speedup(r, q->baseline, speed, sizeof speed);
    put_cell(AT(COL_STEP), base, "%*s", c->w[COL_STEP] - 1, step);
    put_cell(AT(COL_QUALITY), base, "%*s", c->w[COL_QUALITY] - 1, qual);
    put_cell(AT(COL_TTT), base | (mine >= 0 ? A_BOLD : 0), "%*s", c->w[COL_TTT] - 1, ttt);
    attr_t spa = selected || !sp ? base : sp > 1.02 ? ui_attr(a, UI_PAIR_GOOD) : sp < 0.98 ? ui_attr(a, UI_PAIR_ERROR) : A_NORMAL;
    put_cell(AT(COL_SPEEDUP), spa | (sp ? A_BOLD : 0), "%*s", c->w[COL_SPEEDUP] - 1, speed);
#undef AT
}

static void draw_runs_header(const ui_app *a, int y, int x0, const runs_cols *c)
{
    char qual[24], to[24];
    snprintf(qual, sizeof qual, "%s", !strcmp(a->recipe.target_metric, "test_loss") ? "test loss" : "test acc");
    if (a->recipe.target_metric[0]) snprintf(to, sizeof to, "to %g", a->recipe.target_value);
    else snprintf(to, sizeof to, "to target");
    const char *left[] = { "  #", "", "run", "budget", "status", c->bar ? "progress" : "prog" };
    const char *right[] = { "step", qual, to, "speedup" };
    attr_t at = A_DIM | A_BOLD;
    for (int i = 0; i <= COL_PROGRESS; i++)
        if (c->w[i]) put_cell(y, x0 + c->x[i], c->w[i] - 1, at, "%s", left[i]);
    for (int i = COL_STEP; i < COL_COUNT; i++)
        put_cell(y, x0 + c->x[i], c->w[i] - 1, at, "%*s", c->w[i] - 1, right[i - COL_STEP]);
}

static void draw_tabs(ui_app *a, ui_rect r)
{
    int on = a->focus == UI_FOCUS_RUNS;
    ui_put(r.y, r.x, r.w, on ? ui_attr(a, UI_PAIR_TITLE) | A_UNDERLINE : A_DIM, " Runs");
    ui_put(r.y, r.x + 6, r.w - 6, A_DIM, "|");
    ui_put(r.y, r.x + 8, r.w - 8, !on ? ui_attr(a, UI_PAIR_TITLE) | A_UNDERLINE : A_DIM, "Plugins");
}

void ui_draw_runs(ui_app *a, ui_rect r)
{
    ui_runs *q = &a->runs;
    int focused = a->focus == UI_FOCUS_RUNS;
    static const char nobase[] = "no baseline: B on a run makes it one";
    const char *hint = "n queue  p pause  s stop  d delete  B baseline  (Tab: plugins)";
    int unbased = q->n && !q->baseline;   /* its baseline taken off the list: every speedup "--" */
    if (a->lay.shared) {
        draw_tabs(a, r);
        if (unbased) ui_put(r.y, r.x + 17, r.w - 17, A_BOLD, "%s  (Tab: plugins)", nobase);
        else ui_put(r.y, r.x + 17, r.w - 17, A_DIM, "%s", hint);
    } else {
        ui_title(a, r, "Runs", unbased ? NULL : a->demo ? "one at a time, same machine, same data" : hint, focused && !a->demo);
        if (unbased) ui_put(r.y, r.x + 6, r.w - 6, A_BOLD, " %s", nobase);
    }
    runs_cols c = runs_columns(r.w);
    draw_runs_header(a, r.y + 1, r.x, &c);
    int rows = r.h - 2;
    if (q->n == 0) {
        int st = atomic_load(&q->data_state);
        ui_put(r.y + 2, r.x + 4, r.w - 4, A_DIM, "%s", st == 0 ? "loading the dataset ..." :
               st < 0 ? "the dataset could not be loaded: see the log" : "no runs: press n to queue one");
        return;
    }
    int top = a->sel_run >= rows ? a->sel_run - rows + 1 : 0;
    for (int i = top; i < q->n && i - top < rows; i++)
        draw_run_row(a, q->v[i], r.y + 2 + i - top, r.x, r.w, &c, i == a->sel_run && (focused || a->demo));
}

/* ---- plugins --------------------------------------------------------------------------------- */

static void describe_param(const ui_param *p, const char *value, char *out, size_t len)
{
    char range[80] = "";
    if (isfinite(p->min) && isfinite(p->max)) snprintf(range, sizeof range, "%g to %g, ", p->min, p->max);
    else if (isfinite(p->min)) snprintf(range, sizeof range, "at least %g, ", p->min);
    else if (isfinite(p->max)) snprintf(range, sizeof range, "at most %g, ", p->max);
    if (p->required) snprintf(out, len, "%s = %s  (required)  %s", p->name, value[0] ? value : "\"\"", p->doc);
    else snprintf(out, len, "%s = %s  (%sdefault %s)  %s", p->name, value, range, p->def, p->doc);
}

void ui_draw_plugins(ui_app *a, ui_rect r)
{
    const ui_catalog *cat = &a->cat;
    int focused = a->focus == UI_FOCUS_PLUGINS;
    const char *hint = "space toggle  e edit  o $EDITOR  r reload";
    if (a->lay.shared) {
        draw_tabs(a, r);
        ui_put(r.y, r.x + 17, r.w - 17, A_DIM, "%s  (Tab: runs)", hint);
    } else {
        ui_title(a, r, "Plugins", hint, focused);
    }
    if (cat->n == 0) {
        ui_put(r.y + 1, r.x + 2, r.w - 2, A_DIM, "no plugins found in %s", cat->dir);
        if (cat->error[0]) ui_put(r.y + 2, r.x + 2, r.w - 2, ui_attr(a, UI_PAIR_ERROR), "%s", cat->error);
        return;
    }
    const ui_plugin *sel = &cat->items[a->sel_plugin];
    int detail = r.h >= 8 ? (sel->n_params < 2 ? sel->n_params : 2) + 1 : 0;
    int rows = r.h - 1 - detail;
    /* Rows: a header per component/action group, then its plugins. Find the selection's row. */
    int total = 0, sel_row = 0;
    for (int i = 0; i < cat->n; i++) {
        const ui_plugin *p = &cat->items[i];
        if (!i || strcmp(p->component, cat->items[i - 1].component) || strcmp(p->action, cat->items[i - 1].action)) total++;
        if (i == a->sel_plugin) sel_row = total;
        total++;
    }
    /* after the list, rows naming the methods left out of it, a reason a row: in view with the last */
    int n_left = 0;
    if (cat->left_out[0])
        for (const char *s = cat->left_out; s; s = strstr(s, "; ") ? strstr(s, "; ") + 2 : NULL) n_left++;
    int want = sel_row + (a->sel_plugin == cat->n - 1 ? n_left + (n_left > 0) : 0);
    int top = want >= rows ? want - rows + 1 : 0, row = 0, namew = 4;
    if (top > sel_row) top = sel_row;   /* the selection first, then as many of those rows as fit */
    for (int i = 0; i < cat->n; i++)
        if ((int)strlen(cat->items[i].name) > namew) namew = (int)strlen(cat->items[i].name);
    if (namew > 24) namew = 24;
    for (int i = 0; i < cat->n; i++) {
        const ui_plugin *p = &cat->items[i];
        int y;
        if (!i || strcmp(p->component, cat->items[i - 1].component) || strcmp(p->action, cat->items[i - 1].action)) {
            y = r.y + 1 + row++ - top;
            if (y > r.y && y <= r.y + rows) ui_put(y, r.x + 1, r.w - 1, A_DIM | A_BOLD, "%s / %s", p->component, p->action);
        }
        y = r.y + 1 + row++ - top;
        if (y <= r.y || y > r.y + rows) continue;
        int on = a->choices && a->choices[i].on, is_sel = i == a->sel_plugin && focused;
        attr_t at = is_sel ? ui_attr(a, UI_PAIR_SELECT) : A_NORMAL;
        if (is_sel) {
            attron(at);
            mvhline(y, r.x, ' ', r.w);
            attroff(at);
        }
        ui_put(y, r.x + 2, r.w - 2, at | (on ? A_BOLD : 0), "[%c] %-*.*s", on ? 'x' : ' ', namew, namew, p->name);
        ui_put(y, r.x + 8 + namew, r.w - 8 - namew, at | (is_sel ? 0 : A_DIM), "%s", p->summary);
    }
    const char *s = cat->left_out;
    for (int k = 0; k <= n_left && n_left; k++) {
        int y = r.y + 1 + row++ - top, len = k ? (int)strcspn(s, ";") : 0;
        if (y > r.y && y <= r.y + rows) {
            if (!k) ui_put(y, r.x + 1, r.w - 1, A_DIM | A_BOLD, "not listed: not for %s", a->recipe_name);
            else ui_put(y, r.x + 2, r.w - 2, A_DIM, "%.*s", len, s);
        }
        if (k) s += len + (s[len] ? 2 : 0);
    }
    if (!detail) return;
    int y = r.y + r.h - detail;
    const char *title = sel->title[0] ? sel->title : sel->name;
    int tx = r.x + 2 + (int)strlen(title);
    ui_put(y, r.x + 1, r.w - 1, A_BOLD, "%s", title);
    ui_put(y, tx, r.x + r.w - tx, A_DIM, " %s  %s", sel->when, sel->reference);
    if (!sel->n_params) return;
    char line[400];
    for (int j = 0; j < sel->n_params && j < detail - 1; j++) {
        describe_param(&sel->params[j], a->choices ? a->choices[a->sel_plugin].values[j] : sel->params[j].def, line, sizeof line);
        ui_put(y + 1 + j, r.x + 3, r.w - 3, A_NORMAL, "%s", line);
    }
}

/* ---- step-time breakdown ------------------------------------------------------------------------ */

void ui_draw_steps(ui_app *a, ui_rect r)
{
    static const char *const long_names[] = { "data wait", "forward", "backward", "optimizer", "plugins" };
    static const char *const short_names[] = { "data", "fwd", "bwd", "opt", "plug" };
    enum { N = PHASE_EVAL };   /* the training phases; evaluation is off the clock */
    ui_run *run = ui_selected_run(a);
    char info[300] = "";
    if (run && run->n) {
        const trainer_record *last = &run->rec[run->n - 1];
        char total[32] = "";
        long steps_total = run->total_steps ? run->total_steps : atomic_load(&run->state) >= UI_RUN_DONE ? last->step : 0;
        if (steps_total) snprintf(total, sizeof total, "/%ld", steps_total);
        char extra[3][64];
        snprintf(extra[0], sizeof extra[0], "  %.0f samples/s", last->seconds > 0 ? last->samples / last->seconds : 0.0);
        snprintf(extra[1], sizeof extra[1], "  %.1f ms/step", last->step ? 1e3 * last->seconds / last->step : 0.0);
        snprintf(extra[2], sizeof extra[2], "  epoch %.2f", last->epoch);
        int n = snprintf(info, sizeof info, "#%d %s  step %ld%s", run->id, run->name, last->step, total);
        int fits[3], room = r.w - 12 - n;   /* what fits, most useful first: speed, step time, epoch */
        for (int k = 0; k < 3; k++)
            if ((fits[k] = (int)strlen(extra[k]) <= room)) room -= (int)strlen(extra[k]);
        for (int k = 2; k >= 0; k--)
            if (fits[k]) n += snprintf(info + n, sizeof info - (size_t)n, "%s", extra[k]);
    } else if (run) {
        snprintf(info, sizeof info, "#%d %s  %s", run->id, run->name, status_text(run));
    }
    ui_title(a, r, "Step time", info, 0);
    if (!run) return;
    double parts[N], sum = 0;
    for (int p = 0; p < N; p++) sum += parts[p] = run->phase[p];
    const char *const *names = r.w >= 110 ? long_names : short_names;
    char legend[200];
    int len = 0;
    for (int p = 0; p < N; p++)
        len += snprintf(legend + len, sizeof legend - (size_t)len, "%s%s %2.0f%%", p ? "  " : "", names[p],
                        sum > 0 ? 100 * parts[p] / sum : 0.0);
    int barw = r.w - len - 4;
    if (barw < 10) barw = 10;
    int widths[N], x = r.x + 1, y = r.y + 1;
    ui_split_widths(parts, N, barw, widths);
    if (sum <= 0) ui_glyph(a, y, x, UI_G_SHADE, barw, A_DIM);
    for (int p = 0; p < N && sum > 0; p++) {
        if (a->color) {
            ui_glyph(a, y, x, UI_G_BLOCK, widths[p], ui_attr(a, UI_PAIR_PHASE0 + p) | (a->utf8 ? 0 : A_REVERSE));
        } else {
            attron(A_BOLD);
            for (int k = 0; k < widths[p]; k++) mvaddch(y, x + k, "DFBOP"[p]);
            attroff(A_BOLD);
        }
        x += widths[p];
    }
    x = r.x + 2 + barw;
    for (int p = 0; p < N; p++) {
        char item[40];
        int n = snprintf(item, sizeof item, "%s%s", p ? "  " : "", names[p]);
        ui_put(y, x, r.x + r.w - x, ui_attr(a, UI_PAIR_PHASE0 + p) | A_BOLD, "%s", item);
        x += n;
        n = snprintf(item, sizeof item, " %2.0f%%", sum > 0 ? 100 * parts[p] / sum : 0.0);
        ui_put(y, x, r.x + r.w - x, A_NORMAL, "%s", item);
        x += n;
    }
}

/* ---- log ------------------------------------------------------------------------------------ */

void ui_draw_log(ui_app *a, ui_rect r)
{
    static char text[UI_LOG_LINES][UI_LOG_WIDTH];
    uint8_t level[UI_LOG_LINES];
    char progress[UI_LOG_WIDTH];
    ui_title(a, r, "Log", a->mode == UI_LAYOUT_DEMO_DONE ? "the verdict's seconds: training clock, evaluation excluded" : NULL, 0);
    int rows = r.h - 1;
    ui_log_progress_get(&a->log, progress, sizeof progress);
    if (progress[0]) rows--;
    int n = ui_log_last(&a->log, rows, text, level);
    for (int i = 0; i < n; i++)
        ui_put(r.y + 1 + i, r.x + 1, r.w - 1, level[i] == UI_LOG_ERROR ? ui_attr(a, UI_PAIR_ERROR) : A_NORMAL, "%s", text[i]);
    if (progress[0]) ui_put(r.y + 1 + n, r.x + 1, r.w - 1, A_BOLD, "%s", progress);
}

/* ---- footer, help, too small ------------------------------------------------------------------- */

void ui_draw_footer(ui_app *a, ui_rect r)
{
    attr_t bar = ui_attr(a, UI_PAIR_BAR), key = ui_attr(a, UI_PAIR_KEY);
    attron(bar);
    mvhline(r.y, r.x, ' ', r.w);
    attroff(bar);
    if (a->prompt == UI_PROMPT_QUIT) {
        char line[200];
        ui_format_quit_prompt(ui_runs_active(&a->runs) != NULL, ui_runs_count(&a->runs, UI_RUN_QUEUED), r.w, line, sizeof line);
        ui_put(r.y, r.x, r.w, bar | A_BOLD, "%s", line);
        return;
    }
    if (a->prompt == UI_PROMPT_PARAM) {
        const ui_param *p = &a->cat.items[a->sel_plugin].params[a->edit_param];
        char range[64] = "";
        if (isfinite(p->min) && isfinite(p->max)) snprintf(range, sizeof range, " (%g to %g)", p->min, p->max);
        char line[256], field[160];
        snprintf(field, sizeof field, "%s.%s%s", a->cat.items[a->sel_plugin].name, p->name, range);
        int refused = a->note_err && a->note[0] && trainer_now() < a->note_until;
        int n = ui_format_param_prompt(field, a->edit, refused ? (int)strlen(a->note) : 0, r.w, line, sizeof line);
        ui_put(r.y, r.x, r.w, bar, "%s", line);
        if (refused && n < r.w)   /* why a value was refused */
            ui_put(r.y, r.x + n, r.w - n, ui_attr(a, UI_PAIR_ERROR) | A_REVERSE, " %s ", a->note);
        return;
    }
    if (a->note[0] && trainer_now() < a->note_until) {
        ui_put(r.y, r.x, r.w, a->note_err ? ui_attr(a, UI_PAIR_ERROR) | A_REVERSE : bar, " %s ", a->note);
        return;
    }
    static const char *const keys[][2] = {
        { "q", "Quit" }, { "?", "Help" }, { "n", "Queue" }, { "p", "Pause" }, { "s", "Stop" },
        { "x", "X-axis" }, { "y", "Y-axis" }, { "l", "Log" }, { "z", "Zoom" }, { "b", "Budget" },
        { "Tab", "Pane" }, { "B", "Baseline" }, { "d", "Delete" },
    };
    int x = r.x;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int kw = (int)strlen(keys[i][0]), lw = (int)strlen(keys[i][1]) + 1;
        if (x + kw + lw > r.x + r.w) break;
        ui_put(r.y, x, kw, key, "%s", keys[i][0]);
        ui_put(r.y, x + kw, lw, bar, "%s ", keys[i][1]);
        x += kw + lw;
    }
}

void ui_draw_help(ui_app *a)
{
    static const char *const lines[] = {
        "Plot",
        "  x          x axis: seconds / steps / samples / epochs",
        "  y          y axis: train loss, test loss, accuracy, plugin metrics",
        "  l          log scale on or off",
        "  z          zoom: fit all / last 120, 60, 30, 10 s of training",
        "Runs (one at a time, so timings compare)",
        "  n          queue a run: the plugins ticked, the next-run budget",
        "  b          next-run budget: recipe's / 30s / 1ep / 3ep / 10ep",
        "  p          pause or resume the training run (clock stops)",
        "  s          stop the selected run (queued: drop it)",
        "  d, Del     take the selected run off the list (files stay)",
        "  B          make the selected run the baseline",
        "Plugins",
        "  Tab        switch between runs and plugins",
        "  space      tick a plugin for the next run",
        "  e          edit its parameters (checked against their range)",
        "  o          open its file in $EDITOR, then reload",
        "  r          reload the catalogue",
        "  Up/Down, PgUp/PgDn, Home/End move;  q quits",
    };
    int n = (int)(sizeof lines / sizeof lines[0]), gap;
    ui_rect b = ui_help_rect(a->cols, a->rows, n, &gap);
    int y0 = b.y, x0 = b.x, w = b.w, h = b.h;
    attr_t box = ui_attr(a, UI_PAIR_BAR);
    for (int y = y0; y < y0 + h; y++) mvhline(y, x0, ' ', w);
    attron(box);
    mvhline(y0, x0, ' ', w);
    mvhline(y0 + h - 1, x0, ' ', w);
    attroff(box);
    ui_put(y0, x0 + 2, w - 4, box | A_BOLD, "hasten workbench keys");
    ui_put(y0 + h - 1, x0 + 2, w - 4, box, "any key closes");
    for (int i = 0; i < n && i < h - 2 - 2 * gap; i++) {
        int head = lines[i][0] != ' ';
        ui_put(y0 + 1 + gap + i, x0 + 2, w - 4, head ? ui_attr(a, UI_PAIR_TITLE) : A_NORMAL, "%s", lines[i]);
    }
}

/* Short lines, so that even a very narrow terminal shows the whole of each. */
void ui_draw_too_small(ui_app *a)
{
    char has[40], needs[40];
    snprintf(has, sizeof has, "terminal %dx%d", a->cols, a->rows);
    snprintf(needs, sizeof needs, "hasten needs %dx%d", UI_MIN_COLS, UI_MIN_ROWS);
    const char *lines[] = {has, needs, "enlarge it, or q to quit", "(runs go on meanwhile)"};
    int n = 4, y = (a->rows - n) / 2;
    for (int i = 0; i < n; i++, y++) {
        int w = (int)strlen(lines[i]), x = (a->cols - w) / 2;
        if (y >= 0 && y < a->rows) ui_put(y, x < 0 ? 0 : x, a->cols, i < 2 ? A_BOLD : A_DIM, "%s", lines[i]);
    }
}
