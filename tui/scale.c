/* Axis scales for the plot: fitting a range to the data, "nice number" ticks on linear and log
 * axes, and compact tick labels. Not for drawing: tui/ui_plot.c places the labels. */
#include "tui/ui_draw.h"
#include <math.h>
#include <stdio.h>

double ui_scale_pos(const ui_scale *s, double v)
{
    if (s->log) {
        if (!(v > 0)) return NAN;
        return (log10(v) - log10(s->lo)) / (log10(s->hi) - log10(s->lo));
    }
    return (v - s->lo) / (s->hi - s->lo);
}

double ui_nice_step(double range, int max_ticks)
{
    if (max_ticks < 2) max_ticks = 2;
    if (!(range > 0) || !isfinite(range)) return 1;
    double raw = range / (max_ticks - 1), mag = pow(10, floor(log10(raw)));
    static const double nice[] = { 1, 2, 2.5, 5, 10 };
    for (int i = 0; i < 5; i++)
        if (nice[i] * mag >= raw * (1 - 1e-9)) return nice[i] * mag;
    return 10 * mag;
}

void ui_scale_fit(ui_scale *s, double lo, double hi, int log, int zero0)
{
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    s->log = log;
    if (log) {
        if (!(hi > 0)) hi = 1;
        if (!(lo > 0)) lo = hi / 100;
        double a = log10(lo), b = log10(hi), pad = (b - a) * 0.05;
        if (b - a < 1e-6) pad = 0.15;
        s->lo = pow(10, a - pad);
        s->hi = pow(10, b + pad);
        return;
    }
    double span = hi - lo, pad = span * 0.05;
    if (span <= fabs(hi) * 1e-9) pad = hi != 0 ? fabs(hi) * 0.1 : 1;
    s->lo = zero0 && lo >= 0 ? 0 : lo - pad;
    s->hi = hi + pad;
    if (lo >= 0 && s->lo < 0) s->lo = 0;   /* losses and accuracies are never negative */
}

static int count_ticks(double lo, double hi, double st)
{
    return (int)(floor(hi / st + 1e-9) - ceil(lo / st - 1e-9) + 1);
}

/* The densest nice step that still gives at most max_ticks ticks. */
static int linear_ticks(double lo, double hi, int max_ticks, double *ticks, int cap, double *step)
{
    static const double nice[] = { 1, 2, 2.5, 5 };
    double st = ui_nice_step(hi - lo, max_ticks);
    for (int guard = 0; guard < 64; guard++) {
        double mag = pow(10, floor(log10(st) + 1e-9)), m = st / mag, smaller = mag / 2;
        for (int i = 3; i >= 0; i--)
            if (nice[i] < m * (1 - 1e-9)) { smaller = nice[i] * mag; break; }
        if (count_ticks(lo, hi, smaller) > max_ticks) break;
        st = smaller;
    }
    int n = 0;
    for (double k = ceil(lo / st - 1e-9); n < cap; k++) {
        double v = k * st;
        if (v > hi + st * 1e-9) break;
        ticks[n++] = fabs(v) < st * 1e-9 ? 0 : v;
    }
    *step = st;
    return n;
}

/* Log ticks with mantissas m[0..nm) every `every` decades; returns the count, or -1 if over max. */
static int log_ticks(const ui_scale *s, const double *m, int nm, int every, int max_ticks,
                     double *ticks, int cap)
{
    int n = 0;
    int d0 = (int)floor(log10(s->lo)), d1 = (int)ceil(log10(s->hi));
    for (int d = d0; d <= d1; d++) {
        if (((d % every) + every) % every) continue;
        for (int i = 0; i < nm; i++) {
            double v = m[i] * pow(10, d);
            if (v < s->lo * (1 - 1e-9) || v > s->hi * (1 + 1e-9)) continue;
            if (n == max_ticks || n == cap) return -1;
            ticks[n++] = v;
        }
    }
    return n;
}

int ui_scale_ticks(const ui_scale *s, int max_ticks, double *ticks, int cap, double *step)
{
    if (max_ticks > cap) max_ticks = cap;
    if (max_ticks < 1 || !(s->hi > s->lo)) { *step = 1; return 0; }
    if (!s->log) return linear_ticks(s->lo, s->hi, max_ticks, ticks, cap, step);
    static const double m125[] = { 1, 2, 5 }, m1[] = { 1 };
    int n = log_ticks(s, m125, 3, 1, max_ticks, ticks, cap);
    if (n < 0) n = log_ticks(s, m1, 1, 1, max_ticks, ticks, cap);
    for (int every = 2; n < 0 && every < 400; every *= 2) n = log_ticks(s, m1, 1, every, max_ticks, ticks, cap);
    if (n >= 2) { *step = 0; return n; }
    /* Less than a decade or so: plain ticks, placed on the log axis. */
    return linear_ticks(s->lo, s->hi, max_ticks, ticks, cap, step);
}

/* Decimals needed to write multiples of step exactly (0 to 6). */
static int decimals_for(double step)
{
    step = fabs(step);
    for (int d = 0; d < 6; d++) {
        double x = step * pow(10, d);
        if (fabs(x - round(x)) < 1e-6 * x) return d;
    }
    return 6;
}

void ui_format_tick(double v, double step, char *out, size_t len)
{
    if (!(step > 0)) step = v;   /* log ticks: each label by its own digits */
    if (v == 0 || fabs(v) < fabs(step) * 1e-9) {
        snprintf(out, len, "0");
        return;
    }
    double a = fabs(v);
    if (a >= 1e6 && fabs(step) >= 1e5) snprintf(out, len, "%.*fM", decimals_for(step / 1e6), v / 1e6);
    else if (a >= 1e4 && fabs(step) >= 100) snprintf(out, len, "%.*fk", decimals_for(step / 1e3), v / 1e3);
    else snprintf(out, len, "%.*f", decimals_for(step), v);
}
