/* The baseline's Pareto frontier: final quality against training time over runs at several
 * budgets, each with its schedule fully decayed (the survey's "just train for less time"
 * baseline), and where a candidate run lands against it. Quality is higher-is-better (test
 * accuracy). Pure arithmetic: no files, no output. */
#ifndef HASTEN_FRONTIER_H
#define HASTEN_FRONTIER_H

enum { FRONTIER_MAX = 64 };

typedef struct frontier_point {
    double seconds;      /* training time (mean over seeds) */
    double quality;      /* final quality (mean over seeds) */
    int tag;             /* the caller's: which budget group the point came from */
} frontier_point;

/* Sorted by time; quality strictly rises along it. */
typedef struct frontier {
    int n;
    frontier_point p[FRONTIER_MAX];
} frontier;

/* Keeps the points that no other point dominates (as fast or faster and as good or better, one of
 * them strictly). At most FRONTIER_MAX of pts are read. */
void frontier_build(frontier *f, const frontier_point *pts, int n);

/* The quality the frontier reaches at seconds, linear between its points; NAN before the first
 * point or after the last (the sweep says nothing there). */
double frontier_quality_at(const frontier *f, double seconds);

/* Where the frontier reaches quality q. Returns 0 with *seconds interpolated between its points;
 * -1 when its fastest point already does better (the frontier needs at most *seconds = that
 * point's time); +1 when q is above every point (more than *seconds = the slowest point's time);
 * -2 for an empty frontier. */
int frontier_time_for(const frontier *f, double q, double *seconds);

#endif
