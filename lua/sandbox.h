/* The Lua sandbox shared by recipes and plugins: a state with a memory cap, only safe libraries,
 * text chunks only, and an instruction and time budget per protected call.
 * Not for deciding what a script may call beyond that: callers add their own globals. */
#ifndef HASTEN_SANDBOX_H
#define HASTEN_SANDBOX_H

#include <stddef.h>
#include <lua.h>

typedef struct sandbox {
    size_t used, cap;     /* bytes held by the state, and the most it may hold */
    size_t extra;         /* bytes held outside Lua on its behalf (plugin tensors), counted too */
    int denied;           /* an allocation was refused */
    long long hooks, max_hooks;   /* budget for the current call, in hook ticks */
    double deadline;      /* monotonic seconds; 0 = none */
    const char *who;      /* "recipe" or "plugin": first word of the stop message */
} sandbox;

/* A new state allocating through sb (cap bytes at most) with base (no dofile, loadfile, load,
 * require, print, collectgarbage), math, string, table and utf8 opened. Returns NULL when even
 * that does not fit. The caller closes it with lua_close. */
lua_State *sandbox_new(sandbox *sb, size_t cap, const char *who);

/* Arms the instruction and wall-clock budget for the next call(s): max_instr instructions and
 * max_seconds (0 = no time limit). Past either, every instruction raises an error, so pcall in
 * the script cannot swallow the stop. */
void sandbox_arm(lua_State *L, sandbox *sb, long long max_instr, double max_seconds);

/* Accounts bytes the host allocates for the script (negative to release). Returns 0, or -1 when
 * the cap would be exceeded (nothing is counted then). */
int sandbox_charge(sandbox *sb, long long bytes);

#endif
