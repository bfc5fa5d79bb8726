/* The baseline's Pareto frontier and readings against it (see frontier.h). */
#include "tui/frontier.h"
#include <math.h>
#include <stdlib.h>

static int by_time(const void *a, const void *b)
{
    const frontier_point *x = a, *y = b;
    if (x->seconds != y->seconds) return x->seconds < y->seconds ? -1 : 1;
    return x->quality > y->quality ? -1 : x->quality < y->quality;   /* better first at equal time */
}

void frontier_build(frontier *f, const frontier_point *pts, int n)
{
    frontier_point sorted[FRONTIER_MAX];
    if (n > FRONTIER_MAX) n = FRONTIER_MAX;
    for (int i = 0; i < n; i++) sorted[i] = pts[i];
    qsort(sorted, (size_t)n, sizeof *sorted, by_time);
    /* Along increasing time a point stays only if it beats every faster one. */
    f->n = 0;
    for (int i = 0; i < n; i++)
        if (!f->n || sorted[i].quality > f->p[f->n - 1].quality) f->p[f->n++] = sorted[i];
}

double frontier_quality_at(const frontier *f, double seconds)
{
    if (!f->n || seconds < f->p[0].seconds || seconds > f->p[f->n - 1].seconds) return NAN;
    for (int i = 0; i + 1 < f->n; i++) {
        const frontier_point *a = &f->p[i], *b = &f->p[i + 1];
        if (seconds <= b->seconds)
            return a->quality + (b->quality - a->quality) * (seconds - a->seconds) / (b->seconds - a->seconds);
    }
    return f->p[f->n - 1].quality;   /* one point, at exactly its time */
}

int frontier_time_for(const frontier *f, double q, double *seconds)
{
    if (!f->n) return -2;
    if (q <= f->p[0].quality) {
        *seconds = f->p[0].seconds;
        return q == f->p[0].quality ? 0 : -1;
    }
    for (int i = 0; i + 1 < f->n; i++) {
        const frontier_point *a = &f->p[i], *b = &f->p[i + 1];
        if (q <= b->quality) {
            *seconds = a->seconds + (b->seconds - a->seconds) * (q - a->quality) / (b->quality - a->quality);
            return 0;
        }
    }
    *seconds = f->p[f->n - 1].seconds;
    return 1;
}
