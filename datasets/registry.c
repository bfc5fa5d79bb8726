/* The dataset registry: a name to a loader, the default folders, and what to say when a dataset
 * is not installed. Not for parsing formats (idx.c) or making data (synthetic.c). */
#include "datasets/datasets.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYSTEM_DATA_DIR "/usr/share/datasets"

/* names[i] goes with hints[i]. */
static const char *const names[] = { "fashion-mnist", "mnist", "synthetic", NULL };
static const char *const hints[] = {
    "install it with: sudo apt-get install dataset-fashion-mnist, or run make deps",
    "fetch it with: hasten fetch mnist, or put its four IDX files there",
    NULL,   /* made in code */
};
#define N_ENTRIES (sizeof hints / sizeof hints[0])

const char *const *data_names(void) { return names; }

/* Index of name in the registry, or -1. */
static int find(const char *name)
{
    for (size_t i = 0; name && i < N_ENTRIES; i++)
        if (!strcmp(names[i], name)) return (int)i;
    return -1;
}

int data_load(const char *name, const char *dir, data_set *out, char *err, size_t errlen)
{
    char dirs[2][1024], tried[2100] = "";
    int n_dirs = 0, rc = DATA_MISSING;

    memset(out, 0, sizeof *out);
    int e = find(name);
    if (e < 0) {
        char known[128] = "";
        for (size_t i = 0; i < N_ENTRIES; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", names[i]);
        snprintf(err, errlen, "unknown dataset '%s' (known: %s)", name ? name : "(null)", known);
        return DATA_MALFORMED;
    }
    if (!hints[e]) {
        rc = data_synthetic(out, 6000, 1000, 28, 28, 10, 1);
        if (rc) snprintf(err, errlen, "synthetic: out of memory");
        return rc;
    }

    const char *env = getenv("HASTEN_DATA_DIR");
    if (dir) snprintf(dirs[n_dirs++], sizeof dirs[0], "%s", dir);
    else {
        if (env && *env) snprintf(dirs[n_dirs++], sizeof dirs[0], "%s/%s", env, name);
        snprintf(dirs[n_dirs++], sizeof dirs[0], "%s/%s", SYSTEM_DATA_DIR, name);
    }
    for (int i = 0; i < n_dirs && rc == DATA_MISSING; i++) {
        rc = data_load_idx(name, dirs[i], 10, out, err, errlen);
        snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s", i ? " or " : "", dirs[i]);
    }
    if (rc == DATA_MISSING) snprintf(err, errlen, "%s not found in %s (%s)", name, tried, hints[e]);
    return rc;
}
