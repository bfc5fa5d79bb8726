/* Parameter updates and learning-rate schedules. The update loops are single pass per tensor. */
#include "engine/optim.h"
#include <math.h>
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

static void sgd_update(const optim *o, const optim_group *g, nn_param *p)
{
    float lr = g->lr, mu = g->momentum, shrink = 1 - lr * g->weight_decay;
    float *w = p->w.data, *grad = p->g.data, *v = p->m.data;
    size_t n = p->w.n;
    if (o->spec.nesterov) {
        for (size_t i = 0; i < n; i++) {
            v[i] = mu * v[i] + grad[i];
            w[i] = w[i] * shrink - lr * (grad[i] + mu * v[i]);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            v[i] = mu * v[i] + grad[i];
            w[i] = w[i] * shrink - lr * v[i];
        }
    }
}

static void adamw_update(const optim *o, const optim_group *g, nn_param *p)
{
    float b1 = g->momentum, b2 = o->spec.beta2, eps = o->spec.eps;
    float c1 = 1 - powf(b1, (float)o->t), c2 = 1 - powf(b2, (float)o->t);
    float lr = g->lr, shrink = 1 - lr * g->weight_decay, step = lr / c1, rc2 = 1 / sqrtf(c2);
    float *w = p->w.data, *grad = p->g.data, *m = p->m.data, *v = p->v.data;
    for (size_t i = 0; i < p->w.n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * grad[i];
        v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
        w[i] = w[i] * shrink - step * m[i] / (sqrtf(v[i]) * rc2 + eps);
    }
}

void optim_step(optim *o, nn_model *m)
{
    o->t++;
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = m->params[i];
        if (p->frozen) continue;
        const optim_group *g = &o->groups[optim_group_of(o, p)];
        if (o->spec.kind == OPTIM_ADAMW) adamw_update(o, g, p);
        else sgd_update(o, g, p);
    }
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
