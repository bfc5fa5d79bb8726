/* `hasten plugins`: the catalogue of speedup methods grouped by taxonomy, as text or JSON.
 * Not for running them: runs load plugins through cli_run_open. */
#include "tui/cli.h"
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *type_name(enum plug_type t)
{
    static const char *names[] = { "number", "integer", "boolean", "string" };
    return names[t];
}

static void param_default(const plug_param *p, char *out, size_t len)
{
    if (p->type == PLUG_STRING) snprintf(out, len, "%s", p->sdef);
    else if (p->type == PLUG_BOOLEAN) snprintf(out, len, "%s", p->def ? "true" : "false");
    else snprintf(out, len, "%g", p->def);
}

static void print_json(const plug_catalog *cat)
{
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "plugins");
    for (int i = 0; i < cat->n; i++) {
        const plug_info *p = &cat->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "title", p->title);
        cJSON_AddStringToObject(o, "summary", p->summary);
        cJSON_AddStringToObject(o, "reference", p->reference);
        cJSON *tx = cJSON_AddObjectToObject(o, "taxonomy");
        cJSON_AddStringToObject(tx, "component", p->component);
        cJSON_AddStringToObject(tx, "action", p->action);
        cJSON_AddStringToObject(tx, "when", p->when);
        cJSON_AddStringToObject(o, "data", p->data[0] ? p->data : "any");
        cJSON_AddStringToObject(o, "path", p->path);
        if (p->exclusive[0]) cJSON_AddStringToObject(o, "exclusive", p->exclusive);
        if (p->overlaps[0]) cJSON_AddStringToObject(o, "overlaps", p->overlaps);
        if (p->layers) {   /* the model needs one of these */
            cJSON *ls = cJSON_AddArrayToObject(o, "layers");
            for (int k = 0; k < LAYER_KIND_COUNT; k++)
                if (p->layers >> k & 1) cJSON_AddItemToArray(ls, cJSON_CreateString(config_layer_name((enum layer_kind)k)));
        }
        cJSON *ev = cJSON_AddArrayToObject(o, "events");
        for (int e = 0; e < EV_COUNT; e++)
            if (p->events & (1u << e)) cJSON_AddItemToArray(ev, cJSON_CreateString(trainer_event_name(e)));
        cJSON *ps = cJSON_AddArrayToObject(o, "params");
        for (int k = 0; k < p->n_params; k++) {
            const plug_param *pp = &p->params[k];
            cJSON *q = cJSON_CreateObject();
            cJSON_AddStringToObject(q, "name", pp->name);
            cJSON_AddStringToObject(q, "type", type_name(pp->type));
            if (pp->type == PLUG_STRING) cJSON_AddStringToObject(q, "default", pp->sdef);   /* typed, as min and max */
            else if (pp->type == PLUG_BOOLEAN) cJSON_AddBoolToObject(q, "default", pp->def != 0);
            else cJSON_AddNumberToObject(q, "default", pp->def);
            if (pp->min > -1e300) cJSON_AddNumberToObject(q, "min", pp->min);
            if (pp->max < 1e300) cJSON_AddNumberToObject(q, "max", pp->max);
            if (pp->required) cJSON_AddTrueToObject(q, "required");
            cJSON_AddStringToObject(q, "doc", pp->doc);
            cJSON_AddItemToArray(ps, q);
        }
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *errs = cJSON_AddArrayToObject(root, "errors");
    for (int i = 0; i < cat->n_errors; i++) cJSON_AddItemToArray(errs, cJSON_CreateString(cat->errors[i]));
    char *text = cJSON_Print(root);
    puts(text);
    free(text);
    cJSON_Delete(root);
}

/* Columns to wrap the listing at: $COLUMNS, else the terminal's width, else 0 (a pipe: one
 * line an entry, for grep). */
static int text_width(void)
{
    const char *env = getenv("COLUMNS");
    int w = env ? atoi(env) : 0;
    struct winsize ws;
    if (w <= 0 && isatty(1) && ioctl(1, TIOCGWINSZ, &ws) == 0) w = ws.ws_col;
    return w >= 40 ? w : 0;
}

/* Prints text starting at column col, wrapped at word boundaries within width (0: not wrapped),
 * each later line indented to column indent; then a new line. */
static void print_wrapped(const char *text, int col, int indent, int width)
{
    int room = width - col;
    while (width && (int)strlen(text) > room && room > 10) {
        int cut = room;
        while (cut > 0 && text[cut] != ' ') cut--;
        if (cut == 0) break;   /* one word longer than the room: left whole */
        printf("%.*s\n%*s", cut, text, indent, "");
        text += cut + 1;
        room = width - indent;
    }
    printf("%s\n", text);
}

static void print_text(const plug_catalog *cat)
{
    static const char *const comps[] = { "data", "function", "optimization" };
    int width = text_width();
    if (!cat->n) printf("no plugins found (looked in plugins/, ~/.config/hasten/plugins and --plugin-path)\n");
    for (int c = 0; c < 3; c++) {
        int shown = 0;
        for (int i = 0; i < cat->n; i++) {
            const plug_info *p = &cat->items[i];
            if (strcmp(p->component, comps[c])) continue;
            if (!shown++) printf("\n%s\n", comps[c]);
            char line[600];
            int col = printf("  %-20s %-9s %-11s ", p->name, p->action, p->when);
            snprintf(line, sizeof line, "%s%s", !strcmp(p->data, "text") ? "(text) " : "", p->summary);   /* image-only: most, unmarked */
            print_wrapped(line, col, col, width);
            char note[300];
            if (p->exclusive[0]) {
                snprintf(note, sizeof note, "role: %s (one such plugin a run)", p->exclusive);
                printf("  %-20s   ", "");
                print_wrapped(note, 25, 27, width);
            }
            if (p->overlaps[0]) {
                snprintf(note, sizeof note, "overlaps: %s (a warning when combined with another)", p->overlaps);
                printf("  %-20s   ", "");
                print_wrapped(note, 25, 27, width);
            }
            if (p->layers) {
                printf("  %-20s   needs a layer:", "");
                for (int k = 0; k < LAYER_KIND_COUNT; k++)
                    if (p->layers >> k & 1) printf(" %s", config_layer_name((enum layer_kind)k));
                printf("\n");
            }
            for (int k = 0; k < p->n_params; k++) {
                char def[80], doc[600];
                param_default(&p->params[k], def, sizeof def);
                snprintf(doc, sizeof doc, "%s = %s  %s%s", p->params[k].name, def[0] ? def : "\"\"",
                         p->params[k].required ? "(required) " : "", p->params[k].doc);
                printf("  %-20s   ", "");
                print_wrapped(doc, 25, 27, width);
            }
        }
    }
    for (int i = 0; i < cat->n_errors; i++) printf("\nnot loaded: %s\n", cat->errors[i]);
}

static const char plugins_usage[] =
    "usage: hasten plugins [--json] [--plugin-path DIR]\n"
    "  the catalogue of speedup methods, grouped by taxonomy, with their parameters\n";

int cli_plugins(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"plugin-path", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'P') {
            if (cli_set_plugin_path(optarg)) return EXIT_USAGE;
        }
        else if (c == 'h') {
            fputs(plugins_usage, stdout);
            return EXIT_DONE;
        }
        else {
            fprintf(stderr, "hasten plugins: unknown option '%s' (see hasten plugins --help)\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    const plug_catalog *cat = cli_catalog();
    if (json) print_json(cat);
    else print_text(cat);
    return cat->n_errors ? EXIT_FAILED : EXIT_DONE;
}
