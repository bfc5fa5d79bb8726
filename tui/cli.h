/* Shared pieces of the command line: finding recipes, loading a run's config and data, run ids.
 * Not for drawing: the workbench panes live in their own files. */
#ifndef HASTEN_CLI_H
#define HASTEN_CLI_H

#include <stddef.h>
#include "engine/config.h"
#include "engine/data.h"

#ifndef HASTEN_SHARE
#define HASTEN_SHARE "/usr/local/share/hasten"
#endif

/* Exit codes of DESIGN.md. */
enum { EXIT_DONE = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* Resolves a recipe argument: a path as given, else recipes/NAME(.lua) in the working folder, else
 * in the installed share folder. Writes the path into out; returns 0, or -1 when none exists. */
int cli_find_recipe(const char *arg, char *out, size_t len);

/* Loads the recipe at path into cfg; returns 0 or -1 with the one-line message in err. */
int cli_load_recipe(const char *path, train_config *cfg, char *err, size_t errlen);

/* Loads cfg->dataset into ds. When the real dataset is missing, says so on stderr, says how to
 * install it, and falls back to the synthetic set (recorded in ds->name). Returns 0 or -1 (err). */
int cli_load_data(const train_config *cfg, data_set *ds, char *err, size_t errlen);

/* Benchmark entry point (tui/bench.c): returns an exit code. */
int cli_bench(int argc, char **argv);

#endif
