"""Finite-N SGD simulations of the teacher-student models, compiled with numba.

Modules: :mod:`.data` (teachers, inputs, labels), :mod:`.kernels` (one update rule per
student), :mod:`.online` and :mod:`.offline` (runners returning order-parameter
trajectories; offline BN beside its WN + decay control), :mod:`.max_lr` (empirical
maximum stable learning rate), :mod:`.finite_n` (exact finite-N minimizers: ridge, the
ReLU min-norm interpolator, active-set ReLU minima; numpy/scipy). The kernels are
compiled on first use and cached on disk (``__pycache__``); the cache is invalidated
when any module of this package changes (:mod:`._cache`).
"""

from perceptron_theory.simulate import _cache

_cache.install()
