/* The plugin catalogue as the workbench sees it: each plugin's name, taxonomy, summary and
 * parameters, and the person's choices for the next run (which plugins, which values).
 * Not for running plugins: lua/plugin.c loads and runs them; ui_catalog_load is the one place that
 * asks it for the list, so the panes and tests never depend on how plugins are read. */
#ifndef HASTEN_UI_CATALOG_H
#define HASTEN_UI_CATALOG_H

#include <stddef.h>
#include "engine/config.h"

typedef enum { UI_PARAM_NUMBER, UI_PARAM_INTEGER, UI_PARAM_BOOLEAN, UI_PARAM_STRING } ui_param_type;

typedef struct ui_param {
    char name[32];           /* as the plugin's params table spells it */
    ui_param_type type;
    char def[64];            /* default, as text: "0.1", "10", "true", "linear" */
    double min, max;         /* allowed range of numbers; -INFINITY / INFINITY when open */
    int required;            /* a run must set it (the default, "", will not do) */
    char doc[160];           /* one line */
} ui_param;

typedef struct ui_plugin {
    char name[64];           /* what recipes and --plugin use: "label_smoothing" */
    char title[64];          /* "Label smoothing" */
    char summary[200];       /* one line */
    char reference[160];     /* paper */
    char component[16];      /* data | function | optimization */
    char action[16];         /* remove | restrict | reorder | replace | retrofit */
    char when[16];           /* once | every step | scheduled | phase | periodic */
    char path[512];          /* the plugin's file, opened in $EDITOR */
    char exclusive[32];      /* a role no other plugin of a run may share ("weight averaging"); "" = none */
    int n_params;
    ui_param params[CONFIG_MAX_PARAMS];
} ui_plugin;

typedef struct ui_catalog {
    int n;
    ui_plugin *items;        /* (n) owned; sorted by ui_catalog_sort */
    int cap;
    char dir[512];           /* folder searched, for "no plugins found in plugins/" */
    char error[512];         /* why a plugin could not be read ("" = none); shown in the log */
    char data[8];            /* "images" or "text": the recipe's data; plugins made only for the
                              * other kind are left out ("" = keep all) */
    const train_config *model;  /* borrowed: plugins whose `layers` its model lacks are left out
                                 * (NULL = keep all) */
    char left_out[512];      /* those left out and why, for the log ("" = none): "alibi,
                              * seq_length_warmup (text only); colout (no gap layer)" */
} ui_catalog;

/* Empties cat and fills it from the plugin folders lua/plugin.h searches (plugins/ in the working
 * folder or the installed share folder, then ~/.config/hasten/plugins, then the folder given to
 * cli_set_plugin_path), reading each file anew.
 * Returns the number of plugins; a file that cannot be read is left out and named in cat->error,
 * and so is one whose data kind is not cat->data or whose layers cat->model lacks, named in
 * cat->left_out with the reason. */
int ui_catalog_load(ui_catalog *cat);

/* Appends a zeroed entry (params' min/max open) and returns it, or NULL out of memory. For the
 * loader that fills the catalogue. */
ui_plugin *ui_catalog_add(ui_catalog *cat);

/* Orders entries by component (data, function, optimization, other), action, then name. */
void ui_catalog_sort(ui_catalog *cat);

/* Frees the entries; cat can be loaded again. */
void ui_catalog_free(ui_catalog *cat);

/* Entry called name, or NULL. */
const ui_plugin *ui_catalog_find(const ui_catalog *cat, const char *name);

/* Checks text as a value of p: a number (integer for UI_PARAM_INTEGER) inside [min, max],
 * true/false for booleans, any text up to 63 bytes for strings. Returns 0, or -1 with a one-line
 * reason in err ("alpha must be between 0 and 0.5"). */
int ui_param_check(const ui_param *p, const char *text, char *err, size_t errlen);

/* The person's choice for one catalogue entry: on for the next run, and its values as text. */
typedef struct ui_choice {
    char name[64];
    int on;
    int n_params;                           /* as the entry's */
    char keys[CONFIG_MAX_PARAMS][32];       /* the entry's parameter names */
    char values[CONFIG_MAX_PARAMS][64];     /* valid values as text */
} ui_choice;

/* Choices for every entry of cat, in its order: defaults, off; the previous choices (prev, n_prev,
 * may be NULL) carry over by plugin and parameter name, so a reload keeps what was set.
 * Returns a malloc'd array of cat->n (caller frees), or NULL when cat is empty or out of memory. */
ui_choice *ui_choices_make(const ui_catalog *cat, const ui_choice *prev, int n_prev);

/* Turns the choices that are on into plugin specs, in catalogue order, writing only values that
 * differ from the defaults. Returns the number written (at most cap). */
int ui_choices_specs(const ui_catalog *cat, const ui_choice *ch, plugin_spec *out, int cap);

/* Whether the choices that are on make a run the plugins allow: every required parameter set, no
 * two plugins with one exclusive role (as lua/plugin.c's plug_check, before the run is queued).
 * Returns 0, or -1 with one line in err saying what to change. */
int ui_choices_check(const ui_catalog *cat, const ui_choice *ch, char *err, size_t errlen);

/* A run's display name: "baseline" with no plugins, else names joined by '+', with the
 * parameters in parentheses: "label_smoothing(alpha=0.2)+sam". Always NUL-terminated. */
void ui_run_name(const plugin_spec *specs, int n, char *out, size_t len);

#endif
