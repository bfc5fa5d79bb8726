/* Text formats of the panes (durations, speedups, bars) and small series arithmetic (smoothing,
 * time to target, the x value of a record). Not for curses: callers print the strings. */
#include "tui/ui_draw.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

void ui_format_duration(double s, char *out, size_t len)
{
    if (!(s >= 0) || !isfinite(s)) snprintf(out, len, "--");
    else if (s < 10) snprintf(out, len, "%.2fs", s);
    else if (s < 59.95) snprintf(out, len, "%.1fs", s);
    else if (s < 3600) {
        long r = lround(s);
        snprintf(out, len, "%ldm%02lds", r / 60, r % 60);
    } else {
        long m = lround(s / 60);
        snprintf(out, len, "%ldh%02ldm", m / 60, m % 60);
    }
}

static int known(double t) { return t > 0 && isfinite(t); }

double ui_format_speedup(double base_ttt, double base_span, double ttt, double span, char *out, size_t len)
{
    double v = 0;
    char rel = 0;
    if (known(base_ttt) && known(ttt)) v = base_ttt / ttt;
    else if (known(ttt) && !known(base_ttt) && known(base_span)) v = base_span / ttt, rel = '>';
    else if (known(base_ttt) && !known(ttt) && known(span)) v = base_ttt / span, rel = '<';
    if (!v) {
        snprintf(out, len, "--");
        return 0;
    }
    if (rel) snprintf(out, len, "%c%.2fx", rel, v);
    else snprintf(out, len, "%.2fx", v);
    return !rel || (rel == '>' && v >= 1) || (rel == '<' && v <= 1) ? v : 0;
}

void ui_format_verdict(const char *name, const char *target, double ttt, double span, int is_base,
                       double base_ttt, double base_span, char *out, size_t len)
{
    char t[24], sp[24], other[24];
    int reached = known(ttt);
    ui_format_duration(reached ? ttt : span, t, sizeof t);
    int n = snprintf(out, len, "%s %s %s in %s%s", name, reached ? "reached" : "did not reach", target,
                     reached ? "" : "its ", t);
    if (is_base || n < 0 || (size_t)n >= len) return;
    if (ui_format_speedup(base_ttt, base_span, ttt, span, sp, sizeof sp)) {
        snprintf(out + n, len - (size_t)n, ": speedup %s", sp);
    } else if (reached && !known(base_ttt) && known(base_span)) {
        ui_format_duration(base_span, other, sizeof other);
        snprintf(out + n, len - (size_t)n, "; the baseline did not in its %s", other);
    } else if (!reached && known(base_ttt)) {
        ui_format_duration(base_ttt, other, sizeof other);
        snprintf(out + n, len - (size_t)n, "; the baseline reached it in %s", other);
    }
}

int ui_clip_text(const char *s, int width, const char *ellipsis, char *out, size_t len)
{
    size_t fit = 0, last = 0;   /* bytes of the characters that fit; of all but the last of them */
    int cols = 0;
    while (s[fit] && cols < width) {
        last = fit++;
        while (((unsigned char)s[fit] & 0xc0) == 0x80) fit++;   /* a character's later bytes */
        cols++;
    }
    const char *rest = s + fit;
    if (ellipsis && cols && rest[strspn(rest, " ")]) snprintf(out, len, "%.*s%s", (int)last, s, ellipsis);
    else snprintf(out, len, "%.*s", (int)fit, s);
    return cols;
}

int ui_split_widths(const double *parts, int n, int width, int *out)
{
    double total = 0, rem[16];
    for (int i = 0; i < n; i++) total += parts[i] > 0 ? parts[i] : 0;
    if (!(total > 0) || width <= 0 || n > 16) {
        for (int i = 0; i < n; i++) out[i] = 0;
        return 0;
    }
    int used = 0;
    for (int i = 0; i < n; i++) {
        double exact = (parts[i] > 0 ? parts[i] : 0) / total * width;
        out[i] = (int)exact;
        rem[i] = exact - out[i];
        used += out[i];
    }
    while (used < width) {   /* largest remainder first; ties to the earlier part */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (rem[i] > rem[best]) best = i;
        out[best]++;
        rem[best] = -1;
        used++;
    }
    return used;
}

void ui_format_bar(double frac, int width, int utf8, char *out, size_t len)
{
    static const char *eighths[8] = { "", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589" };
    if (!(frac > 0)) frac = 0;
    if (frac > 1) frac = 1;
    size_t n = 0;
    out[0] = 0;
    int full = (int)(frac * width), part = (int)((frac * width - full) * 8), col = 0;
    for (; col < full; col++) n += (size_t)snprintf(out + n, len > n ? len - n : 0, "%s", utf8 ? "\u2588" : "#");
    if (col < width && utf8 && part) {
        n += (size_t)snprintf(out + n, len > n ? len - n : 0, "%s", eighths[part]);
        col++;
    }
    for (; col < width; col++) n += (size_t)snprintf(out + n, len > n ? len - n : 0, " ");
}

void ui_format_plot_hint(const char *target, int logy, double zoom_s, int room, char *out, size_t len)
{
    char state[64];
    if (zoom_s > 0) snprintf(state, sizeof state, "%slast %gs ", logy ? "log   " : "", zoom_s);
    else snprintf(state, sizeof state, "%sfit all ", logy ? "log   " : "");
    int n = snprintf(out, len, "%s%s%s", target, target[0] ? "   " : "", state);
    if (n <= room) return;
    n = snprintf(out, len, "%s", state);
    if (n > room) out[0] = 0;
}

void ui_format_eval_cadence(int every_steps, int every_epochs, long steps_per_epoch, char *out, size_t len)
{
    if (every_steps > 0) {
        long per_epoch = steps_per_epoch / every_steps;
        int n = snprintf(out, len, "one every %d step%s", every_steps, every_steps == 1 ? "" : "s");
        if (per_epoch >= 2 && n >= 0 && (size_t)n < len) snprintf(out + n, len - (size_t)n, ", %ld an epoch", per_epoch);
    } else if (every_epochs > 1) {
        snprintf(out, len, "one every %d epochs", every_epochs);
    } else {
        snprintf(out, len, "one per epoch");
    }
}

int ui_format_param_prompt(const char *field, const char *value, int err_w, int width, char *out, size_t len)
{
    static const char keys[] = "  Enter set  Esc cancel ";
    int n = snprintf(out, len, " %s = %s_ ", field, value);
    if (n >= 0 && (!err_w || n + (int)sizeof keys - 1 + err_w + 2 <= width))
        n += snprintf(out + n, len > (size_t)n ? len - (size_t)n : 0, "%s", keys);
    return n;
}

void ui_format_quit_prompt(int active, int queued, int width, char *out, size_t len)
{
    static const char *const stops[] = { " The running run stops (its files stay complete)", " The running run stops, files complete",
                                         " The run stops, files complete", "" };
    static const char *const drops[] = { "%s %d queued run%s dropped", "%s %d queued run%s dropped", "%s %d queued dropped", "" };
    for (int terse = 0; terse < 4; terse++) {
        char clause[160] = "";
        int n = snprintf(clause, sizeof clause, "%s", active ? stops[terse] : "");
        if (queued && terse < 3)
            snprintf(clause + n, sizeof clause - (size_t)n, drops[terse], n ? ";" : "", queued, queued == 1 ? "" : "s");
        int w = snprintf(out, len, " Quit?%s%s  y quit  n stay ", clause, clause[0] ? "." : "");
        if (w <= width) return;
    }
}

void ui_ema_init(ui_ema *e, double weight)
{
    e->weight = weight;
    e->m = 0;
    e->corr = 1;
}

double ui_ema_push(ui_ema *e, double x)
{
    e->m = e->weight * e->m + (1 - e->weight) * x;
    e->corr *= e->weight;
    return e->corr < 1 ? e->m / (1 - e->corr) : x;
}

double ui_record_x(const trainer_record *r, int mode)
{
    switch (mode) {
    case UI_X_STEPS:   return (double)r->step;
    case UI_X_SAMPLES: return (double)r->samples;
    case UI_X_EPOCHS:  return r->epoch;
    default:           return r->seconds;
    }
}

int ui_target_index(const trainer_record *r, int n, const char *metric, double value)
{
    int acc = !strcmp(metric, "test_acc"), loss = !strcmp(metric, "test_loss");
    if (!acc && !loss) return -1;
    for (int i = 0; i < n; i++) {
        if (!r[i].is_eval) continue;
        if (config_target_met(metric, acc ? r[i].test_acc : r[i].test_loss, value)) return i;
    }
    return -1;
}
