/* Shared pieces of the command line: finding recipes, loading a run's config and data, run ids.
 * Not for drawing: the workbench panes live in their own files. */
#ifndef HASTEN_CLI_H
#define HASTEN_CLI_H

#include <stddef.h>
#include "engine/config.h"
#include "engine/data.h"
#include "lua/plugin.h"
#include "engine/trainer.h"


/* Exit codes of DESIGN.md. */
enum { EXIT_DONE = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* Resolves a recipe argument: a path as given, else recipes/NAME(.lua) in the working folder, else
 * in the installed share folder. Writes the path into out; returns 0, or -1 when none exists. */
int cli_find_recipe(const char *arg, char *out, size_t len);

/* Says on stderr, in one line, that recipe `name` was not found and where hasten looked. */
void cli_recipe_not_found(const char *name);

/* Loads the recipe at path into cfg; returns 0 or -1 with the one-line message in err. */
int cli_load_recipe(const char *path, train_config *cfg, char *err, size_t errlen);

/* Loads cfg->dataset into ds: from cfg->data_path when the recipe gives one (then the only place
 * looked at, and a failure is an error), else from data_load's places. When the dataset is in none
 * of them, fetches it into the cache (cli_fetch_missing) and, when that fails too, says so on
 * stderr, says how to get it, and falls back to the synthetic set (recorded in ds->name).
 * Returns 0 or -1 (err). */
int cli_load_data(const train_config *cfg, data_set *ds, char *err, size_t errlen);

/* A one-line notice for the person (fallbacks, progress); line has no newline. */
typedef void (*cli_note_fn)(void *ud, const char *line);

/* cli_load_data with the notices sent to note(ud, line) instead of stderr (the workbench shows
 * them in its log pane); fetch 0 skips the download (a caller that fetched with its own progress
 * display). Same return and ownership as cli_load_data. */
int cli_load_data_to(const train_config *cfg, data_set *ds, cli_note_fn note, void *ud, int fetch,
                     char *err, size_t errlen);

/* Whether HASTEN_OFFLINE is set (to anything but "" or "0"): then nothing is fetched. */
int cli_offline(void);

/* Folder that holds run folders: $HASTEN_RUNS_DIR when set and not empty, else "runs".
 * Returns a string the caller must not free (valid until the environment changes). */
const char *cli_runs_root(void);

/* Writes a run folder path that does not exist yet into out:
 * <runs root>/<date>-<time>-<recipe name>-s<seed>, with -1, -2, ... appended on a clash. */
void cli_default_run_dir(const train_config *cfg, char *out, size_t len);

/* One run wired together: the trainer and the run folder it writes. */
typedef struct cli_run {
    trainer *t;
    plug_host *host;      /* the run's plugins (a host with none when the recipe has none) */
    runlog *log;
    char dir[1100];
} cli_run;

/* Builds the trainer for cfg on ds, opens the run folder (out, or cli_default_run_dir when out is
 * NULL) and writes the resolved recipe.lua into it; `hasten run` and the workbench both start runs
 * here, so they leave the same files. cfg and ds must outlive the run. Returns 0 with r filled
 * (release with cli_run_close), or -1 with one line in err and nothing left open. */
int cli_run_open(cli_run *r, const train_config *cfg, const data_set *ds, const char *out,
                 char *err, size_t errlen);

/* Frees the trainer and closes the run files; r may be half filled or already closed. */
void cli_run_close(cli_run *r);

/* The plugin catalogue of this process, loaded on first use from the default folders and the
 * folder given to cli_set_plugin_path (--plugin-path). Owned here; lives until exit. */
const plug_catalog *cli_catalog(void);
/* Forgets the loaded catalogue so the next cli_catalog() reads the plugin files again (the
 * workbench calls it after a plugin was edited; not while another thread uses the catalogue). */
void cli_catalog_reload(void);
/* Sets the folder --plugin-path names. Returns 0, or -1 when dir is not a folder, after saying so
 * on stderr in one line ("hasten: --plugin-path DIR: No such file or directory"). */
int cli_set_plugin_path(const char *dir);
/* That folder, or NULL when none was given. Static storage. */
const char *cli_plugin_path(void);
/* Where ctx:log lines go for runs opened from now on (default: stderr as "[plugin] line"). */
void cli_set_plugin_log(plug_log_fn fn, void *ud);

/* `hasten plugins [--json] [--plugin-path DIR]` (tui/cmd_plugins.c): returns an exit code. */
int cli_plugins(int argc, char **argv);

/* Parses a --target argument, "test_acc=0.9" or "test_loss=0.3", into metric and value. Returns 0,
 * or -1 for anything else (another metric, a value that is not a number, an accuracy outside
 * (0, 1], a loss not above 0: what a recipe's target takes). */
int cli_parse_target(const char *arg, char *metric, size_t len, double *value);

/* Opens the device `name` names (cpu, cuda or auto) into *d. Returns EXIT_DONE; else says why on
 * stderr after `who` ("hasten", "hasten bench") and returns EXIT_USAGE for a name that is none of
 * the three, EXIT_FAILED for a device that does not open. auto's note (it fell back to the CPU)
 * goes into note when one is given, else to stderr unless quiet. */
int cli_pick_device(const char *who, const char *name, device_kind *d, char *note, size_t note_len, int quiet);

/* A whole number in [min, max] from all of s into *out: 0, or -1 (nothing written) otherwise. */
int cli_parse_int(const char *s, long long min, long long max, long long *out);
/* The same for option --opt of command `who`; when s is not one, says so on stderr, naming the
 * option, the value and the range ("hasten: bad value for --seed: '-1' (a whole number >= 0)"). */
int cli_int_option(const char *who, const char *opt, const char *s, long long min, long long max,
                   long long *out);

/* `hasten sample RUN [--length N] [--prompt TEXT] [--temperature T] [--seed N]` (tui/cmd_sample.c):
 * text from a character model a run left; returns an exit code. */
int cli_sample(int argc, char **argv);

/* `hasten compare RUN...` (tui/cmd_compare.c): returns an exit code. */
int cli_compare(int argc, char **argv);

/* `hasten sweep RECIPE --budgets ... [--seeds ...]` (tui/cmd_sweep.c): returns an exit code. */
int cli_sweep(int argc, char **argv);

/* Benchmark entry point (tui/bench.c): returns an exit code. */
int cli_bench(int argc, char **argv);

/* `hasten fetch NAME... [--force] [--quiet]` (tui/cmd_data.c): returns an exit code. */
int cli_fetch(int argc, char **argv);

/* `hasten datasets [NAME]` (tui/cmd_data.c): returns an exit code. */
int cli_datasets(int argc, char **argv);

/* Fetches dataset `name` into the cache for a run that needs it, sending one line to note(ud, ...)
 * when it starts, progress lines every 2 s (each file's start and end, retries) and one line on
 * failure. Does nothing when the name has nothing to download or HASTEN_OFFLINE is set (not "0").
 * Returns 0 when every file is now in the cache, else -1. Blocks until done; call it off the UI
 * thread (note is called on the calling thread). */
int cli_fetch_missing(const char *name, cli_note_fn note, void *ud);

#endif
