/* The workbench's event loop: options, terminal set-up and restore (quit, fatal error, SIGINT,
 * SIGTERM), keys, prompts, and a frame at most every 200 ms while a run trains on the worker (keys at once).
 * Not for drawing (tui/ui_panes.c, tui/ui_plot.c) nor for running (tui/ui_runs.c). */
#include "tui/ui.h"
#include "tui/ui_app.h"
#include "engine/check.h"
#include "engine/cpu/cpu.h"
#include "engine/ops.h"
#include "datasets/datasets.h"
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_RECIPE "fmnist_cnn"
/* The demo's budget when none is given: the one docs/methods.md measured the methods at. */
#define DEMO_BUDGET "3ep"
#define FRAME_BUSY 0.2     /* seconds between frames while a run trains (keys: at once) */
#define FRAME_IDLE 0.25    /* ... and while nothing does */
/* The UI thread's nice value: on a machine whose cores the trainer fills, the scheduler then
 * seldom preempts a training thread for a frame (keys still answer within milliseconds). */
#define UI_NICE 10

/* The demo also trains the baseline for two thirds of the budget, its schedule decayed within it:
 * the bar a method must clear is not the baseline alone but the baseline trained for less
 * (docs/methods.md). */
#define DEMO_SHORT (2.0 / 3.0)

/* The methods `hasten demo` queues after the baseline (as --plugin takes them: NAME[:k=v,...]),
 * as docs/methods.md measured them on a 2-core machine at 3 epochs. Images (fmnist_cnn, each
 * verdict the same in its three tables): whitening_init makes steps cheaper and learning faster
 * (90% 2.13x sooner, above the baseline's frontier), muon makes steps about half again dearer and
 * still ends highest, blurpool makes them dearer and ends lower (0.39x, below). Text (the
 * character model): alibi trains on half windows and tests on whole ones (above, 1.70x),
 * seq_length_warmup grows the windows (the target 1.30x sooner), and half windows with learned
 * positions, the control, never learn the positions the test reads (test loss 2.861 against
 * 2.026). */
typedef struct demo_method { const char *spec, *label; } demo_method;   /* label: NULL, the spec's */
static const demo_method demo_images[] = { { "whitening_init", NULL }, { "muon", NULL }, { "blurpool", NULL } };
static const demo_method demo_text[] = {
    { "alibi", NULL }, { "seq_length_warmup", NULL },
    { "seq_length_warmup:start=32,warmup=1,multiple=32", "half windows, no alibi" },
};

static volatile sig_atomic_t got_signal;
static SCREEN *screen;

static void on_signal(int sig) { got_signal = sig; }

static void restore_terminal(void)
{
    if (screen && !isendwin()) endwin();
}

/* ---- options ------------------------------------------------------------------------------ */

typedef struct ui_options {
    const char *recipe, *budget, *device;
    long long seed;
    int threads, batch, ascii, mono;
} ui_options;

static const char ui_usage[] =
    "usage: hasten [ui] [RECIPE] [options]   the workbench (default recipe\n"
    "                                        " DEFAULT_RECIPE ")\n"
    "       hasten demo [RECIPE] [options]   teaching mode: the baseline, a shorter\n"
    "                                        one, three methods (default budget " DEMO_BUDGET ")\n"
    "  --budget B    5ep | 2000steps | 30s | 60000samples for the baseline and\n"
    "                next runs\n"
    "  --seed N      random seed      --threads N   CPU threads (default: all cores)\n"
    "  --device cpu|cuda|auto   where every run trains (default cpu)\n"
    "  --batch N     batch size\n"
    "  --ascii       no braille or box drawing\n"
    "  --mono        no colours (also NO_COLOR=1)\n"
    "  --plugin-path DIR   also list and load plugins from DIR\n"
    "  runs go to $HASTEN_RUNS_DIR (default runs/); keys: press ? in the workbench\n";

static int parse_options(int argc, char **argv, ui_options *o)
{
    static const struct option opts[] = {
        {"budget", required_argument, 0, 'b'}, {"seed", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'}, {"ascii", no_argument, 0, 'a'},
        {"mono", no_argument, 0, 'm'}, {"help", no_argument, 0, 'h'},
        {"device", required_argument, 0, 'd'}, {"batch", required_argument, 0, 'n'},
        {"plugin-path", required_argument, 0, 'P'}, {0, 0, 0, 0},
    };
    *o = (ui_options){ .seed = -1, .threads = -1, .device = "cpu" };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': o->budget = optarg; break;
        case 'd': o->device = optarg; break;
        case 's': case 't': case 'n': {
            long long v;
            const char *what = c == 's' ? "seed" : c == 't' ? "threads" : "batch";
            if (cli_int_option("hasten", what, optarg, c == 'n' ? 1 : 0, c == 's' ? LLONG_MAX : 1 << 20, &v))
                return EXIT_USAGE;
            if (c == 's') o->seed = v;
            else if (c == 't') o->threads = (int)v;
            else o->batch = (int)v;
            break;
        }
        case 'a': o->ascii = 1; break;
        case 'm': o->mono = 1; break;
        case 'P': if (cli_set_plugin_path(optarg)) return EXIT_USAGE; break;
        case 'h': fputs(ui_usage, stdout); return EXIT_DONE + 100;
        default:
            fprintf(stderr, "hasten: unknown option '%s'\n(see hasten help)\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) o->recipe = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "hasten: unexpected argument '%s'\n(see hasten help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    return 0;
}

/* Loads the recipe with the options applied into a->recipe. Returns 0 or an exit code. */
static int load_recipe(ui_app *a, const ui_options *o)
{
    char path[1024], err[1024];
    const char *name = o->recipe ? o->recipe : DEFAULT_RECIPE;
    if (cli_find_recipe(name, path, sizeof path)) {
        cli_recipe_not_found(name);
        return EXIT_USAGE;
    }
    if (cli_load_recipe(path, &a->recipe, err, sizeof err)) {
        fprintf(stderr, "hasten: %s\n", err);
        return EXIT_USAGE;
    }
    const char *budget = o->budget ? o->budget : a->demo ? DEMO_BUDGET : NULL;
    if (budget && config_parse_budget(budget, &a->recipe.budget)) {
        fprintf(stderr, "hasten: --budget %s: expected e.g. 5ep, 2000steps, 30s or 60000samples\n", budget);
        return EXIT_USAGE;
    }
    if (o->seed >= 0) a->recipe.seed = (uint64_t)o->seed;
    if (o->threads >= 0) a->recipe.threads = o->threads;
    if (o->batch > 0) a->recipe.batch = o->batch;
    device_kind dev;
    int rc = cli_pick_device("hasten", o->device, &dev, a->device_note, sizeof a->device_note, 0);
    if (rc) return rc;
    a->recipe.device = dev;
    const char *base = strrchr(path, '/');
    snprintf(a->recipe_name, sizeof a->recipe_name, "%s", base ? base + 1 : path);
    char *dot = strrchr(a->recipe_name, '.');
    if (dot && !strcmp(dot, ".lua")) *dot = 0;
    a->recipe_budget = a->next_budget = a->recipe.budget;
    return 0;
}

/* ---- small actions ---------------------------------------------------------------------------- */

static void note(ui_app *a, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(ui_app *a, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->note, sizeof a->note, fmt, ap);
    va_end(ap);
    a->note_err = err;
    a->note_until = trainer_now() + 3;
}

static void load_catalog(ui_app *a)
{
    ui_choice *old = a->choices;
    int n_old = a->cat.n;
    const data_info *d = data_info_find(a->recipe.dataset);
    snprintf(a->cat.data, sizeof a->cat.data, "%s", d && d->format == DATA_FORMAT_TEXT ? "text" : "images");
    a->cat.model = &a->recipe;
    ui_catalog_load(&a->cat);
    a->choices = ui_choices_make(&a->cat, old, n_old);
    free(old);
    if (a->sel_plugin >= a->cat.n) a->sel_plugin = a->cat.n ? a->cat.n - 1 : 0;
    if (a->cat.error[0]) ui_log_add(&a->log, UI_LOG_ERROR, "plugins: %s", a->cat.error);
}

/* Queues a run at budget b; label NULL names it by its plugins. */
static void queue_run_at(ui_app *a, const plugin_spec *specs, int n, budget_spec b, const char *label)
{
    char budget[32];
    ui_run *r = ui_runs_queue(&a->runs, specs, n, b, label);
    if (!r) {
        note(a, 1, "out of memory");
        return;
    }
    config_format_budget(&b, budget, sizeof budget);
    /* a plain run while none is the baseline (it was taken off the list) is named baseline: it is */
    int base = !a->runs.baseline && n == 0 && !label;
    if (base) a->runs.baseline = r;
    ui_log_add(&a->log, UI_LOG_INFO, "#%d %s queued (%s)%s", r->id, r->name, budget,
               base ? ": the baseline, as none was left" : "");
}

static void queue_run(ui_app *a, const plugin_spec *specs, int n) { queue_run_at(a, specs, n, a->next_budget, NULL); }

static void queue_selected(ui_app *a)
{
    plugin_spec specs[CONFIG_MAX_PLUGINS];
    char why[256];
    if (ui_choices_check(&a->cat, a->choices, why, sizeof why)) {   /* said now, not by a failed run */
        note(a, 1, "%s", why);
        return;
    }
    int n = ui_choices_specs(&a->cat, a->choices, specs, CONFIG_MAX_PLUGINS);
    queue_run(a, specs, n);
}

/* The workbench evaluates this many times an epoch where the recipe evaluates once an epoch: it
 * shows times to target and speedups, which an epoch's evaluation knows only to the epoch (4 s of
 * fmnist_cnn on 2 cores: 2.00x, 1.50x, 1.33x would be all it could say). */
#define UI_EVALS_PER_EPOCH 4

/* Demo: the baseline trained for less, then the three methods by name (a log line names those the
 * catalogue lacks). */
static void queue_demo(ui_app *a)
{
    char missing[256] = "", label[64], budget[32];
    budget_spec shorter = ui_runs_scaled_budget(a->next_budget, DEMO_SHORT);
    config_format_budget(&shorter, budget, sizeof budget);
    snprintf(label, sizeof label, "baseline %s", budget);
    queue_run_at(a, NULL, 0, shorter, label);
    const demo_method *methods = a->runs.ds.tokens > 0 ? demo_text : demo_images;
    for (int i = 0; i < 3; i++) {
        plugin_spec s;
        char err[256];
        CHECK(!plug_parse_arg(methods[i].spec, &s, err, sizeof err), "demo method %s: %s", methods[i].spec, err);
        if (!ui_catalog_find(&a->cat, s.name)) {
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s", missing[0] ? ", " : "", s.name);
            continue;
        }
        queue_run_at(a, &s, 1, a->next_budget, methods[i].label);
    }
    if (missing[0])
        ui_log_add(&a->log, UI_LOG_INFO, "demo: left out, for data or layers this recipe has not (or not in %s): %s",
                   a->cat.dir, missing);
}

/* Once the data is in: show a finished baseline from disk, else queue one. */
static void check_baseline(ui_app *a)
{
    ui_runs *q = &a->runs;
    int st = atomic_load(&q->data_state);
    if (a->baseline_checked || st == 0) return;
    a->baseline_checked = 1;
    if (st < 0) return;
    train_config want = a->recipe;   /* a shallow copy for the fields compared; not freed */
    ui_runs_eval_cadence(q, &want);
    char dir[1200], err[1024];
    if (ui_history_find_baseline(cli_runs_root(), &want, q->ds.name, &a->recipe_budget, a->threads, dir,
                                 sizeof dir)) {
        ui_run *r = ui_runs_add_folder(q, dir, err, sizeof err);
        if (r) {
            q->baseline = r;
            ui_log_add(&a->log, UI_LOG_INFO, "#%d baseline: finished run %s (same recipe, budget, machine and hasten)", r->id, dir);
        } else {
            ui_log_add(&a->log, UI_LOG_ERROR, "%s", err);
        }
    }
    if (!q->baseline) {
        queue_run(a, NULL, 0);
        q->baseline = q->v[q->n - 1];
    }
    if (a->demo) queue_demo(a);
}

static void cycle_budget(ui_app *a)
{
    budget_spec presets[5] = { a->recipe_budget, { BUDGET_SECONDS, 30 }, { BUDGET_EPOCHS, 1 },
                               { BUDGET_EPOCHS, 3 }, { BUDGET_EPOCHS, 10 } };
    int cur = 0;
    for (int i = 0; i < 5; i++)
        if (presets[i].unit == a->next_budget.unit && presets[i].amount == a->next_budget.amount) cur = i;
    for (int k = 1; k <= 5; k++) {   /* the next preset that differs */
        budget_spec b = presets[(cur + k) % 5];
        if (b.unit != a->next_budget.unit || b.amount != a->next_budget.amount) {
            a->next_budget = b;
            break;
        }
    }
    char text[32];
    config_format_budget(&a->next_budget, text, sizeof text);
    note(a, 0, "budget for the next queued run: %s", text);
}

/* Opens the selected plugin's file in $EDITOR, then reloads the catalogue. Training goes on. */
static void edit_plugin_file(ui_app *a)
{
    if (!a->cat.n) return;
    const char *editor = getenv("VISUAL");
    if (!editor || !*editor) editor = getenv("EDITOR");
    if (!editor || !*editor) editor = "vi";
    def_prog_mode();
    endwin();
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", editor, a->cat.items[a->sel_plugin].path, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    reset_prog_mode();
    clearok(curscr, TRUE);
    load_catalog(a);
    ui_runs_reload_plugins(&a->runs);
    if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) note(a, 1, "%s did not finish cleanly", editor);
    else note(a, 0, "plugins reloaded");
}

/* ---- keys --------------------------------------------------------------------------------------- */

static void move_selection(ui_app *a, int delta)
{
    int *sel = a->focus == UI_FOCUS_PLUGINS ? &a->sel_plugin : &a->sel_run;
    int n = a->focus == UI_FOCUS_PLUGINS ? a->cat.n : a->runs.n;
    *sel += delta;
    if (*sel >= n) *sel = n - 1;
    if (*sel < 0) *sel = 0;
}

static void begin_param_edit(ui_app *a, int param)
{
    if (!a->cat.n || !a->choices) return;
    const ui_plugin *p = &a->cat.items[a->sel_plugin];
    if (param >= p->n_params) {
        a->prompt = UI_PROMPT_NONE;
        if (!p->n_params) note(a, 0, "%s has no parameters", p->name);
        return;
    }
    a->prompt = UI_PROMPT_PARAM;
    a->edit_param = param;
    snprintf(a->edit, sizeof a->edit, "%s", a->choices[a->sel_plugin].values[param]);
}

static void param_key(ui_app *a, int ch)
{
    size_t len = strlen(a->edit);
    if (ch == 27) {   /* the whole edit is cancelled, values already set included */
        a->choices[a->sel_plugin] = a->edit_undo;
        a->prompt = UI_PROMPT_NONE;
    } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        char err[160];
        const ui_param *p = &a->cat.items[a->sel_plugin].params[a->edit_param];
        if (ui_param_check(p, a->edit, err, sizeof err)) {
            note(a, 1, "%s", err);
            return;
        }
        snprintf(a->choices[a->sel_plugin].values[a->edit_param], sizeof a->edit, "%s", a->edit);
        a->note_until = 0;   /* a refusal of the value before is no longer true */
        begin_param_edit(a, a->edit_param + 1);
    } else if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && len) {
        a->edit[len - 1] = 0;
    } else if (ch >= 32 && ch < 127 && len + 1 < sizeof a->edit) {
        a->edit[len] = (char)ch;
        a->edit[len + 1] = 0;
    }
}

static void request_quit(ui_app *a)
{
    if (ui_runs_active(&a->runs) || ui_runs_count(&a->runs, UI_RUN_QUEUED)) a->prompt = UI_PROMPT_QUIT;
    else a->quit = 1;
}

static void plugin_key(ui_app *a, int ch)
{
    if (!a->cat.n) {
        note(a, 0, "no plugins found in %s", a->cat.dir);
        return;
    }
    ui_choice *c = &a->choices[a->sel_plugin];
    if (ch == ' ' || ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        c->on = !c->on;
        note(a, 0, "%s %s for the next run (n queues it)", c->name, c->on ? "on" : "off");
    } else if (ch == 'e') {
        a->edit_undo = *c;
        begin_param_edit(a, 0);
    } else if (ch == 'o') {
        edit_plugin_file(a);
    }
}

/* y: train loss, test loss, test accuracy, then each plugin metric of the selected run. */
static void cycle_y(ui_app *a)
{
    const ui_run *r = ui_selected_run(a);
    int next = 0;   /* index of the metric after the one shown */
    if (a->ymode == UI_Y_CUSTOM && r)
        while (next < r->n_metric_names && strcmp(r->metric_names[next++], a->ymetric)) {}
    if (a->ymode < UI_Y_TEST_ACC) {
        a->ymode++;
    } else if (r && next < r->n_metric_names) {
        a->ymode = UI_Y_CUSTOM;
        snprintf(a->ymetric, sizeof a->ymetric, "%s", r->metric_names[next]);
    } else {
        a->ymode = UI_Y_TRAIN_LOSS;
    }
}

static void handle_key(ui_app *a, int ch)
{
    if (a->prompt == UI_PROMPT_QUIT) {
        if (ch == 'y' || ch == 'Y') a->quit = 1;
        else a->prompt = UI_PROMPT_NONE;
        return;
    }
    if (a->prompt == UI_PROMPT_PARAM) {
        param_key(a, ch);
        return;
    }
    if (a->help) {
        a->help = 0;
        if (ch != 'q') return;
    }
    ui_run *sel = ui_selected_run(a);
    switch (ch) {
    case 'q': case 'Q': request_quit(a); break;
    case '?': case KEY_F(1): a->help = 1; break;
    case 'x': a->xmode = (a->xmode + 1) % UI_X_COUNT; break;
    case 'y': cycle_y(a); break;
    case 'l': a->logy = !a->logy; break;
    case 'z': a->zoom = (a->zoom + 1) % ui_zoom_count; break;
    case 'b': cycle_budget(a); break;
    case 'n': queue_selected(a); break;
    case 'p': {
        ui_run *r = ui_runs_active(&a->runs);
        if (!r) { note(a, 0, "no run is training"); break; }
        ui_runs_pause(&a->runs, !r->paused);
        note(a, 0, "#%d %s", r->id, r->paused ? "paused: its training clock stopped" : "resumed");
        break;
    }
    case 's':
        if (!sel) break;
        if (atomic_load(&sel->state) == UI_RUN_QUEUED) note(a, 0, "#%d dropped from the queue", sel->id);
        else if (ui_runs_active(&a->runs) == sel) note(a, 0, "#%d stopping: it finishes its step, evaluates and saves", sel->id);
        else note(a, 0, "#%d is not training: nothing to stop (d takes it off the list)", sel->id);
        ui_runs_stop(&a->runs, sel);
        break;
    case 'd': case KEY_DC:
        if (sel) {   /* without a baseline every speedup is "--": say so */
            ui_log_add(&a->log, UI_LOG_INFO, "#%d %s taken off the list%s%s%s", sel->id, sel->name,
                       sel == a->runs.baseline ? "; no baseline now: B on a run makes it one, and n without "
                       "plugins queues one" : "",
                       sel->dir[0] ? "; its files stay in " : "", sel->dir);
            ui_runs_remove(&a->runs, sel);
        }
        break;
    case 'B':
        if (sel) {
            a->runs.baseline = sel;
            ui_log_add(&a->log, UI_LOG_INFO, "#%d %s is the baseline now", sel->id, sel->name);
        }
        break;
    case '\t': case KEY_BTAB:
        if (a->demo) note(a, 0, "the demo has no plugins pane: hasten %s (without demo) picks methods", a->recipe_name);
        else a->focus = a->focus == UI_FOCUS_RUNS ? UI_FOCUS_PLUGINS : UI_FOCUS_RUNS;
        break;
    case 'r':
        load_catalog(a);
        ui_runs_reload_plugins(&a->runs);
        note(a, 0, "%d plugins in %s", a->cat.n, a->cat.dir);
        break;
    case KEY_UP: case 'k': move_selection(a, -1); break;
    case KEY_DOWN: case 'j': move_selection(a, 1); break;
    case KEY_PPAGE: move_selection(a, -5); break;
    case KEY_NPAGE: move_selection(a, 5); break;
    case KEY_HOME: move_selection(a, -100000); break;
    case KEY_END: move_selection(a, 100000); break;
    case 12: clearok(curscr, TRUE); break;   /* Ctrl-L */
    case ' ': case '\n': case '\r': case KEY_ENTER: case 'e': case 'o':
        if (a->focus == UI_FOCUS_PLUGINS) plugin_key(a, ch);
        else if (a->demo) note(a, 0, "the demo has no plugins pane: hasten %s (without demo) picks methods", a->recipe_name);
        else if (ch == ' ' || ch == 'e' || ch == 'o') note(a, 0, "%s acts on a plugin: Tab to the plugins pane first", ch == ' ' ? "space" : ch == 'e' ? "e" : "o");
        break;
    default: break;
    }
}

/* ---- frame -------------------------------------------------------------------------------------- */

/* When a run starts training, select it: its step times and counter are what one wants to see. */
/* The demo's verdict, once every run has ended: a line a run saying whether it reached the target,
 * when, and its speedup over the baseline, so the class reads it in words. */
static void demo_verdict(ui_app *a)
{
    ui_runs *q = &a->runs;
    if (!a->demo || a->demo_told || !a->baseline_checked || q->n < 2 || !q->baseline) return;
    for (int i = 0; i < q->n; i++)
        if (atomic_load(&q->v[i]->state) < UI_RUN_DONE) return;
    a->demo_told = 1;
    const train_config *c = &a->recipe;
    if (!c->target_metric[0]) return;
    char target[64], line[400];
    snprintf(target, sizeof target, "%s %s %g", c->target_metric, !strcmp(c->target_metric, "test_loss") ? "<=" : ">=",
             c->target_value);
    const ui_run *b = q->baseline;
    /* short lines, whose seconds the log's title calls training seconds: at 80 columns each keeps
     * its speedup on screen */
    for (int i = 0; i < q->n; i++) {
        const ui_run *r = q->v[i];
        ui_format_verdict(r->name, target, ui_run_ttt(r), r->n ? r->rec[r->n - 1].seconds : 0, r == b, ui_run_ttt(b),
                          b->n ? b->rec[b->n - 1].seconds : 0, line, sizeof line);
        ui_log_add(&a->log, UI_LOG_INFO, "demo: %s", line);
    }
}

static void follow_active(ui_app *a)
{
    ui_run *r = ui_runs_active(&a->runs);
    if (!r || r->id == a->followed) return;
    a->followed = r->id;
    for (int i = 0; i < a->runs.n; i++)
        if (a->runs.v[i] == r) a->sel_run = i;
}

/* Changes whenever a frame would differ: new records, states, log lines, a note coming or going. */
static unsigned long signature(ui_app *a, double now)
{
    unsigned long sig = (unsigned long)ui_log_total(&a->log) * 31 + (now < a->note_until) + 2 * (unsigned long)a->runs.n;
    sig += (unsigned long)atomic_load(&a->runs.data_state) * 7;
    for (int i = 0; i < a->runs.n; i++) {
        const ui_run *r = a->runs.v[i];
        sig = sig * 131 + (unsigned long)r->n * 8 + (unsigned long)atomic_load(&r->state) * 2 + (unsigned long)r->paused;
    }
    return sig;
}

static void draw(ui_app *a)
{
    getmaxyx(stdscr, a->rows, a->cols);
    if (a->demo)   /* told and nothing left to train: room in the log for the verdict */
        a->mode = a->demo_told && !ui_runs_active(&a->runs) && !ui_runs_count(&a->runs, UI_RUN_QUEUED)
                ? UI_LAYOUT_DEMO_DONE : UI_LAYOUT_DEMO;
    ui_layout_compute(a->cols, a->rows, a->mode, &a->lay);
    erase();
    if (!a->lay.ok) {
        ui_draw_too_small(a);
    } else {
        ui_draw_header(a, a->lay.header);
        ui_draw_plot(a, a->lay.plot);
        if (!a->lay.shared || a->focus == UI_FOCUS_RUNS) ui_draw_runs(a, a->lay.runs);
        if (a->lay.plugins.w && (!a->lay.shared || a->focus == UI_FOCUS_PLUGINS)) ui_draw_plugins(a, a->lay.plugins);
        if (a->lay.steps.w) ui_draw_steps(a, a->lay.steps);
        ui_draw_log(a, a->lay.log);
        ui_draw_footer(a, a->lay.footer);
        if (a->help) ui_draw_help(a);
    }
    if (!a->lay.ok && a->prompt == UI_PROMPT_QUIT) ui_draw_footer(a, a->lay.footer);
    wnoutrefresh(stdscr);
    doupdate();
}

static void init_colors(ui_app *a)
{
    if (!a->color) return;
    start_color();
    use_default_colors();
    static const short runs[UI_RUN_COLORS] = { COLOR_CYAN, COLOR_MAGENTA, COLOR_GREEN, COLOR_YELLOW, COLOR_BLUE, COLOR_RED };
    static const short phases[PHASE_COUNT] = { COLOR_RED, COLOR_BLUE, COLOR_MAGENTA, COLOR_GREEN, COLOR_YELLOW, COLOR_WHITE };
    for (int i = 0; i < UI_RUN_COLORS; i++) init_pair((short)(UI_PAIR_RUN0 + i), runs[i], -1);
    init_pair(UI_PAIR_BASELINE, COLOR_WHITE, -1);
    init_pair(UI_PAIR_TARGET, COLOR_YELLOW, -1);
    init_pair(UI_PAIR_BAR, COLOR_BLACK, COLOR_CYAN);
    init_pair(UI_PAIR_KEY, COLOR_WHITE, COLOR_BLACK);
    init_pair(UI_PAIR_ERROR, COLOR_RED, -1);
    init_pair(UI_PAIR_GOOD, COLOR_GREEN, -1);
    init_pair(UI_PAIR_SELECT, COLOR_BLACK, COLOR_CYAN);
    init_pair(UI_PAIR_TITLE, COLOR_CYAN, -1);
    for (int p = 0; p < PHASE_COUNT; p++) init_pair((short)(UI_PAIR_PHASE0 + p), phases[p], -1);
}

static void plugin_log_ignore(void *ud, const char *plugin, const char *line) {}

static int event_loop(ui_app *a, const ui_options *o);

static int run_app(ui_app *a, const ui_options *o)
{
    ui_log_init(&a->log);
    int rc = event_loop(a, o);
    ui_canvas_free(&a->canvas);
    ui_catalog_free(&a->cat);
    free(a->choices);
    ui_log_destroy(&a->log);
    return rc;
}

static int event_loop(ui_app *a, const ui_options *o)
{
    char err[1024];
    a->threads = cpu_threads_init(a->recipe.threads);
    if (a->device_note[0]) ui_log_add(&a->log, UI_LOG_INFO, "%s", a->device_note);
    if (a->recipe.device == DEVICE_CUDA) ui_log_add(&a->log, UI_LOG_INFO, "training on %s", ops_cuda_describe());
    cli_set_plugin_log(plugin_log_ignore, NULL);   /* ctx:log lines reach the log pane via log.txt */
    load_catalog(a);
    if (ui_runs_start(&a->runs, &a->recipe, &a->log, err, sizeof err)) {
        fprintf(stderr, "hasten: %s\n", err);
        return EXIT_FAILED;
    }
    a->runs.evals_per_epoch = UI_EVALS_PER_EPOCH;   /* read by runs queued from now on */
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");   /* run files are written with '.' decimals whatever the locale */
    a->utf8 = !o->ascii && !strcmp(nl_langinfo(CODESET), "UTF-8");
    ui_put_ascii(!a->utf8);
    screen = newterm(NULL, stdout, stdin);
    if (!screen) {
        ui_runs_shutdown(&a->runs);
        fprintf(stderr, "hasten: cannot set up the terminal (TERM=%s)\n", getenv("TERM") ? getenv("TERM") : "");
        return EXIT_FAILED;
    }
    check_fatal_hook = restore_terminal;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    a->color = has_colors() && !o->mono && !getenv("NO_COLOR");
    init_colors(a);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);

    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), UI_NICE);   /* this thread only */
    double next_frame = 0;
    unsigned long drawn = 0;
    while (!a->quit && !got_signal) {
        double now = trainer_now();
        int wait_ms = (int)((next_frame - now) * 1000);
        timeout(wait_ms < 0 ? 0 : wait_ms > 250 ? 250 : wait_ms);
        int ch = getch();
        int dirty = 0;
        while (ch != ERR && !a->quit) {   /* every key waiting, then one frame */
            if (ch != KEY_RESIZE) handle_key(a, ch);
            dirty = 1;
            timeout(0);
            ch = getch();
        }
        now = trainer_now();
        if (!dirty && now < next_frame) continue;
        check_baseline(a);
        ui_runs_update(&a->runs);
        follow_active(a);
        demo_verdict(a);
        unsigned long sig = signature(a, now);
        if (dirty || sig != drawn) draw(a);   /* nothing new: the screen is already right */
        drawn = sig;
        next_frame = now + (ui_runs_active(&a->runs) ? FRAME_BUSY : FRAME_IDLE);
    }
    if (got_signal) ui_log_add(&a->log, UI_LOG_INFO, "signal %d: stopping", (int)got_signal);
    ui_runs_shutdown(&a->runs);   /* stops the training run cleanly: its files stay complete */
    endwin();
    delscreen(screen);
    screen = NULL;
    check_fatal_hook = NULL;
    return EXIT_DONE;
}

int ui_cmd(int argc, char **argv, int demo)
{
    ui_options o;
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc == EXIT_DONE + 100 ? EXIT_DONE : rc;
    static ui_app app;   /* large (log ring); one per process */
    ui_app *a = &app;
    memset(a, 0, sizeof *a);
    a->demo = demo;
    a->mode = demo ? UI_LAYOUT_DEMO : UI_LAYOUT_WORKBENCH;
    rc = load_recipe(a, &o);   /* first: a bad recipe or device is said without a terminal too */
    if (!rc && demo && a->recipe.target_metric[0])   /* a class watches the target being reached */
        a->ymode = !strcmp(a->recipe.target_metric, "test_loss") ? UI_Y_TEST_LOSS : UI_Y_TEST_ACC;
    if (!rc && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
        fprintf(stderr, "hasten: the workbench needs a terminal; for a headless run use "
                "hasten run %s\n", o.recipe ? o.recipe : DEFAULT_RECIPE);
        rc = EXIT_USAGE;
    }
    if (!rc) rc = run_app(a, &o);
    if (!rc) printf("hasten: workbench closed; run folders are in %s/\n", cli_runs_root());
    config_free(&a->recipe);
    return rc;
}
