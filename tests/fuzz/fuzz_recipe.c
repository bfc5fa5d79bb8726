/* libFuzzer target for the recipe reader (recipe_load_string), as a run folder's recipe.lua is
 * read back by the workbench's baseline lookup, `hasten sample`, sweep and the distillation
 * teacher: each input is one recipe's text. What it accepts must survive the round trip a run
 * makes (recipe_write, then read again, to the same resolved text). Build and run with `make fuzz`. */
#include "lua/recipe.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* c as recipe_write writes it, malloc'd (the caller frees); aborts when it cannot. */
static char *written(const train_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f || recipe_write(c, f) || fclose(f)) abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), err[512] = "";
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = 0;
    train_config c;
    if (recipe_load_string(text, "recipe.lua", &c, err, sizeof err) == 0) {
        char *once = written(&c);
        config_free(&c);
        if (recipe_load_string(once, "resolved.lua", &c, err, sizeof err)) {
            fprintf(stderr, "fuzz_recipe: the resolved recipe does not read back: %s\n%s\n", err, once);
            abort();
        }
        char *twice = written(&c);
        config_free(&c);
        if (strcmp(once, twice)) {
            fprintf(stderr, "fuzz_recipe: the resolved recipe changes when read back:\n%s\n---\n%s\n", once, twice);
            abort();
        }
        free(once);
        free(twice);
    } else if (!err[0] || strchr(err, '\n')) abort();   /* a refusal is one line */
    free(text);
    return 0;
}
