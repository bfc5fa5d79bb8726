/* The workbench's state, shared by the event loop (tui/ui_app.c) and the panes that draw it
 * (tui/ui_panes.c, tui/ui_plot.c). Not for pure logic: that lives behind tui/ui_draw.h. */
#ifndef HASTEN_UI_APP_H
#define HASTEN_UI_APP_H

#include <curses.h>
#include "tui/ui_catalog.h"
#include "tui/ui_draw.h"
#include "tui/ui_runs.h"

enum { UI_FOCUS_RUNS, UI_FOCUS_PLUGINS };
enum { UI_PROMPT_NONE, UI_PROMPT_QUIT, UI_PROMPT_PARAM };

/* Colour pairs (monochrome terminals get attributes only). */
enum {
    UI_PAIR_RUN0 = 1,        /* 1..6: the runs' colours */
    UI_PAIR_BASELINE = 7,
    UI_PAIR_TARGET,
    UI_PAIR_BAR,             /* header and footer */
    UI_PAIR_KEY,             /* footer key names */
    UI_PAIR_ERROR,
    UI_PAIR_GOOD,
    UI_PAIR_SELECT,
    UI_PAIR_TITLE,
    UI_PAIR_PHASE0,          /* the step-time phases, PHASE_COUNT of them */
};
#define UI_RUN_COLORS 6

/* Glyphs with an ASCII stand-in. */
enum {
    UI_G_HLINE, UI_G_VLINE, UI_G_CORNER, UI_G_TICK_X, UI_G_TICK_Y, UI_G_MARK, UI_G_BLOCK,
    UI_G_STAR, UI_G_ARROW, UI_G_SWATCH, UI_G_DOT, UI_G_SHADE, UI_G_PAUSE, UI_G_COUNT
};

typedef struct ui_app {
    /* set up once */
    char recipe_name[64];          /* "fmnist_cnn" */
    char device_note[512];         /* --device auto's choice when it fell back to the CPU, or "" */
    train_config recipe;           /* the recipe as loaded, options applied */
    budget_spec recipe_budget;
    int threads;
    int demo, utf8, color;
    ui_layout_mode mode;

    /* what the person chose */
    budget_spec next_budget;       /* for the next queued run */
    int xmode, ymode, logy, zoom;  /* plot: UI_X_*, UI_Y_*, log y, index into the zoom levels */
    char ymetric[32];              /* UI_Y_CUSTOM: the plugin metric plotted */
    int focus, sel_run, sel_plugin;
    int followed;                  /* id of the last run selected because it started */
    ui_catalog cat;
    ui_choice *choices;            /* (cat.n) */

    /* live state */
    ui_runs runs;
    ui_log log;
    ui_canvas canvas;
    ui_layout lay;
    int cols, rows;
    int baseline_checked;          /* looked on disk once the data was in */
    int demo_told;                 /* the demo's verdict is in the log */
    int help;
    int prompt, edit_param;        /* UI_PROMPT_*; parameter being edited */
    char edit[64];
    ui_choice edit_undo;           /* the plugin's choices before e: Esc puts them back */
    char note[200];                /* a short message in the footer ... */
    double note_until;             /* ... until this time */
    int note_err;
    int quit;
} ui_app;

/* Zoom levels: 0 = fit all, else the last N seconds of the training clock. */
extern const double ui_zoom_seconds[];
extern const int ui_zoom_count;

/* ---- drawing helpers (tui/ui_panes.c) ------------------------------------------------------ */

/* Writes fmt at (y, x), cut to w columns (text of single-width characters); text cut to fit ends
 * in an ellipsis (ui_clip_text), so a cut reference or path does not read as whole. */
void ui_put(int y, int x, int w, attr_t attr, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The ellipsis ui_put marks cuts with: "~" when ascii (--ascii, or a locale that is not UTF-8). */
void ui_put_ascii(int ascii);
/* Draws glyph g (UI_G_*) at (y, x), n times to the right. */
void ui_glyph(const ui_app *a, int y, int x, int g, int n, attr_t attr);
/* Attribute of a colour pair, or of its monochrome fallback. */
attr_t ui_attr(const ui_app *a, int pair);
/* The colour pair of a run in plots and the runs pane (the baseline has its own). */
int ui_run_pair(const ui_app *a, const ui_run *r);
/* Pane title on row r.y: bold name, then a dim hint. */
void ui_title(const ui_app *a, ui_rect r, const char *name, const char *hint, int focused);

/* ---- the panes, each filling its rect ------------------------------------------------------ */

void ui_draw_header(ui_app *a, ui_rect r);
void ui_draw_plot(ui_app *a, ui_rect r);        /* tui/ui_plot.c */
void ui_draw_runs(ui_app *a, ui_rect r);
void ui_draw_plugins(ui_app *a, ui_rect r);
void ui_draw_steps(ui_app *a, ui_rect r);
void ui_draw_log(ui_app *a, ui_rect r);
void ui_draw_footer(ui_app *a, ui_rect r);
void ui_draw_help(ui_app *a);
void ui_draw_too_small(ui_app *a);

/* The run the step-time pane and keys act on: the selected one, or NULL. */
ui_run *ui_selected_run(ui_app *a);

#endif
