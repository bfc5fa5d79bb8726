/* The workbench's pure logic without a terminal: braille encoding and line drawing, tick and
 * scale choice, pane layout at several terminal sizes, text formats, plugin choices, run folders
 * on disk, and the run queue's worker on a tiny synthetic recipe. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "engine/cpu/cpu.h"
#include "lua/recipe.h"
#include "tests/support.h"
#include "engine/trainer.h"
#include "engine/version.h"
#include "tui/ui_catalog.h"
#include "tui/ui_draw.h"
#include "tui/ui_runs.h"

/* ---- braille ---------------------------------------------------------------------------------- */

static void test_braille_bits(void **s)
{
    /* U+2800 numbering: left column dots 1, 2, 3, 7; right column 4, 5, 6, 8. */
    assert_int_equal(ui_braille_bit(0, 0), 0x01);
    assert_int_equal(ui_braille_bit(0, 1), 0x02);
    assert_int_equal(ui_braille_bit(0, 2), 0x04);
    assert_int_equal(ui_braille_bit(1, 0), 0x08);
    assert_int_equal(ui_braille_bit(1, 1), 0x10);
    assert_int_equal(ui_braille_bit(1, 2), 0x20);
    assert_int_equal(ui_braille_bit(0, 3), 0x40);
    assert_int_equal(ui_braille_bit(1, 3), 0x80);
    assert_int_equal(ui_braille_bit(2, 0), 0);
    assert_int_equal(ui_braille_bit(0, 4), 0);
    assert_int_equal(ui_braille_codepoint(0), 0x2800);
    assert_int_equal(ui_braille_codepoint(0xff), 0x28ff);
}

static void test_canvas_dots_and_lines(void **s)
{
    ui_canvas c = {0};
    assert_int_equal(ui_canvas_resize(&c, 3, 2), 0);   /* 6 x 8 dots */
    ui_canvas_dot(&c, 0, 0, 1);
    ui_canvas_dot(&c, 5, 7, 1);
    ui_canvas_dot(&c, 6, 0, 1);    /* outside: ignored */
    ui_canvas_dot(&c, -1, 3, 1);
    assert_int_equal(c.bits[0], 0x01);
    assert_int_equal(c.bits[1 * 3 + 2], 0x80);
    assert_int_equal(c.style[0], 1);
    assert_int_equal(c.style[1], 0);

    /* A horizontal line through dot row 1 sets dots 2 and 5 of every top cell. */
    ui_canvas_clear(&c);
    ui_canvas_line(&c, 0, 1, 5, 1, 2);
    for (int x = 0; x < 3; x++) assert_int_equal(c.bits[x], 0x12);
    for (int x = 0; x < 3; x++) assert_int_equal(c.bits[3 + x], 0);

    /* A vertical line fills a column; a line far outside draws nothing; one crossing is clipped. */
    ui_canvas_clear(&c);
    ui_canvas_line(&c, 1, -20, 1, 40, 2);
    assert_int_equal(c.bits[0], 0x08 | 0x10 | 0x20 | 0x80);
    assert_int_equal(c.bits[3], 0x08 | 0x10 | 0x20 | 0x80);
    ui_canvas_clear(&c);
    ui_canvas_line(&c, -10, -10, -5, -2, 2);
    ui_canvas_line(&c, 0, NAN, 3, 3, 2);
    for (int i = 0; i < 6; i++) assert_int_equal(c.bits[i], 0);
    ui_canvas_line(&c, -6, -6, 30, 30, 2);   /* the diagonal, clipped */
    assert_int_equal(c.bits[0], 0x01 | 0x10);   /* dots (0,0) (1,1) */
    assert_int_equal(c.bits[1], 0x04 | 0x80);   /* (2,2) (3,3) */
    assert_int_equal(c.bits[5], 0x01 | 0x10);   /* (4,4) (5,5) */

    /* A later layer of another style takes the whole cell; the same style adds dots. */
    ui_canvas_clear(&c);
    ui_canvas_dot(&c, 0, 0, 1);
    ui_canvas_dot(&c, 1, 1, 1);
    assert_int_equal(c.bits[0], 0x11);
    ui_canvas_dot(&c, 0, 3, 2);
    assert_int_equal(c.bits[0], 0x40);
    assert_int_equal(c.style[0], 2);
    ui_canvas_free(&c);
    assert_null(c.bits);
}

/* A tick's label goes on the row its line is drawn in: a value at dot 15.7 is drawn at dot 16,
 * row 4, where the label had sat a row above, on row 3. */
static void test_dot_cell(void **s)
{
    ui_canvas c = {0};
    assert_int_equal(ui_canvas_resize(&c, 10, 10), 0);
    for (double y = 0; y <= 39; y += 0.1) {
        ui_canvas_clear(&c);
        ui_canvas_line(&c, 0, y, 19, y, 1);   /* the target line at value y */
        int row = ui_dot_cell(y, 4);
        assert_true(c.bits[(size_t)row * c.w] != 0);
    }
    assert_int_equal(ui_dot_cell(15.7, 4), 4);
    assert_int_equal(ui_dot_cell(15.4, 4), 3);
    assert_int_equal(ui_dot_cell(3.6, 2), 2);
    assert_int_equal(ui_dot_cell(-0.4, 4), 0);
    assert_int_equal(ui_dot_cell(-0.6, 4), -1);
    ui_canvas_free(&c);
}

static void test_ascii_cells(void **s)
{
    assert_int_equal(ui_ascii_cell(0), ' ');
    assert_int_equal(ui_ascii_cell(0x01 | 0x08), '\'');                  /* top row */
    assert_int_equal(ui_ascii_cell(0x02 | 0x10), '-');                   /* second row */
    assert_int_equal(ui_ascii_cell(0x04), '.');                          /* third row */
    assert_int_equal(ui_ascii_cell(0x40 | 0x80), '_');                   /* bottom row */
    assert_int_equal(ui_ascii_cell(0x01 | 0x02 | 0x04 | 0x40), '|');    /* steep */
    /* the target line's character is no curve's: with --ascii --mono it was drawn in '.' and '-' */
    for (int bits = 0; bits < 256; bits++) assert_int_not_equal(ui_ascii_cell((uint8_t)bits), UI_ASCII_TARGET);
}

/* ---- scales and ticks --------------------------------------------------------------------------- */

static void test_nice_steps(void **s)
{
    assert_true(fabs(ui_nice_step(10, 6) - 2) < 1e-12);
    assert_true(fabs(ui_nice_step(1, 5) - 0.25) < 1e-12);
    assert_true(fabs(ui_nice_step(100, 11) - 10) < 1e-12);
    assert_true(fabs(ui_nice_step(0.7, 8) - 0.1) < 1e-12);
    assert_true(fabs(ui_nice_step(4680, 8) - 1000) < 1e-9);
    assert_true(fabs(ui_nice_step(0, 5) - 1) < 1e-12);    /* degenerate */
    /* Never more ticks than asked, over many ranges. */
    for (double range = 0.013; range < 1e7; range *= 1.37)
        for (int max = 2; max < 12; max++) {
            ui_scale sc = { 0.37 * range, 1.37 * range, 0 };
            double t[64], st;
            int n = ui_scale_ticks(&sc, max, t, 64, &st);
            assert_true(n <= max);
            assert_true(n >= 1);
            for (int i = 0; i < n; i++) assert_true(t[i] >= sc.lo - 1e-9 * range && t[i] <= sc.hi + 1e-9 * range);
        }
}

static void test_linear_ticks(void **s)
{
    ui_scale sc = { 0, 10, 0 };
    double t[32], step;
    int n = ui_scale_ticks(&sc, 6, t, 32, &step);
    assert_int_equal(n, 6);
    for (int i = 0; i < 6; i++) assert_true(fabs(t[i] - 2 * i) < 1e-12);
    assert_true(fabs(step - 2) < 1e-12);
    sc = (ui_scale){ -0.3, 0.3, 0 };
    n = ui_scale_ticks(&sc, 7, t, 32, &step);
    assert_int_equal(n, 7);
    assert_true(t[3] == 0);    /* exactly zero, no -0.0000001 */
}

static void test_log_ticks(void **s)
{
    ui_scale sc = { 0.15, 3, 1 };
    double t[32], step;
    int n = ui_scale_ticks(&sc, 8, t, 32, &step);
    assert_int_equal(n, 4);   /* 0.2 0.5 1 2 */
    assert_true(fabs(t[0] - 0.2) < 1e-12 && fabs(t[1] - 0.5) < 1e-12 && fabs(t[2] - 1) < 1e-12 && fabs(t[3] - 2) < 1e-12);
    assert_true(step == 0);
    sc = (ui_scale){ 1e-4, 10, 1 };   /* too many 1-2-5 ticks: decades */
    n = ui_scale_ticks(&sc, 6, t, 32, &step);
    assert_int_equal(n, 6);
    assert_true(fabs(t[0] - 1e-4) < 1e-16 && fabs(t[5] - 10) < 1e-9);
    sc = (ui_scale){ 1e-12, 1e12, 1 };   /* every few decades */
    n = ui_scale_ticks(&sc, 5, t, 32, &step);
    assert_true(n >= 2 && n <= 5);
    sc = (ui_scale){ 0.31, 0.42, 1 };    /* within a decade: plain ticks on the log axis */
    n = ui_scale_ticks(&sc, 5, t, 32, &step);
    assert_true(n >= 2);
    assert_true(step > 0);
}

static void test_scale_fit_and_pos(void **s)
{
    ui_scale sc;
    ui_scale_fit(&sc, 0.2, 2.3, 0, 0);
    assert_true(sc.lo < 0.2 && sc.lo >= 0 && sc.hi > 2.3);
    ui_scale_fit(&sc, 3, 50, 0, 1);
    assert_true(sc.lo == 0 && sc.hi > 50);
    ui_scale_fit(&sc, 0.5, 0.5, 0, 0);   /* flat */
    assert_true(sc.hi > sc.lo && sc.lo < 0.5 && sc.hi > 0.5);
    ui_scale_fit(&sc, 0, 0, 0, 0);
    assert_true(sc.hi > sc.lo);
    ui_scale_fit(&sc, 1, -1, 0, 0);       /* no data */
    assert_true(sc.lo == 0 && sc.hi > 1);
    ui_scale_fit(&sc, -1, 4, 1, 0);       /* log keeps only positive values */
    assert_true(sc.lo > 0 && sc.hi > 4);
    ui_scale lin = { 0, 10, 0 }, lg = { 1, 100, 1 };
    assert_true(fabs(ui_scale_pos(&lin, 2.5) - 0.25) < 1e-12);
    assert_true(fabs(ui_scale_pos(&lg, 10) - 0.5) < 1e-12);
    assert_true(isnan(ui_scale_pos(&lg, 0)));
}

static void test_tick_labels(void **s)
{
    char b[32];
    ui_format_tick(0.25, 0.05, b, sizeof b);   assert_string_equal(b, "0.25");
    ui_format_tick(2.5, 2.5, b, sizeof b);     assert_string_equal(b, "2.5");
    ui_format_tick(10, 2.5, b, sizeof b);      assert_string_equal(b, "10.0");
    ui_format_tick(0, 0.5, b, sizeof b);       assert_string_equal(b, "0");
    ui_format_tick(120, 20, b, sizeof b);      assert_string_equal(b, "120");
    ui_format_tick(60000, 10000, b, sizeof b); assert_string_equal(b, "60k");
    ui_format_tick(12500, 2500, b, sizeof b);  assert_string_equal(b, "12.5k");
    ui_format_tick(1.5e6, 5e5, b, sizeof b);   assert_string_equal(b, "1.5M");
    ui_format_tick(0.2, 0, b, sizeof b);       assert_string_equal(b, "0.2");   /* log ticks */
    ui_format_tick(2, 0, b, sizeof b);         assert_string_equal(b, "2");
    ui_format_tick(-0.4, 0.2, b, sizeof b);    assert_string_equal(b, "-0.4");
}

/* ---- layout ----------------------------------------------------------------------------------- */

static int inside(ui_rect r, int cols, int rows)
{
    return r.w == 0 || (r.x >= 0 && r.y >= 0 && r.w > 0 && r.h > 0 && r.x + r.w <= cols && r.y + r.h <= rows);
}

static int overlap(ui_rect a, ui_rect b)
{
    if (!a.w || !b.w) return 0;
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

static void check_layout(int cols, int rows, ui_layout_mode mode)
{
    ui_layout l;
    ui_layout_compute(cols, rows, mode, &l);
    assert_int_equal(l.ok, 1);
    ui_rect r[] = { l.header, l.plot, l.runs, l.plugins, l.steps, l.log, l.footer };
    int n = 7, covered = 0;
    for (int i = 0; i < n; i++) {
        assert_true(inside(r[i], cols, rows));
        for (int j = i + 1; j < n; j++)
            if (!(l.shared && i == 2 && j == 3)) assert_false(overlap(r[i], r[j]));
        if (!(l.shared && i == 3)) covered += r[i].w * r[i].h;
    }
    assert_int_equal(covered, cols * rows);   /* every cell belongs to a pane */
    assert_int_equal(l.header.y, 0);
    assert_int_equal(l.footer.y, rows - 1);
    int done = mode == UI_LAYOUT_DEMO_DONE;
    assert_true(l.plot.h >= (done ? 9 : 10));
    assert_true(l.runs.h >= 6);
    assert_true(l.log.h >= (done ? 6 : 3));   /* the finished demo: the verdict of its five runs */
    assert_int_equal(l.steps.w == 0, done);
    ui_rect c = ui_plot_canvas_rect(l.plot, 5);
    assert_true(c.w >= 60 && c.h >= (done ? 6 : 7));
    assert_true(c.x + c.w <= l.plot.x + l.plot.w && c.y + c.h + 2 <= l.plot.y + l.plot.h);
    if (mode != UI_LAYOUT_WORKBENCH) {
        assert_int_equal(l.plugins.w, 0);
        assert_true(l.plot.h >= rows / 3);
    } else {
        assert_int_equal(l.shared, cols < UI_SIDE_BY_SIDE_COLS);
    }
}

static void test_layout_sizes(void **s)
{
    int sizes[][2] = { {80, 24}, {100, 30}, {119, 30}, {120, 40}, {160, 50}, {250, 70}, {80, 60}, {300, 24} };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_layout(sizes[i][0], sizes[i][1], UI_LAYOUT_WORKBENCH);
        check_layout(sizes[i][0], sizes[i][1], UI_LAYOUT_DEMO);
        check_layout(sizes[i][0], sizes[i][1], UI_LAYOUT_DEMO_DONE);
    }
    ui_layout l;
    ui_layout_compute(100, 30, UI_LAYOUT_WORKBENCH, &l);
    ui_layout bigger;
    ui_layout_compute(100, 50, UI_LAYOUT_WORKBENCH, &bigger);
    assert_true(bigger.plot.h > l.plot.h);   /* extra rows go mostly to the plot */
    ui_layout demo;
    ui_layout_compute(100, 30, UI_LAYOUT_DEMO, &demo);
    assert_true(demo.plot.h > l.plot.h);
}

/* The help's 19 lines all show at 80x24 (the blank rows around them give way) and the box stays
 * between the header and the footer. */
static void test_help_rect(void **s)
{
    int gap;
    ui_rect b = ui_help_rect(80, 24, 19, &gap);
    assert_int_equal(gap, 0);
    assert_true(b.h - 2 >= 19);
    assert_true(b.y >= 1 && b.y + b.h <= 23);
    assert_int_equal(b.w, 72);
    assert_int_equal(b.x, 4);
    b = ui_help_rect(120, 36, 19, &gap);
    assert_int_equal(gap, 1);
    assert_int_equal(b.h, 23);
    b = ui_help_rect(80, 24, 40, &gap);   /* more than fits: the box is as high as it may be */
    assert_int_equal(b.h, 22);
}

static void test_layout_too_small(void **s)
{
    int sizes[][2] = { {79, 24}, {80, 23}, {40, 10}, {1, 1} };
    for (size_t i = 0; i < 4; i++) {
        ui_layout l;
        ui_layout_compute(sizes[i][0], sizes[i][1], UI_LAYOUT_WORKBENCH, &l);
        assert_int_equal(l.ok, 0);
        assert_int_equal(l.plot.w, 0);
        assert_int_equal(l.header.w, sizes[i][0]);
    }
    ui_layout l;
    ui_layout_compute(0, 0, UI_LAYOUT_WORKBENCH, &l);
    assert_int_equal(l.ok, 0);
    assert_int_equal(l.header.w, 0);
}

/* ---- formats and series arithmetic --------------------------------------------------------------- */

static void test_formats(void **s)
{
    char b[64];
    ui_format_duration(-1, b, sizeof b);     assert_string_equal(b, "--");
    ui_format_duration(NAN, b, sizeof b);    assert_string_equal(b, "--");
    ui_format_duration(9.844, b, sizeof b);  assert_string_equal(b, "9.84s");
    ui_format_duration(41.23, b, sizeof b);  assert_string_equal(b, "41.2s");
    ui_format_duration(125, b, sizeof b);    assert_string_equal(b, "2m05s");
    ui_format_duration(59.97, b, sizeof b);  assert_string_equal(b, "1m00s");
    ui_format_duration(3725, b, sizeof b);   assert_string_equal(b, "1h02m");
    assert_true(ui_format_speedup(41.2, -1, 30, -1, b, sizeof b) > 1.37); assert_string_equal(b, "1.37x");
    assert_true(ui_format_speedup(30, -1, 60, -1, b, sizeof b) == 0.5);   assert_string_equal(b, "0.50x");
    assert_true(ui_format_speedup(-1, -1, 30, -1, b, sizeof b) == 0);     assert_string_equal(b, "--");
    assert_true(ui_format_speedup(30, -1, -1, -1, b, sizeof b) == 0);     assert_string_equal(b, "--");
    assert_true(ui_format_speedup(30, -1, 0, -1, b, sizeof b) == 0);      assert_string_equal(b, "--");
    /* one of the two never reached the target: a bound from the seconds it ran without it */
    assert_true(ui_format_speedup(-1, 33, 30, -1, b, sizeof b) == 1.1);   assert_string_equal(b, ">1.10x");
    assert_true(ui_format_speedup(-1, 15, 30, -1, b, sizeof b) == 0);     assert_string_equal(b, ">0.50x");
    assert_true(ui_format_speedup(24, -1, -1, 30, b, sizeof b) == 0.8);   assert_string_equal(b, "<0.80x");
    assert_true(ui_format_speedup(24, -1, -1, 12, b, sizeof b) == 0);     assert_string_equal(b, "<2.00x");
    assert_true(ui_format_speedup(-1, 20, -1, 30, b, sizeof b) == 0);     assert_string_equal(b, "--");
    assert_true(ui_format_speedup(41.2, 50, 30, 60, b, sizeof b) > 1.37); assert_string_equal(b, "1.37x");
}

/* The plot's note before the first evaluation says how often the runs evaluate: the workbench's
 * four an epoch of fmnist_cnn (it said "one per epoch", the recipe's, for every run). */
static void test_eval_cadence(void **s)
{
    char b[64];
    ui_format_eval_cadence(117, 1, 60000 / 128, b, sizeof b);  assert_string_equal(b, "one every 117 steps, 4 an epoch");
    ui_format_eval_cadence(100, 1, 0, b, sizeof b);            assert_string_equal(b, "one every 100 steps");
    ui_format_eval_cadence(1000, 1, 468, b, sizeof b);         assert_string_equal(b, "one every 1000 steps");
    ui_format_eval_cadence(1, 1, 1, b, sizeof b);              assert_string_equal(b, "one every 1 step");
    ui_format_eval_cadence(0, 3, 468, b, sizeof b);            assert_string_equal(b, "one every 3 epochs");
    ui_format_eval_cadence(0, 1, 468, b, sizeof b);            assert_string_equal(b, "one per epoch");
    ui_format_eval_cadence(117, 1, 468, b, 12);                assert_string_equal(b, "one every 1");
}

/* At 80 columns the train-loss title leaves no room for the target: the log and zoom state still
 * show (the whole hint had vanished, so l and z changed the plot without saying so). */
static void test_plot_hint(void **s)
{
    char b[160];
    const char *t = "target test_acc >= 0.9";
    ui_format_plot_hint(t, 0, 0, 100, b, sizeof b);
    assert_string_equal(b, "target test_acc >= 0.9   fit all ");
    ui_format_plot_hint(t, 1, 30, 100, b, sizeof b);
    assert_string_equal(b, "target test_acc >= 0.9   log   last 30s ");
    int room = 80 - (int)strlen("Train loss (smoothed, raw faint) vs training seconds") - 4;
    ui_format_plot_hint(t, 1, 0, room, b, sizeof b);
    assert_string_equal(b, "log   fit all ");
    ui_format_plot_hint("", 0, 10, 100, b, sizeof b);
    assert_string_equal(b, "last 10s ");
    ui_format_plot_hint(t, 1, 120, 5, b, sizeof b);
    assert_string_equal(b, "");
}

/* A refused value's reason fits beside the prompt at 100 columns: the keys give way to it. */
static void test_param_prompt(void **s)
{
    char b[256];
    const char *f = "progressive_resizing.finetune (0 to 1)";
    int n = ui_format_param_prompt(f, "0.5", 0, 100, b, sizeof b);
    assert_string_equal(b, " progressive_resizing.finetune (0 to 1) = 0.5_   Enter set  Esc cancel ");
    assert_int_equal(n, (int)strlen(b));
    int err = (int)strlen("finetune must be between 0 and 1");
    n = ui_format_param_prompt(f, "9", err, 100, b, sizeof b);
    assert_string_equal(b, " progressive_resizing.finetune (0 to 1) = 9_ ");
    assert_true(n + err + 2 <= 100);
    ui_format_param_prompt("ema.every", "9", err, 100, b, sizeof b);   /* room for both */
    assert_string_equal(b, " ema.every = 9_   Enter set  Esc cancel ");
}

/* The quit question keeps its keys at every width: at 80 columns with a run training and one
 * queued the full sentence would push "y quit  n stay" off the screen. */
static void test_quit_prompt(void **s)
{
    char b[200];
    ui_format_quit_prompt(1, 1, 200, b, sizeof b);
    assert_string_equal(b, " Quit? The running run stops (its files stay complete); 1 queued run dropped.  y quit  n stay ");
    ui_format_quit_prompt(1, 0, 200, b, sizeof b);
    assert_string_equal(b, " Quit? The running run stops (its files stay complete).  y quit  n stay ");
    ui_format_quit_prompt(0, 3, 200, b, sizeof b);
    assert_string_equal(b, " Quit? 3 queued runs dropped.  y quit  n stay ");
    for (int w = 23; w <= 100; w++) {
        ui_format_quit_prompt(1, 12, w, b, sizeof b);
        assert_true((int)strlen(b) <= w);
        assert_non_null(strstr(b, "y quit  n stay"));
    }
    ui_format_quit_prompt(1, 1, 80, b, sizeof b);
    assert_non_null(strstr(b, "queued"));   /* 80 columns still say what is lost */
}

/* The demo's verdict says a speedup only where it settles which run is faster: a method that
 * reached 90% in 3.96 s against a baseline that ran 2.14 s without it had read "speedup >0.54x". */
static void test_verdict(void **s)
{
    char b[300];
    const char *t = "test_acc >= 0.9";
    ui_format_verdict("baseline", t, 10.4, 28, 1, 10.4, 28, b, sizeof b);
    assert_string_equal(b, "baseline reached test_acc >= 0.9 in 10.4s");
    ui_format_verdict("whitening_init", t, 7.09, 28, 0, 10.4, 28, b, sizeof b);
    assert_string_equal(b, "whitening_init reached test_acc >= 0.9 in 7.09s: speedup 1.47x");
    ui_format_verdict("blurpool", t, -1, 28, 0, 10.4, 28, b, sizeof b);
    assert_string_equal(b, "blurpool did not reach test_acc >= 0.9 in its 28.0s: speedup <0.37x");
    ui_format_verdict("muon", t, 3.96, 3.96, 0, -1, 2.14, b, sizeof b);
    assert_string_equal(b, "muon reached test_acc >= 0.9 in 3.96s; the baseline did not in its 2.14s");
    ui_format_verdict("muon", t, 3.96, 3.96, 0, -1, 5, b, sizeof b);
    assert_string_equal(b, "muon reached test_acc >= 0.9 in 3.96s: speedup >1.26x");
    ui_format_verdict("baseline 2ep", t, -1, 6.0, 0, 10.4, 28, b, sizeof b);
    assert_string_equal(b, "baseline 2ep did not reach test_acc >= 0.9 in its 6.00s; the baseline reached it in 10.4s");
    ui_format_verdict("muon", t, -1, 3.9, 0, -1, 2.1, b, sizeof b);
    assert_string_equal(b, "muon did not reach test_acc >= 0.9 in its 3.90s");
}

/* Text cut to fit ends in an ellipsis: the plugins pane cut "arXiv:1906.06423" to "arXiv:1906.0642",
 * a wrong ID that read as whole. */
static void test_clip_text(void **s)
{
    char b[64];
    assert_int_equal(ui_clip_text("arXiv:1906.06423", 16, "\u2026", b, sizeof b), 16);
    assert_string_equal(b, "arXiv:1906.06423");
    assert_int_equal(ui_clip_text("arXiv:1906.06423", 15, "\u2026", b, sizeof b), 15);
    assert_string_equal(b, "arXiv:1906.064\u2026");
    ui_clip_text("arXiv:1906.06423", 15, "~", b, sizeof b);     assert_string_equal(b, "arXiv:1906.064~");
    ui_clip_text("arXiv:1906.06423", 15, NULL, b, sizeof b);    assert_string_equal(b, "arXiv:1906.0642");   /* a fixed column */
    ui_clip_text(" ema on for the next run ", 24, "~", b, sizeof b);   /* only a space cut: nothing lost */
    assert_string_equal(b, " ema on for the next run");
    assert_int_equal(ui_clip_text("a\u2605bc", 3, "~", b, sizeof b), 3);   /* columns, not bytes */
    assert_string_equal(b, "a\u2605~");
    ui_clip_text("a\u2605b", 3, "~", b, sizeof b);             assert_string_equal(b, "a\u2605b");
    assert_int_equal(ui_clip_text("abc", 0, "~", b, sizeof b), 0);
    assert_string_equal(b, "");
    ui_clip_text("abcdef", 4, "~", b, 3);                       assert_string_equal(b, "ab");
}

static void test_split_and_bars(void **s)
{
    double parts[5] = { 0.01, 0.3, 0.5, 0.1, 0.09 };
    int w[5], sum = 0;
    assert_int_equal(ui_split_widths(parts, 5, 40, w), 40);
    for (int i = 0; i < 5; i++) sum += w[i];
    assert_int_equal(sum, 40);
    assert_int_equal(w[2], 20);
    assert_int_equal(w[1], 12);
    double zero[3] = { 0, -1, 0 };
    assert_int_equal(ui_split_widths(zero, 3, 10, w), 0);
    assert_int_equal(w[0] + w[1] + w[2], 0);
    double one[3] = { 0, 5, 0 };
    ui_split_widths(one, 3, 7, w);
    assert_int_equal(w[1], 7);

    char b[128];
    ui_format_bar(0.5, 10, 0, b, sizeof b);  assert_string_equal(b, "#####     ");
    ui_format_bar(1.5, 4, 0, b, sizeof b);   assert_string_equal(b, "####");
    ui_format_bar(-1, 3, 0, b, sizeof b);    assert_string_equal(b, "   ");
    ui_format_bar(0.6, 2, 1, b, sizeof b);   assert_string_equal(b, "\u2588\u258f");   /* 1 and 1/8 */
    ui_format_bar(1, 3, 1, b, sizeof b);     assert_string_equal(b, "\u2588\u2588\u2588");
}

static void test_ema(void **s)
{
    ui_ema e;
    ui_ema_init(&e, 0.9);
    assert_true(fabs(ui_ema_push(&e, 5) - 5) < 1e-12);   /* bias-corrected: starts at the data */
    for (int i = 0; i < 200; i++) ui_ema_push(&e, 1);
    assert_true(fabs(ui_ema_push(&e, 1) - 1) < 1e-6);
    ui_ema_init(&e, 0);
    ui_ema_push(&e, 3);
    assert_true(fabs(ui_ema_push(&e, 7) - 7) < 1e-12);    /* weight 0: no smoothing */
}

static trainer_record rec(long step, double seconds, int eval, float acc, float loss)
{
    return (trainer_record){ .step = step, .epoch = step / 100.0, .samples = step * 128, .seconds = seconds,
                             .train_loss = loss, .is_eval = eval, .test_acc = acc, .test_loss = loss };
}

static void test_target_and_x(void **s)
{
    trainer_record r[5] = { rec(1, 0.1, 0, 0, 2), rec(100, 10, 1, 0.85, 0.5), rec(101, 10.1, 0, 0, 0.4),
                            rec(200, 20, 1, 0.91, 0.3), rec(300, 30, 1, 0.95, 0.2) };
    assert_int_equal(ui_target_index(r, 5, "test_acc", 0.9), 3);
    assert_int_equal(ui_target_index(r, 5, "test_acc", 0.99), -1);
    assert_int_equal(ui_target_index(r, 5, "test_loss", 0.45), 3);   /* train records do not count */
    assert_int_equal(ui_target_index(r, 5, "test_loss", 0.5), 1);
    assert_int_equal(ui_target_index(r, 5, "", 0.9), -1);
    assert_int_equal(ui_target_index(r, 0, "test_acc", 0.9), -1);
    assert_true(ui_record_x(&r[3], UI_X_SECONDS) == 20);
    assert_true(ui_record_x(&r[3], UI_X_STEPS) == 200);
    assert_true(ui_record_x(&r[3], UI_X_SAMPLES) == 200 * 128);
    assert_true(ui_record_x(&r[3], UI_X_EPOCHS) == 2);
}

static void test_run_append(void **s)
{
    ui_run *r = calloc(1, sizeof *r);
    snprintf(r->target_metric, sizeof r->target_metric, "test_acc");
    r->target_value = 0.9;
    trainer_record a[3] = { rec(1, 0.1, 0, 0, 2), rec(2, 0.2, 0, 0, 1), rec(2, 0.2, 1, 0.8, 0.9) };
    assert_int_equal(ui_run_append(r, a, 3), 0);
    assert_int_equal(r->n, 3);
    assert_true(fabs(r->smooth[0] - 2) < 1e-6);
    assert_true(r->smooth[1] < 2 && r->smooth[1] > 1);
    assert_true(r->smooth[2] == r->smooth[1]);   /* eval records carry the train curve on */
    assert_true(ui_run_ttt(r) < 0);
    for (int i = 0; i < 3000; i++) {   /* grows past its first allocation */
        trainer_record b = rec(3 + i, 0.3 + i, i == 2500, 0.93f, 0.5f);
        assert_int_equal(ui_run_append(r, &b, 1), 0);
    }
    assert_int_equal(r->target_idx, 3 + 2500);
    assert_true(fabs(ui_run_ttt(r) - 2500.3) < 1e-9);
    ui_run_free(r);
}

/* A run that evaluates at `seconds`, reaching 0.9 there when reach, in state st. */
static ui_run *run_to(double seconds, int reach, int st)
{
    ui_run *r = calloc(1, sizeof *r);
    snprintf(r->target_metric, sizeof r->target_metric, "test_acc");
    r->target_value = 0.9;
    trainer_record a[2] = { rec(1, seconds / 2, 1, 0.5f, 1), rec(2, seconds, 1, reach ? 0.95f : 0.85f, 1) };
    assert_int_equal(ui_run_append(r, a, 2), 0);
    atomic_store(&r->state, st);
    return r;
}

/* The runs pane's speedups: the ratio, or a bound from a run that has not reached the target, once
 * that run has ended or trained past the other's time. */
static void test_run_speedup(void **s)
{
    char b[32];
    ui_run *base = run_to(10, 1, UI_RUN_DONE), *fast = run_to(8, 1, UI_RUN_DONE);
    assert_true(ui_run_speedup(fast, base, b, sizeof b) == 1.25);
    assert_string_equal(b, "1.25x");
    ui_run *early = run_to(5, 0, UI_RUN_RUNNING), *late = run_to(12.5, 0, UI_RUN_RUNNING),
           *ended = run_to(8, 0, UI_RUN_STOPPED);
    ui_run_speedup(early, base, b, sizeof b);   /* still under the baseline's time: nothing known */
    assert_string_equal(b, "--");
    assert_true(ui_run_speedup(late, base, b, sizeof b) == 0.8);
    assert_string_equal(b, "<0.80x");
    assert_true(ui_run_speedup(ended, base, b, sizeof b) == 0);   /* ended short of 10 s: says little */
    assert_string_equal(b, "<1.25x");
    ui_run *slow_base = run_to(20, 0, UI_RUN_DONE);
    assert_true(ui_run_speedup(fast, slow_base, b, sizeof b) == 2.5);
    assert_string_equal(b, ">2.50x");
    ui_run_speedup(fast, NULL, b, sizeof b);
    assert_string_equal(b, "--");
    ui_run *all[] = { base, fast, early, late, ended, slow_base };
    for (int i = 0; i < 6; i++) ui_run_free(all[i]);
}

/* ---- plugin choices ---------------------------------------------------------------------------- */

static void fill_catalog(ui_catalog *cat)
{
    memset(cat, 0, sizeof *cat);
    ui_plugin *p = ui_catalog_add(cat);
    snprintf(p->name, sizeof p->name, "sam");
    snprintf(p->component, sizeof p->component, "optimization");
    snprintf(p->action, sizeof p->action, "retrofit");
    p = ui_catalog_add(cat);
    snprintf(p->name, sizeof p->name, "label_smoothing");
    snprintf(p->component, sizeof p->component, "optimization");
    snprintf(p->action, sizeof p->action, "replace");
    p->n_params = 1;
    snprintf(p->params[0].name, sizeof p->params[0].name, "alpha");
    snprintf(p->params[0].def, sizeof p->params[0].def, "0.1");
    p->params[0].min = 0;
    p->params[0].max = 0.5;
    p = ui_catalog_add(cat);
    snprintf(p->name, sizeof p->name, "progressive_resizing");
    snprintf(p->component, sizeof p->component, "data");
    snprintf(p->action, sizeof p->action, "restrict");
    ui_catalog_sort(cat);
}

static void test_catalog_order_and_find(void **s)
{
    ui_catalog cat;
    fill_catalog(&cat);
    assert_int_equal(cat.n, 3);
    assert_string_equal(cat.items[0].name, "progressive_resizing");   /* data first */
    assert_string_equal(cat.items[1].name, "label_smoothing");        /* replace before retrofit */
    assert_string_equal(cat.items[2].name, "sam");
    assert_non_null(ui_catalog_find(&cat, "sam"));
    assert_null(ui_catalog_find(&cat, "nope"));
    assert_true(isinf(cat.items[2].params[0].min));   /* open ranges by default */
    ui_catalog_free(&cat);
    assert_int_equal(cat.n, 0);
}

/* The shipped catalogue as the workbench loads it: only the methods for the recipe's kind of data. */
static void test_catalog_by_data(void **s)
{
    ui_catalog cat = {0};
    const char *kinds[] = { "text", "images", "" };
    for (int k = 0; k < 3; k++) {
        snprintf(cat.data, sizeof cat.data, "%s", kinds[k]);
        assert_true(ui_catalog_load(&cat) > 0);
        int text = k != 1, images = k != 0;
        assert_int_equal(ui_catalog_find(&cat, "alibi") != NULL, text);
        assert_int_equal(ui_catalog_find(&cat, "seq_length_warmup") != NULL, text);
        assert_int_equal(ui_catalog_find(&cat, "mixup") != NULL, images);
        assert_int_equal(ui_catalog_find(&cat, "progressive_resizing") != NULL, images);
        assert_non_null(ui_catalog_find(&cat, "ema"));   /* any data */
        ui_catalog_free(&cat);
    }
}

/* What the shipped plugins allow, checked before a run is queued: a required parameter set, one
 * plugin per exclusive role. */
static void test_choices_check(void **s)
{
    ui_catalog cat = {0};
    snprintf(cat.data, sizeof cat.data, "images");
    assert_true(ui_catalog_load(&cat) > 0);
    ui_choice *ch = ui_choices_make(&cat, NULL, 0);
    char err[256];
    int ema = -1, swa = -1, distil = -1;
    for (int i = 0; i < cat.n; i++) {
        if (!strcmp(cat.items[i].name, "ema")) ema = i;
        if (!strcmp(cat.items[i].name, "swa")) swa = i;
        if (!strcmp(cat.items[i].name, "distillation")) distil = i;
    }
    assert_true(ema >= 0 && swa >= 0 && distil >= 0);
    assert_int_equal(ui_choices_check(&cat, ch, err, sizeof err), 0);   /* the baseline */
    ch[ema].on = ch[swa].on = 1;
    assert_int_equal(ui_choices_check(&cat, ch, err, sizeof err), -1);
    assert_non_null(strstr(err, "both take the role \"weight averaging\""));
    ch[ema].on = 0;
    assert_int_equal(ui_choices_check(&cat, ch, err, sizeof err), 0);
    ch[distil].on = 1;
    assert_int_equal(ui_choices_check(&cat, ch, err, sizeof err), -1);
    assert_string_equal(err, "distillation needs teacher: set it with e");
    int k = 0;
    while (strcmp(ch[distil].keys[k], "teacher")) k++;
    snprintf(ch[distil].values[k], sizeof ch[distil].values[k], "runs/teacher");
    assert_int_equal(ui_choices_check(&cat, ch, err, sizeof err), 0);
    free(ch);
    ui_catalog_free(&cat);
}

static void test_param_check(void **s)
{
    char err[160];
    ui_param p = { .type = UI_PARAM_NUMBER, .min = 0, .max = 0.5 };
    snprintf(p.name, sizeof p.name, "alpha");
    assert_int_equal(ui_param_check(&p, "0.2", err, sizeof err), 0);
    assert_int_equal(ui_param_check(&p, "0.5", err, sizeof err), 0);
    assert_int_equal(ui_param_check(&p, "0.6", err, sizeof err), -1);
    assert_string_equal(err, "alpha must be between 0 and 0.5");
    assert_int_equal(ui_param_check(&p, "abc", err, sizeof err), -1);
    assert_string_equal(err, "alpha must be a number");
    assert_int_equal(ui_param_check(&p, "", err, sizeof err), -1);
    assert_int_equal(ui_param_check(&p, "nan", err, sizeof err), -1);
    p.type = UI_PARAM_INTEGER;
    p.min = 1;
    p.max = INFINITY;
    assert_int_equal(ui_param_check(&p, "3", err, sizeof err), 0);
    assert_int_equal(ui_param_check(&p, "2.5", err, sizeof err), -1);
    assert_string_equal(err, "alpha must be a whole number");
    assert_int_equal(ui_param_check(&p, "0", err, sizeof err), -1);
    assert_string_equal(err, "alpha must be at least 1");
    p.type = UI_PARAM_BOOLEAN;
    assert_int_equal(ui_param_check(&p, "true", err, sizeof err), 0);
    assert_int_equal(ui_param_check(&p, "yes", err, sizeof err), -1);
    p.type = UI_PARAM_STRING;
    assert_int_equal(ui_param_check(&p, "cosine", err, sizeof err), 0);
}

static void test_choices_to_specs(void **s)
{
    ui_catalog cat;
    fill_catalog(&cat);
    ui_choice *ch = ui_choices_make(&cat, NULL, 0);
    assert_non_null(ch);
    plugin_spec specs[CONFIG_MAX_PLUGINS];
    char name[200];
    assert_int_equal(ui_choices_specs(&cat, ch, specs, CONFIG_MAX_PLUGINS), 0);
    ui_run_name(specs, 0, name, sizeof name);
    assert_string_equal(name, "baseline");
    ch[1].on = 1;   /* label_smoothing at its default: no parameters written */
    ch[2].on = 1;
    assert_int_equal(ui_choices_specs(&cat, ch, specs, CONFIG_MAX_PLUGINS), 2);
    assert_int_equal(specs[0].n_params, 0);
    ui_run_name(specs, 2, name, sizeof name);
    assert_string_equal(name, "label_smoothing+sam");
    snprintf(ch[1].values[0], sizeof ch[1].values[0], "0.2");
    assert_int_equal(ui_choices_specs(&cat, ch, specs, CONFIG_MAX_PLUGINS), 2);
    assert_int_equal(specs[0].n_params, 1);
    assert_string_equal(specs[0].keys[0], "alpha");
    assert_string_equal(specs[0].values[0], "0.2");
    ui_run_name(specs, 2, name, sizeof name);
    assert_string_equal(name, "label_smoothing(alpha=0.2)+sam");
    assert_int_equal(ui_choices_specs(&cat, ch, specs, 1), 1);   /* cap */

    /* A reload keeps choices by name, and drops values the new range forbids. */
    ui_catalog again;
    fill_catalog(&again);
    ui_choice *kept = ui_choices_make(&again, ch, cat.n);
    assert_int_equal(kept[1].on, 1);
    assert_string_equal(kept[1].values[0], "0.2");
    again.items[1].params[0].max = 0.15;
    ui_choice *clamped = ui_choices_make(&again, ch, cat.n);
    assert_string_equal(clamped[1].values[0], "0.1");
    free(clamped);
    free(kept);
    free(ch);
    ui_catalog_free(&again);
    ui_catalog_free(&cat);
    assert_null(ui_choices_make(&cat, NULL, 0));   /* empty catalogue */
}

/* ---- run folders ------------------------------------------------------------------------------- */

/* The hasten version make_run_on writes into fingerprints: NULL, this build's. */
static const char *run_version;
static int run_format = 1;   /* summary.json's format version */
static const char *run_eval = "";   /* more recipe fields, starting with a comma */

/* A finished run folder under the test's runs/: recipe.lua (budget, batch, plugins) and a
 * summary.json with this machine's fingerprint, threads, run_version and fp_extra (more
 * fingerprint fields, starting with a comma, or ""). */
static const char *make_run_on(const char *name, const char *status, const char *budget, int plugins,
                               int threads, int batch, const char *fp_extra)
{
    static char dir[4][700];
    static int k;
    char *d = dir[k++ % 4], path[800], cpu[256], text[2048];
    snprintf(d, sizeof dir[0], "%s/runs/%s", test_tmpdir(), name);
    snprintf(path, sizeof path, "%s/runs", test_tmpdir());
    mkdir(path, 0755);
    assert_int_equal(mkdir(d, 0755), 0);

    train_config c;
    char err[256];
    snprintf(text, sizeof text, "return { data = { \"synthetic\" }, model = nn.sequential { nn.flatten(), nn.linear(10) },"
             " budget = %s, batch = %d %s%s }", budget, batch, plugins ? ", plugins = { \"label_smoothing\" }" : "", run_eval);
    assert_int_equal(recipe_load_string(text, "r.lua", &c, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/recipe.lua", d);
    FILE *f = fopen(path, "w");
    assert_int_equal(recipe_write(&c, f), 0);
    fclose(f);
    config_free(&c);

    trainer_cpu_model(cpu, sizeof cpu);
    snprintf(path, sizeof path, "%s/summary.json", d);
    f = fopen(path, "w");
    fprintf(f, "{\"version\":%d,\"status\":\"%s\",\"recipe\":\"recipes/x.lua\",\"dataset\":\"synthetic\","
            "\"phase_seconds\":{\"data_wait\":1,\"forward\":2,\"backward\":3,\"optimizer\":0.5,\"plugins\":0,\"eval\":1},"
            "\"fingerprint\":{\"cpu\":\"%s\",\"cores\":%ld,\"threads\":%d,\"hasten\":\"%s\"%s}}", run_format, status, cpu,
            sysconf(_SC_NPROCESSORS_ONLN), threads, run_version ? run_version : hasten_version, fp_extra);
    fclose(f);
    snprintf(path, sizeof path, "%s/metrics.jsonl", d);
    f = fopen(path, "w");
    fprintf(f, "{\"step\":1,\"epoch\":0.01,\"samples\":128,\"seconds\":0.5,\"train_loss\":2.3,\"lr\":0.05}\n"
               "{\"step\":2,\"epoch\":0.02,\"samples\":256,\"seconds\":1.0,\"train_loss\":2.1,\"lr\":0.05,"
               "\"phase_seconds\":{\"data_wait\":0.01,\"forward\":0.2,\"backward\":0.25,\"optimizer\":0.02,"
               "\"plugins\":0.005},\"grad_norm\":4.5}\n"
               "{\"step\":2,\"epoch\":0.02,\"samples\":256,\"seconds\":1.0,\"train_loss\":2.1,\"lr\":0.05,"
               "\"test_loss\":0.3,\"test_acc\":0.92}\n"
               "{\"step\":3,\"epoch\":0.0");   /* a line cut by a crash */
    fclose(f);
    return d;
}

static const char *make_run(const char *name, const char *status, const char *budget, int plugins, int threads)
{
    return make_run_on(name, status, budget, plugins, threads, 128, "");
}

/* ui_history_find_baseline for a CPU recipe at recipe_path with this batch and evaluation every
 * eval_steps steps (0: once an epoch); dir gets 1200 bytes. */
static int find_baseline(const char *runs, const char *recipe_path, const char *dataset, const budget_spec *b,
                         int batch, int threads, int eval_steps, char *dir)
{
    train_config c;
    config_defaults(&c);
    snprintf(c.recipe_path, sizeof c.recipe_path, "%s", recipe_path);
    c.batch = batch;
    c.device = DEVICE_CPU;
    c.eval_every_steps = eval_steps;
    int found = ui_history_find_baseline(runs, &c, dataset, b, threads, dir, 1200);
    config_free(&c);
    return found;
}

static void test_history(void **s)
{
    budget_spec two = { BUDGET_STEPS, 2 }, three = { BUDGET_STEPS, 3 };
    char runs[700], dir[1200], err[512];
    snprintf(runs, sizeof runs, "%s/runs", test_tmpdir());
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &two, 128, 2, 0, dir), 0);
    make_run("a-failed", "failed", "{ steps = 2 }", 0, 2);
    make_run("b-plugins", "done", "{ steps = 2 }", 1, 2);
    make_run("c-threads", "done", "{ steps = 2 }", 0, 1);
    make_run_on("c-cuda", "done", "{ steps = 2 }", 0, 2, 128, ",\"device\":\"cuda\",\"gpu\":\"NVIDIA H100\"");
    make_run_on("c-batch", "done", "{ steps = 2 }", 0, 2, 512, "");
    run_version = "0000000";   /* trained by another hasten: its engine may be faster or slower */
    make_run_on("c-version", "done", "{ steps = 2 }", 0, 2, 128, "");
    run_version = NULL;
    run_format = 2;   /* a newer hasten's files: not read */
    const char *newer = make_run_on("c-format", "done", "{ steps = 2 }", 0, 2, 128, "");
    run_format = 1;
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &two, 128, 2, 0, dir), 0);
    const char *good = make_run_on("d-good", "done", "{ steps = 2 }", 0, 2, 128, ",\"device\":\"cpu\"");
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &two, 128, 2, 0, dir), 1);
    assert_string_equal(dir, good);
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &three, 128, 2, 0, dir), 0);
    assert_int_equal(find_baseline(runs, "recipes/y.lua", "synthetic", &two, 128, 2, 0, dir), 0);
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "fashion-mnist", &two, 128, 2, 0, dir), 0);
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &two, 128, 1, 0, dir), 1);
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &two, 512, 2, 0, dir), 1);
    assert_non_null(strstr(dir, "c-batch"));   /* the batch-512 run, for a batch-512 workbench only */
    run_eval = ", eval = { every = 50 }";   /* evaluated more often: its time to target is sooner */
    make_run_on("e-eval", "done", "{ steps = 2 }", 0, 2, 128, ",\"device\":\"cpu\"");
    run_eval = "";
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &two, 128, 2, 0, dir), 1);
    assert_string_equal(dir, good);
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &two, 128, 2, 50, dir), 1);
    assert_non_null(strstr(dir, "e-eval"));
    assert_int_equal(find_baseline(runs, "recipes/x.lua", "synthetic", &two, 128, 2, 25, dir), 0);

    ui_run *r = calloc(1, sizeof *r);
    snprintf(r->target_metric, sizeof r->target_metric, "test_acc");
    r->target_value = 0.9;
    assert_int_equal(ui_history_read(good, r, err, sizeof err), 0);
    assert_string_equal(r->name, "baseline");
    assert_int_equal(r->budget.unit, BUDGET_STEPS);
    assert_int_equal(r->n, 3);   /* the cut line is skipped */
    assert_int_equal(r->rec[2].is_eval, 1);
    assert_true(fabs(r->rec[2].test_acc - 0.92) < 1e-6);
    assert_int_equal(r->n_metric_names, 1);   /* a plugin metric, for the y axis */
    assert_string_equal(r->metric_names[0], "grad_norm");
    assert_true(r->rec[1].extra_mask == 1 && r->rec[1].extra[0] == 4.5f && r->rec[0].extra_mask == 0);
    assert_true(r->rec[1].phase[PHASE_BACKWARD] == 0.25f && r->rec[0].phase[PHASE_BACKWARD] == 0);
    assert_true(fabs(ui_run_ttt(r) - 1.0) < 1e-9);
    assert_true(r->phase[PHASE_BACKWARD] == 3);
    assert_int_equal(atomic_load(&r->state), UI_RUN_DONE);
    ui_run_free(r);

    r = calloc(1, sizeof *r);
    assert_int_equal(ui_history_read(make_run("e-named", "stopped", "{ epochs = 1 }", 1, 2), r, err, sizeof err), 0);
    assert_string_equal(r->name, "label_smoothing");
    assert_int_equal(atomic_load(&r->state), UI_RUN_STOPPED);
    ui_run_free(r);
    r = calloc(1, sizeof *r);
    assert_int_equal(ui_history_read(runs, r, err, sizeof err), -1);   /* not a run folder */
    ui_run_free(r);
    r = calloc(1, sizeof *r);
    assert_int_equal(ui_history_read(newer, r, err, sizeof err), -1);
    assert_non_null(strstr(err, "c-format/summary.json: format version 2, this hasten reads version 1"));
    ui_run_free(r);

    /* A metrics.jsonl line that is JSON but no record hasten writes: the folder is refused, saying
     * which line (a list crashed the reader; a count past a long's range was undefined). */
    static const char *const damage[][2] = {
        { "[4.5]", "line 1: not a JSON object" },
        { "{\"step\":3,\"samples\":1e300,\"seconds\":1.5}", "line 1: samples is 1e+300, not a whole number" },
        { "{\"step\":3,\"seconds\":-2,\"test_acc\":0.9}", "line 1: seconds is -2" },
        { "{\"step\":3,\"seconds\":2,\"test_acc\":91}", "line 1: test_acc is 91" },
    };
    const char *bad = make_run("f-damaged", "done", "{ steps = 2 }", 0, 2);
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        test_write_file("runs/f-damaged/metrics.jsonl", damage[i][0], strlen(damage[i][0]));
        r = calloc(1, sizeof *r);
        assert_int_equal(ui_history_read(bad, r, err, sizeof err), -1);
        if (!strstr(err, damage[i][1]) || !strstr(err, "f-damaged/metrics.jsonl: ")) fail_msg("%s", err);
        ui_run_free(r);
    }
    /* So is a summary.json number out of its range (a negative phase overran the step-time legend). */
    static const char summary[] = "{\"version\":1,\"status\":\"done\",\"phase_seconds\":{\"forward\":-1e300}}";
    test_write_file("runs/f-damaged/metrics.jsonl", "", 0);
    test_write_file("runs/f-damaged/summary.json", summary, strlen(summary));
    r = calloc(1, sizeof *r);
    assert_int_equal(ui_history_read(bad, r, err, sizeof err), -1);
    assert_non_null(strstr(err, "f-damaged/summary.json: phase_seconds.forward is -1e+300, not a number in [0, 1e+12]"));
    ui_run_free(r);
}

/* The demo's shorter baseline: two thirds of the budget, never the whole of it again. */
static void test_scaled_budget(void **s)
{
    const double third2 = 2.0 / 3.0;
    budget_spec b = ui_runs_scaled_budget((budget_spec){ BUDGET_EPOCHS, 3 }, third2);
    assert_int_equal(b.unit, BUDGET_EPOCHS);
    assert_true(b.amount == 2);
    b = ui_runs_scaled_budget((budget_spec){ BUDGET_EPOCHS, 1 }, third2);
    assert_true(b.amount == 0.67);   /* it read 1ep: the baseline trained again in full */
    b = ui_runs_scaled_budget((budget_spec){ BUDGET_STEPS, 1000 }, third2);
    assert_true(b.unit == BUDGET_STEPS && b.amount == 667);
    b = ui_runs_scaled_budget((budget_spec){ BUDGET_SECONDS, 30 }, third2);
    assert_true(b.amount == 20);
    b = ui_runs_scaled_budget((budget_spec){ BUDGET_STEPS, 1 }, third2);
    assert_true(b.amount == 1);
}

/* The workbench loads a text recipe's windows at the recipe's context, as hasten run does (its
 * model's size follows them; at the default 64 the run's weights.bin did not fit its recipe.lua). */
static void test_queue_text_context(void **s)
{
    char err[512], path[700];
    snprintf(path, sizeof path, "%s/ctx.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 400; i++) fputs("to be or not to be, that is the question. ", f);
    fclose(f);
    char text[1200];
    snprintf(text, sizeof text, "return { data = { \"text\", path = \"%s\", context = 16 }, "
             "model = nn.sequential { nn.embed(8), nn.layernorm(), nn.linear(30) }, budget = { steps = 4 } }", path);
    train_config recipe;
    assert_int_equal(recipe_load_string(text, "ctx.lua", &recipe, err, sizeof err), 0);
    static ui_log log;
    ui_log_init(&log);
    static ui_runs q;
    assert_int_equal(ui_runs_start(&q, &recipe, &log, err, sizeof err), 0);
    for (int i = 0; i < 2000 && atomic_load(&q.data_state) == 0; i++) usleep(5000);
    assert_int_equal(atomic_load(&q.data_state), 1);
    assert_int_equal(q.ds.tokens, 16);
    ui_runs_shutdown(&q);
    config_free(&recipe);
}

/* ---- the queue and its worker -------------------------------------------------------------------- */

static void wait_state(ui_runs *q, ui_run *r, int state)
{
    for (int i = 0; i < 6000 && atomic_load(&r->state) != state; i++) {
        ui_runs_update(q);
        usleep(5000);
    }
    ui_runs_update(q);
    assert_int_equal(atomic_load(&r->state), state);
}

static void test_queue_worker(void **s)
{
    char runs[700], err[512];
    snprintf(runs, sizeof runs, "%s/queue-runs", test_tmpdir());
    setenv("HASTEN_RUNS_DIR", runs, 1);
    cpu_threads_init(2);
    train_config recipe;
    const char *text = "return { data = { \"synthetic\" }, model = nn.sequential { nn.flatten(), nn.linear(10) },"
                       " budget = { steps = 40 }, eval = { every = 20 }, target = { test_acc = 0.05 } }";
    assert_int_equal(recipe_load_string(text, "tiny.lua", &recipe, err, sizeof err), 0);
    snprintf(recipe.recipe_path, sizeof recipe.recipe_path, "tiny.lua");
    static ui_log log;
    ui_log_init(&log);
    static ui_runs q;
    assert_int_equal(ui_runs_start(&q, &recipe, &log, err, sizeof err), 0);

    ui_run *a = ui_runs_queue(&q, NULL, 0, recipe.budget, NULL);
    budget_spec long_budget = { BUDGET_STEPS, 100000 };
    ui_run *b = ui_runs_queue(&q, NULL, 0, long_budget, NULL);
    ui_run *c = ui_runs_queue(&q, NULL, 0, recipe.budget, NULL);
    assert_int_equal(q.n, 3);
    assert_string_equal(a->name, "baseline");
    wait_state(&q, a, UI_RUN_DONE);
    assert_true(a->n >= 40);
    assert_int_equal(a->rec[a->n - 1].step, 40);
    assert_true(ui_run_ttt(a) > 0);
    assert_true(a->phase[PHASE_FORWARD] > 0);
    assert_null(a->live.t);   /* harvested: the trainer is gone, the series stays */
    char path[1300];
    snprintf(path, sizeof path, "%s/summary.json", a->dir);
    assert_int_equal(access(path, R_OK), 0);
    assert_int_equal(strncmp(a->dir, runs, strlen(runs)), 0);

    /* b trains next, alone; c waits. Pause, then stop: b's files stay complete. */
    wait_state(&q, b, UI_RUN_RUNNING);
    assert_ptr_equal(ui_runs_active(&q), b);
    assert_int_equal(ui_runs_count(&q, UI_RUN_QUEUED), 1);
    ui_runs_pause(&q, 1);
    ui_runs_stop(&q, c);   /* queued: dropped */
    assert_int_equal(q.n, 2);
    ui_runs_stop(&q, b);
    wait_state(&q, b, UI_RUN_STOPPED);
    snprintf(path, sizeof path, "%s/summary.json", b->dir);
    char *sum = test_read_file(path, NULL);
    assert_non_null(sum);
    assert_non_null(strstr(sum, "\"stopped\""));
    free(sum);
    assert_null(ui_runs_active(&q));

    /* Removing a finished run keeps its folder; removing the baseline clears it. */
    q.baseline = a;
    char adir[1100];
    snprintf(adir, sizeof adir, "%s", a->dir);
    ui_runs_remove(&q, a);
    assert_int_equal(q.n, 1);
    assert_null(q.baseline);
    assert_int_equal(access(adir, R_OK), 0);

    /* Shutdown with a run training stops it cleanly. */
    ui_run *d = ui_runs_queue(&q, NULL, 0, long_budget, NULL);
    wait_state(&q, d, UI_RUN_RUNNING);
    ui_runs_shutdown(&q);
    assert_int_equal(q.n, 0);
    ui_runs_shutdown(&q);   /* twice is fine */

    char lines[UI_LOG_LINES][UI_LOG_WIDTH];
    uint8_t level[UI_LOG_LINES];
    int n = ui_log_last(&log, UI_LOG_LINES, lines, level), saw_started = 0;
    for (int i = 0; i < n; i++) saw_started |= strstr(lines[i], "#1 baseline started") != NULL;
    assert_true(saw_started);
    ui_log_destroy(&log);
    config_free(&recipe);
    unsetenv("HASTEN_RUNS_DIR");
}

static void test_log_ring(void **s)
{
    static ui_log log;
    static char lines[UI_LOG_LINES][UI_LOG_WIDTH];
    uint8_t level[UI_LOG_LINES];
    ui_log_init(&log);
    assert_int_equal(ui_log_last(&log, 5, lines, level), 0);
    for (int i = 0; i < UI_LOG_LINES + 10; i++) ui_log_add(&log, i % 2, "line %d\nwith a newline", i);
    int n = ui_log_last(&log, 3, lines, level);
    assert_int_equal(n, 3);
    char want[64];
    snprintf(want, sizeof want, "line %d with a newline", UI_LOG_LINES + 9);
    assert_string_equal(lines[2], want);
    assert_int_equal(level[2], (UI_LOG_LINES + 9) % 2);
    assert_int_equal(ui_log_last(&log, UI_LOG_LINES * 2, lines, level), UI_LOG_LINES);
    char p[UI_LOG_WIDTH];
    ui_log_progress_set(&log, "fetching 40%");
    ui_log_progress_get(&log, p, sizeof p);
    assert_string_equal(p, "fetching 40%");
    ui_log_destroy(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_braille_bits), cmocka_unit_test(test_canvas_dots_and_lines),
        cmocka_unit_test(test_ascii_cells), cmocka_unit_test(test_dot_cell), cmocka_unit_test(test_nice_steps),
        cmocka_unit_test(test_linear_ticks), cmocka_unit_test(test_log_ticks),
        cmocka_unit_test(test_scale_fit_and_pos), cmocka_unit_test(test_tick_labels),
        cmocka_unit_test(test_layout_sizes), cmocka_unit_test(test_layout_too_small), cmocka_unit_test(test_help_rect),
        cmocka_unit_test(test_formats), cmocka_unit_test(test_eval_cadence), cmocka_unit_test(test_quit_prompt), cmocka_unit_test(test_param_prompt), cmocka_unit_test(test_plot_hint), cmocka_unit_test(test_verdict), cmocka_unit_test(test_clip_text), cmocka_unit_test(test_split_and_bars), cmocka_unit_test(test_ema),
        cmocka_unit_test(test_target_and_x), cmocka_unit_test(test_run_append), cmocka_unit_test(test_run_speedup),
        cmocka_unit_test(test_catalog_order_and_find), cmocka_unit_test(test_catalog_by_data), cmocka_unit_test(test_choices_check), cmocka_unit_test(test_queue_text_context), cmocka_unit_test(test_scaled_budget),
        cmocka_unit_test(test_param_check),
        cmocka_unit_test(test_choices_to_specs), cmocka_unit_test(test_history),
        cmocka_unit_test(test_log_ring), cmocka_unit_test(test_queue_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
