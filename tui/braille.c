/* The braille canvas: dots in 2 x 4 cells, clipped line drawing, and the character of a cell in
 * braille or ASCII. Not for colours or curses: a cell only carries a style number. */
#include "tui/ui_draw.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int ui_canvas_resize(ui_canvas *c, int w, int h)
{
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    if (w != c->w || h != c->h || !c->bits) {
        free(c->bits);
        free(c->style);
        c->bits = malloc((size_t)w * h);
        c->style = malloc((size_t)w * h);
        if (!c->bits || !c->style) {
            ui_canvas_free(c);
            return -1;
        }
        c->w = w;
        c->h = h;
    }
    ui_canvas_clear(c);
    return 0;
}

void ui_canvas_free(ui_canvas *c)
{
    free(c->bits);
    free(c->style);
    *c = (ui_canvas){0};
}

void ui_canvas_clear(ui_canvas *c)
{
    if (!c->bits) return;
    memset(c->bits, 0, (size_t)c->w * c->h);
    memset(c->style, 0, (size_t)c->w * c->h);
}

uint8_t ui_braille_bit(int dx, int dy)
{
    /* U+2800 numbering: dots 1-3 down the left column, 4-6 down the right, 7 and 8 below. */
    static const uint8_t bit[4][2] = { {0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80} };
    return (dx & ~1) || (dy & ~3) ? 0 : bit[dy][dx];
}

void ui_canvas_dot(ui_canvas *c, int x, int y, uint8_t style)
{
    if (!c->bits || x < 0 || y < 0 || x >= 2 * c->w || y >= 4 * c->h) return;
    size_t i = (size_t)(y / 4) * c->w + x / 2;
    if (c->style[i] != style) {   /* a new layer takes the whole cell */
        c->bits[i] = 0;
        c->style[i] = style;
    }
    c->bits[i] |= ui_braille_bit(x % 2, y % 4);
}

/* Liang-Barsky: clips the segment to [0, xmax] x [0, ymax]; returns 0 when nothing is left. */
static int clip(double *x0, double *y0, double *x1, double *y1, double xmax, double ymax)
{
    double dx = *x1 - *x0, dy = *y1 - *y0, t0 = 0, t1 = 1;
    double p[4] = { -dx, dx, -dy, dy }, q[4] = { *x0, xmax - *x0, *y0, ymax - *y0 };
    for (int k = 0; k < 4; k++) {
        if (p[k] == 0) {
            if (q[k] < 0) return 0;
            continue;
        }
        double r = q[k] / p[k];
        if (p[k] < 0) { if (r > t1) return 0; if (r > t0) t0 = r; }
        else          { if (r < t0) return 0; if (r < t1) t1 = r; }
    }
    double ox = *x0, oy = *y0;
    *x0 = ox + t0 * dx; *y0 = oy + t0 * dy;
    *x1 = ox + t1 * dx; *y1 = oy + t1 * dy;
    return 1;
}

void ui_canvas_line(ui_canvas *c, double x0, double y0, double x1, double y1, uint8_t style)
{
    if (!c->bits || !isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) return;
    /* Dot centres sit at integers; the canvas spans [-0.5, 2w - 0.5) in dot units. */
    double xmax = 2.0 * c->w - 1, ymax = 4.0 * c->h - 1;
    if (!clip(&x0, &y0, &x1, &y1, xmax, ymax)) return;
    int ax = (int)lround(x0), ay = (int)lround(y0), bx = (int)lround(x1), by = (int)lround(y1);
    int dx = abs(bx - ax), dy = -abs(by - ay), sx = ax < bx ? 1 : -1, sy = ay < by ? 1 : -1;
    int err = dx + dy;
    for (;;) {   /* Bresenham */
        ui_canvas_dot(c, ax, ay, style);
        if (ax == bx && ay == by) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; ax += sx; }
        if (e2 <= dx) { err += dx; ay += sy; }
    }
}

int ui_dot_cell(double dot, int per)
{
    long d = lround(dot);
    return d < 0 ? -1 : (int)(d / per);
}

unsigned ui_braille_codepoint(uint8_t bits) { return 0x2800u + bits; }

char ui_ascii_cell(uint8_t bits)
{
    if (!bits) return ' ';
    int top = -1, bottom = -1, sum = 0, count = 0;
    for (int dy = 0; dy < 4; dy++)
        for (int dx = 0; dx < 2; dx++)
            if (bits & ui_braille_bit(dx, dy)) {
                if (top < 0) top = dy;
                bottom = dy;
                sum += dy;
                count++;
            }
    if (bottom - top >= 2) return '|';
    static const char by_height[4] = { '\'', '-', '.', '_' };
    return by_height[(2 * sum + count) / (2 * count)];   /* rounded mean row */
}
