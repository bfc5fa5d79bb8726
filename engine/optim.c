/* Parameter updates and learning-rate schedules. The update loops live in the op table (one
 * call per step updates every tensor: a single fused launch on a GPU). */
#include "engine/optim.h"
#include "engine/check.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void optim_init(optim *o, const optim_spec *spec, nn_model *m)
{
    memset(o, 0, sizeof *o);
    o->spec = *spec;
    float mom = spec->kind == OPTIM_ADAMW ? spec->beta1 : spec->momentum;
    o->groups[OPTIM_GROUP_DECAY] = (optim_group){ "decay", spec->lr, 1, mom, spec->weight_decay };
    o->groups[OPTIM_GROUP_NO_DECAY] = (optim_group){ "no_decay", spec->lr, 1, mom,
                                                     spec->decay_all ? spec->weight_decay : 0 };
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = m->params[i];
        p->m.device = p->v.device = p->w.device;
        tensor_resize(&p->m, p->w.ndim, p->w.shape);
        tensor_zero(&p->m);
        if (spec->kind == OPTIM_ADAMW) {
            tensor_resize(&p->v, p->w.ndim, p->w.shape);
            tensor_zero(&p->v);
        }
    }
}

int optim_group_of(const optim *o, const nn_param *p)
{
    return p->no_decay ? OPTIM_GROUP_NO_DECAY : OPTIM_GROUP_DECAY;
}

/* The update of one parameter from its group's settings. */
static ops_update update_of(const optim *o, const optim_group *g, nn_param *p)
{
    ops_update u = { .w = p->w.data, .g = p->g.data, .m = p->m.data, .v = p->v.data, .n = p->w.n,
                     .lr = g->lr, .mu = g->momentum, .shrink = 1 - g->lr * g->weight_decay };
    if (o->spec.kind == OPTIM_ADAMW) {
        float c1 = 1 - powf(g->momentum, (float)o->t), c2 = 1 - powf(o->spec.beta2, (float)o->t);
        u.step = g->lr / c1;
        u.rc2 = 1 / sqrtf(c2);
    }
    return u;
}

void optim_step(optim *o, nn_model *m)
{
    enum { STACK = 64 };
    ops_update stack[STACK], *u = m->n_params <= STACK ? stack : malloc((size_t)m->n_params * sizeof *u);
    CHECK(u, "out of memory");
    int count = 0;
    o->t++;
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = m->params[i];
        if (!p->frozen) u[count++] = update_of(o, &o->groups[optim_group_of(o, p)], p);
    }
    if (o->spec.kind == OPTIM_ADAMW) m->ops->adamw_update(u, count, o->spec.beta2, o->spec.eps);
    else m->ops->sgd_update(u, count, o->spec.nesterov);
    if (u != stack) free(u);
}

float sched_factor(const sched_spec *s, double p)
{
    if (p < 0) p = 0;
    if (p > 1) p = 1;
    double f, lo = s->final_frac;
    switch (s->kind) {
    case SCHED_LINEAR_DECAY: f = lo + (1 - lo) * (1 - p); break;
    case SCHED_COSINE:       f = lo + (1 - lo) * 0.5 * (1 + cos(M_PI * p)); break;
    case SCHED_ONE_CYCLE: {
        /* Rise from 1 to peak over pct_up, then cosine down to final. */
        double up = s->pct_up > 0 ? s->pct_up : 0.25, peak = s->peak > 0 ? s->peak : 10;
        if (p < up) f = 1 + (peak - 1) * p / up;
        else f = lo + (peak - lo) * 0.5 * (1 + cos(M_PI * (p - up) / (1 - up)));
        break;
    }
    default: f = 1; break;
    }
    if (s->warmup > 0 && p < s->warmup) f *= p / s->warmup;
    return (float)f;
}
