/* The downloader: one URL into one file over libcurl, with resume, bounded retries, a low-speed
 * timeout and SHA-256 computed while streaming; the file takes its final name only once verified.
 * Not for knowing which files a dataset needs (registry.c) nor for reading them. */
#ifndef HASTEN_FETCH_H
#define HASTEN_FETCH_H

#include <stddef.h>

/* Results of fetch_file and data_fetch: 0, or one of these (each comes with one line in err). */
enum fetch_status {
    FETCH_OK = 0,
    FETCH_OFFLINE = -1,    /* host name does not resolve, or no connection could be made */
    FETCH_NETWORK = -2,    /* dropped, stalled or refused TLS after the retries; partial kept */
    FETCH_HTTP = -3,       /* the server answered with an error status (404, 403, ...) */
    FETCH_CHECKSUM = -4,   /* the bytes are not the recorded file; what was fetched is removed */
    FETCH_DISK = -5,       /* cannot write: disk full, no permission, ... */
    FETCH_CANCELLED = -6,  /* the progress callback asked to stop; partial kept for resume */
    FETCH_BAD_ARG = -7,    /* unknown dataset, no checksum recorded, bad path */
};

enum fetch_phase {
    FETCH_BEGIN,           /* about to ask for the file (done > 0 when resuming) */
    FETCH_PROGRESS,        /* bytes arrived; at most once per fetch_options.interval */
    FETCH_RETRY,           /* an attempt failed; message says why and how long until the next */
    FETCH_DONE,            /* verified and installed under its final name */
};

/* What a progress callback sees. Valid only during the call. */
typedef struct fetch_progress {
    enum fetch_phase phase;
    const char *label;     /* what is fetched, e.g. "mnist/train-images-idx3-ubyte.gz" */
    int file, files;       /* 1-based index of this file among those fetched together, and count */
    long long done;        /* bytes of this file on disk, a resumed part included */
    long long total;       /* expected bytes, or -1 when unknown */
    double rate;           /* bytes per second, smoothed over the last seconds; 0 until known */
    double eta;            /* seconds left at that rate, or -1 when unknown */
    double elapsed;        /* seconds since this file's fetch began */
    int attempt, attempts; /* 1-based attempt and the most there will be */
    const char *message;   /* FETCH_RETRY: the reason and the wait; otherwise NULL */
} fetch_progress;

/* Called on the fetching thread. Return 0 to go on, nonzero to cancel (FETCH_CANCELLED; the
 * partial file is kept so a later fetch resumes it). The command line draws a bar with it; the
 * workbench turns it into log lines. */
typedef int (*fetch_progress_fn)(const fetch_progress *p, void *ud);

typedef struct fetch_options {
    fetch_progress_fn progress;  /* NULL: silent */
    void *ud;                    /* passed to progress */
    double interval;             /* seconds between FETCH_PROGRESS calls (0.2) */
    long low_speed_bytes;        /* an attempt is abandoned when slower than this many bytes/s ... (1024) */
    long low_speed_seconds;      /* ... for this many seconds in a row (30); there is no total timeout */
    long connect_seconds;        /* to establish a connection (30) */
    int retries;                 /* further attempts after a transient failure (4) */
    double backoff;              /* seconds before the first retry, doubled each time up to 60 (1) */
    const char *label;           /* shown in progress; NULL = the file name */
    int file, files;             /* shown in progress (1 and 1) */
} fetch_options;

/* Fills o with the defaults written above. */
void fetch_options_init(fetch_options *o);

/* Downloads url into dest. The bytes go to dest.part (resumed with an HTTP Range request when it
 * exists; started over when the server ignores the range), are hashed while they stream, and the
 * file is renamed to dest only when its SHA-256 equals one of the hex digests in sha256
 * (NULL-terminated, at least one: nothing is installed unverified). size is the recorded size
 * (0 = not recorded): the progress total until the server says, the free-space check, and a limit
 * (a server sending more is an error). dest's folder must exist. Transient failures (dropped
 * connection, under the low-speed limit for too long, HTTP 5xx/408/429, refused connection) are
 * retried with back-off, resuming; a checksum mismatch after a resumed download is retried once
 * from scratch. HTTPS certificates are always verified; only http and https URLs (and redirects)
 * are followed. Returns FETCH_OK, or a fetch_status with one line in err naming the URL or file and
 * the problem. A mismatching file is removed; after a network failure or a cancel, dest.part stays
 * for a later resume. o may be NULL for the defaults. Thread-safe (one call per dest at a time). */
int fetch_file(const char *url, const char *dest, long long size, const char *const *sha256,
               const fetch_options *o, char *err, size_t errlen);

/* SHA-256 of the file at path as 64 lowercase hex digits into hex[65]. Returns 0, or -1 with
 * "<path>: <problem>" in err. */
int fetch_sha256_file(const char *path, char hex[65], char *err, size_t errlen);

/* Hashes the file at path and compares with the hex digests in sha256 (NULL-terminated). Returns
 * FETCH_OK when one matches, FETCH_CHECKSUM when none does (err names the file), FETCH_DISK when it
 * cannot be read. Touches nothing. */
int fetch_verify_file(const char *path, const char *const *sha256, char *err, size_t errlen);

/* "12.3 MB", "950 kB", "17 B": bytes for people (powers of 1000). */
void fetch_format_bytes(long long bytes, char *out, size_t len);

/* One progress line for p, without a newline, at most width columns when width >= 60 (the label
 * is shortened from the left first, marked "...", down to 8 characters), e.g.
 * "mnist/train-images-idx3-ubyte.gz [#####.....] 4.2/9.9 MB 1.3 MB/s ETA 0:04";
 * with bar = 0 the bracketed bar is left out (for logs). Pure: the CLI and the workbench share it. */
void fetch_format_progress(const fetch_progress *p, int bar, int width, char *out, size_t len);

#endif
