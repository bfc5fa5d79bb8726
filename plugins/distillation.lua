-- Knowledge distillation: a finished run's model (its run folder: recipe.lua and weights.bin) is
-- the teacher; each step the targets become a blend of the labels and the teacher's softened
-- predictions on the same inputs. The student's loss is cross-entropy against those soft targets
-- at temperature 1. This departs from Hinton et al., who soften the student at T too and scale
-- that soft loss by T^2: the trainer has one loss, a softmax at temperature 1, so the student
-- cannot be softened, and with an unsoftened student the soft term's gradient (q - p_T) does not
-- shrink as 1/T^2, so a T^2 factor would overweight it; `weight` is its share as it stands. The
-- student is pulled towards the teacher's logits over T (the same ranking, less confident).
-- The teacher's forward pass is on the training clock, and the teacher's own training time is
-- not: compare against runs that count it if it matters.
return hasten.plugin {
  name = "distillation", title = "Distillation",
  summary = "Blend the targets with a saved teacher run's softened predictions.",
  reference = "Hinton, Vinyals, Dean 2015, arXiv:1503.02531",
  taxonomy = { component = "optimization", action = "retrofit", when = "every step" },
  params = {
    teacher = { default = "", required = true, doc = "the teacher's run folder (e.g. runs/20261127-140000-fmnist_cnn-s1)" },
    temperature = { default = 4, min = 0.1, max = 100, doc = "softens the teacher's predictions" },
    weight = { default = 0.5, min = 0, max = 1, doc = "share of the teacher in the targets" },
  },
  fit_start = function(ctx, p)
    ctx:teacher(p.teacher)
    ctx:log("teacher: " .. p.teacher)
  end,
  before_loss = function(ctx, p)
    ctx.batch.targets:lerp_(ctx:teacher_probs(p.temperature), p.weight)
  end,
}
