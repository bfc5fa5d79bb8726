/* The downloader against the loopback server (tests/http_server.c): a plain fetch, resume after a
 * dropped connection and from a leftover part file, a server that ignores Range, wrong bytes, 404,
 * 503, a stalled and a trickling server, refused and unresolvable hosts, a full disk, cancelling,
 * and the progress line. Every test ends within seconds; nothing leaves 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "datasets/fetch.h"
#include "tests/http_server.h"
#include "tests/support.h"

#define BODY_LEN 200000

static http_server *srv;
static unsigned char body[BODY_LEN];
static char body_sha[65];
static const char *digests[2] = { body_sha, NULL };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char d[32];
    unsigned n = 0;
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < BODY_LEN; i++) body[i] = (unsigned char)(i * 2654435761u >> 11);
    sha256_hex(body, BODY_LEN, body_sha);
    srv = http_server_start();
    assert_non_null(srv);
    http_server_add(srv, "/f.bin", body, BODY_LEN);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    http_server_stop(srv);
    return 0;
}

/* Fast options for tests: short back-off, a 1 s low-speed window, progress into a counter. */
typedef struct seen {
    int begin, progress, retry, done, cancel_at_begin;
    long long last_done, first_done;
    char retry_msg[700];
} seen;

static int count_progress(const fetch_progress *p, void *ud)
{
    seen *s = ud;
    if (p->phase == FETCH_BEGIN && !s->begin++) s->first_done = p->done;
    if (p->phase == FETCH_PROGRESS) s->progress++;
    if (p->phase == FETCH_RETRY) {
        s->retry++;
        snprintf(s->retry_msg, sizeof s->retry_msg, "%s", p->message);
    }
    if (p->phase == FETCH_DONE) s->done++;
    s->last_done = p->done;
    return p->phase == FETCH_BEGIN && s->cancel_at_begin;
}

static fetch_options quick(seen *s)
{
    fetch_options o;
    fetch_options_init(&o);
    o.retries = 2;
    o.backoff = 0.05;
    o.low_speed_bytes = 1000;
    o.low_speed_seconds = 1;
    o.connect_seconds = 2;
    o.interval = 0;
    o.progress = count_progress;
    o.ud = s;
    return o;
}

/* A fresh destination path in the scratch folder. */
static const char *dest(const char *name)
{
    static char path[4][700];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", test_tmpdir(), name);
    unlink(p);
    char part[720];
    snprintf(part, sizeof part, "%s.part", p);
    unlink(part);
    return p;
}

static const char *url(const char *path)
{
    static char u[128];
    snprintf(u, sizeof u, "%s%s", http_server_url(srv), path);
    return u;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
}

static void part_path(const char *d, char *out, size_t len) { snprintf(out, len, "%s.part", d); }

/* dest holds exactly the body. */
static void assert_body(const char *path)
{
    size_t len;
    char *got = test_read_file(path, &len);
    assert_non_null(got);
    assert_int_equal(len, BODY_LEN);
    assert_memory_equal(got, body, BODY_LEN);
    free(got);
    char part[720];
    part_path(path, part, sizeof part);
    assert_false(exists(part));
}

/* Nothing under either name: a failed fetch that must not leave a file. */
static void assert_nothing(const char *path)
{
    char part[720];
    part_path(path, part, sizeof part);
    assert_false(exists(path));
    assert_false(exists(part));
}

static void expect(int rc, int want, const char *err, const char *word)
{
    if (rc != want) fail_msg("rc %d, expected %d (err: %s)", rc, want, err);
    if (word && !strstr(err, word)) fail_msg("error '%s' should say '%s'", err, word);
}

static void test_plain_fetch(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    char err[800] = "";
    const char *d = dest("plain.bin");
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    int before = http_server_requests(srv);
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OK, err, NULL);
    assert_body(d);
    assert_int_equal(http_server_requests(srv) - before, 1);
    assert_int_equal(s.begin, 1);
    assert_int_equal(s.done, 1);
    assert_int_equal(s.retry, 0);
    assert_int_equal(s.last_done, BODY_LEN);
    char range[64];
    http_server_last_range(srv, range, sizeof range);
    assert_string_equal(range, "");
    /* size 0 = not recorded, and an upper-case digest: both fine */
    char upper[65];
    for (int i = 0; i < 65; i++) upper[i] = (char)(body_sha[i] >= 'a' ? body_sha[i] - 32 : body_sha[i]);
    const char *up[] = { "00", upper, NULL };
    d = dest("plain2.bin");
    expect(fetch_file(url("/f.bin"), d, 0, up, NULL, err, sizeof err), FETCH_OK, err, NULL);
    assert_body(d);
}

static void test_resume_after_drop(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    char err[800] = "", range[64], want[64];
    const char *d = dest("drop.bin");
    int before = http_server_requests(srv);
    http_server_misbehave(srv, HTTP_DROP_HALF, 1);
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OK, err, NULL);
    assert_body(d);
    assert_int_equal(http_server_requests(srv) - before, 2);
    http_server_last_range(srv, range, sizeof range);
    snprintf(want, sizeof want, "bytes=%d-", BODY_LEN / 2);
    assert_string_equal(range, want);
    assert_int_equal(s.retry, 1);
    assert_non_null(strstr(s.retry_msg, "connection dropped"));
    assert_non_null(strstr(s.retry_msg, "attempt 2 of 3"));
}

static void test_resume_leftover_part(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    char err[800] = "", part[720], range[64];
    const char *d = dest("left.bin");
    part_path(d, part, sizeof part);
    FILE *f = fopen(part, "wb");
    assert_non_null(f);
    fwrite(body, 1, 70000, f);
    fclose(f);
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OK, err, NULL);
    assert_body(d);
    http_server_last_range(srv, range, sizeof range);
    assert_string_equal(range, "bytes=70000-");
    assert_int_equal(s.first_done, 70000);

    /* A part already complete is verified and installed without asking the server. */
    d = dest("complete.bin");
    part_path(d, part, sizeof part);
    test_write_file("complete.bin.part", body, BODY_LEN);
    int before = http_server_requests(srv);
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OK, err, NULL);
    assert_body(d);
    assert_int_equal(http_server_requests(srv), before);
}

static void test_server_ignores_range(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    char err[800] = "", part[720];
    const char *d = dest("ignore.bin");
    part_path(d, part, sizeof part);
    test_write_file("ignore.bin.part", "garbage that must not stay", 26);
    http_server_misbehave(srv, HTTP_IGNORE_RANGE, -1);
    int before = http_server_requests(srv);
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OK, err, NULL);
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    assert_body(d);
    assert_int_equal(http_server_requests(srv) - before, 1);
}

static void test_stale_part_starts_over(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    char err[800] = "";
    unsigned char wrong[5000];
    memset(wrong, 0xab, sizeof wrong);
    const char *d = dest("stale.bin");
    test_write_file("stale.bin.part", wrong, sizeof wrong);   /* from some other file */
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    int before = http_server_requests(srv);
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OK, err, NULL);
    assert_body(d);
    assert_int_equal(http_server_requests(srv) - before, 2);   /* resumed, mismatched, once from zero */
    assert_int_equal(s.retry, 1);   /* and said why */
    if (!strstr(s.retry_msg, "; the partial file an earlier try left may be to blame")) fail_msg("said: %s", s.retry_msg);
}

static void test_checksum_mismatch(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    char err[800] = "";
    const char *d = dest("wrong.bin");
    http_server_misbehave(srv, HTTP_WRONG_BYTES, -1);
    int rc = fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err);
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    expect(rc, FETCH_CHECKSUM, err, "checksum mismatch");
    assert_non_null(strstr(err, "/f.bin"));
    assert_non_null(strstr(err, "removed"));
    assert_null(strchr(err, '\n'));
    assert_nothing(d);

    /* More bytes than recorded: stopped and removed. */
    d = dest("long.bin");
    expect(fetch_file(url("/f.bin"), d, BODY_LEN - 10, digests, &o, err, sizeof err), FETCH_CHECKSUM, err,
           "more than the recorded");
    assert_nothing(d);

    /* The right bytes with the wrong digest recorded. */
    const char *bad[] = { "0000000000000000000000000000000000000000000000000000000000000000", NULL };
    d = dest("baddigest.bin");
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, bad, &o, err, sizeof err), FETCH_CHECKSUM, err, "expected 0000");
    assert_nothing(d);
}

static void test_http_errors(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    char err[800] = "";
    const char *d = dest("missing.bin");
    int before = http_server_requests(srv);
    expect(fetch_file(url("/no/such/file"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_HTTP, err, "HTTP 404");
    assert_non_null(strstr(err, "/no/such/file"));
    assert_int_equal(http_server_requests(srv) - before, 1);   /* not retried */
    assert_nothing(d);

    /* 503 twice, then the file: retried with back-off. */
    http_server_misbehave(srv, HTTP_SERVER_ERROR, 2);
    before = http_server_requests(srv);
    d = dest("busy.bin");
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OK, err, NULL);
    assert_body(d);
    assert_int_equal(http_server_requests(srv) - before, 3);

    /* 503 for good: the retries are bounded. */
    http_server_misbehave(srv, HTTP_SERVER_ERROR, -1);
    d = dest("down.bin");
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_HTTP, err, "HTTP 503");
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    assert_false(exists(d));
}

static void test_stalled_server(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    o.retries = 1;
    char err[800] = "", part[720], range[64];
    const char *d = dest("stall.bin");
    part_path(d, part, sizeof part);
    http_server_misbehave(srv, HTTP_STALL, -1);
    double t0 = now();
    int rc = fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err);
    double took = now() - t0;
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    expect(rc, FETCH_NETWORK, err, "stalled");
    assert_true(took < 8.0);
    assert_false(exists(d));
    assert_int_equal(file_size(part), 2000);   /* 1000 bytes per attempt, kept for resume */

    /* The next fetch resumes the part. */
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OK, err, NULL);
    http_server_last_range(srv, range, sizeof range);
    assert_string_equal(range, "bytes=2000-");
    assert_body(d);
}

static void test_trickling_server(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    o.retries = 0;
    char err[800] = "";
    const char *d = dest("trickle.bin");
    http_server_misbehave(srv, HTTP_TRICKLE, -1);
    double t0 = now();
    int rc = fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err);
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    expect(rc, FETCH_NETWORK, err, "under 1000 bytes/s for 1 s");
    assert_true(now() - t0 < 5.0);
    assert_false(exists(d));
}

static void test_offline(void **state)
{
    (void)state;
    seen s = {0};
    fetch_options o = quick(&s);
    o.retries = 0;
    char err[800] = "", u[128];
    /* A port nobody listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/f.bin", ntohs(a.sin_port));
    const char *d = dest("refused.bin");
    expect(fetch_file(u, d, BODY_LEN, digests, &o, err, sizeof err), FETCH_OFFLINE, err, "cannot connect");
    assert_non_null(strstr(err, "offline"));
    assert_false(exists(d));
    /* (A host name that does not resolve gives FETCH_OFFLINE too; not tried here, since even a
     * DNS query would leave 127.0.0.1.) */
}

static void test_refusals(void **state)
{
    (void)state;
    char err[800] = "";
    const char *none[] = { NULL };
    const char *d = dest("refuse.bin");
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, none, NULL, err, sizeof err), FETCH_BAD_ARG, err, "no SHA-256");
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, NULL, NULL, err, sizeof err), FETCH_BAD_ARG, err, "unverified");
    /* Only http and https. */
    expect(fetch_file("file:///etc/passwd", d, 0, digests, NULL, err, sizeof err), FETCH_NETWORK, err, NULL);
    assert_nothing(d);
    /* A folder that does not exist. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/no-dir/x.bin", test_tmpdir());
    expect(fetch_file(url("/f.bin"), bad, BODY_LEN, digests, NULL, err, sizeof err), FETCH_DISK, err, "no-dir/x.bin.part");
}

static void test_cancel(void **state)
{
    (void)state;
    seen s = { .cancel_at_begin = 1 };
    fetch_options o = quick(&s);
    char err[800] = "";
    const char *d = dest("cancel.bin");
    int before = http_server_requests(srv);
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err), FETCH_CANCELLED, err, "cancelled");
    assert_int_equal(http_server_requests(srv), before);
    assert_false(exists(d));
}

/* A file size limit makes writes fail like a full disk (lowered for this test only). */
static void test_disk_full(void **state)
{
    (void)state;
    char err[800] = "";
    const char *d = dest("full.bin");
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    low = old;
    low.rlim_cur = 50000;
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    fetch_options o;
    fetch_options_init(&o);
    o.retries = 0;
    int rc = fetch_file(url("/f.bin"), d, BODY_LEN, digests, &o, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, was);
    expect(rc, FETCH_DISK, err, "disk full");
    assert_non_null(strstr(err, "full.bin.part"));
    assert_false(exists(d));

    /* Not enough room for the recorded size: said before anything is asked for. */
    int before = http_server_requests(srv);
    expect(fetch_file(url("/f.bin"), d, 1LL << 60, digests, NULL, err, sizeof err), FETCH_DISK, err, "disk full");
    assert_int_equal(http_server_requests(srv), before);
}

/* kill -9 in the middle of a download: no file under the final name, and the next fetch resumes. */
static void test_killed_mid_download(void **state)
{
    (void)state;
    char part[720], range[64], err[800] = "";
    const char *d = dest("killed.bin");
    part_path(d, part, sizeof part);
    http_server_misbehave(srv, HTTP_TRICKLE, -1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fetch_file(url("/f.bin"), d, BODY_LEN, digests, NULL, err, sizeof err);
        _exit(0);
    }
    for (int i = 0; i < 100 && file_size(part) < 3; i++) usleep(20000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    assert_false(exists(d));
    long long had = file_size(part);
    assert_true(had >= 3);
    expect(fetch_file(url("/f.bin"), d, BODY_LEN, digests, NULL, err, sizeof err), FETCH_OK, err, NULL);
    http_server_last_range(srv, range, sizeof range);
    char want[64];
    snprintf(want, sizeof want, "bytes=%lld-", had);
    assert_string_equal(range, want);
    assert_body(d);
}

/* hasten fetch interrupted with Ctrl-C: it says what stays (the partial file, resumed next time)
 * and exits 130, instead of dying mid-line with nothing said. */
static void test_fetch_command_interrupted(void **state)
{
    (void)state;
    if (access("./hasten", X_OK)) skip();   /* the binary, from the repository root */
    char cache[700], part[900], out[760];
    snprintf(cache, sizeof cache, "%s/ctrl-c-cache", test_tmpdir());
    snprintf(part, sizeof part, "%s/hasten/kmnist/train-images-idx3-ubyte.gz.part", cache);
    snprintf(out, sizeof out, "%s/ctrl-c.err", test_tmpdir());
    http_server_add(srv, "/kmnist/train-images-idx3-ubyte.gz", body, BODY_LEN);
    http_server_misbehave(srv, HTTP_TRICKLE, -1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("HASTEN_MIRROR", http_server_url(srv), 1);
        setenv("XDG_CACHE_HOME", cache, 1);
        unsetenv("HASTEN_OFFLINE");
        if (!freopen(out, "w", stderr)) _exit(99);
        execl("./hasten", "hasten", "fetch", "kmnist", (char *)NULL);
        _exit(98);
    }
    for (int i = 0; i < 250 && file_size(part) < 3; i++) usleep(20000);
    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    http_server_misbehave(srv, HTTP_NORMAL, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    char *said = test_read_file(out, NULL);
    assert_non_null(said);
    if (!strstr(said, "kmnist: interrupted; what was downloaded stays in the cache")) fail_msg("said: %s", said);
    free(said);
    assert_true(file_size(part) >= 3);
}

static void test_verify_file(void **state)
{
    (void)state;
    char err[800], hex[65];
    const char *p = test_write_file("v.bin", body, BODY_LEN);
    assert_int_equal(fetch_sha256_file(p, hex, err, sizeof err), 0);
    assert_string_equal(hex, body_sha);
    assert_int_equal(fetch_verify_file(p, digests, err, sizeof err), FETCH_OK);
    const char *other[] = { "ab", NULL };
    expect(fetch_verify_file(p, other, err, sizeof err), FETCH_CHECKSUM, err, "v.bin: checksum mismatch");
    expect(fetch_verify_file("/no/such", other, err, sizeof err), FETCH_DISK, err, "/no/such");
}

static void test_progress_text(void **state)
{
    (void)state;
    char buf[300], b[32];
    fetch_format_bytes(17, b, sizeof b);
    assert_string_equal(b, "17 B");
    fetch_format_bytes(9912422, b, sizeof b);
    assert_string_equal(b, "9.91 MB");
    fetch_format_bytes(170052171, b, sizeof b);
    assert_string_equal(b, "170 MB");
    fetch_format_bytes(26421880, b, sizeof b);
    assert_string_equal(b, "26.4 MB");
    fetch_progress p = { .phase = FETCH_PROGRESS, .label = "mnist/train-images-idx3-ubyte.gz", .file = 1,
                         .files = 4, .done = 4956211, .total = 9912422, .rate = 1.3e6, .eta = 3.8 };
    fetch_format_progress(&p, 1, 100, buf, sizeof buf);
    assert_string_equal(buf, "(1/4) mnist/train-images-idx3-ubyte.gz [#########..........] "
                             "4.96 MB/9.91 MB 1.30 MB/s ETA 0:03");
    assert_true(strlen(buf) <= 100);
    fetch_format_progress(&p, 0, 100, buf, sizeof buf);
    assert_string_equal(buf, "(1/4) mnist/train-images-idx3-ubyte.gz 4.96 MB/9.91 MB 1.30 MB/s ETA 0:03");
    fetch_format_progress(&p, 1, 40, buf, sizeof buf);   /* narrow: no bar, the name's end kept */
    assert_true(strlen(buf) <= 52);
    assert_non_null(strstr(buf, "ubyte.gz"));
    p.phase = FETCH_DONE;
    p.done = p.total;
    p.elapsed = 7.62;
    p.files = 1;
    fetch_format_progress(&p, 0, 100, buf, sizeof buf);
    assert_string_equal(buf, "mnist/train-images-idx3-ubyte.gz 9.91 MB in 7.6 s, SHA-256 verified");
    p.phase = FETCH_BEGIN;
    p.done = 1000000;
    fetch_format_progress(&p, 0, 100, buf, sizeof buf);
    assert_string_equal(buf, "mnist/train-images-idx3-ubyte.gz resuming at 1.00 MB of 9.91 MB");
    p.phase = FETCH_PROGRESS;
    p.total = -1;
    p.rate = 0;
    p.eta = -1;
    fetch_format_progress(&p, 1, 80, buf, sizeof buf);
    assert_non_null(strstr(buf, "1.00 MB/? - ETA --:--"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_fetch),
        cmocka_unit_test(test_resume_after_drop),
        cmocka_unit_test(test_resume_leftover_part),
        cmocka_unit_test(test_server_ignores_range),
        cmocka_unit_test(test_stale_part_starts_over),
        cmocka_unit_test(test_checksum_mismatch),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_stalled_server),
        cmocka_unit_test(test_trickling_server),
        cmocka_unit_test(test_offline),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_killed_mid_download),
        cmocka_unit_test(test_fetch_command_interrupted),
        cmocka_unit_test(test_verify_file),
        cmocka_unit_test(test_progress_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
