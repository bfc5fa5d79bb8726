/* Internals shared by the plugin catalogue (plugin.c), the run host (plugin_host.c) and the
 * Lua tensor type (plugin_tensor.c). Not part of the API: lua/plugin.h is. */
#ifndef HASTEN_PLUGIN_PRIV_H
#define HASTEN_PLUGIN_PRIV_H

#include <lua.h>
#include "lua/plugin.h"
#include "lua/sandbox.h"

#define RUN_MEM     (256u << 20)
#define PLUG_POOL   8          /* device buffers kept for reuse by plugin-owned tensors */
#define CALL_INSTR  50000000LL   /* per handler call */
#define CALL_SECS   1.0
#define TENSOR_MT   "hasten.tensor"


typedef struct instance {
    const plug_info *info;
    int table_ref, params_ref;
    int handler[EV_COUNT];   /* registry refs, LUA_NOREF when absent */
} instance;

struct plug_host {
    trainer *t;
    lua_State *L;
    sandbox sb;
    int n;
    instance inst[CONFIG_MAX_PLUGINS];
    int ctx_ref, traceback_ref;
    const instance *current;   /* the instance being called, for ctx:log */
    trainer_event event;
    rng rng;
    tensor loss_inputs;        /* (B + B K) the weights and targets before the after_loss handlers (CPU) */
    tensor scores;             /* (B) ctx:score() output */
    tensor centring;           /* t:center_rows_'s scratch, on the device of the last tensor centred */
    tensor images;             /* batch:resize and batch:colout's output, on the batch's device,
                                * kept between steps: no allocation (on a GPU, no wait) per step */
    tensor pool[PLUG_POOL];    /* device buffers of collected plugin tensors, for the next ones;
                                * together at most RUN_MEM */
    int n_pool;
    int model_generation;      /* bumped when ctx.model:insert rebuilds the model */
    nn_model *teacher;         /* ctx:teacher's model, on the run's device; NULL = none */
    plug_log_fn log;
    void *log_ud;
};

/* A tensor as Lua sees it: a view of an engine tensor (t points into the trainer or model) or
 * a tensor the plugin owns (t == &own). */
typedef struct ltensor {
    tensor *t;
    tensor own;
    plug_host *host;
    enum { VIEW_FIXED, VIEW_WEIGHTS, VIEW_GRADS, VIEW_STATS, VIEW_PARAM } kind;   /* what a view follows */
    int generation;       /* VIEW_PARAM: the model generation it was made in */
} ltensor;


/* The global `hasten` with hasten.plugin (plugin.c). */
void plug_open_hasten(lua_State *L);
/* Runs a plugin file or source in L, leaving its table on the stack; -1 with err on failure. */
int plug_load_chunk(lua_State *L, sandbox *sb, const char *path, const char *source, const char *name,
                    char *err, size_t errlen);
/* Checks ps against info; with L, pushes the typed parameter table. 0 or -1 with err. */
int plug_typed_params(lua_State *L, const plug_info *info, const plugin_spec *ps, char *err, size_t errlen);
/* The data set as a message names it: its registry name, or for "text" (a file of one's own) the
 * file's name. Points into ds. */
const char *plug_data_label(const data_set *ds);

/* The tensor type (plugin_tensor.c): hasten.zeros and the metatable; views and owned tensors. */
void plug_open_tensors(lua_State *L, plug_host *h);
plug_host *plug_host_of(lua_State *L);           /* upvalue 1 of every host function */
ltensor *plug_check_tensor(lua_State *L, int i);
void plug_push_view(lua_State *L, plug_host *h, tensor *t);
/* A view of model memory: the flat weights or grads (followed across model rebuilds), or one
 * parameter tensor (an error to use after a rebuild). */
void plug_push_model_view(lua_State *L, plug_host *h, tensor *t, int kind);
/* A new zeroed tensor on dev, owned by Lua and charged to the plugin memory cap. */
ltensor *plug_push_owned(lua_State *L, plug_host *h, device_kind dev, int ndim, const int *shape);
/* An index tensor (0-based rows < rows) as a malloc'd int array of *count entries. */
int *plug_index_list(lua_State *L, int i, int rows, int *count);

#endif
