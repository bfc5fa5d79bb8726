/* libFuzzer target for the CIFAR-10 archive reader (data_cifar_read_archive): each input is one
 * tar or tar.gz file, read through libarchive from a memfd exactly as from disk. Seeds in
 * tests/fuzz/corpus/cifar, tokens in tests/fuzz/cifar.dict. Build and run with `make fuzz`. */
#include "datasets/datasets.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    char err[512] = "";
    data_set ds;
    if (fd < 0) {
        fd = memfd_create("fuzz-cifar", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    if (data_cifar_read_archive(path, &ds, err, sizeof err) == 0) {
        if (ds.c != 3 || ds.h != 32 || ds.train.n < 5 || ds.test.n < 1) abort();
        for (int i = 0; i < ds.train.n; i++)
            if (ds.train.labels[i] >= 10) abort();
        data_set_free(&ds);
    } else if (ds.train.pixels || ds.test.pixels || !err[0]) abort();
    return 0;
}
