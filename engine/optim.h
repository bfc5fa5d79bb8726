/* Optimizers (SGD with momentum/Nesterov, AdamW; decoupled weight decay) over parameter groups,
 * and budget-driven learning-rate schedules. Not for choosing what to train: frozen parameters
 * are skipped, and plugins change group settings between steps. */
#ifndef HASTEN_OPTIM_H
#define HASTEN_OPTIM_H

#include "engine/config.h"
#include "engine/nn.h"

enum { OPTIM_GROUP_DECAY, OPTIM_GROUP_NO_DECAY, OPTIM_GROUPS };

typedef struct optim_group {
    const char *name;    /* "decay" (weights) or "no_decay" (biases, norm parameters) */
    float lr;            /* set each step by the schedule, then open to plugins */
    float lr_scale;      /* multiplies the scheduled lr (default 1) */
    float momentum;      /* sgd momentum, adamw beta1 */
    float weight_decay;  /* decoupled: w -= lr * wd * w */
} optim_group;

typedef struct optim {
    optim_spec spec;
    optim_group groups[OPTIM_GROUPS];
    long t;              /* steps taken (adamw bias correction) */
} optim;

/* Sets up groups from spec: the decay group gets spec.weight_decay, the no_decay group 0 (unless
 * spec.decay_all). Allocates the state tensors of m's parameters. */
void optim_init(optim *o, const optim_spec *spec, nn_model *m);

/* Group of a parameter. */
int optim_group_of(const optim *o, const nn_param *p);

/* One update of every unfrozen parameter from its gradient. */
void optim_step(optim *o, nn_model *m);

/* Learning-rate multiplier at progress p in [0, 1] of the budget. */
float sched_factor(const sched_spec *s, double p);

#endif
