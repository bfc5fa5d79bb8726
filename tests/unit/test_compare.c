/* `hasten compare` and `hasten sweep`: the baseline's Pareto frontier and the readings against it,
 * by hand-checked numbers on run folders the test writes, and a real sweep on Fashion-MNIST. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "engine/ops.h"
#include "tests/support.h"
#include "tui/frontier.h"

/* ---- the arithmetic ---- */

static void test_frontier_math(void **s)
{
    frontier_point pts[] = { { 30, 0.85, 2 }, { 10, 0.81, 0 }, { 40, 0.90, 3 }, { 20, 0.86, 1 },
                             { 20, 0.84, 4 } };
    frontier f;
    frontier_build(&f, pts, 5);
    assert_int_equal(f.n, 3);   /* 30 s at 0.85 and 20 s at 0.84 are dominated */
    assert_int_equal(f.p[0].tag, 0);
    assert_int_equal(f.p[1].tag, 1);
    assert_int_equal(f.p[2].tag, 3);
    assert_true(fabs(frontier_quality_at(&f, 15) - 0.835) < 1e-12);
    assert_true(fabs(frontier_quality_at(&f, 30) - 0.88) < 1e-12);
    assert_true(fabs(frontier_quality_at(&f, 40) - 0.90) < 1e-12);
    assert_true(isnan(frontier_quality_at(&f, 9.9)));
    assert_true(isnan(frontier_quality_at(&f, 40.1)));
    double t;
    assert_int_equal(frontier_time_for(&f, 0.88, &t), 0);
    assert_true(fabs(t - 30) < 1e-9);
    assert_int_equal(frontier_time_for(&f, 0.81, &t), 0);
    assert_true(t == 10);
    assert_int_equal(frontier_time_for(&f, 0.70, &t), -1);   /* the shortest budget already beats it */
    assert_true(t == 10);
    assert_int_equal(frontier_time_for(&f, 0.95, &t), 1);    /* beyond the longest budget */
    assert_true(t == 40);
    frontier empty;
    frontier_build(&empty, pts, 0);
    assert_int_equal(frontier_time_for(&empty, 0.5, &t), -2);
    assert_true(isnan(frontier_quality_at(&empty, 1)));
}

/* ---- compare on written run folders ---- */

/* A run folder with a summary.json as hasten writes it; batch (0 = left out) and fingerprint (a
 * JSON object, NULL = left out) say where it ran. */
static void write_run_on(const char *root, const char *name, const char *plugins, const char *budget,
                         double acc, double secs, double ttt, const char *status, int batch,
                         const char *fingerprint)
{
    char dir[800], json[1600], t[32] = "null", where[400] = "";
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    mkdir(root, 0755);
    mkdir(dir, 0755);
    if (ttt >= 0) snprintf(t, sizeof t, "%g", ttt);
    if (batch) snprintf(where, sizeof where, ",\"batch\":%d", batch);
    if (fingerprint) snprintf(where + strlen(where), sizeof where - strlen(where), ",\"fingerprint\":%s", fingerprint);
    int n = snprintf(json, sizeof json, "{\"version\":1,\"status\":\"%s\",\"recipe\":\"recipes/toy.lua\","
                     "\"plugins\":%s,\"budget\":\"%s\",\"test_acc\":%g,\"train_seconds\":%g,"
                     "\"samples_per_second\":1000,\"steps\":%g,\"time_to_target\":%s,\"steps_to_target\":%s%s}\n",
                     status, plugins, budget, acc, secs, secs * 10, t, t, where);
    char path[900];
    snprintf(path, sizeof path, "%s/summary.json", name);
    char rel[1000];
    snprintf(rel, sizeof rel, "%s/%s", strrchr(root, '/') + 1, path);
    test_write_file(rel, json, (size_t)n);
}

static void write_run(const char *root, const char *name, const char *plugins, const char *budget,
                      double acc, double secs, double ttt, const char *status)
{
    write_run_on(root, name, plugins, budget, acc, secs, ttt, status, 0, NULL);
}

/* The output line that starts with prefix (after "| " in Markdown), or NULL. */
static const char *line_of(const char *text, const char *prefix)
{
    static char line[1024];
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        const char *q = p + (p[0] == '|' ? 2 : 0);
        if (!strncmp(q, prefix, strlen(prefix))) {
            size_t n = strcspn(p, "\n");
            snprintf(line, sizeof line, "%.*s", (int)n, p);
            return line;
        }
    }
    return NULL;
}

static void expect_in(const char *line, const char *needle)
{
    if (!line || !strstr(line, needle)) fail_msg("'%s' not in: %s", needle, line ? line : "(no line)");
}

static const char *runs_dir(void)
{
    static char root[700];
    snprintf(root, sizeof root, "%s/runs", test_tmpdir());
    return root;
}

static void make_runs(void)
{
    const char *r = runs_dir();
    static const char ema[] = "[{\"name\":\"ema\",\"params\":{}}]", mix[] = "[{\"name\":\"mixup\",\"params\":{\"alpha\":\"0.4\"}}]",
                      sam[] = "[{\"name\":\"sam\",\"params\":{}}]";
    /* Baseline frontier: (10 s, 0.81) (20 s, 0.86) (40 s, 0.90); 3ep is dominated by 2ep. */
    write_run(r, "b1-s1", "[]", "1ep", 0.805, 10, -1, "done");
    write_run(r, "b1-s2", "[]", "1ep", 0.815, 10, -1, "done");   /* standard error 0.005 */
    write_run(r, "b2-s1", "[]", "2ep", 0.86, 20, 18, "done");
    write_run(r, "b2-s2", "[]", "2ep", 0.86, 20, 18, "done");
    write_run(r, "b3-s1", "[]", "3ep", 0.85, 30, 25, "done");
    write_run(r, "b3-s2", "[]", "3ep", 0.85, 30, 25, "done");
    write_run(r, "b4-s1", "[]", "4ep", 0.90, 40, 30, "done");
    write_run(r, "b4-s2", "[]", "4ep", 0.90, 40, 30, "done");
    write_run(r, "b5-s1", "[]", "5ep", 0.99, 3, 1, "failed");   /* left out */
    write_run(r, "ema-s1", ema, "2ep", 0.88, 20, 12, "done");
    write_run(r, "ema-s2", ema, "2ep", 0.88, 20, 12, "done");
    write_run(r, "mix-s1", mix, "1ep", 0.805, 10, -1, "done");
    write_run(r, "sam-s1", sam, "4ep", 0.95, 50, 20, "done");
    /* 0.015 over the frontier at its mean time, but its two runs took 15 and 25 s. */
    static const char cut[] = "[{\"name\":\"cutout\",\"params\":{}}]", warm[] = "[{\"name\":\"warmup\",\"params\":{}}]";
    write_run(r, "cut-s1", cut, "2ep", 0.875, 15, 14, "done");
    write_run(r, "cut-s2", cut, "2ep", 0.875, 25, 20, "done");
    /* Faster than the shortest budget, and better than it. */
    write_run(r, "warm-s1", warm, "1ep", 0.85, 5, -1, "done");
}

static void test_compare_readings(void **s)
{
    make_runs();
    char *out, *err;
    int rc = test_hasten((const char *[]){ "compare", runs_dir(), NULL }, &out, &err);
    if (rc) print_message("%s\n%s\n", out, err);
    assert_int_equal(rc, 0);
    expect_in(err, "b5-s1: status is failed, not done: left out");
    /* Time to target against the baseline budget that reached it soonest (2ep, 18 s). */
    expect_in(line_of(out, "toy            baseline                       2ep"), "1.00x");
    expect_in(line_of(out, "toy            baseline                       4ep"), "0.60x");
    expect_in(line_of(out, "toy            baseline                       1ep"), "0/2");
    expect_in(line_of(out, "toy            ema"), "1.50x");
    expect_in(line_of(out, "toy            ema"), " 200  100.00 ");   /* steps and ms/step apart */
    expect_in(out, "against the baseline budget that reached the target soonest");
    /* The frontier and each variant against it. */
    expect_in(line_of(out, "  3ep"), "off the frontier");
    expect_in(line_of(out, "  2ep"), "20.0 s  0.8600");
    const char *l = line_of(out, "ema ");
    expect_in(l, "0.8600 (+0.0200)");   /* the frontier at 20 s */
    expect_in(l, "30.0 s");             /* where the frontier reaches 0.88 */
    expect_in(l, "1.50x");
    expect_in(l, "above");              /* 0.02 against two standard errors, 0.01 */
    assert_null(strstr(l, "(1 run)"));
    l = line_of(out, "mixup(alpha=0.4) ");
    expect_in(l, "0.8100 (-0.0050)");
    expect_in(l, "<10.0 s");
    expect_in(l, "level (1 run)");      /* 0.005 is within two standard errors */
    l = line_of(out, "sam ");
    expect_in(l, "outside the sweep");
    expect_in(l, ">40.0 s");
    expect_in(l, ">0.80x");
    expect_in(l, "?");
    l = line_of(out, "cutout ");
    expect_in(l, "0.8600 (+0.0150)");
    expect_in(l, "level");              /* the frontier moves 0.05 within two standard errors of its time */
    assert_null(strstr(l, "(1 run)"));
    l = line_of(out, "warmup ");
    expect_in(l, "outside the sweep");
    expect_in(l, "18.0 s");             /* the frontier reaches 0.85 at 18 s */
    expect_in(l, "3.60x");
    expect_in(l, "above (1 run)");
    expect_in(out, "(the baseline's are up to 0.0050 in test_acc and 0.0% in training time)");
    free(out);
    free(err);

    rc = test_hasten((const char *[]){ "compare", runs_dir(), "--markdown", NULL }, &out, &err);
    assert_int_equal(rc, 0);
    expect_in(line_of(out, "ema | 2ep"), "| 1.50x | above |");
    expect_in(out, "- 2ep: 20.0 s, 0.8600\n");
    free(out);
    free(err);
}

/* A variant slower than the longest budget: its accuracy's noise counts as it does inside the sweep.
 * Frontier (10 s, 0.81) (20 s, 0.86) (40 s, 0.90); the 1ep runs' standard error is 0.01, so two of
 * the difference are 0.02. */
static void test_compare_outside_noise(void **s)
{
    char root[700];
    snprintf(root, sizeof root, "%s/outside", test_tmpdir());
    static const char late[] = "[{\"name\":\"late\",\"params\":{}}]", slow[] = "[{\"name\":\"slow\",\"params\":{}}]";
    write_run(root, "b1-s1", "[]", "1ep", 0.80, 10, -1, "done");
    write_run(root, "b1-s2", "[]", "1ep", 0.82, 10, -1, "done");
    write_run(root, "b2-s1", "[]", "2ep", 0.86, 20, -1, "done");
    write_run(root, "b2-s2", "[]", "2ep", 0.86, 20, -1, "done");
    write_run(root, "b4-s1", "[]", "4ep", 0.90, 40, -1, "done");
    write_run(root, "b4-s2", "[]", "4ep", 0.90, 40, -1, "done");
    /* 0.895 in 45 s: the frontier needs 37.5 s for it, but 0.895 + 0.02 is past the sweep */
    write_run(root, "late-s1", late, "5ep", 0.895, 45, -1, "done");
    write_run(root, "late-s2", late, "5ep", 0.895, 45, -1, "done");
    /* 0.86 in 60 s: the frontier needs 30 s for 0.86 + 0.02 */
    write_run(root, "slow-s1", slow, "5ep", 0.86, 60, -1, "done");
    write_run(root, "slow-s2", slow, "5ep", 0.86, 60, -1, "done");
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    const char *l = line_of(out, "late ");
    expect_in(l, "37.5 s");
    expect_in(l, "level");
    l = line_of(out, "slow ");
    expect_in(l, "20.0 s");
    expect_in(l, "below");
    free(out);
    free(err);
}

/* Sub-second runs (a GPU's) print their times with two decimals, the spread with as many; runs of
 * a second or more keep one. */
static void test_compare_subsecond(void **s)
{
    char root[700];
    snprintf(root, sizeof root, "%s/fast", test_tmpdir());
    write_run(root, "b1-s1", "[]", "1ep", 0.89, 0.47, 0.42, "done");
    write_run(root, "b1-s2", "[]", "1ep", 0.90, 0.49, 0.46, "done");
    write_run(root, "b2-s1", "[]", "2ep", 0.91, 1.04, 0.6, "done");
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    const char *l = line_of(out, "toy            baseline                       1ep");
    expect_in(l, "0.44 ± 0.03 s");
    expect_in(l, "0.48 ");
    expect_in(line_of(out, "  1ep"), "0.48 s  0.8950");
    expect_in(line_of(out, "  2ep"), "1.0 s  0.9100");
    free(out);
    free(err);
}

/* The line of out that holds the plot row k (0 = top) after its title, or NULL. */
static const char *plot_row(const char *out, int k)
{
    static char line[1024];
    const char *p = strstr(out, "final test_acc against training seconds\n");
    if (!p) return NULL;
    p = strchr(p, '\n') + 1;
    for (int i = 0; i < k && p; i++) p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
    if (!p) return NULL;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(p, "\n"), p);
    return line;
}

/* --plot draws each frontier: braille for the baseline's line, '*' at its budgets, a letter for
 * each variant, higher accuracy higher up, and a legend with each letter's reading. */
static void test_compare_plot(void **s)
{
    make_runs();
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", runs_dir(), "--plot", NULL }, &out, &err), 0);
    expect_in(out, "  * baseline, at its budgets: 1ep 2ep 3ep 4ep; the line joins those on its frontier");
    /* legend letters in the table's order: cutout, ema, mixup, sam, warmup */
    expect_in(out, "  b ema 2ep: 0.8800 in 20.0 s, above\n");
    expect_in(out, "  d sam 4ep: 0.9500 in 50.0 s, ? (1 run)\n");
    int top = 0, bottom = 0;
    for (int k = 0; k < 2; k++) top |= strchr(plot_row(out, k) + 7, 'd') != NULL;   /* sam, the highest */
    for (int k = 12; k < 14; k++) bottom |= strchr(plot_row(out, k) + 7, 'c') != NULL;   /* mixup, the lowest */
    if (!top || !bottom) print_message("%s\n", out);
    assert_true(top && bottom);
    assert_non_null(strstr(out, "\xe2\xa0"));   /* braille cells (U+28xx) draw the line */
    expect_in(plot_row(out, 14), "\xe2\x94\x94");   /* the x axis: "└" */
    free(out);
    free(err);
    assert_int_equal(test_hasten((const char *[]){ "compare", runs_dir(), "--plot", "--markdown", NULL }, &out, &err), 0);
    expect_in(out, "\n```\n        final test_acc against training seconds");
    free(out);
    free(err);
}

/* Runs of one recipe on two machines, or at two batch sizes, are separate experiments: each has
 * its own groups, baseline and frontier, labelled by what differs. */
static void test_compare_setups(void **s)
{
    char root[700];
    snprintf(root, sizeof root, "%s/setups", test_tmpdir());
    static const char gpu[] = "{\"device\":\"cuda\",\"gpu\":\"NVIDIA H100 80GB HBM3, 132 SMs, compute 9.0\","
                              "\"cpu\":\"Intel Xeon\",\"threads\":16}",
                      cpu[] = "{\"device\":\"cpu\",\"cpu\":\"AMD EPYC\",\"threads\":2}",
                      ema[] = "[{\"name\":\"ema\",\"params\":{}}]";
    write_run_on(root, "g1", "[]", "1ep", 0.86, 0.3, 0.25, "done", 128, gpu);
    write_run_on(root, "g2", "[]", "2ep", 0.90, 0.6, 0.40, "done", 128, gpu);
    write_run_on(root, "g3", ema, "1ep", 0.87, 0.3, 0.20, "done", 128, gpu);
    write_run_on(root, "c1", "[]", "1ep", 0.86, 15, 12, "done", 128, cpu);
    write_run_on(root, "c2", "[]", "2ep", 0.90, 30, 20, "done", 128, cpu);
    write_run_on(root, "c3", ema, "1ep", 0.87, 15, 10, "done", 128, cpu);
    write_run_on(root, "b1", "[]", "1ep", 0.85, 0.2, -1, "done", 512, gpu);
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    /* the speedups against each machine's own baseline: 0.25 / 0.20 and 12 / 10 */
    expect_in(line_of(out, "toy (batch 128, NVIDIA H100 80GB HBM3) ema"), "1.25x");
    expect_in(line_of(out, "toy (batch 128, AMD EPYC, 2 threads)   ema"), "1.20x");
    /* one run: its time and accuracy alone, no spread (a "± 0.0" would claim one measured) */
    expect_in(line_of(out, "toy (batch 128, AMD EPYC, 2 threads)   baseline                       1ep"),
              "  12.0 s     1/1           0.8600 ");
    assert_null(strstr(line_of(out, "toy (batch 128, AMD EPYC, 2 threads)   baseline                       1ep"), "±"));
    expect_in(line_of(out, "toy (batch 512, NVIDIA H100 80GB HBM3) baseline"), "0/1");
    expect_in(out, "toy (batch 128, NVIDIA H100 80GB HBM3) baseline frontier");
    expect_in(out, "toy (batch 128, AMD EPYC, 2 threads) baseline frontier");
    assert_null(strstr(out, "toy (batch 512, NVIDIA H100 80GB HBM3) baseline frontier"));   /* one budget */
    free(out);
    free(err);

    /* The same machine and batch, two hasten versions: a faster engine must not make the method
     * look faster, so the method trained by the new one has no baseline of its own version. */
    snprintf(root, sizeof root, "%s/versions", test_tmpdir());
    static const char old_v[] = "{\"device\":\"cpu\",\"cpu\":\"AMD EPYC\",\"threads\":2,\"hasten\":\"1111111\"}",
                      new_v[] = "{\"device\":\"cpu\",\"cpu\":\"AMD EPYC\",\"threads\":2,\"hasten\":\"2222222\"}";
    write_run_on(root, "old-base", "[]", "1ep", 0.86, 15, 12, "done", 128, old_v);
    write_run_on(root, "new-ema", ema, "1ep", 0.87, 10, 8, "done", 128, new_v);
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    expect_in(line_of(out, "toy (hasten 1111111) baseline"), " 12.0 s ");
    expect_in(line_of(out, "toy (hasten 2222222) ema"), " 8.0 s ");
    assert_null(strstr(line_of(out, "toy (hasten 2222222) ema"), "1.50x"));   /* 12 / 8 across versions */
    expect_in(out, "same recipe, batch, machine and hasten version");
    free(out);
    free(err);
}

/* A recipe.lua in run folder root/name, evaluating as eval says ("\"epoch\"", "100"). */
static void write_recipe(const char *root, const char *name, const char *eval)
{
    char rel[1000], text[400];
    snprintf(rel, sizeof rel, "%s/%s/recipe.lua", strrchr(root, '/') + 1, name);
    int n = snprintf(text, sizeof text, "return { data = { \"synthetic\" }, model = nn.sequential { nn.flatten(), "
                     "nn.linear(10) }, eval = { every = %s } }\n", eval);
    test_write_file(rel, text, (size_t)n);
}

/* A time to target is known to the evaluation that saw it: runs evaluated at other cadences get no
 * speedup against each other, and the table says which cadences it holds. */
static void test_compare_eval_cadence(void **s)
{
    char root[700];
    snprintf(root, sizeof root, "%s/cadence", test_tmpdir());
    static const char ema[] = "[{\"name\":\"ema\",\"params\":{}}]";
    write_run(root, "base2", "[]", "2ep", 0.86, 20, 18, "done");
    write_recipe(root, "base2", "\"epoch\"");
    write_run(root, "ema2", ema, "2ep", 0.88, 20, 12, "done");
    write_recipe(root, "ema2", "100");
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    const char *row = line_of(out, "toy            ema");
    assert_non_null(row);
    assert_null(strstr(row, "1.50x"));   /* 18 / 12 across cadences */
    expect_in(out, "(toy: runs evaluated at different cadences: baseline 2ep every epoch; ema 2ep every 100 steps;");
    free(out);
    free(err);
    /* a baseline budget evaluated as the method was: the speedup is against it */
    write_run(root, "base3", "[]", "3ep", 0.87, 30, 20, "done");
    write_recipe(root, "base3", "100");
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    expect_in(line_of(out, "toy            ema"), "1.67x");
    free(out);
    free(err);
}

/* Without --target each run's time to target is to the target its summary names: runs trained to
 * other targets get no speedup against each other (8 s to 0.85 against 9 s to 0.80 is no 1.12x). */
static void test_compare_targets(void **s)
{
    static const char *const runs[][4] = {   /* name, plugins, target, time to it */
        { "base", "[]", "0.8", "9" }, { "ema", "[{\"name\":\"ema\",\"params\":{}}]", "0.85", "8" },
        { "ema-same", "[{\"name\":\"ema\",\"params\":{\"half_life\":9}}]", "0.8", "6" },
    };
    char root[700];
    snprintf(root, sizeof root, "%s/targets", test_tmpdir());
    mkdir(root, 0755);
    for (int i = 0; i < 3; i++) {
        char dir[800], rel[900], json[800];
        snprintf(dir, sizeof dir, "%s/%s", root, runs[i][0]);
        mkdir(dir, 0755);
        int n = snprintf(json, sizeof json, "{\"version\":1,\"status\":\"done\",\"recipe\":\"toy.lua\",\"plugins\":%s,"
                         "\"budget\":\"1ep\",\"test_acc\":0.87,\"train_seconds\":10,\"samples_per_second\":1000,"
                         "\"target\":{\"test_acc\":%s},\"time_to_target\":%s}", runs[i][1], runs[i][2], runs[i][3]);
        snprintf(rel, sizeof rel, "targets/%s/summary.json", runs[i][0]);
        test_write_file(rel, json, (size_t)n);
    }
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    const char *row = line_of(out, "toy            ema ");
    expect_in(row, " 8.0 s ");
    assert_null(strstr(row, "1.12x"));
    expect_in(line_of(out, "toy            ema(half_life=9)"), "1.50x");   /* 9 / 6, both to 0.8 */
    expect_in(out, "(runs of a setup were trained to different targets: a speedup only between runs of the same target;");
    free(out);
    free(err);
}

/* Runs hasten with args; it must exit with code and say needle on stderr. */
static void expect_error(const char *const *args, int code, const char *needle)
{
    char *out, *err;
    int rc = test_hasten(args, &out, &err);
    if (rc != code) print_message("exit %d, want %d; stderr: %s\n", rc, code, err);
    assert_int_equal(rc, code);
    expect_in(err, needle);
    free(out);
    free(err);
}

/* A variant name longer than the column (a plugin's arguments) widens the column: the budget
 * stays under its header in every row. */
static void test_compare_long_names(void **s)
{
    char root[700];
    snprintf(root, sizeof root, "%s/long", test_tmpdir());
    static const char teacher[] = "[{\"name\":\"distillation\",\"params\":{\"teacher\":\"runs/a-teacher-run-folder\"}}]";
    write_run(root, "base-s1", "[]", "1ep", 0.80, 10, -1, "done");
    write_run(root, "dist-s1", teacher, "1ep", 0.81, 12, -1, "done");
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    const char *head = strstr(out, "recipe "), *long_row = strstr(out, "toy            distillation(");
    const char *short_row = strstr(out, "toy            baseline");
    assert_non_null(head);
    assert_non_null(long_row);
    assert_non_null(short_row);
    long col = strstr(head, "budget") - head;
    assert_int_equal(strstr(long_row, "1ep") - long_row, col);
    assert_int_equal(strstr(short_row, "1ep") - short_row, col);
    free(out);
    free(err);
}

/* Budgets in their order, not their folder names': 50steps before 100steps, 2ep before 10ep. */
static void test_compare_budget_order(void **s)
{
    char root[700];
    snprintf(root, sizeof root, "%s/order", test_tmpdir());
    write_run(root, "toy-baseline-100steps-s1", "[]", "100steps", 0.88, 2.0, 1.5, "done");
    write_run(root, "toy-baseline-10ep-s1", "[]", "10ep", 0.91, 20, 1.5, "done");
    write_run(root, "toy-baseline-2ep-s1", "[]", "2ep", 0.90, 4.0, 1.5, "done");
    write_run(root, "toy-baseline-50steps-s1", "[]", "50steps", 0.86, 1.0, -1, "done");
    write_run(root, "toy-ema-2ep-s1", "[{\"name\":\"ema\",\"params\":{}}]", "2ep", 0.905, 4.0, 1.2, "done");
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", root, NULL }, &out, &err), 0);
    const char *a = strstr(out, "baseline                       50steps"),
               *b = strstr(out, "baseline                       100steps"),
               *c = strstr(out, "baseline                       2ep"),
               *d = strstr(out, "baseline                       10ep");
    if (!a || !b || !c || !d || !(a < b && b < c && c < d)) fail_msg("budgets out of order:\n%s", out);
    const char *f = strstr(out, "baseline frontier");
    assert_non_null(f);
    assert_true(strstr(f, "  50steps ") < strstr(f, "  100steps ") && strstr(f, "  2ep ") < strstr(f, "  10ep "));
    /* one run a budget: no spread measured, said so, not "up to 0.0000" */
    assert_non_null(strstr(f, "(the baseline has no budget of two runs or more: no spread measured)"));
    assert_null(strstr(f, "up to 0.0000"));
    free(out);
    free(err);
}

static void test_compare_errors(void **s)
{
    /* a folder with a run that never wrote its summary (killed, disk full): said, exit 1 */
    char unfinished[700];
    snprintf(unfinished, sizeof unfinished, "%s/unfinished", test_tmpdir());
    mkdir(unfinished, 0755);
    strcat(unfinished, "/r1");
    mkdir(unfinished, 0755);
    test_write_file("unfinished/r1/metrics.jsonl", "{\"step\":1,\"seconds\":0.1,\"train_loss\":2}\n", 37);
    expect_error((const char *[]){ "compare", unfinished, NULL }, 1, "hasten compare: no run to compare in the folders given");
    expect_error((const char *[]){ "compare", "/nonexistent/runs", NULL }, 2,
                 "/nonexistent/runs: not a run folder, nor a folder of runs");
    expect_error((const char *[]){ "compare", runs_dir(), "--target", "speed=3", NULL }, 2,
                 "bad option 'speed=3' for --target");
    expect_error((const char *[]){ "compare", runs_dir(), "--target", "test_acc=high", NULL }, 2,
                 "bad option 'test_acc=high' for --target");
    /* targets no run can meet, refused as a recipe refuses them */
    expect_error((const char *[]){ "compare", runs_dir(), "--target", "test_acc=2", NULL }, 2,
                 "bad option 'test_acc=2' for --target");
    expect_error((const char *[]){ "compare", runs_dir(), "--target", "test_loss=0", NULL }, 2,
                 "bad option 'test_loss=0' for --target");
    /* and bench's counts: a word or a zero was taken as "the default" */
    expect_error((const char *[]){ "bench", "--batch", "0", NULL }, 2, "bad value for --batch: '0'");
    expect_error((const char *[]){ "bench", "--steps", "many", NULL }, 2, "bad value for --steps: 'many'");

    /* Damaged or foreign files: each left out with the file and the field named; the good run stays. */
    static const char no_sps[] = "{\"version\":1,\"status\":\"done\",\"recipe\":\"toy.lua\",\"plugins\":[],"
                                 "\"test_acc\":0.9,\"train_seconds\":1}";
    static const char bad_plugins[] = "{\"version\":1,\"status\":\"done\",\"recipe\":\"toy.lua\",\"plugins\":[{\"params\":{}}],"
                                      "\"test_acc\":0.9,\"train_seconds\":1,\"samples_per_second\":5}";
    static const char good[] = "{\"version\":1,\"status\":\"done\",\"recipe\":\"toy.lua\",\"plugins\":[{\"name\":\"ema\","
                               "\"params\":{\"half_life\":50}}],\"budget\":\"1ep\",\"test_acc\":0.96,"
                               "\"train_seconds\":4,\"samples_per_second\":5}";
    static const char metrics[] = "{\"step\":1,\"test_acc\":0.95}\nnot json\n{\"step\":2,\"seconds\":3.5,\"test_acc\":0.95}\n";
    char root[700];
    snprintf(root, sizeof root, "%s/damaged", test_tmpdir());
    mkdir(root, 0755);
    static const char phases[] = "{\"version\":1,\"status\":\"done\",\"recipe\":\"toy2.lua\",\"plugins\":[],\"budget\":\"2ep\","
                                 "\"test_acc\":0.9,\"train_seconds\":4,\"samples_per_second\":5,\"steps\":400,"
                                 "\"phase_seconds\":{\"data_wait\":0.4,\"forward\":2,\"backward\":1.2,"
                                 "\"optimizer\":0.2,\"plugins\":0.04,\"eval\":9}}";
    static const char newer[] = "{\"version\":7,\"status\":\"done\",\"recipe\":\"toy.lua\",\"plugins\":[],"
                                "\"test_acc\":0.99,\"train_seconds\":1,\"samples_per_second\":5}";
    const char *names[] = { "damaged/a", "damaged/b", "damaged/c", "damaged/d", "damaged/e" };
    for (int i = 0; i < 5; i++) {
        char d[800];
        snprintf(d, sizeof d, "%s/%s", test_tmpdir(), names[i]);
        mkdir(d, 0755);
    }
    test_write_file("damaged/a/summary.json", no_sps, strlen(no_sps));
    test_write_file("damaged/b/summary.json", bad_plugins, strlen(bad_plugins));
    test_write_file("damaged/c/summary.json", good, strlen(good));
    test_write_file("damaged/c/metrics.jsonl", metrics, strlen(metrics));
    test_write_file("damaged/d/summary.json", phases, strlen(phases));
    test_write_file("damaged/e/summary.json", newer, strlen(newer));
    static const char *const out_of_range[][2] = {
        { "f", "\"test_acc\":7,\"train_seconds\":1,\"samples_per_second\":5" },
        { "g", "\"test_acc\":0.9,\"train_seconds\":1,\"samples_per_second\":5,\"batch\":1e300" },
        { "h", "\"test_acc\":0.9,\"train_seconds\":1,\"samples_per_second\":5,\"fingerprint\":{\"cpu\":\"x\",\"threads\":-2}" },
        { "i", "\"test_acc\":0.9,\"train_seconds\":1,\"samples_per_second\":5" },
    };
    for (int i = 0; i < 4; i++) {
        char d[800], json[600];
        snprintf(d, sizeof d, "%s/damaged/%s", test_tmpdir(), out_of_range[i][0]);
        mkdir(d, 0755);
        int n = snprintf(json, sizeof json, "{\"version\":1,\"status\":\"done\",\"recipe\":\"toy9.lua\",\"plugins\":[],%s}",
                         out_of_range[i][1]);
        snprintf(d, sizeof d, "damaged/%s/summary.json", out_of_range[i][0]);
        test_write_file(d, json, (size_t)n);
    }
    static const char reversed[] = "{\"step\":1,\"seconds\":1,\"test_acc\":0.5}\n{\"step\":-4,\"seconds\":0.5,\"test_acc\":0.95}\n";
    test_write_file("damaged/i/metrics.jsonl", reversed, strlen(reversed));
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "compare", root, "--target", "test_acc=0.9", "--phases", NULL },
                                 &out, &err), 0);
    /* --phases: ms per step in each training phase (evaluation is not one) */
    expect_in(out, "data_wait    forward   backward  optimizer    plugins\n");
    const char *phase_table = strstr(out, "data_wait");
    assert_non_null(phase_table);
    expect_in(line_of(phase_table, "toy2 "), "1.000      5.000      3.000      0.500      0.100");
    expect_in(err, "damaged/a/summary.json: field samples_per_second missing or not a number: left out");
    expect_in(err, "damaged/b/summary.json: field plugins is not as hasten writes it: left out");
    expect_in(err, "damaged/e/summary.json: format version 7, this hasten reads version 1 (a newer hasten wrote it");
    expect_in(line_of(out, "toy            ema(half_life=50)"), " 3.5 s ");   /* the record with a time */
    expect_in(line_of(out, "toy            ema(half_life=50)"), "     -       - ");   /* no steps recorded */
    /* Numbers out of their range are damage, not measurements: left out, the field named. */
    expect_in(err, "damaged/f/summary.json: test_acc is 7, not a number in [0, 1], so the file is damaged (restore "
                   "it from a copy, or run again)");
    expect_in(err, "damaged/g/summary.json: batch is 1e+300, not a whole number in [1, 1e+09]");
    expect_in(err, "damaged/h/summary.json: fingerprint.threads is -2, not a whole number in [1, 1e+06]");
    expect_in(err, "damaged/i/metrics.jsonl: line 2: step is -4, not a whole number in [0, 1e+15], so the file is "
                   "damaged (restore it from a copy, or run again): left out");
    assert_null(strstr(out, "toy9"));
    free(out);
    free(err);
    /* a run named twice, directly and through its folder, counts once */
    char c_dir[800];
    snprintf(c_dir, sizeof c_dir, "%s/damaged/c", test_tmpdir());
    assert_int_equal(test_hasten((const char *[]){ "compare", c_dir, root, NULL }, &out, &err), 0);
    expect_in(err, "damaged/c: named twice, counted once");
    expect_in(line_of(out, "toy            ema(half_life=50)"), " 1 ");
    free(out);
    free(err);
}

/* ---- a real sweep ---- */

/* dir/name's text (caller frees); fails the test when it is missing. */
static char *read_in(const char *dir, const char *name)
{
    char path[1000];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = test_read_file(path, NULL);
    if (!text) fail_msg("%s is missing", path);
    return text;
}

static void test_sweep(void **s)
{
    char out_dir[700];
    snprintf(out_dir, sizeof out_dir, "%s/sweep", test_tmpdir());
    const char *args[] = { "sweep", "fmnist_mlp", "--budgets", "20steps,40steps", "--seeds", "1,2",
                           "--eval-every", "10", "--threads", "1", "--out", out_dir,
                           "--target", "test_acc=0.5", NULL };
    char *out, *err;
    int rc = test_hasten(args, &out, &err);
    if (rc) print_message("%s\n%s\n", out, err);
    assert_int_equal(rc, 0);
    expect_in(err, "[4/4] budget 40steps, seed 2");
    expect_in(line_of(out, "fmnist_mlp     baseline                       20steps"), "2/2");   /* 50% */
    expect_in(line_of(out, "fmnist_mlp     baseline                       40steps"), "2/2");
    expect_in(out, "fmnist_mlp baseline frontier");
    expect_in(err, "target test_acc >= 0.5 reached in ");   /* each run's own line says so too */
    assert_null(strstr(err, "not reached"));
    free(out);
    free(err);
    /* Each run has its own folder, its budget, and the passed-on evaluation cadence. */
    char *metrics = read_in(out_dir, "fmnist_mlp-baseline-40steps-s2/metrics.jsonl");
    assert_non_null(strstr(metrics, "\"step\":10,"));
    assert_non_null(strstr(metrics, "\"step\":40,"));
    free(metrics);
    /* The sweep's --target is its runs' target too: each run's recipe.lua measures it. */
    char *recipe = read_in(out_dir, "fmnist_mlp-baseline-40steps-s2/recipe.lua");
    assert_non_null(strstr(recipe, "target = { test_acc = 0.5 },"));
    free(recipe);
    /* Again: nothing is retrained. */
    rc = test_hasten(args, &out, &err);
    assert_int_equal(rc, 0);
    expect_in(err, "[3/4] ");
    expect_in(err, "fmnist_mlp-baseline-40steps-s1: already done, kept");
    free(out);
    free(err);
    /* Another batch size is another setup: its own run folder, trained, not taken from the first
     * sweep's, and compare keeps the two apart. */
    const char *b64[] = { "sweep", "fmnist_mlp", "--budgets", "20steps", "--seeds", "1", "--batch", "64",
                          "--eval-every", "10", "--threads", "1", "--out", out_dir, NULL };
    rc = test_hasten(b64, &out, &err);
    if (rc) print_message("%s\n%s\n", out, err);
    assert_int_equal(rc, 0);
    expect_in(err, "[1/1] budget 20steps, seed 1");
    assert_null(strstr(err, "already done"));
    metrics = read_in(out_dir, "fmnist_mlp-baseline-20steps-s1-b64/metrics.jsonl");
    assert_non_null(strstr(metrics, "\"samples\":640,"));   /* 10 steps of 64 */
    free(metrics);
    expect_in(line_of(out, "fmnist_mlp (batch 64)  baseline"), "1 ");
    expect_in(out, "fmnist_mlp (batch 128) baseline");
    free(out);
    free(err);
}

/* Going on after an interruption: a stopped run is trained again from scratch, a folder with
 * someone else's files is left alone. */
static void test_sweep_resumes(void **s)
{
    char dir[700], stale[800];
    snprintf(dir, sizeof dir, "%s/resume", test_tmpdir());
    snprintf(stale, sizeof stale, "%s/fmnist_mlp-baseline-10steps-s1", dir);
    mkdir(dir, 0755);
    mkdir(stale, 0755);
    static const char stopped[] = "{\"version\":1,\"status\":\"stopped\"}", line[] = "{\"step\":99,\"stale\":1}\n";
    test_write_file("resume/fmnist_mlp-baseline-10steps-s1/summary.json", stopped, strlen(stopped));
    test_write_file("resume/fmnist_mlp-baseline-10steps-s1/metrics.jsonl", line, strlen(line));
    test_write_file("resume/fmnist_mlp-baseline-10steps-s1/weights.bin", "w", 1);   /* a stopped run's */
    char other[800];
    snprintf(other, sizeof other, "%s/fmnist_mlp-baseline-10steps-s2", dir);
    mkdir(other, 0755);
    test_write_file("resume/fmnist_mlp-baseline-10steps-s2/notes.txt", "mine", 4);
    static const char older[] = "{\"version\":1,\"status\":\"done\",\"fingerprint\":{\"hasten\":\"1111111\"}}";
    char kept[800];   /* finished by another hasten: kept (measured data is never deleted), said */
    snprintf(kept, sizeof kept, "%s/fmnist_mlp-baseline-10steps-s3", dir);
    mkdir(kept, 0755);
    test_write_file("resume/fmnist_mlp-baseline-10steps-s3/summary.json", older, strlen(older));
    static const char newer[] = "{\"version\":7,\"status\":\"stopped\"}";
    char future[800];   /* a newer hasten's run: not read, so not replaced */
    snprintf(future, sizeof future, "%s/fmnist_mlp-baseline-10steps-s4", dir);
    mkdir(future, 0755);
    test_write_file("resume/fmnist_mlp-baseline-10steps-s4/summary.json", newer, strlen(newer));
    static const char damaged[] = "{\"version\":1,\"status\":\"done\",\"test_acc\":3}";
    char broken[800];   /* a damaged summary: neither taken as done nor cleared as unfinished */
    snprintf(broken, sizeof broken, "%s/fmnist_mlp-baseline-10steps-s5", dir);
    mkdir(broken, 0755);
    test_write_file("resume/fmnist_mlp-baseline-10steps-s5/summary.json", damaged, strlen(damaged));
    char *out, *err;
    int rc = test_hasten((const char *[]){ "sweep", "fmnist_mlp", "--budgets", "10steps", "--seeds", "1,2,3,4,5",
                                           "--threads", "1", "--out", dir, NULL }, &out, &err);
    assert_int_equal(rc, 1);   /* three runs skipped */
    expect_in(err, "fmnist_mlp-baseline-10steps-s5/summary.json: test_acc is 3, not a number in [0, 1], so the file "
                   "is damaged (restore it from a copy, or run again); run skipped");
    char *broken_summary = read_in(broken, "summary.json");
    assert_string_equal(broken_summary, damaged);
    free(broken_summary);
    expect_in(err, "fmnist_mlp-baseline-10steps-s1: the unfinished run there (stopped) is replaced");
    expect_in(err, "fmnist_mlp-baseline-10steps-s2: holds files other than a run's");
    expect_in(err, "fmnist_mlp-baseline-10steps-s3: already done, kept, but by hasten 1111111");
    expect_in(err, "fmnist_mlp-baseline-10steps-s4/summary.json: format version 7, this hasten reads version 1 "
                   "(a newer hasten wrote it: read it with that one); run skipped");
    char *future_summary = read_in(future, "summary.json");
    assert_string_equal(future_summary, newer);
    free(future_summary);
    char *summary = read_in(kept, "summary.json");
    assert_string_equal(summary, older);
    free(summary);
    char *metrics = read_in(stale, "metrics.jsonl");
    assert_null(strstr(metrics, "stale"));
    assert_non_null(strstr(metrics, "\"step\":10,"));
    free(metrics);
    char *notes = read_in(other, "notes.txt");
    assert_string_equal(notes, "mine");
    free(notes);
    free(out);
    free(err);
    /* the same sweep evaluated every 5 steps keeps s1, trained once an epoch, and says so */
    rc = test_hasten((const char *[]){ "sweep", "fmnist_mlp", "--budgets", "10steps", "--seeds", "1",
                                       "--eval-every", "5", "--threads", "1", "--out", dir, NULL }, &out, &err);
    assert_int_equal(rc, 0);
    expect_in(err, "fmnist_mlp-baseline-10steps-s1: evaluated every epoch, this sweep every 5 steps: compare gives "
                   "no speedup between the two; remove the folder to train it again");
    free(out);
    free(err);
}

/* hasten bench --layers --json: every model's layers by name, in order, with their forward and
 * backward milliseconds per step, and the spread of the measured steps (a few steps: figures, not
 * a timing test). */
static void test_bench_layers(void **s)
{
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "bench", "--json", "--layers", "--steps", "2", "--threads", "1",
                                                   NULL }, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    const cJSON *models = cJSON_GetObjectItem(j, "models"), *m;
    assert_int_equal(cJSON_GetArraySize(models), 3);
    cJSON_ArrayForEach(m, models) {
        double p10 = cJSON_GetObjectItem(m, "step_ms_p10")->valuedouble,   /* the steps' spread, ordered */
               p50 = cJSON_GetObjectItem(m, "step_ms_median")->valuedouble,
               p90 = cJSON_GetObjectItem(m, "step_ms_p90")->valuedouble;
        assert_true(p10 > 0 && p10 <= p50 && p50 <= p90);
        const cJSON *layers = cJSON_GetObjectItem(m, "layers"), *l;
        assert_true(cJSON_GetArraySize(layers) >= 6);
        cJSON_ArrayForEach(l, layers) {
            assert_true(cJSON_IsString(cJSON_GetObjectItem(l, "name")));
            assert_true(cJSON_GetObjectItem(l, "forward_ms")->valuedouble >= 0);
            assert_true(cJSON_GetObjectItem(l, "backward_ms")->valuedouble >= 0);
        }
        if (!strcmp(cJSON_GetObjectItem(m, "recipe")->valuestring, "fmnist_cnn")) {
            assert_string_equal(cJSON_GetArrayItem(layers, 0)->child->valuestring, "conv1");
            assert_string_equal(cJSON_GetArrayItem(layers, 1)->child->valuestring, "batchnorm1");
            assert_string_equal(cJSON_GetArrayItem(layers, 3)->child->valuestring, "maxpool1");
        }
    }
    cJSON_Delete(j);
    free(out);
    free(err);

    /* A recipe of one's own, by path, instead of the three; no plugin-bridge figure then. */
    assert_int_equal(test_hasten((const char *[]){ "bench", "recipes/fmnist_cnn_gap.lua", "--json", "--steps", "2",
                                                   "--threads", "1", NULL }, &out, &err), 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    models = cJSON_GetObjectItem(j, "models");
    assert_int_equal(cJSON_GetArraySize(models), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(models, 0), "recipe")->valuestring, "fmnist_cnn_gap");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "noop_plugin")));
    cJSON_Delete(j);
    free(out);
    free(err);
    expect_error((const char *[]){ "bench", "no_such_recipe", NULL }, 2, "recipe 'no_such_recipe' not found");
}

static void test_sweep_errors(void **s)
{
    expect_error((const char *[]){ "sweep", "fmnist_mlp", NULL }, 2, "--budgets is required");
    expect_error((const char *[]){ "sweep", "fmnist_mlp", "--budgets", "2ep,lots", NULL }, 2, "'lots' is not a budget");
    expect_error((const char *[]){ "sweep", "fmnist_mlp", "--budgets", "2ep", "--seeds", "x", NULL }, 2,
                 "'x' is not a seed");
    expect_error((const char *[]){ "sweep", "fmnist_mlp", "--budgets", "2ep", "--target", "acc=0.9", NULL }, 2,
                 "--target acc=0.9: expected test_acc=VALUE or test_loss=VALUE");
    expect_error((const char *[]){ "sweep", "no_such_recipe", "--budgets", "2ep", NULL }, 2, "no_such_recipe");
    /* The device is opened once, before any run: a bad name or a missing GPU stops the sweep. */
    expect_error((const char *[]){ "sweep", "fmnist_mlp", "--budgets", "2ep", "--device", "tpu", NULL }, 2, "tpu");
    char why[256];
    if (ops_open(DEVICE_CUDA, why, sizeof why))
        expect_error((const char *[]){ "sweep", "fmnist_mlp", "--budgets", "2ep", "--device", "cuda", NULL }, 1, why);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/bad-sweep", test_tmpdir());
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "sweep", "fmnist_mlp", "--budgets", "10steps,20steps",
                                                   "--plugin", "no_such_method", "--out", dir, NULL }, &out, &err), 2);
    expect_in(err, "plugin 'no_such_method' not found");
    expect_in(err, "stopped: the run options are wrong");
    assert_null(strstr(err, "[2/2]"));   /* stopped at the first */
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frontier_math), cmocka_unit_test(test_compare_readings), cmocka_unit_test(test_compare_outside_noise),
        cmocka_unit_test(test_compare_long_names),
        cmocka_unit_test(test_compare_subsecond), cmocka_unit_test(test_compare_setups),
        cmocka_unit_test(test_compare_budget_order),
        cmocka_unit_test(test_compare_plot), cmocka_unit_test(test_compare_eval_cadence), cmocka_unit_test(test_compare_targets),
        cmocka_unit_test(test_compare_errors), cmocka_unit_test(test_sweep), cmocka_unit_test(test_sweep_resumes),
        cmocka_unit_test(test_sweep_errors), cmocka_unit_test(test_bench_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
