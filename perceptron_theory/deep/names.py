"""The deep arm's registry names, torch-free, for the command line.

``perceptron-theory train`` and ``probe`` list their choices without loading torch;
the registries themselves live in the torch modules. ``tests/test_cli.py`` checks
that each table here equals its registry:

==================  ===================================================
name table          registry
==================  ===================================================
:data:`NORMS`       :func:`perceptron_theory.deep.norms.norm_names`
:data:`MODELS`      :data:`perceptron_theory.deep.models.MODELS`
:data:`DATASETS`    :data:`perceptron_theory.deep.data.DATASETS`
:data:`SCHEDULES`   :data:`perceptron_theory.deep.train.SCHEDULES`
:data:`PENALTIES`   :data:`perceptron_theory.deep.penalties.PENALTIES`
:data:`PROBES`      :data:`perceptron_theory.deep.probes.PROBES`
==================  ===================================================

>>> from perceptron_theory.deep import names
>>> "wn+bn-mean" in names.NORMS, names.SCHEDULES[-1]
(True, 'luo')
"""

__all__ = ["NORMS", "MODELS", "DATASETS", "SCHEDULES", "PENALTIES", "PROBES"]

NORMS = ("none", "bn", "bn-train", "ghost-bn", "batch-renorm", "pn", "wn", "bn-mean", "bn-var",
         "ln", "gn", "in", "bmlv", "lmbv", "pre-ln", "regnorm", "pre-regnorm", "wn+bn",
         "wn+bn-mean", "wn+bn-var")
MODELS = ("cnn", "resnet18", "wrn", "mlp", "deep-fc")
DATASETS = ("fashion-mnist", "cifar10", "synthetic", "auto")
SCHEDULES = ("constant", "step", "cosine", "luo")
PENALTIES = ("weight-decay", "gamma-decay", "embedding-l2", "functional-l2", "standardization",
             "regnorm-mean")
PROBES = ("norms", "dropout", "propagation", "hessian", "bn-finetune", "test-batch-size")
