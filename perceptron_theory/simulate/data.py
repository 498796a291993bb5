r"""Teachers and data of the teacher-student model.

Inputs :math:`x \sim N(0, I/N)`, teacher :math:`w^*` uniform on the sphere of radius
:math:`\sqrt N` (so :math:`t = w^*\cdot x \sim N(0, 1)`), labels
:math:`y = g^*(t) + \sqrt S\,\xi` with :math:`g^*` linear, ReLU or
:math:`\mathrm{erf}(x/\sqrt2)`. The numba functions take a generator state from
:mod:`._rng` (deterministic per ``(seed, stream)``); the numpy functions are the same
draws for users outside the kernels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from perceptron_theory._checks import check_choice, check_int, check_real
from perceptron_theory.simulate import kernels as K
from perceptron_theory.simulate._rng import fill_normal, seed_state

__all__ = ["init_weights_vector", "fill_training_set", "teacher", "student_init",
           "training_set"]


@njit(cache=True)
def init_weights_vector(state, R, L, w_star, w, tmp):
    """Teacher ``w_star`` (|w*|^2 = N) and student ``w`` (|w| = L sqrt N, overlap R).

    All arrays shape=(N,); ``tmp`` is scratch.
    """
    N = w.shape[0]
    fill_normal(state, w_star, 1.0)
    w_star *= math.sqrt(N) / math.sqrt(np.dot(w_star, w_star))
    fill_normal(state, tmp, 1.0)
    tmp -= (np.dot(tmp, w_star) / N) * w_star
    tmp *= math.sqrt(N) / math.sqrt(np.dot(tmp, tmp))
    p = math.sqrt(max(1.0 - R * R, 0.0))
    for i in range(N):
        w[i] = L * (R * w_star[i] + p * tmp[i])


@njit(cache=True)
def fill_training_set(state, X, w_star, teacher, noise_std, y):
    """``X`` (shape=(P, N)) <- N(0, 1/N) entries; ``y`` (shape=(P,)) <- noisy teacher labels."""
    P, N = X.shape
    t = np.empty(P)
    for p in range(P):
        fill_normal(state, X[p], 1.0 / math.sqrt(N))
        t[p] = np.dot(X[p], w_star)
    K.labels(t, teacher, noise_std, state, y)


@njit(cache=True)
def _teacher_student(seed, N, R, L):
    state = seed_state(seed, 0)
    w_star, w, tmp = np.empty(N), np.empty(N), np.empty(N)
    init_weights_vector(state, R, L, w_star, w, tmp)
    return w_star, w


def teacher(N: int, seed: int = 0) -> np.ndarray:
    """The teacher of seed ``seed`` (shape=(N,), |w*|^2 = N), as the simulations draw it."""
    return _teacher_student(check_int("seed", seed, 0), check_int("N", N, 3), 0.0, 1.0)[0]


def student_init(N: int, seed: int = 0, *, R: float = 0.0, L: float = 1.0) -> np.ndarray:
    """The initial student of seed ``seed`` (shape=(N,)): overlap ``R``, |w| = L sqrt N."""
    return _teacher_student(check_int("seed", seed, 0), check_int("N", N, 3),
                            check_real("R", R, -1.0, 1.0), check_real("L", L, 0.0,
                                                                        lo_open=True))[1]


def training_set(N: int, P: int, *, teacher_activation: str = "linear", noise: float = 0.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, w_star)``: ``P`` samples of dimension ``N`` (X shape=(P, N)), as the offline
    simulations draw them for ``seed``."""
    N, P = check_int("N", N, 3), check_int("P", P, 1)
    code = K.ACTIVATION_CODES[check_choice("teacher_activation", teacher_activation,
                                           K.ACTIVATION_CODES)]
    noise = check_real("noise", noise, 0.0)
    w_star = teacher(N, seed)
    X, y = np.empty((P, N)), np.empty(P)
    fill_training_set(seed_state(seed, 1), X, w_star, code, math.sqrt(noise), y)
    return X, y, w_star
