/* `hasten sample RUN`: text from a character model a run trained, one character at a time, each
 * drawn from the model's next-character distribution over the last window. What a text model
 * learned, shown rather than scored (a lecture's demo).
 * Not for training or evaluation: the run's recipe and weights are read as they were left. */
#include "tui/cli.h"
#include "tui/rundir.h"
#include "datasets/datasets.h"
#include "engine/nn.h"
#include "engine/rng.h"
#include "lua/recipe.h"
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char sample_usage[] =
    "usage: hasten sample RUN [--length N] [--prompt TEXT] [--temperature T]\n"
    "         [--seed N]\n"
    "  text from the character model run folder RUN left (its recipe.lua and\n"
    "  weights.bin): N characters (default 400) after the prompt (default a new\n"
    "  line, or the text's first character in code point order where it has no\n"
    "  new line), each drawn from the model's distribution at temperature T\n"
    "  (default 0.8; smaller is more predictable)\n";

/* Writes code point cp as UTF-8. */
static void put_utf8(uint32_t cp, FILE *f)
{
    if (cp < 0x80) fputc((int)cp, f);
    else if (cp < 0x800) fprintf(f, "%c%c", 0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) fprintf(f, "%c%c%c", 0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else fprintf(f, "%c%c%c%c", 0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f),
                 0x80 | (cp & 0x3f));
}

/* The prompt as ids of t's vocabulary into ids (cap); returns the count, or -1 with one line in err. */
static int prompt_ids(const char *text, const data_text *t, int *ids, int cap, char *err, size_t errlen)
{
    size_t len = strlen(text), at = 0;
    int n = 0;
    while (at < len) {
        uint32_t cp;
        int k = data_utf8_next((const uint8_t *)text + at, len - at, &cp);
        if (!k) {
            snprintf(err, errlen, "--prompt: not UTF-8 at byte %zu", at);
            return -1;
        }
        int id = data_text_id(t, cp);
        if (id < 0) {
            snprintf(err, errlen, "--prompt: '%.*s' is not among the %d characters the model knows (those of %s)",
                     k, text + at, t->vocab, t->source);
            return -1;
        }
        if (n == cap) {
            snprintf(err, errlen, "--prompt: longer than %d characters", cap);
            return -1;
        }
        ids[n++] = id;
        at += (size_t)k;
    }
    return n;
}

/* Draws an id from logits z (k) at temperature temp. */
static int draw(const float *z, int k, double temp, rng *g)
{
    double top = z[0], sum = 0, p[k];
    for (int j = 1; j < k; j++) top = fmax(top, z[j]);
    for (int j = 0; j < k; j++) sum += p[j] = exp((z[j] - top) / temp);
    double u = (double)rng_uniform(g) * sum;
    for (int j = 0; j < k; j++)
        if ((u -= p[j]) < 0) return j;
    return k - 1;
}

/* Whether the text t is not the one the run in dir trained on: its characters differ from the
 * vocabulary the run recorded (then the model's ids would be read as other characters). Says so.
 * A run from before the record is taken as it is. */
static int text_changed(const char *dir, const data_text *t)
{
    cJSON *s;
    char err[1400], now[20];
    if (rundir_summary(dir, &s, err, sizeof err)) return 0;   /* the weights' check still stands */
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "vocabulary");
    snprintf(now, sizeof now, "%016llx", (unsigned long long)data_text_vocab_hash(t));
    int changed = cJSON_IsString(v) && strcmp(v->valuestring, now);
    if (changed)
        fprintf(stderr, "hasten sample: %s has changed since %s trained on it (its %d distinct characters are "
                "not the run's): give the run its text back\n", t->source, dir, t->vocab);
    cJSON_Delete(s);
    return changed;
}

int cli_sample(int argc, char **argv)
{
    static const struct option opts[] = {
        {"length", required_argument, 0, 'n'}, {"prompt", required_argument, 0, 'p'},
        {"temperature", required_argument, 0, 't'}, {"seed", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    long long length = 400, seed = 1;
    double temp = 0.8;
    const char *prompt = NULL;   /* a new line where the text has one */
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'n': case 's':
            if (cli_int_option("hasten sample", c == 'n' ? "length" : "seed", optarg, c == 'n' ? 1 : 0,
                               c == 'n' ? 1000000 : (1ll << 62), c == 'n' ? &length : &seed))
                return EXIT_USAGE;
            break;
        case 'p': prompt = optarg; break;
        case 't':
            temp = strtod(optarg, &end);
            if (*end || end == optarg || !(temp > 0 && temp <= 100)) {
                fprintf(stderr, "hasten sample: bad value for --temperature: '%s' (a number in (0, 100])\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': fputs(sample_usage, stdout); return EXIT_DONE;
        default:
            fprintf(stderr, "hasten sample: unknown option '%s'\n%s", argv[optind - 1], sample_usage);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "hasten sample: %s\n%s", optind >= argc ? "which run? (a run folder)" : "one run folder only",
                sample_usage);
        return EXIT_USAGE;
    }
    const char *dir = argv[optind];
    char err[1400];
    train_config cfg;
    if (recipe_load_from_run(dir, &cfg, err, sizeof err)) {
        fprintf(stderr, "hasten sample: %s\n", err);
        return EXIT_USAGE;
    }
    const data_info *info = data_info_find(cfg.dataset);
    if (!info || info->format != DATA_FORMAT_TEXT) {
        fprintf(stderr, "hasten sample: %s trained on %s, not on text: only a character model writes\n", dir, cfg.dataset);
        config_free(&cfg);
        return EXIT_USAGE;
    }
    data_text t;   /* the vocabulary, from the text the run trained on */
    int rc = data_load_text(cfg.dataset, cfg.data_path[0] ? cfg.data_path : NULL, &t, err, sizeof err);
    int context = cfg.context;
    config_free(&cfg);
    if (rc) {
        fprintf(stderr, "hasten sample: %s\n", err);
        return EXIT_FAILED;
    }
    if (text_changed(dir, &t)) {
        data_text_free(&t);
        return EXIT_FAILED;
    }
    nn_model *m = recipe_load_run(dir, 1, context, 1, t.vocab, &cfg, err, sizeof err);
    if (!m) {
        fprintf(stderr, "hasten sample: %s\n", err);
        data_text_free(&t);
        return EXIT_FAILED;
    }
    config_free(&cfg);
    if (m->layers[0].spec.kind != LAYER_EMBED || m->layers[0].params[0]->w.shape[0] < t.vocab ||
        m->out_features != context * t.vocab) {   /* the text changed since the run, or the recipe is odd */
        fprintf(stderr, "hasten sample: %s's model does not read and predict the %d characters of %s\n", dir,
                t.vocab, t.source);
        nn_free(m);
        data_text_free(&t);
        return EXIT_FAILED;
    }
    int cap = (int)length + 4096, *ids = malloc((size_t)cap * sizeof *ids);
    if (!prompt) prompt = data_text_id(&t, '\n') >= 0 ? "\n" : "";
    int n = ids ? prompt_ids(prompt, &t, ids, 4096, err, sizeof err) : -1;
    if (n < 0) {
        fprintf(stderr, "hasten sample: %s\n", ids ? err : "out of memory");
        free(ids);
        nn_free(m);
        data_text_free(&t);
        return EXIT_USAGE;
    }
    if (n == 0) ids[n++] = 0;
    for (int i = 0; i < n; i++) put_utf8(t.chars[ids[i]], stdout);
    rng g;
    rng_seed(&g, (uint64_t)seed, 0);
    tensor x = {0};
    for (long long k = 0; k < length; k++) {
        int len = n < context ? n : context;
        tensor_resize4(&x, 1, 1, len, 1);
        for (int j = 0; j < len; j++) x.data[j] = (float)ids[n - len + j];
        const tensor *out = nn_forward(m, &x, 0);
        if (!out) {
            fprintf(stderr, "\nhasten sample: %s\n", m->err);
            rc = EXIT_FAILED;
            break;
        }
        ids[n] = draw(out->data + (size_t)(len - 1) * t.vocab, t.vocab, temp, &g);
        put_utf8(t.chars[ids[n++]], stdout);
    }
    fputc('\n', stdout);
    tensor_free(&x);
    free(ids);
    nn_free(m);
    data_text_free(&t);
    return rc;
}
