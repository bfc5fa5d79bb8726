/* Run folder files, crash-safe: appends of whole lines with O_APPEND and one write(2) each, and
 * atomic replacement for summaries. */
#include "engine/runlog.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct runlog {
    char dir[1024];
    int metrics_fd, log_fd;
    int metrics_failed, log_failed;   /* a write failed: no more lines, so the file stays a prefix */
    char error[1300];
};

static int mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* Opens dir/name for appending; with fresh, only when it does not exist yet. */
static int open_append(const runlog *r, const char *name, int fresh)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (fresh ? O_EXCL : 0), 0644);
}

runlog *runlog_open(const char *dir, char *err, size_t errlen)
{
    runlog *r = calloc(1, sizeof *r);
    if (!r) { snprintf(err, errlen, "out of memory"); return NULL; }
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    r->metrics_fd = r->log_fd = -1;
    if (mkdirs(dir)) goto fail;
    /* One run a folder: another run's records mixed in would corrupt both. */
    if ((r->metrics_fd = open_append(r, "metrics.jsonl", 1)) < 0 && errno == EEXIST) {
        snprintf(err, errlen, "%s already holds a run (its metrics.jsonl); give another --out, or "
                 "remove that folder", dir);
        runlog_close(r);
        return NULL;
    }
    if (r->metrics_fd < 0) goto fail;
    if ((r->log_fd = open_append(r, "log.txt", 0)) < 0) goto fail;
    return r;
fail:
    snprintf(err, errlen, "%s: cannot create run files: %s", dir, strerror(errno));
    runlog_close(r);
    return NULL;
}

void runlog_close(runlog *r)
{
    if (!r) return;
    if (r->metrics_fd >= 0) close(r->metrics_fd);
    if (r->log_fd >= 0) close(r->log_fd);
    free(r);
}

const char *runlog_dir(const runlog *r) { return r->dir; }
const char *runlog_error(const runlog *r) { return r->error[0] ? r->error : NULL; }

/* One write per line: a kill leaves either the whole line or none of it. A write that fails (a
 * full disk, a file-size limit) takes back what part of the line it wrote, and the file takes no
 * more lines (*failed), so it holds whole lines with none missing in between; the first failure
 * is the run's error. */
static int write_line(runlog *r, int fd, int *failed, const char *text, size_t len, const char *what)
{
    if (*failed) return -1;
    char stackbuf[4096], *buf = len + 1 <= sizeof stackbuf ? stackbuf : malloc(len + 1);
    if (!buf) return -1;
    memcpy(buf, text, len);
    buf[len] = '\n';
    ssize_t n = write(fd, buf, len + 1);
    int saved = errno;
    if (buf != stackbuf) free(buf);
    if (n == (ssize_t)(len + 1)) return 0;
    *failed = 1;
    int taken_back = 0;
    if (n > 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        taken_back = end >= n && !ftruncate(fd, end - n);
    }
    if (!r->error[0])
        snprintf(r->error, sizeof r->error, "%s/%s: write failed (%s); it keeps the lines written before%s",
                 r->dir, what, n < 0 ? strerror(saved) : "no space for the whole line",
                 n > 0 && !taken_back ? ", then part of a line" : "");
    return -1;
}

int runlog_metric(runlog *r, const char *json_line)
{
    return write_line(r, r->metrics_fd, &r->metrics_failed, json_line, strlen(json_line), "metrics.jsonl");
}

void runlog_log(runlog *r, const char *fmt, ...)
{
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    write_line(r, r->log_fd, &r->log_failed, line, strlen(line), "log.txt");
}

int runlog_write_file(runlog *r, const char *name, const char *text)
{
    return runlog_write_bytes(r, name, text, strlen(text));
}

int runlog_write_bytes(runlog *r, const char *name, const void *data, size_t len)
{
    char path[1100], tmp[1120];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) goto fail;
    if (write(fd, data, len) != (ssize_t)len || fsync(fd)) { close(fd); unlink(tmp); goto fail; }
    close(fd);
    if (rename(tmp, path)) { unlink(tmp); goto fail; }
    return 0;
fail:
    if (!r->error[0]) snprintf(r->error, sizeof r->error, "%s: cannot write: %s", path, strerror(errno));
    return -1;
}

const char *const runlog_files[] = { "metrics.jsonl", "log.txt", "summary.json", "recipe.lua", "weights.bin", NULL };
