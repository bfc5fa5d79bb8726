/* The plot pane: every run's curve on one braille canvas (the baseline drawn last, bold), raw
 * train loss faint behind its smoothed line, the quality target as a dotted line, a mark where
 * each run reaches it, and axes with nice ticks and units. Not for pure geometry: scales, ticks
 * and the canvas come from tui/ui_draw.h. */
#include "tui/ui_app.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

const double ui_zoom_seconds[] = { 0, 120, 60, 30, 10 };
const int ui_zoom_count = (int)(sizeof ui_zoom_seconds / sizeof ui_zoom_seconds[0]);

static const char *const x_titles[UI_X_COUNT] = { "training seconds", "steps", "samples", "epochs" };
static const char *const x_units[UI_X_COUNT] = { "s", "steps", "samples", "epochs" };
static const char *const y_titles[UI_Y_COUNT] = { "Train loss (smoothed, raw faint)", "Test loss", "Test accuracy",
                                                   "Plugin metric" };

enum { STYLE_TARGET = 1 };

/* Canvas style of a run's layer: 2 + 2 * (pair - 1), +1 for the main (smoothed or eval) line. */
static uint8_t run_style(int pair, int main_line) { return (uint8_t)(2 + 2 * (pair - 1) + main_line); }

static attr_t style_attr(const ui_app *a, uint8_t style)
{
    if (style == STYLE_TARGET) return ui_attr(a, UI_PAIR_TARGET);
    int pair = (style - 2) / 2 + 1, main_line = (style - 2) % 2;
    attr_t at = ui_attr(a, pair);
    if (!main_line) return (at & ~A_BOLD) | A_DIM;
    return pair == UI_PAIR_BASELINE ? at | A_BOLD : at;
}

/* y of record i for the plot's metric, NAN when the record has none. */
static double y_value(const ui_app *a, const ui_run *r, int i, int raw)
{
    const trainer_record *rec = &r->rec[i];
    switch (a->ymode) {
    case UI_Y_TEST_LOSS: return rec->is_eval ? rec->test_loss : NAN;
    case UI_Y_TEST_ACC:  return rec->is_eval ? rec->test_acc : NAN;
    case UI_Y_CUSTOM:
        for (int k = 0; k < r->n_metric_names; k++)
            if (!strcmp(r->metric_names[k], a->ymetric))
                return rec->extra_mask & (1u << k) ? rec->extra[k] : NAN;
        return NAN;
    default:             return rec->is_eval ? NAN : raw ? rec->train_loss : r->smooth[i];
    }
}

/* The run the zoom window follows: the training one, else the selected one. */
static const ui_run *zoom_ref(ui_app *a)
{
    const ui_run *r = ui_runs_active(&a->runs);
    if (!r || !r->n) r = ui_selected_run(a);
    return r && r->n ? r : NULL;
}

static void x_range(ui_app *a, double *lo, double *hi)
{
    ui_runs *q = &a->runs;
    double window = ui_zoom_seconds[a->zoom];
    const ui_run *ref = zoom_ref(a);
    *lo = 0;
    *hi = 0;
    if (window > 0 && ref) {
        double t_end = ref->rec[ref->n - 1].seconds;
        int i = ref->n - 1;
        while (i > 0 && ref->rec[i - 1].seconds >= t_end - window) i--;
        *lo = ui_record_x(&ref->rec[i], a->xmode);
        *hi = ui_record_x(&ref->rec[ref->n - 1], a->xmode);
    } else {
        for (int k = 0; k < q->n; k++) {
            const ui_run *r = q->v[k];
            if (r->n && ui_record_x(&r->rec[r->n - 1], a->xmode) > *hi) *hi = ui_record_x(&r->rec[r->n - 1], a->xmode);
        }
    }
    if (!(*hi > *lo)) *hi = *lo + (a->xmode == UI_X_EPOCHS ? 0.1 : 1);
}

/* Whether the plotted metric is the recipe's target metric (then the target line shows). */
static int shows_target(const ui_app *a)
{
    return (a->ymode == UI_Y_TEST_ACC && !strcmp(a->recipe.target_metric, "test_acc")) ||
           (a->ymode == UI_Y_TEST_LOSS && !strcmp(a->recipe.target_metric, "test_loss"));
}

static void y_range(ui_app *a, double xlo, double xhi, double *lo, double *hi)
{
    ui_runs *q = &a->runs;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int k = 0; k < q->n; k++) {
        const ui_run *r = q->v[k];
        for (int i = 0; i < r->n; i++) {
            double x = ui_record_x(&r->rec[i], a->xmode), y = y_value(a, r, i, 0);
            if (x < xlo || x > xhi || !isfinite(y) || (a->logy && !(y > 0))) continue;
            if (y < *lo) *lo = y;
            if (y > *hi) *hi = y;
        }
    }
    if (shows_target(a) && *lo <= *hi) {
        if (a->recipe.target_value < *lo) *lo = a->recipe.target_value;
        if (a->recipe.target_value > *hi) *hi = a->recipe.target_value;
    }
}

typedef struct view {
    ui_scale xs, ys;
    ui_rect c;           /* canvas cells on screen */
} view;

static double dot_x(const view *v, double x) { return ui_scale_pos(&v->xs, x) * (2.0 * v->c.w - 1); }
static double dot_y(const view *v, double y) { return (1 - ui_scale_pos(&v->ys, y)) * (4.0 * v->c.h - 1); }

/* One layer of one run: consecutive points joined. */
static void draw_series(ui_app *a, const view *v, const ui_run *r, int raw, uint8_t style)
{
    double px = NAN, py = NAN;
    for (int i = 0; i < r->n; i++) {
        double y = y_value(a, r, i, raw);
        if (!isfinite(y)) continue;
        double x = dot_x(v, ui_record_x(&r->rec[i], a->xmode)), yy = dot_y(v, y);
        if (isfinite(px)) ui_canvas_line(&a->canvas, px, py, x, yy, style);
        if (r->rec[i].is_eval) {   /* evaluations are few: a 2 x 2 dot block makes each one visible */
            int cx = (int)lround(x), cy = (int)lround(yy);
            for (int k = 0; k < 4; k++) ui_canvas_dot(&a->canvas, cx - (k & 1), cy - (k >> 1), style);
        }
        px = x;
        py = yy;
    }
}

static void blit(const ui_app *a, const view *v)
{
    const ui_canvas *cv = &a->canvas;
    char cell[8];
    for (int y = 0; y < cv->h; y++)
        for (int x = 0; x < cv->w; x++) {
            size_t i = (size_t)y * cv->w + x;
            if (!cv->bits[i]) continue;
            if (a->utf8) {
                unsigned cp = ui_braille_codepoint(cv->bits[i]);   /* U+2800..U+28FF: 3 bytes */
                cell[0] = (char)(0xe0 | (cp >> 12));
                cell[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                cell[2] = (char)(0x80 | (cp & 0x3f));
                cell[3] = 0;
            } else {
                cell[0] = cv->style[i] == STYLE_TARGET ? UI_ASCII_TARGET : ui_ascii_cell(cv->bits[i]);
                cell[1] = 0;
            }
            attr_t at = style_attr(a, cv->style[i]);
            attron(at);
            mvaddstr(v->c.y + y, v->c.x + x, cell);
            attroff(at);
        }
}

static void draw_y_axis(ui_app *a, const view *v, const double *ticks, int n, double step, int label_w)
{
    int ax = v->c.x - 1;
    for (int y = 0; y < v->c.h; y++) ui_glyph(a, v->c.y + y, ax, UI_G_VLINE, 1, A_DIM);
    for (int i = 0; i < n; i++) {
        int row = ui_dot_cell(dot_y(v, ticks[i]), 4);
        if (row < 0 || row >= v->c.h) continue;
        char label[32];
        ui_format_tick(ticks[i], step, label, sizeof label);
        ui_put(v->c.y + row, ax - label_w, label_w, A_NORMAL, "%*s", label_w, label);
        ui_glyph(a, v->c.y + row, ax, UI_G_TICK_Y, 1, A_DIM);
    }
}

static void draw_x_axis(ui_app *a, const view *v, ui_rect pane)
{
    int ay = v->c.y + v->c.h, ax = v->c.x - 1;
    ui_glyph(a, ay, ax, UI_G_CORNER, 1, A_DIM);
    ui_glyph(a, ay, v->c.x, UI_G_HLINE, v->c.w, A_DIM);
    double ticks[32], step;
    int n = ui_scale_ticks(&v->xs, v->c.w / 9 > 1 ? v->c.w / 9 : 2, ticks, 32, &step);
    const char *unit = x_units[a->xmode];
    int unit_x = pane.x + pane.w - (int)strlen(unit) - 1, last_end = pane.x - 1;
    ui_put(ay + 1, unit_x, (int)strlen(unit), A_DIM, "%s", unit);
    for (int i = 0; i < n; i++) {
        int col = ui_dot_cell(dot_x(v, ticks[i]), 2);
        if (col < 0 || col >= v->c.w) continue;
        ui_glyph(a, ay, v->c.x + col, UI_G_TICK_X, 1, A_DIM);
        char label[32];
        ui_format_tick(ticks[i], step, label, sizeof label);
        int w = (int)strlen(label), lx = v->c.x + col - w / 2;
        if (lx <= last_end + 1 || lx + w >= unit_x) continue;   /* a space between labels */
        ui_put(ay + 1, lx, w, A_NORMAL, "%s", label);
        last_end = lx + w - 1;
    }
}

/* The moment each run reaches the target: a mark on the target line (or on its curve). */
static void draw_marks(ui_app *a, const view *v)
{
    ui_runs *q = &a->runs;
    for (int k = 0; k < q->n; k++) {
        const ui_run *r = q->v[k];
        if (r->target_idx < 0) continue;
        double y = shows_target(a) ? a->recipe.target_value
                 : a->ymode == UI_Y_TRAIN_LOSS ? r->smooth[r->target_idx] : y_value(a, r, r->target_idx, 0);
        double dx = dot_x(v, ui_record_x(&r->rec[r->target_idx], a->xmode)), dy = dot_y(v, y);
        if (!isfinite(dx) || !isfinite(dy) || dx < -0.5 || dy < -0.5 || dx > 2.0 * v->c.w - 0.5 || dy > 4.0 * v->c.h - 0.5) continue;
        ui_glyph(a, v->c.y + ui_dot_cell(dy, 4), v->c.x + ui_dot_cell(dx, 2), UI_G_MARK, 1,
                 ui_attr(a, ui_run_pair(a, r)) | A_BOLD);
    }
}

static void draw_title(ui_app *a, ui_rect r)
{
    char title[160], hint[160], target[96] = "";
    snprintf(title, sizeof title, "%s vs %s", a->ymode == UI_Y_CUSTOM ? a->ymetric : y_titles[a->ymode],
             x_titles[a->xmode]);
    ui_title(a, r, title, NULL, 0);
    if (a->recipe.target_metric[0])
        snprintf(target, sizeof target, "target %s %s %g", a->recipe.target_metric,
                 !strcmp(a->recipe.target_metric, "test_loss") ? "<=" : ">=", a->recipe.target_value);
    /* the hint starts past the title and a gap of three */
    ui_format_plot_hint(target, a->logy, ui_zoom_seconds[a->zoom], r.w - (int)strlen(title) - 4, hint, sizeof hint);
    int w = (int)strlen(hint);
    if (w) ui_put(r.y, r.x + r.w - w, w, A_DIM, "%s", hint);
}

/* "no evaluation yet", and how often the runs evaluate: the cadence ui_runs_eval_cadence gives
 * them, not the recipe's (the workbench evaluates an epoch's recipe four times an epoch). */
static void eval_note(ui_app *a, char *out, size_t len)
{
    ui_runs *q = &a->runs;
    if (atomic_load(&q->data_state) != 1) {   /* the cadence in steps waits for the dataset */
        snprintf(out, len, "no evaluation yet");
        return;
    }
    train_config c = a->recipe;   /* a shallow copy for the fields read; not freed */
    ui_runs_eval_cadence(q, &c);
    char cadence[64];
    ui_format_eval_cadence(c.eval_every_steps, c.eval_every_epochs, q->ds.train.n / c.batch, cadence, sizeof cadence);
    snprintf(out, len, "no evaluation yet (%s)", cadence);
}

void ui_draw_plot(ui_app *a, ui_rect r)
{
    ui_runs *q = &a->runs;
    draw_title(a, r);
    view v;
    double xlo, xhi, ylo, yhi;
    x_range(a, &xlo, &xhi);
    y_range(a, xlo, xhi, &ylo, &yhi);
    int have = ylo <= yhi;
    ui_scale_fit(&v.xs, xlo, xhi, 0, 1);
    if (ui_zoom_seconds[a->zoom] > 0) v.xs.lo = xlo;   /* the window starts where it starts */
    ui_scale_fit(&v.ys, ylo, yhi, a->logy, 0);

    double yt[32], ystep;
    int rows = r.h - 3, nyt = ui_scale_ticks(&v.ys, rows / 2 > 2 ? rows / 2 : 2, yt, 32, &ystep), label_w = 3;
    for (int i = 0; i < nyt; i++) {
        char label[32];
        ui_format_tick(yt[i], ystep, label, sizeof label);
        if ((int)strlen(label) > label_w) label_w = (int)strlen(label);
    }
    v.c = ui_plot_canvas_rect(r, label_w + 1);
    if (v.c.w < 4 || v.c.h < 2 || ui_canvas_resize(&a->canvas, v.c.w, v.c.h)) return;

    if (have && shows_target(a)) {
        double ty = dot_y(&v, a->recipe.target_value);
        for (int x = 0; x < 2 * v.c.w; x += 2) ui_canvas_dot(&a->canvas, x, (int)lround(ty), STYLE_TARGET);
    }
    /* Faint raw losses first, then the main lines; the baseline last so it stays on top. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 && a->ymode != UI_Y_TRAIN_LOSS) continue;
        for (int k = 0; k <= q->n; k++) {
            const ui_run *run = k < q->n ? q->v[k] : q->baseline;
            if (!run || (k < q->n && run == q->baseline)) continue;
            draw_series(a, &v, run, pass == 0, run_style(ui_run_pair(a, run), pass));
        }
    }
    blit(a, &v);
    draw_y_axis(a, &v, yt, nyt, ystep, label_w);
    draw_x_axis(a, &v, r);
    draw_marks(a, &v);
    if (!have) {
        char msg[96];
        if (a->ymode == UI_Y_TRAIN_LOSS) snprintf(msg, sizeof msg, "waiting for the first steps ...");
        else if (a->ymode == UI_Y_CUSTOM) snprintf(msg, sizeof msg, "no values of this metric yet");
        else eval_note(a, msg, sizeof msg);
        ui_put(v.c.y + v.c.h / 2, v.c.x + (v.c.w - (int)strlen(msg)) / 2, v.c.w, A_DIM, "%s", msg);
    }
}
