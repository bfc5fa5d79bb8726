/* The downloader over libcurl: resume from dest.part, SHA-256 while streaming (libcrypto),
 * retries with back-off, install by rename once verified. Not for dataset names, mirrors or the
 * cache layout: registry.c decides what to fetch and where it goes. */
#include "datasets/fetch.h"
#include <curl/curl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#ifndef HASTEN_VERSION
#define HASTEN_VERSION "dev"
#endif

#define PATH_LEN 4096
#define MAX_BACKOFF 60.0

/* One attempt's state, shared by the curl callbacks. */
typedef struct xfer {
    const fetch_options *o;
    int fd;                    /* dest.part, open for writing */
    EVP_MD_CTX *md;            /* SHA-256 of every byte in the part file, in order */
    long long offset;          /* bytes in the part file when the attempt began (Range start) */
    long long written;         /* bytes in the part file now */
    long long size;            /* expected size, or -1 */
    long long range_start;     /* from the last response's Content-Range, or -1 */
    int started;               /* the response code was looked at */
    int restarted;             /* the server ignored the Range: the part file was emptied */
    int disk_errno;            /* a write failed with this errno */
    int too_long;              /* more bytes than the recorded size */
    int bad_range;             /* 206 for another offset than asked */
    int cancelled;
    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];   /* the handle's error buffer: lives as long as the handle */
    fetch_progress prog;
    double t0, last_call, last_sample;
    long long sample_bytes;
} xfer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

void fetch_options_init(fetch_options *o)
{
    *o = (fetch_options){
        .interval = 0.2, .low_speed_bytes = 1024, .low_speed_seconds = 30, .connect_seconds = 30,
        .retries = 4, .backoff = 1.0, .file = 1, .files = 1,
    };
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- the part file and its hash ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void to_hex(const unsigned char *d, unsigned n, char *hex)
{
    for (unsigned i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", d[i]);
    hex[2 * n] = 0;
}

/* Feeds the fd's bytes from offset 0 into md; returns the count, or -1 on a read error. */
static long long hash_fd(int fd, EVP_MD_CTX *md)
{
    static const size_t chunk = 1 << 20;
    char *buf = malloc(chunk);
    long long total = 0;
    ssize_t r;
    if (!buf) return -1;
    while ((r = pread(fd, buf, chunk, (off_t)total)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { total = -1; break; }
        EVP_DigestUpdate(md, buf, (size_t)r);
        total += r;
    }
    free(buf);
    return total;
}

int fetch_sha256_file(const char *path, char hex[65], char *err, size_t errlen)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, errlen, -1, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        fail(err, errlen, -1, "%s: cannot start SHA-256 (libcrypto)", path);
        goto done;
    }
    if (hash_fd(fd, md) < 0) {
        fail(err, errlen, -1, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    EVP_DigestFinal_ex(md, d, &n);
    to_hex(d, n, hex);
    rc = 0;
done:
    EVP_MD_CTX_free(md);
    close(fd);
    return rc;
}

static int digest_ok(const char *hex, const char *const *sha256)
{
    for (; *sha256; sha256++)
        if (!strcasecmp(hex, *sha256)) return 1;
    return 0;
}

int fetch_verify_file(const char *path, const char *const *sha256, char *err, size_t errlen)
{
    char hex[65];
    if (fetch_sha256_file(path, hex, err, errlen)) return FETCH_DISK;
    if (digest_ok(hex, sha256)) return FETCH_OK;
    return fail(err, errlen, FETCH_CHECKSUM, "%s: checksum mismatch: SHA-256 %.16s..., expected %.16s...",
                path, hex, sha256[0]);
}

/* ---- progress ---- */

static int report(xfer *x, enum fetch_phase phase, const char *message)
{
    if (!x->o->progress) return 0;
    double t = now_s();
    x->prog.phase = phase;
    x->prog.done = x->written;
    x->prog.elapsed = t - x->t0;
    x->prog.message = message;
    x->prog.eta = x->prog.rate > 0 && x->prog.total > 0
        ? (double)(x->prog.total - x->written) / x->prog.rate : -1;
    x->last_call = t;
    if (x->o->progress(&x->prog, x->o->ud)) x->cancelled = 1;
    return x->cancelled;
}

static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    xfer *x = ud;
    double t = now_s();
    (void)dlnow; (void)ultotal; (void)ulnow;
    if (dltotal > 0 && x->started) x->prog.total = x->offset + dltotal;   /* the server knows best */
    if (t - x->last_sample >= 0.5) {   /* smoothed rate: old readings fade within a few seconds */
        double inst = (double)(x->written - x->sample_bytes) / (t - x->last_sample);
        x->prog.rate = x->prog.rate > 0 ? 0.7 * x->prog.rate + 0.3 * inst : inst;
        x->last_sample = t;
        x->sample_bytes = x->written;
    }
    if (t - x->last_call >= x->o->interval) return report(x, FETCH_PROGRESS, NULL);
    return x->cancelled;
}

/* ---- the response ---- */

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    long long a, b;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) x->range_start = -1;   /* a new response (redirects) */
    else if (len > 14 && !strncasecmp(buf, "content-range:", 14)) {
        char line[128];
        snprintf(line, sizeof line, "%.*s", (int)(len - 14), buf + 14);
        if (sscanf(line, " bytes %lld-%lld", &a, &b) == 2) x->range_start = a;
    }
    return len;
}

/* First body bytes: a 206 must start where we asked; a 200 means the server sent the whole file,
 * so the part file starts over. Returns 0 to go on. */
static int start_body(xfer *x)
{
    long code = 0;
    x->started = 1;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 206) {
        if (x->range_start != x->offset) x->bad_range = 1;
        return x->bad_range;
    }
    if (x->offset > 0) {
        if (ftruncate(x->fd, 0) || lseek(x->fd, 0, SEEK_SET) < 0) {
            x->disk_errno = errno;
            return -1;
        }
        EVP_DigestInit_ex(x->md, EVP_sha256(), NULL);
        x->restarted = 1;
        x->offset = x->written = x->sample_bytes = 0;
    }
    return 0;
}

static size_t on_data(char *buf, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (!x->started && start_body(x)) return 0;
    if (x->size >= 0 && x->written + (long long)len > x->size) {
        x->too_long = 1;
        return 0;
    }
    if (write_all(x->fd, buf, len)) {
        x->disk_errno = errno ? errno : EIO;
        return 0;
    }
    EVP_DigestUpdate(x->md, buf, len);
    x->written += (long long)len;
    return len;
}

/* ---- one attempt ---- */

/* What an attempt ended with, and whether another may follow. */
typedef struct outcome {
    int status;               /* FETCH_OK or a fetch_status */
    int retry;                /* transient: wait and try again */
    int again_now;            /* start over at once (a stale part file was removed) */
    char why[600];
} outcome;

static void set_outcome(outcome *r, int status, int retry, const char *fmt, ...)
{
    va_list ap;
    r->status = status;
    r->retry = retry;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

/* Names the disk problem: "disk full" for ENOSPC, EDQUOT and EFBIG, else strerror. */
static const char *disk_problem(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG ? "disk full" : strerror(e);
}

/* Classifies a failed curl_easy_perform. */
static void curl_outcome(xfer *x, CURLcode rc, const char *url, const char *curl_err, outcome *r)
{
    const char *msg = curl_err[0] ? curl_err : curl_easy_strerror(rc);
    long code = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
        set_outcome(r, FETCH_OFFLINE, 0, "%s: cannot resolve the host name; offline? (%s)", url, msg);
        break;
    case CURLE_COULDNT_CONNECT:
        set_outcome(r, FETCH_OFFLINE, 1, "%s: cannot connect; offline or server down? (%s)", url, msg);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        set_outcome(r, FETCH_NETWORK, 1, "%s: stalled: under %ld bytes/s for %ld s (%s)", url,
                    x->o->low_speed_bytes, x->o->low_speed_seconds, msg);
        break;
    case CURLE_HTTP_RETURNED_ERROR:
        if (code == 416 && x->offset > 0) {
            set_outcome(r, FETCH_NETWORK, 0, "%s: server refused to resume at byte %lld", url, x->offset);
            r->again_now = 1;
        } else {
            int transient = code >= 500 || code == 408 || code == 429;
            set_outcome(r, FETCH_HTTP, transient, "%s: HTTP %ld from the server", url, code);
        }
        break;
    case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING:
    case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_READ_ERROR:
        set_outcome(r, FETCH_NETWORK, 1, "%s: connection dropped after %lld bytes (%s)", url, x->written, msg);
        break;
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CONNECT_ERROR: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_ISSUER_ERROR:
        set_outcome(r, FETCH_NETWORK, 0, "%s: TLS verification failed (%s)", url, msg);
        break;
    default:
        set_outcome(r, FETCH_NETWORK, 0, "%s: %s", url, msg);
        break;
    }
}

/* Checks the digest of a finished part file; renames it to dest when good, removes it when not.
 * whole: the server said how long the body was and all of it came, so a shorter file than the
 * recorded size is what the server has (a repack or a wrong file), not a cut transfer. */
static void finish_part(xfer *x, const char *part, const char *dest, const char *const *sha256,
                        const char *url, int whole, outcome *r)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char hex[65];

    EVP_DigestFinal_ex(x->md, d, &n);
    to_hex(d, n, hex);
    if (!digest_ok(hex, sha256)) {
        if (!whole && x->size >= 0 && x->written < x->size) {   /* ended early without saying so */
            set_outcome(r, FETCH_NETWORK, 1, "%s: connection ended after %lld of %lld bytes", url,
                        x->written, x->size);
            return;
        }
        unlink(part);
        set_outcome(r, FETCH_CHECKSUM, 0, "%s: checksum mismatch: SHA-256 %.16s..., expected %.16s...; "
                    "the download was removed", url, hex, sha256[0]);
        r->again_now = x->offset > 0;   /* a stale part file may be to blame: once more from zero */
        return;
    }
    if (fsync(x->fd)) {
        set_outcome(r, FETCH_DISK, 0, "%s: %s", part, disk_problem(errno));
        return;
    }
    if (rename(part, dest)) {
        set_outcome(r, FETCH_DISK, 0, "%s: cannot rename to %s: %s", part, dest, strerror(errno));
        return;
    }
    char dir[PATH_LEN];   /* make the rename itself durable */
    snprintf(dir, sizeof dir, "%s", dest);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *(slash == dir ? slash + 1 : slash) = 0;
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { fsync(dfd); close(dfd); }
    }
    r->status = FETCH_OK;
}

/* Free space check before asking for `need` more bytes next to path. */
static int room_for(const char *path, long long need, outcome *r)
{
    struct statvfs vf;
    char dir[PATH_LEN];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else snprintf(dir, sizeof dir, ".");
    if (need <= 0 || statvfs(dir, &vf)) return 1;
    long long avail = (long long)vf.f_bavail * (long long)vf.f_frsize;
    if (avail >= need) return 1;
    char a[32], b[32];
    fetch_format_bytes(need, a, sizeof a);
    fetch_format_bytes(avail, b, sizeof b);
    set_outcome(r, FETCH_DISK, 0, "%s: disk full: %s needed, %s free", dir, a, b);
    return 0;
}

static void attempt(xfer *x, const char *url, const char *part, const char *dest,
                    const char *const *sha256, outcome *r)
{
    char range[48];
    struct stat st;

    memset(r, 0, sizeof *r);
    x->fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (x->fd < 0) {
        set_outcome(r, FETCH_DISK, 0, "%s: cannot write: %s", part, strerror(errno));
        return;
    }
    if (fstat(x->fd, &st) || lseek(x->fd, 0, SEEK_END) < 0) {
        set_outcome(r, FETCH_DISK, 0, "%s: %s", part, strerror(errno));
        goto done;
    }
    x->offset = st.st_size;
    if (x->size >= 0 && x->offset > x->size && (ftruncate(x->fd, 0) || lseek(x->fd, 0, SEEK_SET) < 0)) {
        set_outcome(r, FETCH_DISK, 0, "%s: %s", part, strerror(errno));
        goto done;
    }
    if (x->size >= 0 && x->offset > x->size) x->offset = 0;
    EVP_DigestInit_ex(x->md, EVP_sha256(), NULL);
    x->written = x->offset ? hash_fd(x->fd, x->md) : 0;
    if (x->written != x->offset) {
        set_outcome(r, FETCH_DISK, 0, "%s: read error: %s", part, strerror(errno));
        goto done;
    }
    x->started = x->restarted = x->disk_errno = x->too_long = x->bad_range = 0;
    x->range_start = -1;
    x->sample_bytes = x->written;
    x->last_sample = now_s();
    x->prog.rate = 0;
    if (x->size >= 0 && x->offset == x->size) {   /* complete already: verify without the network */
        finish_part(x, part, dest, sha256, url, 1, r);
        goto done;
    }
    if (!room_for(part, x->size - x->offset, r)) goto done;
    if (report(x, FETCH_BEGIN, NULL)) {
        set_outcome(r, FETCH_CANCELLED, 0, "%s: cancelled", url);
        goto done;
    }

    CURL *c = x->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 8L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hasten/" HASTEN_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, x->o->connect_seconds);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, x->o->low_speed_bytes);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, x->o->low_speed_seconds);
    x->curl_err[0] = 0;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->curl_err);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    if (x->offset > 0) {
        snprintf(range, sizeof range, "%lld-", x->offset);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    CURLcode rc = curl_easy_perform(c);

    if (x->cancelled) set_outcome(r, FETCH_CANCELLED, 0, "%s: cancelled", url);
    else if (x->disk_errno) set_outcome(r, FETCH_DISK, 0, "%s: %s", part, disk_problem(x->disk_errno));
    else if (x->too_long) {
        unlink(part);
        set_outcome(r, FETCH_CHECKSUM, 0, "%s: more than the recorded %lld bytes; the download was removed",
                    url, x->size);
        r->again_now = x->offset > 0;
    } else if (x->bad_range) {
        set_outcome(r, FETCH_NETWORK, 0, "%s: server resumed at the wrong byte", url);
        r->again_now = 1;
    } else if (rc != CURLE_OK) curl_outcome(x, rc, url, x->curl_err, r);
    else {
        curl_off_t length = -1;
        curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
        finish_part(x, part, dest, sha256, url, length >= 0, r);
    }
done:
    close(x->fd);
    x->fd = -1;
    if (r->again_now && r->status != FETCH_OK) unlink(part);
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

int fetch_file(const char *url, const char *dest, long long size, const char *const *sha256,
               const fetch_options *opts, char *err, size_t errlen)
{
    fetch_options defaults;
    char part[PATH_LEN], note[700];
    outcome r = { .status = FETCH_NETWORK };
    int fresh_restarts = 0;

    if (!opts) fetch_options_init(&defaults);
    const fetch_options *o = opts ? opts : &defaults;
    if (!url || !dest || !*dest)
        return fail(err, errlen, FETCH_BAD_ARG, "fetch: no URL or destination given");
    if (!sha256 || !sha256[0])
        return fail(err, errlen, FETCH_BAD_ARG, "%s: no SHA-256 recorded; refusing to install an unverified file", url);
    if (snprintf(part, sizeof part, "%s.part", dest) >= (int)sizeof part)
        return fail(err, errlen, FETCH_BAD_ARG, "%.200s...: path too long", dest);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return fail(err, errlen, FETCH_NETWORK, "%s: libcurl did not start (%s)", url, curl_easy_strerror(curl_init_rc));

    const char *base = strrchr(dest, '/');
    xfer x = { .o = o, .fd = -1, .size = size > 0 ? size : -1 };
    x.prog = (fetch_progress){
        .label = o->label ? o->label : base ? base + 1 : dest, .file = o->file, .files = o->files,
        .total = x.size, .attempts = o->retries + 1, .eta = -1,
    };
    x.t0 = now_s();
    x.md = EVP_MD_CTX_new();
    x.curl = curl_easy_init();
    if (!x.md || !x.curl) {
        set_outcome(&r, FETCH_NETWORK, 0, "%s: out of memory starting the download", url);
        goto done;
    }
    double wait = o->backoff;
    for (int k = 1; k <= o->retries + 1; k++) {
        x.prog.attempt = k;
        attempt(&x, url, part, dest, sha256, &r);
        if (r.status == FETCH_OK) {
            report(&x, FETCH_DONE, NULL);
            break;
        }
        if (r.again_now && fresh_restarts++ < 2) {   /* not counted as an attempt */
            snprintf(note, sizeof note, "%s; the partial file an earlier try left may be to blame: starting over "
                     "from the first byte", r.why);
            if (report(&x, FETCH_RETRY, note)) {
                set_outcome(&r, FETCH_CANCELLED, 0, "%s: cancelled", url);
                break;
            }
            k--;
            continue;
        }
        if (!r.retry || k > o->retries) break;
        snprintf(note, sizeof note, "%s; retrying in %.0f s (attempt %d of %d)", r.why, wait < 1 ? 1 : wait,
                 k + 1, o->retries + 1);
        if (report(&x, FETCH_RETRY, note)) {
            set_outcome(&r, FETCH_CANCELLED, 0, "%s: cancelled", url);
            break;
        }
        sleep_s(wait);
        wait = wait * 2 > MAX_BACKOFF ? MAX_BACKOFF : wait * 2;
    }
done:
    if (x.curl) curl_easy_cleanup(x.curl);
    EVP_MD_CTX_free(x.md);
    struct stat st;
    if (r.status != FETCH_OK && stat(part, &st) == 0 && st.st_size == 0) unlink(part);   /* nothing to resume */
    if (r.status != FETCH_OK) snprintf(err, errlen, "%s", r.why);
    return r.status;
}

/* ---- text for people ---- */

void fetch_format_bytes(long long b, char *out, size_t len)
{
    static const char *const units[] = { "kB", "MB", "GB", "TB" };
    if (b < 1000) {
        snprintf(out, len, "%lld B", b < 0 ? 0 : b);
        return;
    }
    double v = (double)b / 1000;
    int u = 0;
    while (v >= 999.95 && u < 3) v /= 1000, u++;
    snprintf(out, len, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void format_eta(double s, char *out, size_t len)
{
    if (s < 0 || s > 359999) snprintf(out, len, "--:--");
    else if (s >= 3600) snprintf(out, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else snprintf(out, len, "%d:%02d", (int)s / 60, (int)s % 60);
}

void fetch_format_progress(const fetch_progress *p, int bar, int width, char *out, size_t len)
{
    char done[32], total[32], rate[32], eta[16], tail[128], bars[64];
    if (width < 40) width = 40;
    fetch_format_bytes(p->done, done, sizeof done);
    if (p->total > 0) fetch_format_bytes(p->total, total, sizeof total);
    else snprintf(total, sizeof total, "?");
    fetch_format_bytes((long long)p->rate, rate, sizeof rate);
    format_eta(p->eta, eta, sizeof eta);
    if (p->phase == FETCH_DONE)
        snprintf(tail, sizeof tail, " %s in %.1f s, SHA-256 verified", total, p->elapsed);
    else if (p->phase == FETCH_BEGIN && p->done > 0)
        snprintf(tail, sizeof tail, " resuming at %s of %s", done, total);
    else if (p->phase == FETCH_BEGIN)
        snprintf(tail, sizeof tail, " %s to fetch", total);
    else
        snprintf(tail, sizeof tail, " %s/%s %s%s ETA %s", done, total, p->rate > 0 ? rate : "-",
                 p->rate > 0 ? "/s" : "", eta);
    int files = p->files > 1;
    char head[16] = "";
    if (files) snprintf(head, sizeof head, "(%d/%d) ", p->file, p->files);
    int room = width - (int)strlen(head) - (int)strlen(tail);
    int nbar = bar ? room / 3 : 0;
    if (nbar > 40) nbar = 40;
    if (nbar >= 10) {
        int fill = p->total > 0 ? (int)((double)nbar * (double)p->done / (double)p->total) : 0;
        if (fill > nbar) fill = nbar;
        memset(bars, '#', (size_t)fill);
        memset(bars + fill, '.', (size_t)(nbar - fill));
        bars[nbar] = 0;
        room -= nbar + 3;
    } else nbar = 0;
    int full = (int)strlen(p->label), lab = full;
    if (lab > room) lab = room < 11 ? 8 : room - 3;   /* keep the end: "...images-idx3-ubyte.gz" */
    if (lab > full) lab = full;
    const char *cut = lab < full ? "..." : "", *label = p->label + full - lab;
    if (nbar) snprintf(out, len, "%s%s%s [%s]%s", head, cut, label, bars, tail);
    else snprintf(out, len, "%s%s%s%s", head, cut, label, tail);
}
