/* The loopback HTTP server of the downloader tests: files from memory, Range, and misbehaviour on
 * request (dropped connections, ignored ranges, wrong bytes, 404, 503, trickling, stalling). */
#include "tests/http_server.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 16

typedef struct served {
    char path[256];
    unsigned char *data;
    size_t len;
} served;

struct http_server {
    int fd;
    char url[64];
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;         /* guards everything below */
    served files[MAX_FILES];
    int n_files;
    enum http_mode mode;
    int mode_left;              /* requests still to get mode; < 0 = all */
    int requests;
    char last_range[64];
};

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Sends all of buf; 0, or -1 when the client has gone or the server stops. */
static int send_all(http_server *s, int c, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        if (atomic_load(&s->stop)) return -1;
        struct pollfd pf = { c, POLLOUT, 0 };
        if (poll(&pf, 1, 50) <= 0) continue;
        ssize_t n = send(c, p, len, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the request head (up to the blank line) into buf; 0, or -1 on timeout or close. */
static int read_head(http_server *s, int c, char *buf, size_t cap)
{
    size_t n = 0;
    for (int waited = 0; waited < 3000 && !atomic_load(&s->stop); ) {
        struct pollfd pf = { c, POLLIN, 0 };
        if (poll(&pf, 1, 50) <= 0) { waited += 50; continue; }
        ssize_t r = recv(c, buf + n, cap - 1 - n, 0);
        if (r <= 0) return -1;
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n")) return 0;
        if (n == cap - 1) return -1;
    }
    return -1;
}

/* Waits until the client closes its end (or the server stops). */
static void wait_for_close(http_server *s, int c)
{
    char b[256];
    while (!atomic_load(&s->stop)) {
        struct pollfd pf = { c, POLLIN, 0 };
        if (poll(&pf, 1, 50) > 0 && recv(c, b, sizeof b, 0) <= 0) return;
    }
}

static void respond_status(http_server *s, int c, const char *status)
{
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, strlen(status), status);
    send_all(s, c, head, (size_t)n);
}

static void serve(http_server *s, int c)
{
    char req[4096], path[256] = "", head[512];
    long long start = -1;

    if (read_head(s, c, req, sizeof req)) return;
    sscanf(req, "GET %255s", path);
    const char *range = strcasestr(req, "\r\nrange:");
    pthread_mutex_lock(&s->mu);
    s->requests++;
    s->last_range[0] = 0;
    if (range) {
        range += 8;
        while (*range == ' ') range++;
        snprintf(s->last_range, sizeof s->last_range, "%.*s", (int)strcspn(range, "\r"), range);
        sscanf(range, "bytes=%lld-", &start);
    }
    enum http_mode mode = s->mode_left ? s->mode : HTTP_NORMAL;
    if (s->mode_left > 0) s->mode_left--;
    served *f = NULL;
    for (int i = 0; i < s->n_files; i++)
        if (!strcmp(s->files[i].path, path)) f = &s->files[i];
    /* Copy what is sent: the test thread may add files meanwhile. */
    unsigned char *body = NULL;
    size_t len = f ? f->len : 0;
    if (f && (body = malloc(len ? len : 1))) memcpy(body, f->data, len);
    pthread_mutex_unlock(&s->mu);

    if (!f || mode == HTTP_NOT_FOUND) { respond_status(s, c, "404 Not Found"); goto done; }
    if (!body) { respond_status(s, c, "500 Internal Server Error"); goto done; }
    if (mode == HTTP_SERVER_ERROR) { respond_status(s, c, "503 Service Unavailable"); goto done; }
    if (mode == HTTP_WRONG_BYTES)
        for (size_t i = 0; i < len; i += 97) body[i] ^= 0x5a;
    size_t from = 0;
    int n;
    if (start >= 0 && mode != HTTP_IGNORE_RANGE) {
        if ((size_t)start >= len) {
            n = snprintf(head, sizeof head, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%zu\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n", len);
            send_all(s, c, head, (size_t)n);
            goto done;
        }
        from = (size_t)start;
        n = snprintf(head, sizeof head, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %zu-%zu/%zu\r\n"
                     "Content-Length: %zu\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                     from, len - 1, len, len - from);
    } else {
        n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nAccept-Ranges: bytes\r\n"
                     "Connection: close\r\n\r\n", len);
    }
    if (send_all(s, c, head, (size_t)n)) goto done;
    size_t rest = len - from;
    switch (mode) {
    case HTTP_DROP_HALF:
        send_all(s, c, body + from, rest / 2);
        break;
    case HTTP_TRICKLE:
        for (size_t i = 0; i < rest; i++) {
            if (send_all(s, c, body + from + i, 1)) break;
            sleep_ms(50);
        }
        break;
    case HTTP_STALL:
        send_all(s, c, body + from, rest < 1000 ? rest / 2 : 1000);
        wait_for_close(s, c);
        break;
    default:
        send_all(s, c, body + from, rest);
        break;
    }
done:
    free(body);
}

static void *loop(void *arg)
{
    http_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pf = { s->fd, POLLIN, 0 };
        if (poll(&pf, 1, 50) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        serve(s, c);
        shutdown(c, SHUT_RDWR);
        close(c);
    }
    return NULL;
}

http_server *http_server_start(void)
{
    http_server *s = calloc(1, sizeof *s);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof addr;
    if (!s) return NULL;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&addr, sizeof addr) || listen(s->fd, 8)
        || getsockname(s->fd, (struct sockaddr *)&addr, &alen))
        goto fail;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", ntohs(addr.sin_port));
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->thread, NULL, loop, s)) goto fail;
    return s;
fail:
    if (s->fd >= 0) close(s->fd);
    free(s);
    return NULL;
}

void http_server_add(http_server *s, const char *path, const void *data, size_t len)
{
    pthread_mutex_lock(&s->mu);
    served *f = NULL;
    for (int i = 0; i < s->n_files; i++)
        if (!strcmp(s->files[i].path, path)) f = &s->files[i];
    if (!f && s->n_files < MAX_FILES) f = &s->files[s->n_files++];
    if (f) {
        free(f->data);
        snprintf(f->path, sizeof f->path, "%s", path);
        f->data = malloc(len ? len : 1);
        if (f->data) memcpy(f->data, data, len);
        f->len = f->data ? len : 0;
    }
    pthread_mutex_unlock(&s->mu);
}

void http_server_misbehave(http_server *s, enum http_mode mode, int count)
{
    pthread_mutex_lock(&s->mu);
    s->mode = mode;
    s->mode_left = count;
    pthread_mutex_unlock(&s->mu);
}

const char *http_server_url(const http_server *s) { return s->url; }

int http_server_requests(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void http_server_last_range(http_server *s, char *out, size_t len)
{
    pthread_mutex_lock(&s->mu);
    snprintf(out, len, "%s", s->last_range);
    pthread_mutex_unlock(&s->mu);
}

void http_server_stop(http_server *s)
{
    if (!s) return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    for (int i = 0; i < s->n_files; i++) free(s->files[i].data);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
