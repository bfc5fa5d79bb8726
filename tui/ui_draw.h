/* The workbench's pure drawing logic: braille canvas, axis scales and ticks, pane layout for a
 * terminal size, and the text formats of the panes. No curses here: tests run without a terminal,
 * and tui/ui_*.c turn these results into screen cells. */
#ifndef HASTEN_UI_DRAW_H
#define HASTEN_UI_DRAW_H

#include <stddef.h>
#include <stdint.h>
#include "engine/trainer.h"

typedef struct ui_rect { int x, y, w, h; } ui_rect;

/* ---- braille canvas (tui/braille.c) -------------------------------------------------------- */

/* w x h character cells of 2 x 4 dots each; dot (0, 0) is the top-left dot. Each cell remembers
 * the style of the layer that drew it last: a layer drawing into a cell of another style takes the
 * whole cell, so lines stay clean where they cross (draw the layer that matters most last). */
typedef struct ui_canvas {
    int w, h;            /* cells */
    uint8_t *bits;       /* (h, w) braille dot bits of each cell, Unicode order */
    uint8_t *style;      /* (h, w) style of the cell's dots; 0 = empty */
} ui_canvas;

/* Sizes c to w x h cells (w, h >= 1) and clears it. Returns 0, or -1 out of memory (c then empty). */
int ui_canvas_resize(ui_canvas *c, int w, int h);
void ui_canvas_free(ui_canvas *c);
void ui_canvas_clear(ui_canvas *c);

/* Bit of dot (dx, dy) inside a cell, dx in 0..1, dy in 0..3 (U+2800 numbering). */
uint8_t ui_braille_bit(int dx, int dy);

/* Sets dot (x, y), x in [0, 2w), y in [0, 4h); dots outside are ignored. style >= 1. */
void ui_canvas_dot(ui_canvas *c, int x, int y, uint8_t style);

/* Draws the segment between two points in dot coordinates (fractions allowed), clipped to the
 * canvas; non-finite ends draw nothing. */
void ui_canvas_line(ui_canvas *c, double x0, double y0, double x1, double y1, uint8_t style);

/* The cell a dot coordinate (fractions allowed) lands in, as ui_canvas_line rounds it: per = 2
 * for columns, 4 for rows; -1 left of or above the canvas. Tick labels and marks use it, so a
 * label sits on the row its value's line is drawn in. */
int ui_dot_cell(double dot, int per);

/* The character of a cell: U+2800 + bits in braille mode. */
unsigned ui_braille_codepoint(uint8_t bits);

/* ASCII stand-in for a cell's dots: ' ' when empty, else '|' for a steep stroke through the
 * cell, and '\'', '-', '.' or '_' by the height of the dots. */
char ui_ascii_cell(uint8_t bits);

/* ASCII stand-in for every cell of the target line: a character ui_ascii_cell never gives, so
 * with --ascii --mono the target still reads apart from the curves. */
#define UI_ASCII_TARGET ':'

/* ---- scales and ticks (tui/scale.c) -------------------------------------------------------- */

typedef struct ui_scale {
    double lo, hi;       /* hi > lo; both > 0 when log */
    int log;             /* log10 axis */
} ui_scale;

/* Position of v along s: 0 at lo, 1 at hi, outside [0, 1] beyond them; NAN for v <= 0 on a log
 * scale. */
double ui_scale_pos(const ui_scale *s, double v);

/* A "nice" tick step (1, 2, 2.5 or 5 x 10^k) giving at most max_ticks ticks over range. */
double ui_nice_step(double range, int max_ticks);

/* Sets s to show data spanning [lo, hi]: a small margin on both sides, lo kept at 0 when zero0
 * and lo >= 0, a sensible span for flat or empty data (lo > hi means no data: [0, 1]); a log
 * scale keeps only positive values. */
void ui_scale_fit(ui_scale *s, double lo, double hi, int log, int zero0);

/* Tick values inside s, at most max_ticks (and cap): multiples of ui_nice_step on a linear scale;
 * 1, 2, 5 x 10^k (or decades only, or every few decades) on a log scale. Returns the count and
 * the step between ticks in *step (for formatting; on log scales the smallest tick value). */
int ui_scale_ticks(const ui_scale *s, int max_ticks, double *ticks, int cap, double *step);

/* Formats tick value v with as many decimals as step needs; thousands as "12k", millions as
 * "1.5M". Always NUL-terminated. */
void ui_format_tick(double v, double step, char *out, size_t len);

/* ---- layout (tui/layout.c) ------------------------------------------------------------------ */

enum { UI_MIN_COLS = 80, UI_MIN_ROWS = 24, UI_SIDE_BY_SIDE_COLS = 120 };

/* UI_LAYOUT_DEMO_DONE: the demo once every run has ended; its verdict, a log line a run, needs
 * more log rows than the demo's three, and the step-time pane has nothing left to show. */
typedef enum { UI_LAYOUT_WORKBENCH, UI_LAYOUT_DEMO, UI_LAYOUT_DEMO_DONE } ui_layout_mode;

typedef struct ui_layout {
    int ok;              /* 0 when the terminal is smaller than UI_MIN_COLS x UI_MIN_ROWS */
    int shared;          /* runs and plugins share one rect; Tab shows one or the other */
    ui_rect header, plot, runs, plugins, steps, log, footer;   /* w = 0 when absent */
} ui_layout;

/* Places the panes for a cols x rows terminal. Rects never overlap and stay inside the screen;
 * when ok is 0 only header and footer are set. The demo layouts have no plugins pane and give
 * the plot most of the screen; the finished demo's has no step-time pane either and a log of up
 * to seven rows (six lines: the verdict of the demo's five runs, and one more). */
void ui_layout_compute(int cols, int rows, ui_layout_mode mode, ui_layout *l);

/* The canvas area inside a plot pane: below one title row, right of a y-label gutter of
 * label_w columns plus the axis column, above the x axis line and its labels. w or h may be <= 0
 * when the pane is too small to plot. */
ui_rect ui_plot_canvas_rect(ui_rect plot, int label_w);

/* The help box for n lines of text on a cols x rows screen, centred, at most 72 columns wide and
 * rows - 2 high (title bar and bottom bar included). *gap is 1 when a blank row fits between each
 * bar and the text, else 0: the lines come first. */
ui_rect ui_help_rect(int cols, int rows, int n, int *gap);

/* ---- text formats and series arithmetic (tui/ui_text.c) ------------------------------------ */

/* "--" for s < 0 or not finite; "9.84s", "59.9s", "2m05s", "1h02m". */
void ui_format_duration(double s, char *out, size_t len);

/* Speedup of a run over the baseline, base_ttt / ttt, as "1.37x" (times to target, > 0 when
 * known). When only one reached the target, the other's span (> 0: training seconds it ran
 * without reaching it) gives a bound: ">1.10x" when the baseline has not reached it in base_span,
 * "<0.80x" when this run has not in span; else "--". Returns the value when it says which run
 * is faster (a ratio, a ">" bound of at least 1, a "<" bound of at most 1), else 0. */
double ui_format_speedup(double base_ttt, double base_span, double ttt, double span, char *out, size_t len);

/* One run's line of the demo's verdict: whether it reached the target (target: "test_acc >= 0.9"),
 * in how many training seconds (ttt > 0) or not in its span, then, unless it is the baseline,
 * its speedup (base_ttt and base_span as for ui_format_speedup) when that settles which run is
 * faster; a bound that does not (">0.54x": the baseline ran shorter than this run took) is said
 * in words instead, with the baseline's seconds. */
void ui_format_verdict(const char *name, const char *target, double ttt, double span, int is_base,
                       double base_ttt, double base_span, char *out, size_t len);

/* Copies s (UTF-8 text of single-width characters) into out, cut to width columns. When more than
 * spaces is cut, the last column kept is ellipsis instead ("\u2026", or "~" in ASCII; NULL cuts
 * without a mark, for a table's fixed columns), so a cut ID or path does not read as whole.
 * Returns the columns kept. Always NUL-terminated. */
int ui_clip_text(const char *s, int width, const char *ellipsis, char *out, size_t len);

/* Splits width columns among n parts in proportion to parts[] (negative counts as 0) by largest
 * remainder; out[] sums to width (all 0 when every part is 0). Returns the sum. */
int ui_split_widths(const double *parts, int n, int width, int *out);

/* A progress bar of exactly width columns for frac in [0, 1]: UTF-8 full and eighth blocks when
 * utf8, else '#'; padded with spaces. out needs 3 * width + 1 bytes in UTF-8 mode. */
void ui_format_bar(double frac, int width, int utf8, char *out, size_t len);

/* Exponential moving average with bias correction (the first value is not pulled towards 0). */
typedef struct ui_ema { double weight, m, corr; } ui_ema;
void ui_ema_init(ui_ema *e, double weight);   /* weight in [0, 1): share of the past */
double ui_ema_push(ui_ema *e, double x);      /* adds x; returns the smoothed value */

/* The x axes and y metrics of the plot. */
enum { UI_X_SECONDS, UI_X_STEPS, UI_X_SAMPLES, UI_X_EPOCHS, UI_X_COUNT };
/* UI_Y_CUSTOM plots the plugin metric named in ui_app.ymetric (ctx:metric). */
enum { UI_Y_TRAIN_LOSS, UI_Y_TEST_LOSS, UI_Y_TEST_ACC, UI_Y_CUSTOM, UI_Y_COUNT };

/* The plot title's right-hand hint in at most room columns: the view's state ("log", "last 30s"
 * or "fit all"), which tells what the axes show, and before it the target (target: "test_acc >=
 * 0.9", "" for none) when that fits too; "" when not even the state fits. */
void ui_format_plot_hint(const char *target, int logy, double zoom_s, int room, char *out, size_t len);

/* How often runs evaluate, for the plot before their first evaluation: "one every 117 steps"
 * (every_steps > 0), then ", 4 an epoch" when steps_per_epoch (0: not known) holds two or more;
 * else "one every 3 epochs" or "one per epoch". Always NUL-terminated. */
void ui_format_eval_cadence(int every_steps, int every_epochs, long steps_per_epoch, char *out, size_t len);

/* The footer's parameter prompt (field: "plugin.param (0 to 1)"), then its keys unless why the
 * last value was refused (err_w columns, 0 for none) would no longer fit beside it: the reason
 * matters more. Returns the prompt's length in columns. */
int ui_format_param_prompt(const char *field, const char *value, int err_w, int width, char *out, size_t len);

/* The footer's quit question, the longest wording that fits in width columns: whether the
 * training run stops (its files stay complete) and how many queued runs are dropped (said only
 * when there are some), then the keys, which every wording keeps. Always NUL-terminated. */
void ui_format_quit_prompt(int active, int queued, int width, char *out, size_t len);

/* x of a record on axis mode (UI_X_*). */
double ui_record_x(const trainer_record *r, int mode);

/* Index of the first evaluation record meeting the target (metric "test_acc": >= value,
 * "test_loss": <= value), or -1 (also for an empty or unknown metric). */
int ui_target_index(const trainer_record *r, int n, const char *metric, double value);

#endif
