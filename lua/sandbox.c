/* Memory cap through a custom allocator, instruction and time budget through a count hook, and
 * the list of base functions a script may not have. */
#include "lua/sandbox.h"
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <time.h>

#define HOOK_EVERY 1000   /* VM instructions between two hook calls */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sandbox *sb = ud;
    size_t old = ptr ? osize : 0;   /* with ptr NULL, osize is a type tag, not a size */
    if (nsize == 0) {
        free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old + sb->extra > sb->cap - sb->used) {
        sb->denied = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p) sb->used = sb->used - old + nsize;
    return p;
}

int sandbox_charge(sandbox *sb, long long bytes)
{
    if (bytes > 0 && sb->used + sb->extra + (size_t)bytes > sb->cap) {
        sb->denied = 1;
        return -1;
    }
    sb->extra = (size_t)((long long)sb->extra + bytes);
    return 0;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    void *ud;
    lua_getallocf(L, &ud);
    sandbox *sb = ud;
    long long budget = sb->max_hooks;
    int over_count = ++sb->hooks > budget;
    int over_time = sb->deadline > 0 && (sb->hooks & 63) == 0 && now_s() > sb->deadline;
    if (!over_count && !over_time) return;
    /* From now on every instruction fails, so a pcall in the script cannot swallow the stop. */
    sb->max_hooks = 0;
    sb->deadline = 1;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    lua_getinfo(L, "Sl", ar);
    if (over_time)
        lua_pushfstring(L, "%s:%d: %s stopped: over its time budget (an endless loop?)",
                        ar->short_src, ar->currentline, sb->who);
    else
        lua_pushfstring(L, "%s:%d: %s stopped after %d million instructions (an endless loop?)",
                        ar->short_src, ar->currentline, sb->who, (int)(budget * HOOK_EVERY / 1000000));
    lua_error(L);
}

void sandbox_arm(lua_State *L, sandbox *sb, long long max_instr, double max_seconds)
{
    sb->hooks = 0;
    sb->max_hooks = max_instr / HOOK_EVERY + 1;
    sb->deadline = max_seconds > 0 ? now_s() + max_seconds : 0;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

lua_State *sandbox_new(sandbox *sb, size_t cap, const char *who)
{
    static const luaL_Reg libs[] = {
        { LUA_GNAME, luaopen_base }, { LUA_MATHLIBNAME, luaopen_math },
        { LUA_STRLIBNAME, luaopen_string }, { LUA_TABLIBNAME, luaopen_table },
        { LUA_UTF8LIBNAME, luaopen_utf8 } };
    /* Base functions that reach files, load code or write to the terminal. */
    static const char *const unsafe[] = { "dofile", "loadfile", "load", "require", "print",
                                          "collectgarbage" };
    *sb = (sandbox){ .cap = cap, .max_hooks = (long long)1 << 62, .who = who };
    lua_State *L = lua_newstate(sandbox_alloc, sb);
    if (!L) return NULL;
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, unsafe[i]);
    }
    return L;
}
