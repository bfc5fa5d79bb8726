/* The dataset registry end to end: the entries are complete, the cache folder and the lookup order
 * (HASTEN_DATA_DIR, system, cache; a half-filled cache is no dataset), fetching through
 * HASTEN_MIRROR from the loopback server into the cache (Debian's Fashion-MNIST files serve as the
 * mirror's content), failures that leave no file in the cache, and the `hasten fetch` and
 * `hasten datasets` commands with their exit codes and the automatic fetch of a run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "datasets/datasets.h"
#include "tests/http_server.h"
#include "tests/support.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"


static http_server *srv;
static char cache_root[600];

static int setup(void **state)
{
    (void)state;
    snprintf(cache_root, sizeof cache_root, "%s/xdg", test_tmpdir());
    setenv("XDG_CACHE_HOME", cache_root, 1);
    unsetenv("HASTEN_DATA_DIR");
    unsetenv("HASTEN_MIRROR");
    unsetenv("HASTEN_OFFLINE");
    srv = http_server_start();
    return srv ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    http_server_stop(srv);
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Regular files in dir other than ".lock" (0 when dir is missing). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* A progress callback that keeps the last retry note. */
static int keep_note(const fetch_progress *p, void *ud)
{
    if (p->phase == FETCH_RETRY) snprintf(ud, 600, "%s", p->message);
    return 0;
}

static fetch_options quick(void)
{
    fetch_options o;
    fetch_options_init(&o);
    o.retries = 1;
    o.backoff = 0.05;
    o.low_speed_seconds = 2;
    o.connect_seconds = 2;
    return o;
}

static void test_entries(void **state)
{
    (void)state;
    const char *const *names = data_names();
    int n = 0;
    for (; names[n]; n++) {
        const data_info *d = data_info_find(names[n]);
        assert_non_null(d);
        assert_string_equal(d->name, names[n]);
        assert_true(strlen(d->title) > 10 && strlen(d->licence) > 2 && strlen(d->citation) > 0);
        assert_true(d->n_files >= 0 && d->n_files <= DATA_MAX_FILES);
        if (d->format == DATA_FORMAT_IDX || d->format == DATA_FORMAT_CIFAR10) assert_int_equal(d->classes, 10);
        for (int i = 0; i < d->n_files; i++) {
            const data_file *f = &d->files[i];
            assert_true(!strncmp(f->url, "https://", 8));
            assert_non_null(strstr(f->url, f->name));
            assert_true(f->size > 0);
            for (int k = 0; f->sha256[k]; k++) {
                assert_int_equal(strlen(f->sha256[k]), 64);
                for (int c = 0; c < 64; c++) assert_true(isxdigit((unsigned char)f->sha256[k][c]) && !isupper(f->sha256[k][c]));
            }
            assert_non_null(f->sha256[0]);
        }
    }
    assert_int_equal(n, 7);
    for (const char *want[] = { "fashion-mnist", "mnist", "kmnist", "cifar10", "tinyshakespeare" }, **w = want;
         w < want + 5; w++)
        assert_true(data_info_find(*w)->n_files > 0);
    assert_null(data_info_find("nope"));
    assert_null(data_info_find(NULL));
    assert_string_equal(data_where_name(DATA_CACHE), "cache");
}

static void test_cache_dir(void **state)
{
    (void)state;
    char dir[700], home[700];
    snprintf(home, sizeof home, "%s", getenv("HOME") ? getenv("HOME") : "");
    assert_int_equal(data_cache_dir(dir, sizeof dir), 0);
    assert_true(!strncmp(dir, cache_root, strlen(cache_root)) && !strcmp(dir + strlen(cache_root), "/hasten"));
    setenv("XDG_CACHE_HOME", "relative/ignored", 1);
    setenv("HOME", "/home/someone", 1);
    assert_int_equal(data_cache_dir(dir, sizeof dir), 0);
    assert_string_equal(dir, "/home/someone/.cache/hasten");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    assert_int_equal(data_cache_dir(dir, sizeof dir), -1);
    if (home[0]) setenv("HOME", home, 1);
    setenv("XDG_CACHE_HOME", cache_root, 1);
}

/* Writes a tiny valid four-file IDX dataset (gzipped) into test_tmpdir()/sub, all but skip. */
static void tiny_idx(const char *sub, int skip)
{
    static const char *const files[4] = {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz" };
    uint8_t buf[16 + 3 * 4 * 4];
    char name[700];
    for (int f = 0; f < 4; f++) {
        if (f == skip) continue;
        int images = f % 2 == 0;
        size_t head = images ? 16 : 8, len = images ? 3 * 4 * 4 : 3;
        memset(buf, 0, sizeof buf);
        buf[2] = 8;
        buf[3] = images ? 3 : 1;
        buf[7] = 3;                        /* 3 examples */
        if (images) buf[11] = buf[15] = 4; /* of 4x4 */
        for (size_t i = 0; i < len; i++) buf[head + i] = (uint8_t)(images ? i * 9 : i);
        snprintf(name, sizeof name, "%s/%s", sub, files[f]);
        test_write_gz(name, buf, head + len);
    }
}

static void make_dir(const char *rel, char *out, size_t len)
{
    char path[700];
    snprintf(out, len, "%s/%s", test_tmpdir(), rel);
    snprintf(path, sizeof path, "%s", out);
    for (char *p = path + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(path, 0755); *p = '/'; }
    mkdir(path, 0755);
}

static void test_lookup_order(void **state)
{
    (void)state;
    char cache[700], env[700], found[1100], err[1500];
    data_set ds;
    const data_info *kmnist = data_info_find("kmnist");
    if (exists("/usr/share/datasets/kmnist")) skip();   /* a real system copy would win */

    make_dir("xdg/hasten/kmnist", cache, sizeof cache);
    tiny_idx("xdg/hasten/kmnist", 3);   /* three of four files: an interrupted fetch */
    test_write_file("xdg/hasten/kmnist/t10k-labels-idx1-ubyte.gz.part", "abc", 3);
    assert_int_equal(data_locate(kmnist, found, sizeof found), DATA_NOWHERE);
    assert_string_equal(found, "");
    int present;
    long long partial;
    data_cache_state(kmnist, &present, &partial);
    assert_int_equal(present, 3);
    assert_int_equal(partial, 3);
    assert_int_equal(data_load("kmnist", NULL, &ds, err, sizeof err), DATA_MISSING);
    assert_non_null(strstr(err, "the cache holds part of it"));
    assert_non_null(strstr(err, "/usr/share/datasets/kmnist"));
    assert_non_null(strstr(err, cache));
    assert_non_null(strstr(err, "hasten fetch kmnist"));

    tiny_idx("xdg/hasten/kmnist", -1);   /* complete */
    assert_int_equal(data_locate(kmnist, found, sizeof found), DATA_CACHE);
    assert_string_equal(found, cache);
    if (data_load("kmnist", NULL, &ds, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(ds.source, cache);
    assert_int_equal(ds.train.n, 3);
    data_set_free(&ds);

    make_dir("env/kmnist", env, sizeof env);
    tiny_idx("env/kmnist", 2);   /* HASTEN_DATA_DIR comes first, even broken: it says so */
    char root[700];
    snprintf(root, sizeof root, "%s/env", test_tmpdir());
    setenv("HASTEN_DATA_DIR", root, 1);
    assert_int_equal(data_locate(kmnist, found, sizeof found), DATA_ENV);
    assert_string_equal(found, env);
    assert_int_equal(data_load("kmnist", NULL, &ds, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "t10k-images"));
    unsetenv("HASTEN_DATA_DIR");

    /* A given folder is the only place looked at. */
    assert_int_equal(data_load("kmnist", env, &ds, err, sizeof err), DATA_MALFORMED);
    assert_int_equal(data_load("kmnist", root, &ds, err, sizeof err), DATA_MISSING);
    assert_non_null(strstr(err, root));
    assert_null(strstr(err, "/usr/share"));

    const data_info *syn = data_info_find("synthetic");
    assert_int_equal(data_locate(syn, found, sizeof found), DATA_BUILT_IN);
}

/* Serves Debian's Fashion-MNIST files at /fashion-mnist/<file>; returns 0, or -1 when absent. */
static int serve_fashion(void)
{
    const data_info *d = data_info_find("fashion-mnist");
    char path[700], url[300];
    for (int i = 0; i < d->n_files; i++) {
        size_t len;
        snprintf(path, sizeof path, "%s/%s", FASHION_DIR, d->files[i].name);
        char *bytes = test_read_file(path, &len);
        if (!bytes) return -1;
        snprintf(url, sizeof url, "/fashion-mnist/%s", d->files[i].name);
        http_server_add(srv, url, bytes, len);
        free(bytes);
    }
    return 0;
}

static void test_fetch_through_mirror(void **state)
{
    (void)state;
    char err[1500], dir[700], path[800], mirror[200];
    fetch_options o = quick();
    if (serve_fashion()) {
        print_message("skipped: %s not installed\n", FASHION_DIR);
        skip();
    }
    snprintf(mirror, sizeof mirror, "%s/", http_server_url(srv));   /* a trailing slash is fine */
    setenv("HASTEN_MIRROR", mirror, 1);
    snprintf(dir, sizeof dir, "%s/hasten/fashion-mnist", cache_root);
    http_server_misbehave(srv, HTTP_DROP_HALF, 1);   /* and a dropped connection on the way */
    int before = http_server_requests(srv);
    if (data_fetch("fashion-mnist", 0, &o, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(http_server_requests(srv) - before, 5);
    assert_int_equal(count_files(dir), 4);
    const data_info *d = data_info_find("fashion-mnist");
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, d->files[i].name);
        assert_int_equal(fetch_verify_file(path, d->files[i].sha256, err, sizeof err), FETCH_OK);
    }
    data_set ds;
    if (data_load("fashion-mnist", dir, &ds, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(ds.train.n, 60000);
    assert_int_equal(ds.test.n, 10000);
    data_set_free(&ds);

    /* Present: nothing is asked for; reverify finds a file damaged since and fetches it again. */
    before = http_server_requests(srv);
    assert_int_equal(data_fetch("fashion-mnist", 0, &o, err, sizeof err), FETCH_OK);
    assert_int_equal(http_server_requests(srv), before);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 100, SEEK_SET);
    fputc(0x42, f);
    fclose(f);
    char said[600] = "";
    o.progress = keep_note;   /* and it says so */
    o.ud = said;
    assert_int_equal(data_fetch("fashion-mnist", 1, &o, err, sizeof err), FETCH_OK);
    assert_int_equal(http_server_requests(srv) - before, 1);
    if (!strstr(said, "t10k-labels-idx1-ubyte.gz: checksum mismatch") || !strstr(said, "damaged since it was installed"))
        fail_msg("said: %s", said);
    assert_int_equal(fetch_verify_file(path, d->files[3].sha256, err, sizeof err), FETCH_OK);
    unsetenv("HASTEN_MIRROR");
}

static void test_failures_leave_no_file(void **state)
{
    (void)state;
    char err[1500], dir[700], mirror[200];
    fetch_options o = quick();
    snprintf(mirror, sizeof mirror, "%s", http_server_url(srv));
    setenv("HASTEN_MIRROR", mirror, 1);
    snprintf(dir, sizeof dir, "%s/hasten/mnist", cache_root);

    assert_int_equal(data_fetch("mnist", 0, &o, err, sizeof err), FETCH_HTTP);
    assert_non_null(strstr(err, "HTTP 404"));
    assert_non_null(strstr(err, "/mnist/train-images-idx3-ubyte.gz"));
    assert_int_equal(count_files(dir), 0);

    uint8_t junk[3000];   /* not MNIST: every file fails its checksum */
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 7);
    const data_info *d = data_info_find("mnist");
    for (int i = 0; i < d->n_files; i++) {
        char url[200];
        snprintf(url, sizeof url, "/mnist/%s", d->files[i].name);
        http_server_add(srv, url, junk, sizeof junk);
    }
    assert_int_equal(data_fetch("mnist", 0, &o, err, sizeof err), FETCH_CHECKSUM);
    assert_non_null(strstr(err, "checksum mismatch"));
    assert_int_equal(count_files(dir), 0);
    if (!exists("/usr/share/datasets/mnist")) {
        char found[1100];
        assert_int_equal(data_locate(d, found, sizeof found), DATA_NOWHERE);
    }
    unsetenv("HASTEN_MIRROR");

    assert_int_equal(data_fetch("nope", 0, &o, err, sizeof err), FETCH_BAD_ARG);
    assert_non_null(strstr(err, "unknown dataset 'nope'"));
    assert_int_equal(data_fetch("synthetic", 0, &o, err, sizeof err), FETCH_BAD_ARG);
    assert_non_null(strstr(err, "nothing to fetch"));
}

/* ---- the commands ---- */

static void expect_cmd(const char *const *args, int code, const char *in_out, const char *in_err)
{
    char *out, *err;
    int rc = test_hasten(args, &out, &err);
    if (rc != code || (in_out && !strstr(out, in_out)) || (in_err && !strstr(err, in_err)))
        fail_msg("hasten %s %s: exit %d (want %d)\nstdout: %s\nstderr: %s", args[0], args[1] ? args[1] : "",
                 rc, code, out, err);
    free(out);
    free(err);
}

static void test_commands(void **state)
{
    (void)state;
    char mirror[200];
    if (access("./hasten", X_OK)) {
        print_message("skipped: ./hasten not built\n");
        skip();
    }
    expect_cmd((const char *[]){ "datasets", NULL }, 0, "tinyshakespeare", NULL);
    expect_cmd((const char *[]){ "datasets", NULL }, 0, cache_root, NULL);
    expect_cmd((const char *[]){ "datasets", "mnist", NULL }, 0,
               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", NULL);
    expect_cmd((const char *[]){ "datasets", "cifar10", NULL }, 0, "Krizhevsky", NULL);
    expect_cmd((const char *[]){ "datasets", "nope", NULL }, 2, NULL, "unknown dataset 'nope'");
    expect_cmd((const char *[]){ "fetch", NULL }, 2, NULL, "which dataset");
    expect_cmd((const char *[]){ "fetch", "nope", NULL }, 2, NULL, "unknown dataset 'nope'");
    expect_cmd((const char *[]){ "fetch", "synthetic", NULL }, 2, NULL, "nothing to fetch");
    expect_cmd((const char *[]){ "fetch", "mnist", "--bogus", NULL }, 2, NULL, "unknown option");

    snprintf(mirror, sizeof mirror, "%s/empty", http_server_url(srv));
    setenv("HASTEN_MIRROR", mirror, 1);
    char *out, *err;
    assert_int_equal(test_hasten((const char *[]){ "fetch", "kmnist", NULL }, &out, &err), 1);
    assert_non_null(strstr(err, "HTTP 404"));
    assert_non_null(strstr(err, "/empty/kmnist/"));
    char *last = strrchr(err, '\n');   /* the error is the last line, and one line */
    assert_non_null(last);
    *last = 0;
    assert_true(strstr(strrchr(err, '\n') ? strrchr(err, '\n') : err, "hasten: ") != NULL);
    free(out);
    free(err);

    if (!access(FASHION_DIR, R_OK)) {
        expect_cmd((const char *[]){ "fetch", "fashion-mnist", NULL }, 0, NULL, "nothing to fetch");
        if (!serve_fashion()) {
            snprintf(mirror, sizeof mirror, "%s", http_server_url(srv));
            setenv("HASTEN_MIRROR", mirror, 1);
            expect_cmd((const char *[]){ "fetch", "fashion-mnist", "--force", NULL }, 0, NULL, "4 files verified");
        }
    }

    /* A run whose dataset is nowhere: fetched first; when that fails, the synthetic fallback. */
    const char *recipe = "return { data = { \"kmnist\" }, model = nn.sequential { nn.flatten(), nn.linear(10) }, "
                         "budget = { steps = 2 } }";
    const char *rpath = test_write_file("kmnist.lua", recipe, strlen(recipe));
    char outdir[700];
    snprintf(outdir, sizeof outdir, "%s/run-kmnist", test_tmpdir());
    snprintf(mirror, sizeof mirror, "%s/empty", http_server_url(srv));
    setenv("HASTEN_MIRROR", mirror, 1);
    if (!exists("/usr/share/datasets/kmnist")) {
        char cache[700];
        snprintf(cache, sizeof cache, "%s/hasten/kmnist", cache_root);
        if (count_files(cache) < 4) {
            int before = http_server_requests(srv);
            expect_cmd((const char *[]){ "run", rpath, "--out", outdir, "--quiet", NULL }, 0, NULL,
                       "fetching kmnist failed");
            assert_true(http_server_requests(srv) > before);
            setenv("HASTEN_OFFLINE", "1", 1);
            before = http_server_requests(srv);
            snprintf(outdir, sizeof outdir, "%s/run-kmnist-offline", test_tmpdir());
            expect_cmd((const char *[]){ "run", rpath, "--out", outdir, "--quiet", NULL }, 0, NULL, "synthetic");
            assert_int_equal(http_server_requests(srv), before);
            unsetenv("HASTEN_OFFLINE");
        }
    }
    /* data.path in the recipe: only there, and missing is an error, not a fallback. */
    recipe = "return { data = { \"mnist\", path = \"/no/such/folder\" }, "
             "model = nn.sequential { nn.flatten(), nn.linear(10) }, budget = { steps = 2 } }";
    rpath = test_write_file("given.lua", recipe, strlen(recipe));
    snprintf(outdir, sizeof outdir, "%s/run-given", test_tmpdir());
    expect_cmd((const char *[]){ "run", rpath, "--out", outdir, NULL }, 1, NULL, "mnist not found in /no/such/folder");
    unsetenv("HASTEN_MIRROR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_cache_dir),
        cmocka_unit_test(test_lookup_order),
        cmocka_unit_test(test_fetch_through_mirror),
        cmocka_unit_test(test_failures_leave_no_file),
        cmocka_unit_test(test_commands),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
