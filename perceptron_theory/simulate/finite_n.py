r"""Exact training at finite N: the minimizers that finite-N SGD and the theory are
compared with (numpy / scipy; no SGD).

Teacher-student data of :mod:`perceptron_theory.theory.generalization`'s conventions:
inputs :math:`x \sim N(0, I/N)` (rows of ``X``, shape ``(P, N)``), teacher :math:`w^*`
uniform on the sphere of radius :math:`\sqrt N`, labels :math:`y = w^*\cdot x +
\sqrt S\,\xi`; training loss :math:`\frac12\sum_p (y_p - g(w\cdot x_p))^2 +
\frac\zeta2|w|^2` (sum convention).

* Linear student: :func:`ridge_fit` (``zeta = 0``: the min-norm least-squares solution),
  :func:`centred_least_squares` (with an unpenalized intercept, as offline BN converges
  to).
* ReLU student: :func:`relu_min_norm_interpolator`, the min-norm global minimizer of the
  training loss without decay (least-distance programming, :func:`least_distance`);
  :func:`active_set_relu`, an exact local minimum with decay (active-set Newton);
  :func:`train_relu`, basin hopping over such minima ("exhaustive training");
  :func:`relu_loss` for gradient-based minimizers.

>>> import numpy as np
>>> from perceptron_theory.simulate import finite_n
>>> X, y, w_star = finite_n.teacher_data(50, 0.5, 0.0, np.random.default_rng(0))
>>> w = finite_n.relu_min_norm_interpolator(X, y)
>>> bool(np.allclose(X[y > 0] @ w, y[y > 0])), bool(np.all(X[y <= 0] @ w <= 1e-8))
(True, True)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import nnls

__all__ = ["teacher_data", "ridge_fit", "centred_least_squares", "relu_loss", "relu_energy",
           "least_distance", "relu_min_norm_interpolator", "active_set_relu", "train_relu"]


def teacher_data(N: int, alpha: float, noise: float, rng):
    """``X`` (P x N, rows ~ N(0, I/N)), labels ``y = X w* + sqrt(S) xi``, teacher ``w*``."""
    P = max(1, int(round(alpha * N)))
    X = rng.standard_normal((P, N)) / math.sqrt(N)
    w_star = rng.standard_normal(N)
    w_star *= math.sqrt(N) / np.linalg.norm(w_star)
    y = X @ w_star + math.sqrt(noise) * rng.standard_normal(P)
    return X, y, w_star


def ridge_fit(X, y, zeta: float):
    """Ridge regression ``argmin 1/2 |y - X w|^2 + zeta/2 |w|^2``; min-norm least squares at 0.

    ``zeta = 0``: :func:`numpy.linalg.lstsq`; otherwise a Cholesky solve in the smaller of the
    two Gram matrices (``X X^T`` when ``P < N``, else ``X^T X``).
    """
    P, N = X.shape
    if zeta == 0.0:
        return np.linalg.lstsq(X, y, rcond=None)[0]
    if P < N:
        return X.T @ cho_solve(cho_factor(X @ X.T + zeta * np.eye(P)), y)
    return cho_solve(cho_factor(X.T @ X + zeta * np.eye(N)), X.T @ y)


def centred_least_squares(X, y):
    """Min-norm least squares with an unpenalized intercept, and the projector on its rows.

    Minimizes ``|y - ybar - (X - xbar) v|`` (min-norm ``v``); for ``P - 1 < N`` the solution
    interpolates the differences ``(x_p - x_P).v = y_p - y_P``, whose rows span the centred
    rows. Returns ``(v, proj)`` with ``proj(u)`` the projection of ``u`` on that row space
    (the identity when the centred rows span :math:`R^N`).
    """
    P, N = X.shape
    if P - 1 < N:
        K = X @ X.T  # shape=(P, P)
        KD = K[:-1, :-1] - K[:-1, -1:] - K[-1:, :-1] + K[-1, -1]  # D D^T
        D = X[:-1] - X[-1]
        cf = cho_factor(KD)
        v = D.T @ cho_solve(cf, y[:-1] - y[-1])
        return v, lambda u: D.T @ cho_solve(cf, D @ u)
    xb = X.mean(axis=0)
    v = cho_solve(cho_factor(X.T @ X - P * np.outer(xb, xb)), X.T @ y - P * xb * y.mean())
    return v, lambda u: u

def relu_loss(w, X, y):
    """Training loss 1/2 sum_p (y_p - relu(w.x_p))^2 and its gradient in w (for L-BFGS)."""
    s = X @ w
    r = y - np.maximum(s, 0.0)
    return 0.5 * float(r @ r), -(X.T @ (r * (s > 0)))


def relu_energy(X, y, w, zeta: float) -> float:
    """:math:`\\frac12\\sum_p(y_p - \\mathrm{relu}(w\\cdot x_p))^2 + \\frac\\zeta2|w|^2`."""
    r = y - np.maximum(X @ w, 0.0)
    return 0.5 * float(r @ r) + 0.5 * zeta * float(w @ w)


def least_distance(G, h):
    """``argmin |v|`` subject to ``G v >= h`` (Lawson & Hanson, ch. 23, via NNLS); None if empty."""
    m, n = G.shape
    if m == 0:
        return np.zeros(n)
    E = np.vstack([G.T, h[None, :]])
    f = np.zeros(n + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * max(m, n))
    r = E @ u - f
    if abs(r[-1]) < 1e-10:
        return None
    return -r[:n] / r[-1]


def relu_min_norm_interpolator(X, y):
    """Min-norm w with relu(w.x_p) = y_p (y_p > 0) and w.x_p <= 0 (y_p <= 0), or None.

    These are exactly the w reaching the smallest possible training loss
    ``1/2 sum_{y_p <= 0} y_p^2`` of ``1/2 sum_p (y_p - relu(w.x_p))^2``.
    """
    pos = y > 0
    A, B = X[pos], X[~pos]
    U, s, Vt = np.linalg.svd(A, full_matrices=True)
    r = int(np.sum(s > 1e-10 * s[0]))
    if r < A.shape[0]:
        return None  # more positive samples than dimensions: no exact fit
    w0 = Vt[:r].T @ ((U[:, :r].T @ y[pos]) / s[:r])
    Z = Vt[r:].T
    v = least_distance(-(B @ Z), B @ w0)
    if v is None:
        return None
    w = w0 + Z @ v
    return w if np.all(B @ w <= 1e-8) else None


def active_set_relu(X, y, zeta: float, w0, max_iter: int = 200):
    """Exact local minimum of the ReLU energy by an active-set Newton method from ``w0``.

    Sets: ``A`` (quadratic patterns: ``w.x > 0``), ``Z`` (``y <= 0`` patterns pinned at
    ``w.x = 0``, multiplier ``lam`` in ``[0, |y|]``); every other pattern is inactive. Each
    step solves ``min sum_A (y - w.x)^2/2 + zeta |w|^2/2`` s.t. ``w.x = 0`` on ``Z``
    (Cholesky + Schur complement) and moves patterns whose sign or multiplier is wrong.
    Returns ``(w, kkt)``; ``kkt`` is False on a cycle or after ``max_iter`` steps.
    """
    P, N = X.shape
    neg = y <= 0
    s = X @ w0
    A = s > 0
    Z = np.zeros(P, dtype=bool)
    ridge = max(zeta, 1e-12)
    seen = set()
    w = w0
    for _ in range(max_iter):
        key = (A.tobytes(), Z.tobytes())
        if key in seen:
            return w, False
        seen.add(key)
        XA = X[A]
        cf = cho_factor(XA.T @ XA + ridge * np.eye(N))
        Hb = cho_solve(cf, XA.T @ y[A])
        if Z.any():
            XZ = X[Z]
            HZ = cho_solve(cf, XZ.T)
            lam = np.linalg.solve(XZ @ HZ, XZ @ Hb)
            w = Hb - HZ @ lam
        else:
            lam = np.zeros(0)
            w = Hb
        s = X @ w
        tiny = 1e-12 * max(1.0, float(np.abs(s).max()))
        A_new, Z_new = A.copy(), Z.copy()
        pos = ~neg
        A_new[pos & A & (s <= 0)] = False  # alive positive pattern died
        A_new[pos & ~A & (s > tiny)] = True  # dead positive pattern revived
        m = neg & A & (s <= tiny)  # negative pattern pulled through 0: pin it
        A_new[m], Z_new[m] = False, True
        Z_new[neg & ~A & ~Z & (s > tiny)] = True  # inactive negative pattern crossed 0
        if Z.any():
            idx = np.flatnonzero(Z)
            lo = lam < -1e-12
            hi = lam > np.abs(y[idx]) + 1e-12
            Z_new[idx[lo | hi]] = False
            A_new[idx[hi]] = True
        if (A_new == A).all() and (Z_new == Z).all():
            return w, True
        A, Z = A_new, Z_new
    return w, False


def train_relu(X, y, zeta: float, n_init: int, rng):
    """Lowest-energy local minimum found by basin hopping over ``n_init`` starts.

    The first start is the ridge fit of a linear model; each later one perturbs the best
    minimum so far (Gaussian kicks of size 0.3 and 1.0 per coordinate, alternating). The
    landscape has many near-degenerate minima whose test errors differ by a few percent;
    at N = 200 the mean error of the best minimum settles after about 8 starts (checked
    up to 32; the ridge-fit minimum alone is biased low by ~0.01).
    Returns ``(w, info)`` with the energies of all starts and the fraction of starts that
    reached a KKT point.
    """
    N = X.shape[1]
    w_fit = np.linalg.solve(X.T @ X + (zeta + 1e-3) * np.eye(N), X.T @ y)
    best, energies, kkts = None, [], []
    for k in range(n_init):
        w0 = w_fit if best is None else best[0] + (0.3, 1.0)[k % 2] * rng.standard_normal(N)
        w, kkt = active_set_relu(X, y, zeta, w0)
        e = relu_energy(X, y, w, zeta)
        energies.append(e / N)
        kkts.append(kkt)
        if kkt and (best is None or e < best[1]):
            best = (w, e)
    if best is None:
        return None, {"energies": energies, "kkt_fraction": 0.0}
    return best[0], {"energies": energies, "kkt_fraction": float(np.mean(kkts))}
