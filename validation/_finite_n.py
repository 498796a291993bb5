"""Finite-N measurements used as independent checks of the order-parameter ODEs.

Nothing here imports a result from :mod:`perceptron_theory.theory.dynamics`: the
one-step drift is measured by applying the actual SGD update of Luo et al. eq. (5)
to N-dimensional weights and averaging over fresh inputs.
"""

from __future__ import annotations

import numpy as np

from perceptron_theory.theory.integrals import activation_function


def gaussian_moments(activation: str, Q: float, R: float, n: int, rng) -> dict:
    """Monte Carlo means and standard errors of I1, I2, I3, eps at ``(Q, R)``."""
    g, dg = activation_function(activation)
    u, z = rng.standard_normal((2, n))
    s, t = Q * u, R * u + np.sqrt(max(1.0 - R * R, 0.0)) * z
    d = dg(s) * (g(t) - g(s))
    out = {}
    for name, v in (("I1", d * s), ("I2", d * d), ("I3", d * t), ("eps", (g(t) - g(s)) ** 2)):
        out[name] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(n)))
    return out


def _weights(N: int, R: float, L: float, rng):
    """Teacher ``w*`` (|w*|^2 = N) and raw student ``w`` (|w| = L sqrt N, overlap R)."""
    a, b = rng.standard_normal((2, N))
    e1 = a / np.linalg.norm(a)
    b -= (b @ e1) * e1
    e2 = b / np.linalg.norm(b)
    w_star = np.sqrt(N) * e1
    w = L * np.sqrt(N) * (R * e1 + np.sqrt(1.0 - R * R) * e2)
    return w_star, w


def one_step_drift(method: str, activation: str, lr: float, zeta: float, point, N: int,
                   n_samples: int, seed: int = 0, chunk: int = 2000) -> dict:
    """N times the mean one-step change of the order parameters, with standard errors.

    ``point`` is ``(gamma, R, L)`` for ``"wn-decay"``/``"wn"`` and ``(Q, R)`` for ``"sgd"``.
    Each sample applies one SGD step from the same weights with a fresh
    ``x ~ N(0, I/N)``; the order parameters after the step are computed exactly.
    Returns ``{"gamma"|"Q": (mean, se), "R": ..., "L": ...}`` in units of d/dt (t = j/N).
    """
    rng = np.random.default_rng(seed)
    g_act, dg_act = activation_function(activation)
    if method == "sgd":
        Q0, R0 = point
        gamma0, L0 = Q0, Q0
    else:
        gamma0, R0, L0 = point
    w_star, w = _weights(N, R0, L0, rng)  # for sgd L0 = Q0, so |w| = Q sqrt N
    acc = {k: [] for k in ("gamma", "R", "L")}
    done = 0
    while done < n_samples:
        m = min(chunk, n_samples - done)
        X = rng.standard_normal((m, N)) / np.sqrt(N)
        t = X @ w_star
        if method == "sgd":
            s = X @ w
            delta = dg_act(s) * (g_act(t) - g_act(s))
            W = w[None, :] + lr * delta[:, None] * X
            norms = np.linalg.norm(W, axis=1)
            new_g = norms / np.sqrt(N)
            new_L = new_g
            new_R = (W @ w_star) / (norms * np.sqrt(N))
        else:
            nw = np.linalg.norm(w)
            u = w / nw
            ux = X @ u
            s = gamma0 * np.sqrt(N) * ux
            delta = dg_act(s) * (g_act(t) - g_act(s))
            Xperp = X - ux[:, None] * u[None, :]
            W = w[None, :] + lr * delta[:, None] * (gamma0 / L0) * Xperp
            norms = np.linalg.norm(W, axis=1)
            new_L = norms / np.sqrt(N)
            new_R = (W @ w_star) / (norms * np.sqrt(N))
            new_g = gamma0 + (lr / N) * (delta * s / gamma0 - zeta * gamma0)
        acc["gamma"].append(N * (new_g - gamma0))
        acc["R"].append(N * (new_R - R0))
        acc["L"].append(N * (new_L - L0))
        done += m
    out = {}
    for k, v in acc.items():
        v = np.concatenate(v)
        out[k] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)))
    return out
