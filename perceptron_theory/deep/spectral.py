r"""Eigenvalues of a symmetric operator known only through products :math:`v \mapsto Hv`.

The operator is anything with ``dim`` (its size) and ``matvec`` (flat torch tensor in,
flat tensor out), e.g. :class:`~perceptron_theory.deep.probes.HessianOperator`.

* :func:`top_eigenvalues`: the largest eigenvalues by ARPACK's implicitly restarted
  Lanczos (``scipy.sparse.linalg.eigsh``); dense for tiny operators.
* :func:`lanczos`: the tridiagonal :math:`T_m` of :math:`m` Lanczos steps with full
  reorthogonalization.
* :func:`slq_density`: the eigenvalue density by stochastic Lanczos quadrature (Ubaru,
  Chen & Saad 2017; Ghorbani, Krishnan & Xiao 2019), a :class:`SpectralDensity`;
  :func:`broadened_density` is its Gaussian smoothing.

Examples
--------
>>> import torch
>>> class Diagonal:  # H = diag(1, ..., 30)
...     dim = 30
...     def matvec(self, v):
...         return torch.arange(1.0, 31.0, dtype=torch.float64) * v
>>> top_eigenvalues(Diagonal(), 3, tol=0.0).round(8)
array([30., 29., 28.])
>>> dens = slq_density(Diagonal(), steps=10, vectors=2)
>>> round(dens.moment(1), 10), round(dens.moment(2), 6)  # tr H / p = 15.5, tr H^2 / p
(15.5, 315.166667)
>>> round(dens.integral(), 6)
1.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_int, check_real

__all__ = ["SpectralDensity", "as_linear_operator", "broadened_density", "lanczos",
           "slq_density", "top_eigenvalues"]

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def as_linear_operator(op):
    """``op`` as a ``scipy.sparse.linalg.LinearOperator`` in float64 (ARPACK's side).

    Parameters
    ----------
    op : object
        Anything with ``dim`` and ``matvec`` on flat torch tensors.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
    """
    from scipy.sparse.linalg import LinearOperator

    def mv(v):
        t = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1))
        return op.matvec(t).double().cpu().numpy()

    return LinearOperator((op.dim, op.dim), matvec=mv, dtype=np.float64)


def _dense(op) -> torch.Tensor:
    """The symmetrized ``(dim, dim)`` matrix of ``op`` (its ``dense()`` when it has one)."""
    if callable(getattr(op, "dense", None)):
        return op.dense()
    H = torch.stack([op.matvec(e) for e in torch.eye(op.dim, dtype=torch.float64)], 1)
    return 0.5 * (H + H.T)


def _json(obj):
    """Arrays and floats as JSON-ready lists and floats (non-finite -> None)."""
    if isinstance(obj, np.ndarray):
        return _json(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_json(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def top_eigenvalues(op, k: int = 10, *, tol: float = 1e-3,
                    ncv: int | None = None, seed: int = 0, which: str = "LA") -> np.ndarray:
    r"""The ``k`` largest (algebraic) eigenvalues of ``op`` (a Hessian), descending.

    ARPACK's implicitly restarted Lanczos (``scipy.sparse.linalg.eigsh``) on
    :func:`as_linear_operator` of ``op`` (float64 vectors), start vector from ``seed``.
    ``tol`` is eigsh's relative accuracy of the Ritz values (0 = machine precision).
    Operators with ``dim <= k + 1`` are made dense (``op.dense()`` when it has one).

    Parameters
    ----------
    op : object
        Anything with ``dim`` and ``matvec`` (e.g. a ``probes.HessianOperator``).
    k : int
        Number of eigenvalues (>= 1).
    tol : float
        Relative tolerance (>= 0).
    ncv : int, optional
        Lanczos basis size (eigsh's default ``max(2k + 1, 20)``).
    seed : int
        Seed of the start vector.
    which : {"LA", "LM"}
        Largest algebraic (default) or largest magnitude.

    Returns
    -------
    numpy.ndarray, shape (k,)
    """
    from scipy.sparse.linalg import eigsh

    k = check_int("k", k, 1)
    tol = check_real("tol", tol, 0.0)
    seed = check_int("seed", seed, 0)
    which = check_choice("which", which, ("LA", "LM"))
    if op.dim <= k + 1:
        w = torch.linalg.eigvalsh(_dense(op).double().cpu()).numpy()
        top = w[-k:] if which == "LA" else w[np.argsort(-np.abs(w))[:k]]
        return np.sort(top)[::-1].copy()
    v0 = np.random.default_rng(seed).standard_normal(op.dim)
    ncv = None if ncv is None else check_int("ncv", ncv, k + 2, op.dim)
    if ncv is None:
        ncv = min(op.dim, max(2 * k + 1, 20))
    w = eigsh(as_linear_operator(op), k=k, which=which, tol=tol, v0=v0, ncv=ncv,
              return_eigenvectors=False)
    return np.sort(w)[::-1]


def lanczos(matvec: Callable[[np.ndarray], np.ndarray], dim: int, steps: int,
            v0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``steps`` Lanczos iterations with full reorthogonalization; the tridiagonal of H.

    From :math:`q_1 = v_0/\lVert v_0\rVert`: :math:`w = Hq_j - \beta_{j-1}q_{j-1}`,
    :math:`\alpha_j = q_j^\top w`, :math:`w \leftarrow w - \alpha_j q_j`, then ``w`` is
    orthogonalized against every previous :math:`q` twice (classical Gram-Schmidt
    repeated: keeps :math:`Q^\top Q = I` to rounding, Ghorbani et al. 2019),
    :math:`\beta_j = \lVert w\rVert`, :math:`q_{j+1} = w/\beta_j`. Stops early at an
    invariant subspace (:math:`\beta_j \le 10^{-10}\max|\alpha|`, then ``len(alpha) <
    steps``). Everything in float64; the basis takes ``steps * dim * 8`` bytes.

    Parameters
    ----------
    matvec : callable
        ``v -> H v`` on float64 vectors of ``dim`` entries.
    dim : int
        Dimension.
    steps : int
        Iterations :math:`m` (>= 1; capped at ``dim``).
    v0 : numpy.ndarray
        Start vector (nonzero).

    Returns
    -------
    alpha : numpy.ndarray, shape (m,)
        Diagonal of :math:`T_m`.
    beta : numpy.ndarray, shape (m - 1,)
        Off-diagonal of :math:`T_m`.
    """
    steps = min(check_int("steps", steps, 1), int(dim))
    q = np.asarray(v0, dtype=np.float64).reshape(-1)
    nrm = np.linalg.norm(q)
    if q.size != dim or not nrm > 0:
        raise ValueError(f"v0 must be a nonzero vector of {dim} entries")
    Q = np.empty((steps, dim))
    Q[0] = q / nrm
    alpha, beta = [], []
    for j in range(steps):
        w = np.asarray(matvec(Q[j]), dtype=np.float64).reshape(-1)
        if j > 0:
            w -= beta[-1] * Q[j - 1]
        a = float(Q[j] @ w)
        alpha.append(a)
        w -= a * Q[j]
        for _ in range(2):
            w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        if j == steps - 1:
            break
        b = float(np.linalg.norm(w))
        if b <= 1e-10 * max(1.0, max(abs(t) for t in alpha)):
            break
        beta.append(b)
        Q[j + 1] = w / b
    return np.array(alpha), np.array(beta[:len(alpha) - 1])


@dataclass(frozen=True)
class SpectralDensity:
    r"""An eigenvalue density estimate: Gauss quadrature nodes/weights and their smoothing.

    Attributes
    ----------
    nodes : numpy.ndarray, shape (V, m)
        Ritz values :math:`\theta^{(l)}_j` of each start vector :math:`l` (NaN-padded
        when a run stopped early).
    weights : numpy.ndarray, shape (V, m)
        :math:`\tau^{(l)}_j = (U^{(l)}_{1j})^2`, summing to 1 per vector.
    grid : numpy.ndarray, shape (G,)
        Evaluation points :math:`t`.
    density : numpy.ndarray, shape (G,)
        :math:`\phi(t)`.
    sigma : float
        Gaussian broadening.
    """

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma: float

    def moment(self, k: int) -> float:
        r"""SLQ estimate of :math:`\frac1p \mathrm{tr}\, H^k`.

        For :math:`k \le 2m - 1` it equals the Hutchinson estimate
        :math:`\frac1V\sum_l v_l^\top H^k v_l` of the same vectors (Gauss quadrature).
        """
        return float(np.nansum(self.weights * self.nodes ** k, axis=1).mean())

    def integral(self) -> float:
        """:math:`\\int \\phi(t)\\,dt` on the grid (trapezoid; 1 up to the cut tails)."""
        return float(_trapezoid(self.density, self.grid))

    def to_dict(self) -> dict:
        """JSON-ready fields (non-finite entries -> None)."""
        return {k: _json(v) for k, v in dataclasses.asdict(self).items()}


def broadened_density(eigenvalues: np.ndarray, weights: np.ndarray | None, grid: np.ndarray,
                      sigma: float) -> np.ndarray:
    r"""Gaussian-broadened spectral density :math:`\sum_j w_j\, g_\sigma(t - \lambda_j)`.

    :math:`g_\sigma(t) = e^{-t^2/2\sigma^2}/(\sigma\sqrt{2\pi})`; ``weights`` default to
    :math:`1/p` each (the dense spectrum's density).

    Parameters
    ----------
    eigenvalues : numpy.ndarray
        Positions :math:`\lambda_j` (NaN entries ignored).
    weights : numpy.ndarray, optional
        Same shape; uniform when None.
    grid : numpy.ndarray
        Evaluation points.
    sigma : float
        Width (> 0).

    Returns
    -------
    numpy.ndarray, shape of ``grid``
    """
    sigma = check_real("sigma", sigma, 0.0, lo_open=True)
    lam = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    w = (np.full(lam.shape, 1.0 / lam.size) if weights is None
         else np.asarray(weights, dtype=np.float64).reshape(-1))
    ok = np.isfinite(lam)
    lam, w = lam[ok], w[ok]
    t = np.asarray(grid, dtype=np.float64)
    g = np.exp(-0.5 * ((t[:, None] - lam[None, :]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return g @ w


def slq_density(op, *, steps: int = 50, vectors: int = 1, grid_points: int = 256,
                broadening: float = 0.01, seed: int = 0) -> SpectralDensity:
    r"""Eigenvalue density of the Hessian by stochastic Lanczos quadrature.

    Ubaru, Chen & Saad (2017); Ghorbani, Krishnan & Xiao (2019, Sec. 3). For each of
    ``vectors`` Rademacher start vectors :math:`v_l` (:math:`\pm 1/\sqrt p`), ``steps``
    = :math:`m` Lanczos iterations (:func:`lanczos`) give :math:`T_m = U\,
    \mathrm{diag}(\theta)\, U^\top`; then :math:`v_l^\top f(H) v_l \approx \sum_j
    \tau_j f(\theta_j)`, :math:`\tau_j = U_{1j}^2` (Gauss quadrature, exact for
    polynomials of degree :math:`\le 2m-1`), and

    .. math::

        \phi(t) = \frac1V \sum_{l=1}^V \sum_{j=1}^m \tau^{(l)}_j\, g_\sigma(t -
        \theta^{(l)}_j), \qquad \int\phi = 1,

    an unbiased estimate of :math:`\frac1p\sum_i g_\sigma(t - \lambda_i)`. The width
    :math:`\sigma` = ``broadening`` times the spread of the nodes; the grid spans the
    nodes plus :math:`6\sigma` on each side.

    Parameters
    ----------
    op : object
        Anything with ``dim`` and ``matvec`` on flat torch tensors.
    steps : int
        Lanczos iterations per vector (>= 1; capped at ``dim``).
    vectors : int
        Number of start vectors (>= 1).
    grid_points : int
        Grid size (>= 2).
    broadening : float
        :math:`\sigma` relative to the spectral spread (> 0).
    seed : int
        Seed of the start vectors.

    Returns
    -------
    SpectralDensity
    """
    steps = check_int("steps", steps, 1)
    vectors = check_int("vectors", vectors, 1)
    grid_points = check_int("grid_points", grid_points, 2)
    broadening = check_real("broadening", broadening, 0.0, lo_open=True)
    seed = check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)

    def mv(v):
        return op.matvec(torch.from_numpy(v)).double().cpu().numpy()

    m = min(steps, op.dim)
    nodes = np.full((vectors, m), np.nan)
    weights = np.zeros((vectors, m))
    for v in range(vectors):
        v0 = rng.choice([-1.0, 1.0], size=op.dim) / math.sqrt(op.dim)
        alpha, beta = lanczos(mv, op.dim, m, v0)
        theta, U = np.linalg.eigh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
        nodes[v, :len(theta)] = theta
        weights[v, :len(theta)] = U[0] ** 2
    lo, hi = np.nanmin(nodes), np.nanmax(nodes)
    spread = hi - lo if hi > lo else max(abs(hi), 1.0)
    sigma = broadening * spread
    grid = np.linspace(lo - 6 * sigma, hi + 6 * sigma, grid_points)
    density = broadened_density(nodes, weights, grid, sigma) / vectors
    return SpectralDensity(nodes, weights, grid, density, float(sigma))
