/* libFuzzer target for the IDX reader (data_idx_read): each input is one file, gzipped or plain,
 * read as 1-, 2- and 3-dimensional data. The bytes go through a memfd, so the reader runs exactly
 * as it does on disk. Build and run with `make fuzz`. */
#include "datasets/datasets.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    char err[512];
    int dims[3];
    uint8_t *out;
    if (fd < 0) {
        fd = memfd_create("fuzz-idx", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    for (int nd = 1; nd <= 3; nd++) {
        int rc = data_idx_read(path, nd, dims, &out, err, sizeof err);
        if (rc == 0) {
            size_t n = 1;
            for (int i = 0; i < nd; i++) n *= (size_t)dims[i];
            volatile uint8_t sink = n ? out[n - 1] : 0;   /* the whole buffer is there */
            (void)sink;
            free(out);
        } else if (out || !err[0]) abort();   /* a failure leaves nothing and says why */
    }
    return 0;
}
