/* The version of this build: `git describe --always --dirty` when it was built, from
 * build/version.c, which the Makefile rewrites whenever that changes. */
#ifndef HASTEN_VERSION_H
#define HASTEN_VERSION_H

extern const char hasten_version[];

#endif
