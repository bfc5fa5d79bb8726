/* The workbench's runs: finished runs read back from their folders, the live run, the queue, and
 * the worker thread that trains queued runs one at a time so their timings stay comparable; plus
 * the log lines the panes show. Not for drawing: no curses here. */
#ifndef HASTEN_UI_RUNS_H
#define HASTEN_UI_RUNS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "engine/trainer.h"
#include "tui/cli.h"
#include "tui/ui_draw.h"

/* ---- log lines (tui/ui_log.c) -------------------------------------------------------------- */

enum { UI_LOG_LINES = 256, UI_LOG_WIDTH = 256 };
enum { UI_LOG_INFO, UI_LOG_ERROR };

/* A ring of the last UI_LOG_LINES lines; any thread may add. */
typedef struct ui_log {
    pthread_mutex_t mu;
    char text[UI_LOG_LINES][UI_LOG_WIDTH];
    uint8_t level[UI_LOG_LINES];
    long total;          /* lines ever added */
    char progress[UI_LOG_WIDTH];   /* a line that updates in place (a download); "" = none */
} ui_log;

void ui_log_init(ui_log *l);
void ui_log_destroy(ui_log *l);
/* Adds one line (newlines become spaces; longer lines are cut). Thread-safe. */
void ui_log_add(ui_log *l, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copies the last max lines, oldest first, into text/level; returns the number copied. */
int ui_log_last(ui_log *l, int max, char (*text)[UI_LOG_WIDTH], uint8_t *level);
/* Lines ever added (changes whenever a line is added). Thread-safe. */
long ui_log_total(ui_log *l);
/* Sets (text) or clears ("") the progress line shown under the last lines. Thread-safe. */
void ui_log_progress_set(ui_log *l, const char *text);
/* Copies the progress line into out ("" when none). */
void ui_log_progress_get(ui_log *l, char *out, size_t len);

/* ---- runs and the queue (tui/ui_runs.c) ---------------------------------------------------- */

typedef enum {
    UI_RUN_QUEUED, UI_RUN_STARTING, UI_RUN_RUNNING, UI_RUN_DONE, UI_RUN_STOPPED, UI_RUN_FAILED
} ui_run_state;

/* "queued", "starting", "running", "done", "stopped", "failed". */
const char *ui_run_state_name(int state);

typedef struct ui_run {
    int id;                        /* 1, 2, ... in the order runs were added */
    char name[160];                /* "baseline", "label_smoothing(alpha=0.2)+sam" */
    budget_spec budget;
    int n_plugins;
    plugin_spec *plugins;          /* (n_plugins) owned */
    int from_disk;                 /* a finished run read back from its folder */
    char target_metric[16];        /* the recipe's target, for time to target */
    double target_value;

    /* Shared with the worker: state is atomic, the rest is written under ui_runs.mu. */
    _Atomic int state;             /* ui_run_state */
    int paused, stop_req, remove_req;
    int finished;                  /* the worker is done with it; the UI harvests and frees */
    cli_run live;                  /* trainer and files while it trains */
    train_config cfg;              /* the run's config while it trains */
    char dir[1100];                /* run folder, "" until opened */
    char error[1024];

    /* Written by the run's hook on the training thread, read by the UI without locks. */
    _Atomic double live_phase[PHASE_COUNT];
    _Atomic double live_progress;
    _Atomic long live_total_steps;

    /* UI thread only. */
    trainer_record *rec;           /* (n) the series so far */
    char metric_names[TRAINER_MAX_EXTRA][32];   /* rec[i].extra[k] is metric_names[k] (ctx:metric) */
    int n_metric_names;
    float *smooth;                 /* (n) smoothed train loss (eval records repeat the last) */
    int n, cap;
    ui_ema ema;
    double phase[PHASE_COUNT];     /* seconds per phase */
    double progress;               /* [0, 1] of the budget */
    long total_steps;              /* 0 when not known ahead (seconds budgets) */
    int target_idx;                /* first record meeting the target, or -1 */
    long log_offset;               /* bytes of log.txt already shown */
} ui_run;

/* Appends records to the run's series (smoothing train losses, finding the target). UI thread.
 * Returns 0 or -1 out of memory (nothing appended). */
int ui_run_append(ui_run *r, const trainer_record *rec, int n);

/* Training seconds to the target, or -1 when not reached (yet). */
double ui_run_ttt(const ui_run *r);

/* r's speedup over base (NULL: none) into out as ui_format_speedup writes it: the ratio of their
 * times to target, or a bound from the seconds one of them trained without reaching it (all of a
 * run that has ended; a training run's only once it is past the other's time); "--" otherwise.
 * Returns what ui_format_speedup returns (0 unless it says which run is faster). */
double ui_run_speedup(const ui_run *r, const ui_run *base, char *out, size_t len);

/* Frees what the run owns and the run itself. The run must not be training. */
void ui_run_free(ui_run *r);

typedef struct ui_runs {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t worker;
    int started, quit;
    ui_run **v;                    /* (n) display and queue order; changed by the UI under mu */
    int n, cap, next_id;
    ui_run *baseline;              /* what speedups are measured against; NULL = none */

    char recipe_path[1024];
    char *recipe_text;             /* the recipe resolved once at start: every run starts from it */
    char dataset[32];
    char data_path[256];           /* the recipe's data.path, "" for the usual places */
    int context;                   /* the recipe's text windows, in tokens */
    char target_metric[16];
    double target_value;
    uint64_t seed;
    int threads;
    int device;                    /* a device_kind: where every run trains */

    data_set ds;                   /* loaded by the worker before its first run */
    _Atomic int data_state;        /* 0 loading, 1 ready, -1 failed */
    ui_log *log;
    int reload_plugins;            /* the worker re-reads the plugin catalogue before its next run */
    int evals_per_epoch;           /* > 0: evaluate that often where the recipe says once an epoch */
    double next_tail;              /* when to read the live run's log.txt again */
} ui_runs;

/* Starts the worker thread, which first loads the recipe's dataset (notices go to log). recipe
 * is copied (resolved to text); log is borrowed and must outlive q. Returns 0, or -1 with a
 * message in err (nothing to shut down). */
int ui_runs_start(ui_runs *q, const train_config *recipe, ui_log *log, char *err, size_t errlen);

/* The demo's second baseline: full scaled by fraction, whole steps and samples, epochs to a
 * hundredth (a fraction of one epoch stays one: 1ep gives 0.67ep, not 1ep again), at least a
 * step's worth. */
budget_spec ui_runs_scaled_budget(budget_spec full, double fraction);

/* Appends a queued run of the recipe with these plugins (copied) and budget, named label, or by its
 * plugins when label is NULL ("baseline" for none). UI thread. Returns the run, or NULL out of
 * memory. */
ui_run *ui_runs_queue(ui_runs *q, const plugin_spec *specs, int n, budget_spec budget, const char *label);

/* Adds a finished run read back from folder dir (the list owns it). Returns it, or NULL with a
 * message in err. UI thread. */
ui_run *ui_runs_add_folder(ui_runs *q, const char *dir, char *err, size_t errlen);

/* UI thread, once per frame: copies new records and step times of the training run, shows new
 * lines of its log.txt, and frees what finished runs no longer need. */
void ui_runs_update(ui_runs *q);

/* The run being trained (starting or running), or NULL. */
ui_run *ui_runs_active(ui_runs *q);

/* Number of runs in the given state. */
int ui_runs_count(ui_runs *q, ui_run_state state);

/* Has the worker re-read the plugin files' metadata before the next run starts (after an edit). */
void ui_runs_reload_plugins(ui_runs *q);

/* Pauses (1) or resumes (0) the training run; pausing stops its training clock. */
void ui_runs_pause(ui_runs *q, int paused);

/* Stops r cleanly when it trains (its files stay complete); drops it when it is queued. */
void ui_runs_stop(ui_runs *q, ui_run *r);

/* Takes r off the list (stopping it first when it trains; it goes once stopped). Its folder on
 * disk is kept. */
void ui_runs_remove(ui_runs *q, ui_run *r);

/* Stops the training run, drops the queue, waits for the worker and frees everything. Safe to
 * call from the signal path's normal exit and more than once. */
void ui_runs_shutdown(ui_runs *q);

/* ---- run folders on disk (tui/ui_history.c) ------------------------------------------------ */

/* Finds the newest folder under root holding a finished baseline of recipe c: status "done", c's
 * recipe path, batch and evaluation cadence, this dataset and budget, no plugins, this machine's
 * CPU model and core count, and c's device: on the CPU the same thread count, on CUDA the same
 * GPU. Writes its path into dir and returns 1, or returns 0 when there is none. */
int ui_history_find_baseline(const char *root, const train_config *c, const char *dataset,
                             const budget_spec *budget, int threads, char *dir, size_t len);

/* The evaluation cadence q's runs use for recipe c, set in c: c's own, except that with
 * q->evals_per_epoch > 0 a once-an-epoch cadence becomes that many evaluations an epoch of q's
 * dataset (at least one step apart). The dataset must be loaded. */
void ui_runs_eval_cadence(const ui_runs *q, train_config *c);

/* Reads a run folder into r (which must be zeroed): name and budget from recipe.lua, status and
 * step times from summary.json, the series from metrics.jsonl. Returns 0, or -1 with a message
 * in err (r may hold part of the data; free with ui_run_free). */
int ui_history_read(const char *dir, ui_run *r, char *err, size_t errlen);

#endif
