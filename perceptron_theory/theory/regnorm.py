r"""RegNorm's batch-mean regularizer (Rao & Sohl-Dickstein 2020, eq. 3 and App. B).

Symbol map: ``x`` / ``zbar`` = a batch of layer outputs, shape ``(M, N)``: :math:`M` =
``batch_size`` samples :math:`a`, :math:`N = N_l` units :math:`i` (the paper's
:math:`(H, W, C)`, flattened); ``z`` = the pre-norm values, :math:`\bar z^a = z^a /
\sqrt{\frac1N\sum_i (z_i^a)^2 + \epsilon}` (:func:`normalize`, the RMS normalization of
``deep.norms.RegNorm``); per unit, the batch mean :math:`m_i = E_a x_i^a`, second moment
:math:`q_i = E_a (x_i^a)^2` and variance :math:`v_i = q_i - m_i^2` (biased). :math:`a, b`
are two uniform draws from the batch: independent (``pairs="independent"``, the reading
of ``deep.penalties.regnorm_mean``) or distinct (``pairs="distinct"``, :math:`a \ne b`).

.. math::

    r(x) = E_{a,b}\Big[\sum_i \big((x_i^a + x_i^b)^2 - 2\big)\Big]
         = \sum_i \big(2q_i + 2m_i^2 - 2\big) = \sum_i \big(2v_i + 4m_i^2 - 2\big)
         \quad\text{(independent)},

    r_{\ne}(x) = \sum_i\Big(2q_i + \frac{2(Mm_i^2 - q_i)}{M-1} - 2\Big)
         \quad\text{(distinct)}.

On normalized inputs with :math:`\epsilon = 0` every sample has
:math:`\sum_i(\bar z_i^a)^2 = N`, so :math:`\sum_i q_i = N` and

.. math::

    r(\bar z) = 2\sum_i m_i^2 \ge 0, \qquad
    r_{\ne}(\bar z) = \frac{2M\sum_i m_i^2 - 2N}{M-1},

both minimal exactly at zero batch mean of every unit (gradient :math:`4m`, Hessian
:math:`4I`; distinct: :math:`4M/(M-1)` times that); with :math:`\epsilon > 0` add
:math:`2(\sum_i q_i - N) = -2N E_a[\epsilon/(\mathrm{rms}_a^2 + \epsilon)]`.

Source: Rao & Sohl-Dickstein 2020, eq. 3 and App. B ("this regularizer has a unique
minimum when the mean of the activations across the batch is 0"); agrees with the
statement, but App. B's proof is wrong: it sets :math:`E_{a,b}[\bar z_i^a\bar z_i^b]
= E_a[(\bar z_i^a)^2]` (for independent draws it is :math:`m_i^2`; the difference is
:math:`-v_i`) and ends with :math:`r = 2\sum_i E_a[(\bar z_i^a)^2] = 2N`, a constant.

Which shift reaches the minimum. Shifting the *normalized* values, :math:`x \to \bar z +
c`, gives :math:`r = \sum_i(2v_i + 4(m_i + c_i)^2 - 2)`, minimal at :math:`c = -m`. A
model shifts the *pre-norm* values (a bias before the layer), :math:`z^a \to z^a + c`;
then :math:`m(c) = \frac{\sqrt N}{M}\sum_a u_a`, :math:`u_a = (z^a + c)/\lVert z^a +
c\rVert`, is :math:`\sqrt N/M` times the gradient of :math:`\sum_a\lVert z^a + c\rVert`,
so (:math:`\epsilon = 0`) :math:`r(c) = 2\lVert m(c)\rVert^2` reaches 0 exactly at
:math:`c^* = -\mathrm{geometric\ median}(z^1, \dots, z^M)` (the Fermat-Weber point; not
at minus the mean of :math:`z`), where its Hessian is :math:`4J^2`, :math:`J = \frac{\sqrt
N}{M}\sum_a (I - u_au_a^T)/\lVert z^a + c^*\rVert`, positive definite unless all
:math:`z^a + c^*` are collinear (:func:`minimizing_shift`).

Examples
--------
>>> import numpy as np
>>> from perceptron_theory.theory import regnorm
>>> x = np.array([[1.0, 0.0], [0.0, 1.0]])        # M = 2 samples, N = 2 units
>>> float(regnorm.regularizer(x))        # 2 sum m^2 + 2 (sum q - N) = 1 + 2 (1 - 2)
-1.0
>>> round(regnorm.regularizer(regnorm.normalize(x)), 12)   # rms 1: 2 sum m^2 = 2 (1/2 + 1/2)
2.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perceptron_theory._checks import check_array, check_choice, check_int, check_real

__all__ = ["normalize", "pair_term", "regularizer", "regularizer_from_moments",
           "RegNormShift", "minimizing_shift", "shift_jacobian"]

PAIRS = ("independent", "distinct")


def _batch(name: str, x) -> np.ndarray:
    x = check_array(name, x)
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must have shape (M, ...) with M >= 2 samples, got shape "
                         f"{x.shape}")
    return x.reshape(x.shape[0], -1)


def normalize(z, *, eps: float = 0.0) -> np.ndarray:
    r""":math:`\bar z^a = z^a/\sqrt{\frac1N\sum_i (z_i^a)^2 + \epsilon}` per sample.

    Parameters
    ----------
    z : array, shape (M, ...)
        Pre-norm values; units are flattened to (M, N).
    eps : float
        :math:`\epsilon \ge 0`.

    Returns
    -------
    ndarray, shape (M, N)
    """
    z = _batch("z", z)
    eps = check_real("eps", eps, 0.0)
    ms = np.mean(z * z, axis=1, keepdims=True) + eps
    if np.any(ms <= 0):
        raise ValueError("z has a sample with all units 0 and eps = 0: its RMS is 0")
    return z / np.sqrt(ms)


def pair_term(m, q, batch_size, pairs: str = "independent"):
    r"""One unit's :math:`E_{a,b}[(x^a + x^b)^2 - 2]` from its batch moments.

    .. math::

        2q + 2m^2 - 2 \ \text{(independent)}, \qquad
        2q + \frac{2(Mm^2 - q)}{M-1} - 2 \ \text{(distinct)},

    :math:`m = E_a x^a`, :math:`q = E_a (x^a)^2`. Plain arithmetic, so ``m, q`` may be
    arrays or sympy expressions (the symbolic check of R-B evaluates it on symbols).

    Parameters
    ----------
    m, q : float, array or sympy expression
        Batch mean and second moment of the unit.
    batch_size : int or sympy expression
        :math:`M` (used by ``"distinct"`` only).
    pairs : {"independent", "distinct"}
        Whether :math:`a = b` is allowed.

    Returns
    -------
    Same type as ``m``.
    """
    pairs = check_choice("pairs", pairs, PAIRS)
    if pairs == "independent":
        return 2 * q + 2 * m**2 - 2
    return 2 * q + 2 * (batch_size * m**2 - q) / (batch_size - 1) - 2


def regularizer(x, *, pairs: str = "independent") -> float:
    r"""Rao & Sohl-Dickstein's :math:`r(x) = E_{a,b}[\sum_i((x_i^a + x_i^b)^2 - 2)]`.

    .. math::

        r = \sum_i \big(2 q_i + 2 m_i^2 - 2\big)\ \text{(independent } a, b),

    :func:`pair_term` summed over units; on :math:`\bar z` with :math:`\epsilon = 0` this
    is :math:`2\sum_i m_i^2`. Source: Rao & Sohl-Dickstein 2020, eq. 3, App. B (corrected:
    module docstring).

    Parameters
    ----------
    x : array, shape (M, ...)
        Batch (normally :func:`normalize` of the layer input); units flattened.
    pairs : {"independent", "distinct"}
        Independent draws (``deep.penalties``' reading) or :math:`a \ne b`.

    Returns
    -------
    float
    """
    x = _batch("x", x)
    return float(np.sum(pair_term(x.mean(0), np.mean(x * x, axis=0), x.shape[0], pairs)))


def regularizer_from_moments(mean, var, *, batch_size: int = 2,
                             pairs: str = "independent") -> float:
    r""":math:`r` from per-unit batch means and (biased) variances.

    .. math::

        r = \sum_i\big(2v_i + 4m_i^2 - 2\big) \ \text{(independent)}, \qquad
        r_{\ne} = \sum_i\Big(2v_i + 2m_i^2 + \frac{2(M-1)m_i^2 - 2v_i}{M-1} - 2\Big).

    At fixed variances the gradient in :math:`m` is :math:`8m`: minimal at zero mean.

    Parameters
    ----------
    mean, var : array, shape (N,)
        :math:`m_i`, :math:`v_i \ge 0`.
    batch_size : int
        :math:`M \ge 2` (``"distinct"`` only).
    pairs : {"independent", "distinct"}
        As :func:`regularizer`.

    Returns
    -------
    float
    """
    m = check_array("mean", mean)
    v = check_array("var", var, 0.0)
    batch_size = check_int("batch_size", batch_size, 2)
    return float(np.sum(pair_term(m, v + m * m, batch_size, pairs)))


def shift_jacobian(z, shift) -> np.ndarray:
    r""":math:`J = \partial m/\partial c = \frac{\sqrt N}{M}\sum_a
    \frac{I - u_au_a^T}{\lVert z^a + c\rVert}` (symmetric), :math:`\epsilon = 0`.

    Parameters
    ----------
    z : array, shape (M, ...)
        Pre-norm batch (units flattened to N).
    shift : array, shape (N,)
        :math:`c`, added to every sample.

    Returns
    -------
    ndarray, shape (N, N)
    """
    z = _batch("z", z)
    c = check_array("shift", shift).reshape(-1)
    if c.shape != (z.shape[1],):
        raise ValueError(f"shift must have N = {z.shape[1]} entries, got {c.size}")
    y = z + c
    nrm = np.linalg.norm(y, axis=1)
    u = y / nrm[:, None]
    M, N = z.shape
    J = np.sum(1.0 / nrm) * np.eye(N) - (u / nrm[:, None]).T @ u
    return np.sqrt(N) / M * J


@dataclass(frozen=True)
class RegNormShift:
    """The pre-norm shift that minimizes :math:`r` (:func:`minimizing_shift`).

    Attributes
    ----------
    shift : ndarray, shape (N,)
        :math:`c^* = -` geometric median of the samples.
    value : float
        :math:`r` at :math:`c^*` (0 up to the solver tolerance).
    batch_mean : ndarray, shape (N,)
        :math:`m(c^*)`, the batch mean of :math:`\\bar z` (0 up to the tolerance).
    hessian : ndarray, shape (N, N)
        :math:`4J^2` at :math:`c^*`.
    iterations : int
        Weiszfeld iterations used.
    """

    shift: np.ndarray
    value: float
    batch_mean: np.ndarray
    hessian: np.ndarray
    iterations: int

    def to_dict(self) -> dict:
        return {"shift": self.shift.tolist(), "value": self.value,
                "batch_mean": self.batch_mean.tolist(), "hessian": self.hessian.tolist(),
                "iterations": self.iterations}


def minimizing_shift(z, *, tol: float = 1e-13, max_iter: int = 100_000) -> RegNormShift:
    r"""The shift :math:`c` of the pre-norm values that minimizes :math:`r(\bar z(z + c))`.

    .. math::

        c^* = -\arg\min_y \sum_a \lVert z^a - y\rVert, \qquad
        r(c^*) = 0, \qquad \nabla^2 r(c^*) = 4J^2,

    with :math:`\epsilon = 0` and independent pairs (module docstring): the batch mean of
    :math:`\bar z` is :math:`\sqrt N/M` times the gradient of the sum of distances, which
    vanishes at the geometric median. Computed by Weiszfeld's iteration
    :math:`y \leftarrow \sum_a w_a z^a/\sum_a w_a`, :math:`w_a = 1/\lVert z^a - y\rVert`,
    from the mean, until the step is below ``tol`` times the spread of the batch.

    Parameters
    ----------
    z : array, shape (M, ...)
        Pre-norm batch (units flattened to N); the median must not be a sample.
    tol : float
        Relative step tolerance.
    max_iter : int
        Iteration cap (RuntimeError beyond it).

    Returns
    -------
    RegNormShift
    """
    z = _batch("z", z)
    tol = check_real("tol", tol, 0.0, lo_open=True)
    max_iter = check_int("max_iter", max_iter, 1)
    scale = float(np.max(np.linalg.norm(z - z.mean(0), axis=1))) or 1.0
    # sample k is the median iff |sum_{a != k} unit(z_a - z_k)| <= 1 (Kuhn's criterion)
    diff = z[None, :, :] - z[:, None, :]                            # (M, M, N)
    dist = np.linalg.norm(diff, axis=2)
    np.fill_diagonal(dist, np.inf)
    if np.any(dist == 0.0) or np.any(np.linalg.norm(np.sum(diff / dist[:, :, None], axis=1),
                                                    axis=1) <= 1.0):
        raise ValueError("the geometric median coincides with a sample (or two samples are "
                         "equal): r has no smooth minimum there")
    y = z.mean(0)
    for it in range(1, max_iter + 1):  # noqa: B007 (returned below)
        d = np.linalg.norm(z - y, axis=1)
        w = 1.0 / d
        y_new = w @ z / w.sum()
        step = float(np.linalg.norm(y_new - y))
        y = y_new
        if step <= tol * scale:
            break
    else:
        raise RuntimeError(f"Weiszfeld did not converge in {max_iter} iterations")
    c = -y
    zbar = normalize(z + c)
    J = shift_jacobian(z, c)
    return RegNormShift(c, regularizer(zbar), zbar.mean(0), 4.0 * J @ J, it)
