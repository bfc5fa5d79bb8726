/* Scratch folders and files for the unit tests. */
#include "tests/support.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

extern char **environ;

static char tmpdir[512];

static void remove_tmpdir(void)
{
    char cmd[600];
    if (!tmpdir[0] || getenv("HASTEN_KEEP_TMP")) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/hasten-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) { perror("mkdtemp"); abort(); }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

static char *next_path(const char *name)
{
    static char paths[8][700];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", test_tmpdir(), name);
    return p;
}

const char *test_write_file(const char *name, const void *data, size_t len)
{
    char *p = next_path(name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) { perror(p); abort(); }
    return p;
}

const char *test_write_gz(const char *name, const void *data, size_t len)
{
    char *p = next_path(name);
    gzFile g = gzopen(p, "wb");
    if (!g || (len && gzwrite(g, data, (unsigned)len) != (int)len) || gzclose(g) != Z_OK) {
        fprintf(stderr, "cannot write %s\n", p);
        abort();
    }
    return p;
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int test_hasten(const char *const *args, char **out, char **err)
{
    const char *argv[32] = { "./hasten" };
    int n = 1;
    while (args[n - 1] && n < 31) { argv[n] = args[n - 1]; n++; }
    argv[n] = NULL;
    char opath[700], epath[700];
    snprintf(opath, sizeof opath, "%s/cmd.out", test_tmpdir());
    snprintf(epath, sizeof epath, "%s/cmd.err", test_tmpdir());
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int st;
    if (posix_spawn(&pid, "./hasten", &fa, NULL, (char *const *)argv, environ)) { perror("./hasten"); abort(); }
    posix_spawn_file_actions_destroy(&fa);
    if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); abort(); }
    *out = test_read_file(opath, NULL);
    *err = test_read_file(epath, NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
