/* A small HTTP/1.1 file server on 127.0.0.1 for the downloader's tests: serves files from memory
 * with Range support and misbehaves on request. One connection at a time, "Connection: close".
 * Not a general server: loopback only, GET only, no keep-alive. */
#ifndef HASTEN_TEST_HTTP_SERVER_H
#define HASTEN_TEST_HTTP_SERVER_H

#include <stddef.h>

enum http_mode {
    HTTP_NORMAL,          /* 200, or 206 for "Range: bytes=N-" (416 past the end) */
    HTTP_DROP_HALF,       /* the promised length, half of the body, then the connection closes */
    HTTP_IGNORE_RANGE,    /* 200 and the whole body whatever the Range */
    HTTP_WRONG_BYTES,     /* the right length with some bytes changed */
    HTTP_NOT_FOUND,       /* 404 for every path */
    HTTP_TRICKLE,         /* the body at 20 bytes per second */
    HTTP_STALL,           /* the headers and 1000 bytes, then nothing until the client leaves */
    HTTP_SERVER_ERROR,    /* 503 */
};

typedef struct http_server http_server;

/* Starts serving on 127.0.0.1 at a free port, on its own thread. Returns NULL when the socket
 * cannot be made. Stop it with http_server_stop. */
http_server *http_server_start(void);

/* Serves a copy of data[0..len) at path (e.g. "/mnist/t10k-labels-idx1-ubyte.gz"). */
void http_server_add(http_server *s, const char *path, const void *data, size_t len);

/* The next `count` requests get mode, then the server behaves again; count < 0: from now on. */
void http_server_misbehave(http_server *s, enum http_mode mode, int count);

/* "http://127.0.0.1:PORT" (static storage of s). */
const char *http_server_url(const http_server *s);

/* Requests answered so far. */
int http_server_requests(http_server *s);

/* The last request's Range header value ("bytes=100-"), or "" when it had none. */
void http_server_last_range(http_server *s, char *out, size_t len);

/* Stops the thread (within about 50 ms, even mid-response), closes the socket, frees s. */
void http_server_stop(http_server *s);

#endif
