/* `hasten fetch` and `hasten datasets`, and how download progress reaches a person: a redrawn bar
 * on a terminal, lines every few seconds otherwise (logs, the workbench's log pane).
 * Not for what a dataset is or how bytes are fetched: datasets/ does that. */
#include "tui/cli.h"
#include "datasets/datasets.h"
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define LINE_EVERY 2.0   /* seconds between progress lines when no bar can be drawn */

/* Where progress goes: a bar redrawn on stderr (tty), or whole lines to note(ud, line). */
typedef struct shown {
    int tty, width, drawn, quiet;
    double last_line;
    cli_note_fn note;
    void *ud;
} shown;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void note_stderr(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "hasten: %s\n", line);
}

static int show_progress(const fetch_progress *p, void *ud)
{
    shown *s = ud;
    char line[512];
    if (p->phase == FETCH_RETRY) {
        if (s->drawn) fputc('\n', stderr);
        s->drawn = 0;
        s->note(s->ud, p->message);
        return 0;
    }
    if (s->tty) {
        fetch_format_progress(p, 1, s->width, line, sizeof line);
        fprintf(stderr, "\r%s\033[K%s", line, p->phase == FETCH_DONE ? "\n" : "");
        s->drawn = p->phase != FETCH_DONE;
        return 0;
    }
    double t = now_s();
    if (p->phase == FETCH_PROGRESS && t - s->last_line < LINE_EVERY) return 0;
    s->last_line = t;
    fetch_format_progress(p, 0, 200, line, sizeof line);
    s->note(s->ud, line);
    return 0;
}

/* Progress for the command line: a bar when stderr is a terminal, else lines. */
static void shown_for_stderr(shown *s, int quiet)
{
    struct winsize ws;
    *s = (shown){ .tty = !quiet && isatty(2), .width = 80, .note = note_stderr };
    if (s->tty && ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) s->width = ws.ws_col - 1;
}

static long long dataset_bytes(const data_info *d)
{
    long long n = 0;
    for (int i = 0; i < d->n_files; i++) n += d->files[i].size;
    return n;
}

/* A run needs dataset `name` and it is nowhere: fetch it, telling note. Returns 0 when fetched. */
int cli_fetch_missing(const char *name, cli_note_fn note, void *ud)
{
    char cache[1024], size[32], err[1200], line[1400];
    const data_info *d = data_info_find(name);
    if (!d || !d->n_files) return -1;
    if (cli_offline()) {   /* said, so the reason is not left to guess */
        snprintf(line, sizeof line, "%s is not here, and HASTEN_OFFLINE is set: not fetched", name);
        note(ud, line);
        return -1;
    }
    if (data_cache_dir(cache, sizeof cache)) return -1;
    fetch_format_bytes(dataset_bytes(d), size, sizeof size);
    snprintf(line, sizeof line, "%s is not here; fetching it (%s) into %s/%s", name, size, cache, name);
    note(ud, line);
    shown s = { .note = note, .ud = ud };
    fetch_options o;
    fetch_options_init(&o);
    o.progress = show_progress;
    o.ud = &s;
    if (data_fetch(name, 0, &o, err, sizeof err) == FETCH_OK) return 0;
    snprintf(line, sizeof line, "fetching %s failed: %s", name, err);
    note(ud, line);
    return -1;
}

/* ---- hasten fetch ---- */

static const char fetch_usage[] =
    "usage: hasten fetch NAME... [--force] [--quiet]\n"
    "  downloads each dataset into the cache ($XDG_CACHE_HOME/hasten or\n"
    "  ~/.cache/hasten), resuming partial downloads and verifying SHA-256; a copy\n"
    "  already in the cache is verified again.\n"
    "  --force   fetch into the cache even when a copy is installed elsewhere\n"
    "  --quiet   no progress, errors only\n"
    "  HASTEN_MIRROR=URL fetches URL/<name>/<file> instead of the origin (same\n"
    "  checksums).\n";

static volatile sig_atomic_t fetch_interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    fetch_interrupted = 1;
}

/* The command's progress: Ctrl-C cancels the download (so it can say what stays), else the bar or
 * lines unless --quiet. */
static int command_progress(const fetch_progress *p, void *ud)
{
    if (fetch_interrupted) return 1;
    return ((shown *)ud)->quiet ? 0 : show_progress(p, ud);
}

static int fetch_one(const data_info *d, int force, int quiet)
{
    char dir[1024], err[1200];
    enum data_where w = data_locate(d, dir, sizeof dir);
    if (w != DATA_NOWHERE && w != DATA_CACHE && !force) {
        if (!quiet)
            fprintf(stderr, "hasten: %s is already in %s (%s); nothing to fetch (--force fetches a copy "
                    "into the cache)\n", d->name, dir, data_where_name(w));
        return EXIT_DONE;
    }
    shown s;
    shown_for_stderr(&s, quiet);
    fetch_options o;
    fetch_options_init(&o);
    s.quiet = quiet;
    o.progress = command_progress;
    o.ud = &s;
    struct sigaction sa = { .sa_handler = on_interrupt }, old_int;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    int rc = data_fetch(d->name, 1, &o, err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    if (s.drawn) fputc('\n', stderr);
    if (rc == FETCH_CANCELLED && fetch_interrupted) {
        fprintf(stderr, "hasten: %s: interrupted; what was downloaded stays in the cache, and hasten fetch %s "
                "resumes it\n", d->name, d->name);
        return 130;
    }
    if (rc != FETCH_OK) {
        fprintf(stderr, "hasten: %s\n", err);
        return EXIT_FAILED;
    }
    if (!quiet) {
        data_cache_dir(dir, sizeof dir);
        fprintf(stderr, "hasten: %s: %d file%s verified in %s/%s\n", d->name, d->n_files,
                d->n_files == 1 ? "" : "s", dir, d->name);
    }
    return EXIT_DONE;
}

/* The known dataset name nearest to word, for "did you mean"; NULL when none is close. */
static const char *nearest_dataset(const char *word)
{
    const char *const *names = data_names();
    int n = 0;
    while (names[n]) n++;
    return config_nearest_name(word, names, n);
}

int cli_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, 0, 'f'}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int force = 0, quiet = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(fetch_usage, stdout); return EXIT_DONE;
        default:
            fprintf(stderr, "hasten fetch: unknown option '%s'\n%s", argv[optind - 1], fetch_usage);
            return EXIT_USAGE;
        }
    }
    if (optind == argc) {
        fprintf(stderr, "hasten fetch: which dataset? (hasten datasets lists them)\n%s", fetch_usage);
        return EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {   /* every name checked before anything is fetched */
        const data_info *d = data_info_find(argv[i]);
        if (!d || !d->n_files) {
            char known[256] = "";
            for (const char *const *n = data_names(); *n; n++)
                if (data_info_find(*n)->n_files)
                    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", known[0] ? ", " : "", *n);
            const char *near = d ? NULL : nearest_dataset(argv[i]);
            if (near) fprintf(stderr, "hasten fetch: unknown dataset '%s' (did you mean '%s'?)\n", argv[i], near);
            else fprintf(stderr, "hasten fetch: %s '%s' (can fetch: %s)\n", d ? "nothing to fetch for" : "unknown dataset",
                         argv[i], known);
            return EXIT_USAGE;
        }
    }
    if (cli_offline()) {
        fprintf(stderr, "hasten fetch: HASTEN_OFFLINE is set, so nothing is fetched (unset it to fetch)\n");
        return EXIT_FAILED;
    }
    int code = EXIT_DONE;
    for (int i = optind; i < argc && code == EXIT_DONE; i++)
        code = fetch_one(data_info_find(argv[i]), force, quiet);
    return code;
}

/* ---- hasten datasets ---- */

static const char *format_name(enum data_format f)
{
    static const char *const names[] = { "IDX", "CIFAR", "text", "made" };
    return (unsigned)f < 4 ? names[f] : "?";
}

/* "system: /usr/share/datasets/mnist", "not present (hasten fetch mnist)", ... */
static void where_text(const data_info *d, char *out, size_t len)
{
    char dir[1024], part[32];
    int files;
    long long partial;
    enum data_where w = data_locate(d, dir, sizeof dir);
    if (!d->n_files && d->format == DATA_FORMAT_TEXT) snprintf(out, len, "a file of yours: data = { \"%s\", path = \"FILE\" }", d->name);
    else if (w == DATA_BUILT_IN) snprintf(out, len, "built in");
    else if (w != DATA_NOWHERE) snprintf(out, len, "%s: %s", data_where_name(w), dir);
    else {
        data_cache_state(d, &files, &partial);
        fetch_format_bytes(partial, part, sizeof part);
        if (files || partial)
            snprintf(out, len, "partly in the cache: %d of %d files%s%s%s (hasten fetch %s resumes)", files,
                     d->n_files, partial ? " and " : "", partial ? part : "", partial ? " partial" : "", d->name);
        else snprintf(out, len, "not present (hasten fetch %s)", d->name);
    }
}

static void list_all(void)
{
    char size[32], where[1400], cache[1024];
    const char *mirror = getenv("HASTEN_MIRROR");
    printf("%-16s %-6s %-9s %s\n", "dataset", "format", "size", "where");
    for (const char *const *n = data_names(); *n; n++) {
        const data_info *d = data_info_find(*n);
        if (d->n_files) fetch_format_bytes(dataset_bytes(d), size, sizeof size);
        else snprintf(size, sizeof size, "-");
        where_text(d, where, sizeof where);
        printf("%-16s %-6s %-9s %s\n", d->name, format_name(d->format), size, where);
    }
    if (data_cache_dir(cache, sizeof cache)) snprintf(cache, sizeof cache, "(none: set HOME or XDG_CACHE_HOME)");
    printf("\ncache: %s\nmirror: %s\n", cache, mirror && *mirror ? mirror : "none (HASTEN_MIRROR not set)");
}

static void show_one(const data_info *d)
{
    char where[1400], size[32];
    where_text(d, where, sizeof where);
    printf("%s\n  %s\n  where:     %s\n  homepage:  %s\n  licence:   %s\n  cite:      %s\n",
           d->name, d->title, where, d->homepage ? d->homepage : "-", d->licence, d->citation);
    if (!d->n_files) return;
    printf("  checksums: SHA-256 from %s\n  files:\n", d->digests_from);
    for (int i = 0; i < d->n_files; i++) {
        const data_file *f = &d->files[i];
        fetch_format_bytes(f->size, size, sizeof size);
        printf("    %-27s %9s  %s\n      %s\n", f->name, size, f->sha256[0], f->url);
        for (int k = 1; f->sha256[k]; k++) printf("      also accepted: %s\n", f->sha256[k]);
    }
}

int cli_datasets(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-' && strcmp(argv[1], "--help"))) {
        fprintf(stderr, "usage: hasten datasets [NAME]\n");
        return EXIT_USAGE;
    }
    if (argc == 2 && !strcmp(argv[1], "--help")) {
        puts("usage: hasten datasets [NAME]\n  lists the datasets hasten knows and where each one is; with\n"
             "  NAME, its files, checksums, licence and citation");
        return EXIT_DONE;
    }
    if (argc < 2) {
        list_all();
        return EXIT_DONE;
    }
    const data_info *d = data_info_find(argv[1]);
    if (!d) {
        char hint[64] = "hasten datasets lists them";
        const char *near = nearest_dataset(argv[1]);
        if (near) snprintf(hint, sizeof hint, "did you mean '%s'?", near);
        fprintf(stderr, "hasten datasets: unknown dataset '%s' (%s)\n", argv[1], hint);
        return EXIT_USAGE;
    }
    show_one(d);
    return EXIT_DONE;
}
