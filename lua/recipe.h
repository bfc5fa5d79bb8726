/* Recipe files (Lua tables) in and out of train_config: a sandboxed reader and a resolved writer.
 * Not for running anything: the recipe's Lua state lives only while it is read; plugins are
 * loaded elsewhere (this records their names and parameters as text and checks them against a
 * catalogue). */
#ifndef HASTEN_RECIPE_H
#define HASTEN_RECIPE_H

#include <stddef.h>
#include <stdio.h>
#include "engine/config.h"

/* Reads the recipe file at path into *c: config_defaults(c) first, then the recipe's fields
 * override, and c->recipe_path = path. The recipe runs in a fresh sandboxed Lua state (base,
 * math, string, table and nn only; text chunks only; an instruction budget and a 64 MiB memory
 * cap) that is closed before returning.
 * Returns 0; c->layers is then the caller's (config_free). On any failure returns -1, writes one
 * line naming the file and the field into err (errlen bytes, truncated) and leaves c at defaults
 * with no layers, nothing allocated. */
int recipe_load(const char *path, train_config *c, char *err, size_t errlen);

/* Same as recipe_load for recipe text in memory; chunkname names it in messages (e.g. "x.lua").
 * c->recipe_path is left "". */
int recipe_load_string(const char *text, const char *chunkname, train_config *c,
                       char *err, size_t errlen);

/* Writes c as a complete Lua recipe to f, every field explicit (resolved), numbers in their
 * shortest exact form (%.9g or shorter for floats), so that recipe_load reads back an equal
 * config (recipe_path aside). Fields the chosen kinds do not use (adamw betas under sgd, one_cycle
 * peak under cosine, conv stride on a linear layer) are not written.
 * Returns 0, or -1 when writing to f failed or c holds something a recipe cannot say (a kind or
 * unit out of range, a target metric other than test_acc/test_loss); output may then be partial. */
int recipe_write(const train_config *c, FILE *f);

struct plug_catalog;

/* Checks each of c's plugins against the catalogue cat as plug_check does (known name, known
 * parameters, values of the right type and in range), naming the recipe file and the entry:
 * "recipes/x.lua: plugins[2]: plugin ema: unknown parameter ..."; then the list as a whole (no
 * plugin twice, no two with one exclusive role), naming both plugins. Returns 0, or -1 with one
 * line in err. */
int recipe_check_plugins(const train_config *c, const struct plug_catalog *cat, char *err, size_t errlen);

/* Applies one --plugin option, arg = "NAME[:key=value,...]", to c, as options override recipe
 * fields: each entry of c named NAME takes the given parameters (each replaces the value of the
 * same key or is added; the entry's other parameters stay), and a NAME that c lacks is appended
 * (so a later option for the same NAME overrides an earlier one). The option is checked first on
 * its own: no empty item ("ema:"), no key twice, then against cat. Returns 0, or -1 with one line
 * in err naming the option ("--plugin ema:: ...") and c unchanged. */
int recipe_plugin_option(train_config *c, const char *arg, const struct plug_catalog *cat, char *err,
                         size_t errlen);

struct nn_model;

/* The resolved recipe.lua a run left in folder dir, read into *c as recipe_load does; a folder
 * without one is "DIR: not a run folder (no recipe.lua)" in err. */
int recipe_load_from_run(const char *dir, train_config *c, char *err, size_t errlen);

/* The model a finished run left in folder dir: its recipe.lua read into *c (the caller frees it,
 * config_free) and its weights.bin loaded into the model built for inputs (h, w, ch), on the CPU;
 * sizes left to the data (an embedding's vocabulary, nn.classes) get vocab, the data's classes
 * (config_take_data_sizes), and a run the alibi plugin
 * trained has ALiBi on again (the plugin set it at fit_start; neither file records it). Returns
 * the model, or NULL with one line in err naming the file and the problem (and *c at defaults). */
struct nn_model *recipe_load_run(const char *dir, int h, int w, int ch, int vocab, train_config *c,
                                 char *err, size_t errlen);

#endif
