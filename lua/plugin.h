/* Speedup methods as Lua plugins: the catalogue (metadata of every plugin file found), parameter
 * parsing and validation, and the per-run host that calls plugin handlers at trainer events.
 * Not for the engine's work: plugins call vectorised C operations; no per-element Lua. */
#ifndef HASTEN_PLUGIN_H
#define HASTEN_PLUGIN_H

#include <stddef.h>
#include "engine/config.h"
#include "engine/trainer.h"

enum plug_type { PLUG_NUMBER, PLUG_INTEGER, PLUG_BOOLEAN, PLUG_STRING };

typedef struct plug_param {
    char name[32];
    enum plug_type type;
    double def, min, max;     /* numbers; min/max are -inf/inf when not given */
    char sdef[64];            /* strings: the default */
    char doc[160];
    int required;             /* a run must set it (a string: to a non-empty value) */
} plug_param;

typedef struct plug_info {
    char name[64], title[96], summary[256], reference[160];
    char component[16], action[16], when[24];
    char data[8];             /* "images" or "text": the only data it works on; "" = any */
    char exclusive[32];       /* a role no other plugin of the run may share ("weight averaging"); "" = none */
    char overlaps[32];        /* a role whose plugins compound ("input size"): a warning, not an error */
    unsigned layers;          /* bit k set: needs a layer of kind k (any one of those set; 0 = any model) */
    char path[512];           /* the file it came from */
    int n_params;
    plug_param params[CONFIG_MAX_PARAMS];
    unsigned events;          /* bit e set: handles trainer_event e */
    char *source;             /* owned text for plugins added from source, else NULL */
} plug_info;

typedef struct plug_catalog {
    int n;
    plug_info *items;         /* (n) sorted by name */
    int n_errors;
    char errors[32][300];     /* one line per plugin file that could not be loaded */
} plug_catalog;

/* hasten's installed data folder (recipes/, plugins/): <binary's folder>/../share/hasten when it
 * exists, else the one configured at build time. Static storage. */
const char *plug_share_dir(void);

/* The folders searched, in order (later ones override a plugin of the same name): the shipped
 * plugins/ (in the working folder, else the installed share folder), ~/.config/hasten/plugins,
 * then extra (may be NULL). Writes up to max paths into dirs; returns the count. */
int plug_default_dirs(char dirs[][512], int max, const char *extra);

/* Loads the metadata of every *.lua file in dirs. Files that fail validation are skipped and
 * described in cat->errors (one line each: file, field, problem). Returns 0; -1 only when out of
 * memory. Free with plug_catalog_free. */
int plug_catalog_load(plug_catalog *cat, char dirs[][512], int ndirs);
void plug_catalog_free(plug_catalog *cat);
const plug_info *plug_find(const plug_catalog *cat, const char *name);

/* Parses "NAME[:key=value,...]" (the --plugin option) into spec. Returns 0 or -1 with err. */
int plug_parse_arg(const char *arg, plugin_spec *spec, char *err, size_t errlen);

/* Checks each of cfg's plugins against the catalogue: known name, known parameters, values of
 * the right type and in range, required ones set; and the list as a whole: no plugin twice, no
 * two with the same exclusive role. Returns 0 or -1 with one line in err naming plugin,
 * parameter and value (or the two plugins). */
int plug_check(const plug_catalog *cat, const train_config *cfg, char *err, size_t errlen);

/* Checks that each of cfg's plugins works on ds's kind of data (a plugin's `data` field: images or
 * text). Returns 0 or -1 with one line in err naming the plugin and the data set. */
int plug_check_data(const plug_catalog *cat, const train_config *cfg, const data_set *ds, char *err,
                    size_t errlen);

/* The layer kinds plugin info needs (its `layers` field) as words: "conv, maxpool or avgpool"
 * ("" for none). Always NUL-terminated when len > 0. */
void plug_layers_text(const plug_info *info, char *out, size_t len);

/* Whether cfg's model has a layer (at any depth) of a kind plugin info needs (its `layers` field):
 * 1 when it has one or info needs none. With err, says what is missing when it returns 0 ("plugin
 * blurpool needs a conv, maxpool or avgpool layer; the model has none"). */
int plug_fits_model(const plug_info *info, const train_config *cfg, char *err, size_t errlen);

typedef struct plug_host plug_host;

/* Log lines from ctx:log go to the run's log.txt and to this callback when set (the CLI prints
 * them, the workbench shows them). */
typedef void (*plug_log_fn)(void *ud, const char *plugin, const char *line);

/* Creates the run's plugin host: a fresh sandboxed Lua state with every plugin of cfg (in recipe
 * order) loaded and its parameters typed, and a trainer hook that calls their handlers. Returns
 * NULL with one line in err on a bad plugin or parameter. Free after the run with plug_host_free
 * (the trainer must not run again after that). With no plugins in cfg, returns a host that does
 * nothing. */
plug_host *plug_host_new(trainer *t, const plug_catalog *cat, const train_config *cfg,
                         plug_log_fn log, void *log_ud, char *err, size_t errlen);
void plug_host_free(plug_host *h);

/* Loads a plugin from source text instead of a file (benchmarks and tests); the returned info is
 * added to cat. Returns 0 or -1 with err. */
int plug_catalog_add_source(plug_catalog *cat, const char *name, const char *source, char *err, size_t errlen);

#endif
