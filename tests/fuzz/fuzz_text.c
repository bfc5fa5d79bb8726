/* libFuzzer target for the text reader (data_text_read): each input is one file read as a corpus,
 * its first byte also choosing the test fraction. On success the result keeps the reader's
 * promises: both parts non-empty, the vocabulary in ascending code points, every id inside it and
 * data_text_id its inverse; on failure nothing is left and the error says why. The bytes go through
 * a memfd, so the reader runs as it does on disk. Build and run with `make fuzz`. */
#include "datasets/datasets.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ids(const data_text *t, const uint16_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= t->vocab) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    char err[512] = "";
    if (fd < 0) {
        fd = memfd_create("fuzz-text", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    double frac = size ? 0.05 + 0.9 * data[0] / 255.0 : 0.1;
    data_text t;
    if (data_text_read(path, frac, &t, err, sizeof err)) {
        if (t.chars || t.train || t.test || t.vocab || !err[0]) abort();
        return 0;
    }
    if (t.vocab < 1 || !t.n_train || !t.n_test) abort();
    for (int i = 0; i < t.vocab; i++) {
        if (i && t.chars[i] <= t.chars[i - 1]) abort();
        if (data_text_id(&t, t.chars[i]) != i) abort();
    }
    check_ids(&t, t.train, t.n_train);
    check_ids(&t, t.test, t.n_test);
    data_text_free(&t);
    return 0;
}
