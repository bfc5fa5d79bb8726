/* The dataset registry: what each dataset is (files, origins, published SHA-256, licence,
 * citation), where a copy is looked for, and fetching the missing files into the cache.
 * Not for parsing formats (idx.c, cifar.c, text.c) nor for HTTP (fetch.c). */
#include "datasets/datasets.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSTEM_DATA_DIR "/usr/share/datasets"
#define DIR_LEN 1024

/* Digests: origin SHA-256 values as published in TensorFlow Datasets' url_checksums (fashion_mnist,
 * mnist, kmnist, cifar10, tiny_shakespeare), which list the same sizes. Fashion-MNIST also accepts
 * Debian's repack (package dataset-fashion-mnist 0.0~git20200523.55506a9-1): the same data, gzip
 * headers without the file name, so 23-24 bytes shorter. */
#define FMNIST_URL "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
#define MNIST_URL  "https://storage.googleapis.com/cvdf-datasets/mnist/"
#define KMNIST_URL "https://codh.rois.ac.jp/kmnist/dataset/kmnist/"
#define TFDS "TensorFlow Datasets url_checksums"

static const data_info registry[] = {
    {
        .name = "fashion-mnist", .title = "Fashion-MNIST: 28x28 grey images of clothing, 10 classes",
        .format = DATA_FORMAT_IDX, .classes = 10,
        .homepage = "https://github.com/zalandoresearch/fashion-mnist", .licence = "MIT",
        .citation = "Han Xiao, Kashif Rasul, Roland Vollgraf. Fashion-MNIST: a Novel Image Dataset for "
                    "Benchmarking Machine Learning Algorithms. arXiv:1708.07747, 2017.",
        .digests_from = TFDS "; Debian's repack also accepted",
        .install_hint = "sudo apt-get install dataset-fashion-mnist (or make deps)",
        .n_files = 4,
        .files = {
            { "train-images-idx3-ubyte.gz", FMNIST_URL "train-images-idx3-ubyte.gz", 26421880,
              { "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7" } },
            { "train-labels-idx1-ubyte.gz", FMNIST_URL "train-labels-idx1-ubyte.gz", 29515,
              { "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056" } },
            { "t10k-images-idx3-ubyte.gz", FMNIST_URL "t10k-images-idx3-ubyte.gz", 4422102,
              { "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa" } },
            { "t10k-labels-idx1-ubyte.gz", FMNIST_URL "t10k-labels-idx1-ubyte.gz", 5148,
              { "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05" } },
        },
    },
    {
        .name = "mnist", .title = "MNIST: 28x28 grey images of handwritten digits, 10 classes",
        .format = DATA_FORMAT_IDX, .classes = 10,
        .homepage = "http://yann.lecun.com/exdb/mnist/",
        .licence = "none stated by the authors (redistributors commonly give CC BY-SA 3.0)",
        .citation = "Yann LeCun, Leon Bottou, Yoshua Bengio, Patrick Haffner. Gradient-based learning "
                    "applied to document recognition. Proceedings of the IEEE 86(11), 1998.",
        .digests_from = TFDS, .n_files = 4,
        .files = {
            { "train-images-idx3-ubyte.gz", MNIST_URL "train-images-idx3-ubyte.gz", 9912422,
              { "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" } },
            { "train-labels-idx1-ubyte.gz", MNIST_URL "train-labels-idx1-ubyte.gz", 28881,
              { "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c" } },
            { "t10k-images-idx3-ubyte.gz", MNIST_URL "t10k-images-idx3-ubyte.gz", 1648877,
              { "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6" } },
            { "t10k-labels-idx1-ubyte.gz", MNIST_URL "t10k-labels-idx1-ubyte.gz", 4542,
              { "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6" } },
        },
    },
    {
        .name = "kmnist", .title = "Kuzushiji-MNIST: 28x28 grey images of cursive Japanese, 10 classes",
        .format = DATA_FORMAT_IDX, .classes = 10,
        .homepage = "https://github.com/rois-codh/kmnist", .licence = "CC BY-SA 4.0",
        .citation = "Tarin Clanuwat, Mikel Bober-Irizar, Asanobu Kitamoto, Alex Lamb, Kazuaki Yamamoto, "
                    "David Ha. Deep Learning for Classical Japanese Literature. arXiv:1812.01718, 2018.",
        .digests_from = TFDS, .n_files = 4,
        .files = {
            { "train-images-idx3-ubyte.gz", KMNIST_URL "train-images-idx3-ubyte.gz", 18165135,
              { "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4" } },
            { "train-labels-idx1-ubyte.gz", KMNIST_URL "train-labels-idx1-ubyte.gz", 29497,
              { "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17" } },
            { "t10k-images-idx3-ubyte.gz", KMNIST_URL "t10k-images-idx3-ubyte.gz", 3041136,
              { "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5" } },
            { "t10k-labels-idx1-ubyte.gz", KMNIST_URL "t10k-labels-idx1-ubyte.gz", 5120,
              { "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c" } },
        },
    },
    {
        .name = "cifar10", .title = "CIFAR-10 (binary version): 32x32 colour images, 10 classes",
        .format = DATA_FORMAT_CIFAR10, .classes = 10,
        .homepage = "https://www.cs.toronto.edu/~kriz/cifar.html",
        .licence = "none stated; the authors ask that the technical report be cited",
        .citation = "Alex Krizhevsky. Learning Multiple Layers of Features from Tiny Images. "
                    "Technical report, University of Toronto, 2009.",
        .digests_from = TFDS, .n_files = 1,
        .files = {
            { "cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", 170052171,
              { "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd" } },
        },
    },
    {
        .name = "tinyshakespeare", .title = "Tiny Shakespeare: 1.1 MB of plays as one text, for character models",
        .format = DATA_FORMAT_TEXT,
        .homepage = "https://github.com/karpathy/char-rnn",
        .licence = "public domain text (Shakespeare); char-rnn repository MIT",
        .citation = "Andrej Karpathy. char-rnn, 2015. https://github.com/karpathy/char-rnn",
        .digests_from = TFDS, .n_files = 1,
        .files = {
            { "input.txt", "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
              1115394, { "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed" } },
        },
    },
    {
        .name = "synthetic", .title = "A learnable synthetic image set made in code (28x28 grey, 10 classes)",
        .format = DATA_FORMAT_SYNTHETIC, .classes = 10, .licence = "part of hasten",
        .citation = "-", .digests_from = "-", .n_files = 0,
    },
    {
        .name = "text", .title = "Any UTF-8 text file, named by the recipe's data.path, for character models",
        .format = DATA_FORMAT_TEXT, .licence = "the file's own", .citation = "-", .digests_from = "-",
        .n_files = 0,
    },
};
#define N_ENTRIES (int)(sizeof registry / sizeof registry[0])

static const char *all_names[N_ENTRIES + 1];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;
static void fill_names(void)
{
    for (int i = 0; i < N_ENTRIES; i++) all_names[i] = registry[i].name;
}

const char *const *data_names(void)
{
    pthread_once(&names_once, fill_names);
    return all_names;
}

const data_info *data_info_find(const char *name)
{
    for (int i = 0; name && i < N_ENTRIES; i++)
        if (!strcmp(registry[i].name, name)) return &registry[i];
    return NULL;
}

const char *data_where_name(enum data_where w)
{
    static const char *const names[] = {
        [DATA_NOWHERE] = "not present", [DATA_GIVEN] = "given folder", [DATA_ENV] = "HASTEN_DATA_DIR",
        [DATA_SYSTEM] = "system", [DATA_CACHE] = "cache", [DATA_BUILT_IN] = "built in",
    };
    return (unsigned)w < sizeof names / sizeof names[0] ? names[w] : "?";
}

int data_cache_dir(char *out, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') snprintf(out, len, "%s/hasten", xdg);
    else if (home && *home) snprintf(out, len, "%s/.cache/hasten", home);
    else {
        if (len) out[0] = 0;
        return -1;
    }
    return 0;
}

/* ---- finding a copy ---- */

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Whether dir holds file f of a dataset: the name itself, for a ".gz" also the name without it
 * (the IDX reader takes both), for CIFAR also the extracted batches. */
static int has_file(const data_info *d, const char *dir, const data_file *f)
{
    char path[DIR_LEN + 128];
    snprintf(path, sizeof path, "%s/%s", dir, f->name);
    if (is_file(path)) return 1;
    size_t n = strlen(path);
    if (n > 3 && !strcmp(path + n - 3, ".gz")) {
        path[n - 3] = 0;
        if (is_file(path)) return 1;
    }
    if (d->format == DATA_FORMAT_CIFAR10) {
        snprintf(path, sizeof path, "%s/cifar-10-batches-bin/data_batch_1.bin", dir);
        if (is_file(path)) return 1;
        snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
        return is_file(path);
    }
    return 0;
}

/* need_all: every file there (the cache); else any one of them. */
static int dir_has(const data_info *d, const char *dir, int need_all)
{
    int found = 0;
    for (int i = 0; i < d->n_files; i++) found += has_file(d, dir, &d->files[i]);
    return need_all ? found == d->n_files : found > 0;
}

/* The folders looked at, in order, with what each is; returns how many. */
static int candidates(const data_info *d, char dirs[3][DIR_LEN], enum data_where where[3])
{
    const char *env = getenv("HASTEN_DATA_DIR");
    char cache[DIR_LEN - 64];
    int n = 0;
    if (env && *env) {
        snprintf(dirs[n], DIR_LEN, "%s/%s", env, d->name);
        where[n++] = DATA_ENV;
    }
    snprintf(dirs[n], DIR_LEN, "%s/%s", SYSTEM_DATA_DIR, d->name);
    where[n++] = DATA_SYSTEM;
    if (!data_cache_dir(cache, sizeof cache)) {
        snprintf(dirs[n], DIR_LEN, "%s/%s", cache, d->name);
        where[n++] = DATA_CACHE;
    }
    return n;
}

enum data_where data_locate(const data_info *d, char *dir, size_t len)
{
    char dirs[3][DIR_LEN];
    enum data_where where[3];
    if (len) dir[0] = 0;
    if (d->format == DATA_FORMAT_SYNTHETIC) return DATA_BUILT_IN;
    if (!d->n_files) return DATA_NOWHERE;   /* "text": only where a recipe points */
    int n = candidates(d, dirs, where);
    for (int i = 0; i < n; i++) {
        if (dir_has(d, dirs[i], where[i] == DATA_CACHE)) {
            snprintf(dir, len, "%s", dirs[i]);
            return where[i];
        }
    }
    return DATA_NOWHERE;
}

/* "mnist not found in A, B or C (fetch it with: hasten fetch mnist)"; for a folder given (a
 * recipe's data.path, the only place looked at, so a fetched or installed copy is never read there)
 * the advice is to fix the path or leave it out. */
static int missing(const data_info *d, const char *given, char *err, size_t errlen)
{
    char dirs[3][DIR_LEN], tried[3 * DIR_LEN + 16] = "", hint[300];
    enum data_where where[3];
    int partial = 0;
    if (d->install_hint)
        snprintf(hint, sizeof hint, "install it with: %s, or fetch it with: hasten fetch %s", d->install_hint, d->name);
    else snprintf(hint, sizeof hint, "fetch it with: hasten fetch %s", d->name);
    if (given) {
        snprintf(err, errlen, "%s not found in %s, the folder data.path names and the only place looked at: "
                 "fix the path, or leave data.path out to use an installed or cached copy (%s)", d->name,
                 given, hint);
        return DATA_MISSING;
    }
    int n = candidates(d, dirs, where);
    for (int i = 0; i < n; i++)
        snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ",
                 dirs[i]);
    data_cache_state(d, &partial, NULL);
    snprintf(err, errlen, "%s not found in %s (%s%s)", d->name, tried,
             partial ? "the cache holds part of it; " : "", hint);
    return DATA_MISSING;
}

static int load_from(const data_info *d, const char *dir, data_set *out, char *err, size_t errlen)
{
    if (d->format == DATA_FORMAT_CIFAR10) return data_load_cifar10(dir, out, err, errlen);
    return data_load_idx(d->name, dir, d->classes, out, err, errlen);
}

static int unknown(const char *name, char *err, size_t errlen)
{
    char known[256] = "";
    for (int i = 0; i < N_ENTRIES; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", registry[i].name);
    snprintf(err, errlen, "unknown dataset '%s' (known: %s)", name ? name : "(null)", known);
    return DATA_MALFORMED;
}

int data_load(const char *name, const char *dir, data_set *out, char *err, size_t errlen)
{
    char found[DIR_LEN];
    memset(out, 0, sizeof *out);
    const data_info *d = data_info_find(name);
    if (!d) return unknown(name, err, errlen);
    if (d->format == DATA_FORMAT_SYNTHETIC) {
        int rc = data_synthetic(out, 6000, 1000, 28, 28, 10, 1);
        if (rc) snprintf(err, errlen, "synthetic: out of memory");
        return rc;
    }
    if (d->format == DATA_FORMAT_TEXT) {
        snprintf(err, errlen, "%s is a text corpus, not an image set (data_load_text_windows reads it)", name);
        return DATA_MALFORMED;
    }
    if (dir) {
        int rc = load_from(d, dir, out, err, errlen);
        return rc == DATA_MISSING ? missing(d, dir, err, errlen) : rc;
    }
    if (data_locate(d, found, sizeof found) == DATA_NOWHERE) return missing(d, NULL, err, errlen);
    return load_from(d, found, out, err, errlen);
}

int data_load_text(const char *name, const char *dir, data_text *out, char *err, size_t errlen)
{
    char found[DIR_LEN], path[DIR_LEN + 128];
    memset(out, 0, sizeof *out);
    const data_info *d = data_info_find(name);
    if (!d) return unknown(name, err, errlen);
    if (d->format != DATA_FORMAT_TEXT) {
        snprintf(err, errlen, "%s is an image set, not a text corpus", name);
        return DATA_MALFORMED;
    }
    if (!d->n_files) {   /* "text": the file itself is given */
        if (!dir || !*dir) {
            snprintf(err, errlen, "%s: data.path must name the text file to read", name);
            return DATA_MALFORMED;
        }
        int rc = data_text_read(dir, 0.1, out, err, errlen);
        if (rc == DATA_MISSING) snprintf(err, errlen, "%s: no such file (data.path of dataset %s)", dir, name);
        if (!rc) snprintf(out->name, sizeof out->name, "%s", name);
        return rc;
    }
    if (dir) snprintf(found, sizeof found, "%s", dir);
    else if (data_locate(d, found, sizeof found) == DATA_NOWHERE) return missing(d, NULL, err, errlen);
    snprintf(path, sizeof path, "%s/%s", found, d->files[0].name);
    int rc = data_text_read(path, 0.1, out, err, errlen);
    if (rc == DATA_MISSING) return missing(d, dir, err, errlen);
    if (!rc) snprintf(out->name, sizeof out->name, "%s", name);
    return rc;
}

int data_load_text_windows(const char *name, const char *dir, int context, data_set *out, char *err,
                           size_t errlen)
{
    data_text t;
    memset(out, 0, sizeof *out);
    int rc = data_load_text(name, dir, &t, err, errlen);
    if (rc) return rc;
    rc = data_text_windows(&t, context, out, err, errlen);
    data_text_free(&t);
    return rc;
}

/* ---- the cache ---- */

void data_cache_state(const data_info *d, int *files_present, long long *partial_bytes)
{
    char cache[DIR_LEN], path[DIR_LEN + 160];
    struct stat st;
    int present = 0;
    long long part = 0;
    if (!data_cache_dir(cache, sizeof cache)) {
        for (int i = 0; i < d->n_files; i++) {
            snprintf(path, sizeof path, "%s/%s/%s", cache, d->name, d->files[i].name);
            present += is_file(path);
            strcat(path, ".part");
            if (stat(path, &st) == 0) part += st.st_size;
        }
    }
    if (files_present) *files_present = present;
    if (partial_bytes) *partial_bytes = part;
}

/* mkdir -p for path; returns 0 or -1 with errno set. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            int rc = mkdir(path, 0755);
            *p = c;
            if (rc && errno != EEXIST) return -1;
            if (!c) return 0;
        }
    }
}

/* Takes <dir>/.lock, telling the progress callback when another process holds it. Returns the fd
 * (closing it releases the lock) or -1. */
static int lock_dir(const char *dir, const data_info *d, const fetch_options *o)
{
    char path[DIR_LEN + 16];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    if (o->progress) {
        fetch_progress p = { .phase = FETCH_RETRY, .label = d->name, .file = 1, .files = 1, .total = -1,
                             .eta = -1, .attempt = 1, .attempts = 1,
                             .message = "another hasten is fetching this dataset; waiting for it" };
        o->progress(&p, o->ud);
    }
    while (flock(fd, LOCK_EX) && errno == EINTR) {}
    return fd;
}

int data_fetch(const char *name, int reverify, const fetch_options *opts, char *err, size_t errlen)
{
    char dir[DIR_LEN], path[DIR_LEN + 128], url[2048], label[160];
    fetch_options o;
    int rc = FETCH_OK, lock = -1;

    const data_info *d = data_info_find(name);
    if (!d) {
        unknown(name, err, errlen);
        return FETCH_BAD_ARG;
    }
    if (!d->n_files) {
        snprintf(err, errlen, "%s is made in code; there is nothing to fetch", name);
        return FETCH_BAD_ARG;
    }
    if (data_cache_dir(dir, sizeof dir - 64)) {
        snprintf(err, errlen, "%s: no cache folder: set HOME or XDG_CACHE_HOME", name);
        return FETCH_DISK;
    }
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", name);
    if (make_dirs(dir)) {
        snprintf(err, errlen, "%s: cannot create the cache folder: %s", dir, strerror(errno));
        return FETCH_DISK;
    }
    if (opts) o = *opts;
    else fetch_options_init(&o);
    if ((lock = lock_dir(dir, d, &o)) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s/.lock: %s%s", dir, strerror(e), e == EACCES || e == EROFS
                 ? " (the cache folder is not writable: fix its permissions, or set XDG_CACHE_HOME to a folder of yours)" : "");
        return FETCH_DISK;
    }
    const char *mirror = getenv("HASTEN_MIRROR");
    size_t mlen = mirror ? strlen(mirror) : 0;
    while (mlen && mirror[mlen - 1] == '/') mlen--;

    for (int i = 0; i < d->n_files && rc == FETCH_OK; i++) {
        const data_file *f = &d->files[i];
        snprintf(path, sizeof path, "%s/%s", dir, f->name);
        if (is_file(path)) {
            if (!reverify) continue;
            rc = fetch_verify_file(path, f->sha256, err, errlen);
            if (rc != FETCH_CHECKSUM) continue;   /* good, or unreadable (rc ends the loop) */
            unlink(path);   /* corrupted since it was installed: fetch it again, saying so */
            rc = FETCH_OK;
            if (o.progress) {
                char why[1200];
                snprintf(why, sizeof why, "%s: damaged since it was installed; removed, fetching it again", err);
                fetch_progress p = { .phase = FETCH_RETRY, .label = f->name, .file = i + 1, .files = d->n_files,
                                     .total = -1, .eta = -1, .message = why };
                if (o.progress(&p, o.ud)) {
                    snprintf(err, errlen, "%s: cancelled", name);
                    rc = FETCH_CANCELLED;
                    break;
                }
            }
        }
        if (mlen) snprintf(url, sizeof url, "%.*s/%s/%s", (int)mlen, mirror, name, f->name);
        else snprintf(url, sizeof url, "%s", f->url);
        snprintf(label, sizeof label, "%s/%s", name, f->name);
        o.label = label;
        o.file = i + 1;
        o.files = d->n_files;
        rc = fetch_file(url, path, f->size, f->sha256, &o, err, errlen);
    }
    close(lock);
    return rc;
}
