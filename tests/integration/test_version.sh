#!/bin/sh
# The version a build prints, and records in every run, follows the tree it was built from: a
# build with another VERSION relinks with it (the version lives in build/version.c, rewritten when
# it changes), and the next ordinary build is back to git's. A -D flag had reached only the files
# that happened to recompile. Rebuilds ./hasten twice (a relink each); make passes its own
# variables (NVCC= too) down through MAKEFLAGS.
name=test_version
restore() { make -s hasten >/dev/null 2>&1; }
fail() { echo "$name: $*"; restore; exit 1; }
git rev-parse --git-dir >/dev/null 2>&1 || { echo "$name: skipped: not a git checkout"; exit 0; }
make -s VERSION=check-version-7 hasten >/dev/null 2>&1 || fail "the build with VERSION=check-version-7 failed"
got=$(./hasten --version)
[ "$got" = "hasten check-version-7" ] || fail "built with VERSION=check-version-7, it says '$got'"
restore || fail "the ordinary rebuild failed"
want="hasten $(git describe --always --dirty)"
got=$(./hasten --version)
[ "$got" = "$want" ] || fail "rebuilt, it says '$got', not '$want'"
echo "$name: ok"
