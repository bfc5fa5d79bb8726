/* Where each pane goes for a terminal size: header, plot, runs and plugins, step-time bar, log,
 * footer, top to bottom. Not for drawing: the panes fill the rects they are given. */
#include "tui/ui_draw.h"

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void ui_layout_compute(int cols, int rows, ui_layout_mode mode, ui_layout *l)
{
    *l = (ui_layout){0};
    if (cols < 1 || rows < 1) return;
    l->header = (ui_rect){ 0, 0, cols, 1 };
    if (rows > 1) l->footer = (ui_rect){ 0, rows - 1, cols, 1 };
    if (cols < UI_MIN_COLS || rows < UI_MIN_ROWS) return;
    l->ok = 1;
    int avail = rows - 2, steps_h = 2, log_h, mid_h;
    if (mode != UI_LAYOUT_WORKBENCH) {
        mid_h = clamp(avail / 4, 7, 9);
        log_h = 3;
        if (mode == UI_LAYOUT_DEMO_DONE) {   /* the plot keeps 9 rows at 24 */
            steps_h = 0;
            log_h = clamp(avail - mid_h - 9, 3, 7);
        }
    } else {
        log_h = clamp(avail / 7, 3, 8);
        mid_h = clamp((avail - steps_h - log_h) * 2 / 5, 6, 14);
    }
    int plot_h = avail - steps_h - log_h - mid_h, y = 1;
    l->plot = (ui_rect){ 0, y, cols, plot_h };
    y += plot_h;
    if (mode != UI_LAYOUT_WORKBENCH) {
        l->runs = (ui_rect){ 0, y, cols, mid_h };
    } else if (cols >= UI_SIDE_BY_SIDE_COLS) {
        int runs_w = cols * 3 / 5;
        l->runs = (ui_rect){ 0, y, runs_w, mid_h };
        l->plugins = (ui_rect){ runs_w, y, cols - runs_w, mid_h };
    } else {
        l->shared = 1;
        l->runs = l->plugins = (ui_rect){ 0, y, cols, mid_h };
    }
    y += mid_h;
    if (steps_h) l->steps = (ui_rect){ 0, y, cols, steps_h };
    y += steps_h;
    l->log = (ui_rect){ 0, y, cols, log_h };
}

ui_rect ui_plot_canvas_rect(ui_rect plot, int label_w)
{
    return (ui_rect){ plot.x + label_w + 1, plot.y + 1, plot.w - label_w - 2, plot.h - 3 };
}

ui_rect ui_help_rect(int cols, int rows, int n, int *gap)
{
    int w = cols - 2 < 72 ? cols - 2 : 72, room = rows - 2;
    *gap = n + 4 <= room;
    int h = n + 2 + 2 * *gap;
    if (h > room) h = room;
    if (w < 0) w = 0;
    if (h < 0) h = 0;
    return (ui_rect){ (cols - w) / 2, (rows - h) / 2, w, h };
}
