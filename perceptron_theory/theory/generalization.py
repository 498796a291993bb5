r"""Generalization error against the load :math:`\alpha = P/N`: closed-form learning curves.

Luo et al. (2019), Sec. 4 and App. D (claims L-F1a, L-F1b, L-D of ``shared/PAPERS.md``).

Conventions (fixed for the whole module)
----------------------------------------
* Inputs :math:`x \sim N(0, I/N)`; teacher :math:`w^*` with :math:`|w^*|^2 = N`; linear
  teacher :math:`t = w^*\cdot x \sim N(0, 1)`; label :math:`y = t + \sqrt{S}\,\xi`,
  :math:`\xi \sim N(0, 1)`. ``noise`` = :math:`S` (label-noise variance).
* Load ``alpha`` = :math:`\alpha = P/N` (``P`` samples, ``N`` inputs); ``X`` is the
  :math:`P \times N` matrix with rows :math:`x_p`.
* Training objective, **sum convention** (Krogh & Hertz 1992):

  .. math::

      E(w) = \frac12 \sum_{p=1}^P \big(y_p - g(w\cdot x_p)\big)^2 + \frac{\zeta}{2}|w|^2,

  so the linear student is ridge regression :math:`w = (X^TX + \zeta I)^{-1}X^Ty`. A
  normalized student :math:`w = \gamma\sqrt N\,u` (:math:`|u| = 1`, WN) with gamma decay is
  the same problem, because :math:`|w|^2/N = \gamma^2`: "WN + gamma decay" = ridge on w.
* Test error :math:`\epsilon = E_x[(t - g(w\cdot x))^2]` -- unhalved, *without* the label
  noise (``include_noise=True`` adds :math:`S`). With :math:`\gamma^2 = |w|^2/N` and
  :math:`\gamma R = w\cdot w^*/N`: :math:`\epsilon = 1 + \gamma^2 - 2\gamma R` (linear),
  :math:`1 + \gamma^2/2 - \gamma R` (ReLU) (:func:`eps_gamma_R`).
* ``beta`` = :math:`\beta` is the inverse temperature of the Gibbs measure
  :math:`\propto e^{-\beta E(w)}` (:math:`\beta = \infty`: the minimizer).

The decay-convention trap (``decay_convention``)
------------------------------------------------
Luo et al. write the WN loss as a *mean* over samples plus a *per-sample* decay,
:math:`\frac1P\sum_p (y_p - \dots)^2 + \zeta_{ps}\gamma^2` (their Sec. 4). Multiplying by
:math:`P/2` gives the sum convention with :math:`\zeta = \alpha\,\zeta_{ps}`; with a halved
mean loss :math:`\frac1P\sum_p\frac12(\dots)^2 + \zeta_{ps}\gamma^2` it is
:math:`\zeta = 2\alpha\,\zeta_{ps}` (:func:`sum_decay_from_per_sample`). These are the
``"decay2"`` and ``"theorem1"`` per-sample conventions of
:mod:`perceptron_theory.theory.batchnorm`. BN's equivalent decay is per sample (every
sample sees its own batch noise), so in the sum convention it grows with :math:`\alpha`.
The paper instead plugs :math:`\zeta = 1/(2M)` *directly* into the Krogh-Hertz formula
(``decay_convention="sum"``, "plug-in"); the two agree only at :math:`\alpha = 1`
(e.g. :math:`M = 32, S = 1/4`: :math:`\epsilon(3) = 0.1222` plug-in vs :math:`0.1175`
scaled; :math:`\epsilon(0.5) = 0.7234` vs :math:`0.7356`). Which one BN follows is decided by
simulation (issue 4), not here.

Closed forms
------------
* Linear student, ridge (:func:`ridge_linear`): with :math:`\mu` the limiting spectrum of
  :math:`X^TX` (Marchenko-Pastur, ratio :math:`\alpha`, edges :math:`(1\pm\sqrt\alpha)^2`,
  an atom :math:`1-\alpha` at 0 when :math:`\alpha < 1`) and its Stieltjes transform
  :math:`G(\zeta) = \int d\mu(\lambda)/(\lambda+\zeta)` (:func:`mp_stieltjes`),

  .. math::

      \epsilon = \underbrace{-\zeta^2 G'(\zeta)}_{\rm bias}
          + S\,\underbrace{\frac{d(\zeta G)}{d\zeta}}_{\rm variance}
          + \frac{G(\zeta)}{\beta}, \qquad
      \gamma R = 1 - \zeta G, \quad \gamma^2 = \int\frac{\lambda^2 d\mu}{(\lambda+\zeta)^2}
          + S (\zeta G)' + G/\beta .

  :math:`d\epsilon/d\zeta = (S - \zeta)(\zeta G)''` with :math:`(\zeta G)'' < 0`: the
  optimum is :math:`\zeta^* = S` exactly (Bayes: prior :math:`N(0, I)` on :math:`w^*`),
  confirmed numerically by :func:`optimal_ridge`.
* Min-norm (ridgeless) linear student = ridge at :math:`\zeta \to 0`
  (:func:`min_norm_linear`): :math:`1 - \alpha + \alpha S/(1-\alpha)` (:math:`\alpha<1`),
  :math:`S/(\alpha-1)` (:math:`\alpha > 1`), :math:`\infty` at 1; exact at finite N
  (:func:`min_norm_finite_n`, inverse-Wishart means).
* ReLU student, exhaustive training (:func:`relu_exhaustive`, paper eq. 25):
  :math:`1 - \alpha/4 + \alpha S/(2(2-\alpha))`, :math:`\alpha < 2`. **What it describes**
  (validation L-F1a): the min-norm least-squares fit of the :math:`\approx P/2` samples with
  :math:`y > 0` alone (:math:`\gamma R = \alpha/2`,
  :math:`\gamma^2 = \alpha/2 + \alpha S/(2-\alpha)`). The paper's Prop. 5 replaces the
  :math:`y \le 0` samples' integral by its maximum and so drops their constraint
  :math:`w\cdot x \le 0`; the actual global minimizers of the training loss must satisfy it,
  and their min-norm member generalizes differently (lower :math:`\epsilon` at
  :math:`S = 0`, e.g. 0.70 vs 0.75 at :math:`\alpha = 1`; with :math:`S = 1/4`, zero excess
  training loss becomes infeasible near :math:`\alpha \approx 1.5`).

Examples
--------
>>> from perceptron_theory.theory import generalization as gen
>>> float(gen.min_norm_linear(0.5, noise=0.25).eps[0])   # 1 - 1/2 + (1/2)(1/4)/(1/2)
0.75
>>> round(float(gen.min_norm_linear(3.0, noise=0.25).eps[0]), 12)   # 0.25 / 2
0.125
>>> round(float(gen.ridge_linear(2.0, zeta=0.25, noise=0.25).eps[0]), 6)
0.175391
>>> float(gen.relu_exhaustive(1.0, noise=0.0).eps[0])    # 1 - 1/4
0.75
>>> round(gen.sum_decay_from_per_sample(1 / 64, 2.0), 6)  # the paper's WN loss, alpha = 2
0.03125
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from perceptron_theory import vocabulary as _vocab
from perceptron_theory._checks import (
    check_array,
    check_choice,
    check_int,
    check_real,
    check_work,
)
from perceptron_theory._io import to_plain_dict
from perceptron_theory.theory.conventions import DECAY_CONVENTIONS

__all__ = [
    "STUDENTS",
    "METHODS",
    "DECAY_CONVENTIONS",
    "BN_DECAYS",
    "LearningCurve",
    "mp_density",
    "mp_stieltjes",
    "mp_stieltjes_derivative",
    "RidgeParts",
    "ridge_parts",
    "ridge_linear",
    "min_norm_linear",
    "min_norm_finite_n",
    "optimal_ridge",
    "relu_exhaustive",
    "relu_noiseless_bound",
    "eps_gamma_R",
    "sum_decay_from_per_sample",
    "bn_equivalent_decay",
    "learning_curve",
]

STUDENTS = ("linear", "relu")
#: Models of the learning curves (:func:`perceptron_theory.vocabulary.methods`
#: ``("curve")``); ``"ridge"`` and ``"bn"`` are deprecated names of ``"wn-decay"``.
METHODS = _vocab.methods("curve")
#: Per-sample (``decay2``) equivalent decay of BN for the linear student, by model.
BN_DECAYS = ("leading", "exact", "real-batch")


# ------------------------------------------------------------------------------ checks
#: Largest load, noise variance and decay accepted: the closed forms square
#: ``(1 + sqrt(alpha))^2 + zeta``, which overflows near 1e154, and every curve has reached
#: its large-argument limit long before 1e12.
ALPHA_MAX = NOISE_MAX = ZETA_MAX = 1e12
#: Finite inverse temperatures accepted (the replica solver divides by zero near 1e308;
#: beyond 1e12 a Gibbs sample is the beta = inf minimizer to machine precision).
BETA_RANGE = (1e-12, 1e12)


def _check_alpha(alpha) -> np.ndarray:
    return check_array("alpha", alpha, lo=0.0, hi=ALPHA_MAX, lo_open=True, min_size=1)


def _check_noise(noise) -> float:
    return check_real("noise", noise, lo=0.0, hi=NOISE_MAX)


def _check_zeta(zeta) -> np.ndarray:
    return check_array("zeta", zeta, lo=0.0, hi=ZETA_MAX, min_size=1)


def _check_beta(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a real number in (0, inf], got {beta!r}") from None
    if not (b == math.inf or BETA_RANGE[0] <= b <= BETA_RANGE[1]):  # also rejects nan
        raise ValueError(f"beta must be inf or in [{BETA_RANGE[0]:g}, {BETA_RANGE[1]:g}], "
                         f"got {beta!r}")
    return b


def _broadcast(alpha: np.ndarray, zeta) -> tuple[np.ndarray, np.ndarray]:
    try:
        a, z = np.broadcast_arrays(np.atleast_1d(alpha), np.atleast_1d(zeta))
    except ValueError:
        raise ValueError(f"zeta (shape {np.shape(zeta)}) must broadcast against alpha "
                         f"(shape {np.shape(alpha)})") from None
    return a.astype(float), z.astype(float)


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class LearningCurve:
    """A learning curve :math:`\\epsilon(\\alpha)` and its order parameters.

    ``gamma`` = :math:`|w|/\\sqrt N`, ``R`` = :math:`w\\cdot w^*/(|w||w^*|)` (``None`` where
    a method does not give them); ``zeta`` the decay actually used, in the sum convention;
    ``convention`` states the loss/decay convention, ``note`` what was computed;
    ``converged`` is per point (always ``True`` for closed forms).
    """

    student: str
    method: str
    alpha: np.ndarray
    eps: np.ndarray
    noise: float
    gamma: np.ndarray | None
    R: np.ndarray | None
    zeta: np.ndarray | None
    convention: str
    note: str
    converged: np.ndarray

    def to_dict(self) -> dict:
        return to_plain_dict(self)


SUM_CONVENTION = ("sum: E(w) = 1/2 sum_p (y_p - g(w.x_p))^2 + zeta/2 |w|^2, x ~ N(0, I/N), "
                  "|w*|^2 = N, y = w*.x + sqrt(S) xi; eps = E(t - g(w.x))^2 (unhalved, "
                  "label noise excluded)")


def _curve(student, method, alpha, eps, noise, gamma2, gR, zeta, note, include_noise,
           convention=SUM_CONVENTION) -> LearningCurve:
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.sqrt(gamma2)
        R = np.where(gamma > 0, gR / np.where(gamma > 0, gamma, 1.0), 0.0)
        R = np.where(np.isinf(gamma), 0.0, R)
    eps = eps + noise if include_noise else eps
    return _flag_nonfinite(LearningCurve(
        student, method, alpha, eps, float(noise), gamma, R,
        None if zeta is None else np.asarray(zeta, dtype=float), convention, note,
        np.ones(alpha.shape, dtype=bool)))


def _flag_nonfinite(curve: LearningCurve) -> LearningCurve:
    """Mark points whose ``eps`` is infinite or NaN ``converged = False`` and say why in
    ``note`` (an infinite eps is the interpolation peak, e.g. min-norm at alpha = 1 with
    noise, or a Gibbs sample at finite beta below alpha = 1): a curve never carries an
    unexplained NaN or inf."""
    bad = ~np.isfinite(np.asarray(curve.eps, dtype=float))
    if not np.any(bad):
        return curve
    where = ", ".join(f"{x:g}" for x in np.asarray(curve.alpha)[bad][:5]) + (
        ", ..." if bad.sum() > 5 else "")
    msg = f"eps is infinite or undefined at alpha = {where} (reported converged = False)"
    return replace(curve, converged=np.asarray(curve.converged, dtype=bool) & ~bad,
                   note=f"{curve.note}; {msg}" if curve.note else msg)


# --------------------------------------------------------------- Marchenko-Pastur pieces
def _mp_core(a: np.ndarray, z: np.ndarray):
    r"""Stable pieces of G for broadcast ``a = alpha``, ``z = zeta >= 0``.

    Returns ``(zG, G, var, bias, Gp, lam2)``: ``zeta G``, ``G``, ``var = (zeta G)'``,
    ``bias = -zeta^2 G'``, ``Gp = G'`` and ``lam2 = int lam^2/(lam + zeta)^2 dmu``. With
    :math:`D^2 = (\zeta+1+\alpha)^2 - 4\alpha` and :math:`c = \alpha - 1 + \zeta`:
    :math:`\zeta G = (D - c)/2 = 2\zeta/(D + c)` (the form without cancellation is used),
    :math:`1 - \zeta G = 2\alpha/(\zeta+1+\alpha+D)`,
    :math:`(\zeta G)' = 2\alpha/(D(\zeta+1+\alpha+D))` and
    :math:`\int\lambda^2/(\lambda+\zeta)^2 = 2\alpha(2(1+\alpha)\zeta + (1-\alpha)^2)
    /(D(D+\zeta)(\zeta+1+\alpha+D))`.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s = np.sqrt(a)
        D = np.sqrt((z + (1.0 + s) ** 2) * (z + (1.0 - s) ** 2))
        c = a - 1.0 + z
        pos = c > 0
        e = z + 1.0 + a + D
        zG = np.where(pos, 2.0 * z / (D + c), 0.5 * (D - c))
        G = np.where(pos, 2.0 / (D + c), np.where(z > 0, 0.5 * (D - c) / z, np.inf))
        var = 2.0 * a / (D * e)
        Dp1 = (z + 1.0 + a) / D + 1.0  # D' + 1
        bias = np.where(pos, 2.0 * z * z * Dp1 / (D + c) ** 2,
                        0.5 * (D - c) - np.where(z > 0, z * var, 0.0))
        Gp = np.where(pos, -0.5 * G * G * Dp1, np.where(z > 0, -bias / (z * z), -np.inf))
        lam2 = np.where(D > 0, 2.0 * a * (2.0 * (1.0 + a) * z + (1.0 - a) ** 2)
                        / (D * (D + z) * e), 1.0)  # D = 0 only at alpha = 1, zeta = 0
        one_minus_zG = 2.0 * a / e
    return zG, G, var, bias, Gp, lam2, one_minus_zG


def mp_density(lam, alpha) -> np.ndarray:
    r"""Continuous part of the Marchenko-Pastur law of :math:`X^TX` (:math:`x \sim N(0, I/N)`).

    .. math::

        \rho(\lambda) = \frac{\sqrt{(\lambda_+ - \lambda)(\lambda - \lambda_-)}}{2\pi\lambda},
        \qquad \lambda_\pm = (1 \pm \sqrt\alpha)^2,

    of total mass :math:`\min(1, \alpha)`; for :math:`\alpha < 1` an atom of mass
    :math:`1 - \alpha` sits at :math:`\lambda = 0` (not included here).

    Parameters
    ----------
    lam : array_like
        Eigenvalues :math:`\lambda \ge 0` (the density is 0 outside the edges).
    alpha : float
        Load :math:`\alpha > 0`.
    """
    a = check_real("alpha", alpha, lo=0.0, lo_open=True)
    lam = check_array("lam", lam, lo=0.0)
    lo, hi = (1 - math.sqrt(a)) ** 2, (1 + math.sqrt(a)) ** 2
    inside = (lam > lo) & (lam < hi)
    out = np.zeros_like(lam)
    li = lam[inside]
    out[inside] = np.sqrt((hi - li) * (li - lo)) / (2 * np.pi * li)
    return out


def mp_stieltjes(alpha, zeta) -> np.ndarray:
    r"""Stieltjes transform :math:`G(\zeta) = \int d\mu(\lambda)/(\lambda + \zeta)`.

    :math:`\mu` is the Marchenko-Pastur limit of the spectrum of :math:`X^TX` (``X``:
    :math:`P\times N`, entries of variance :math:`1/N`), i.e.
    :math:`G = \lim \frac1N \mathrm{tr}(X^TX + \zeta I)^{-1}` (Krogh & Hertz 1992; Luo et al.
    Sec. 4):

    .. math::

        G(\zeta) = \frac{1 - \alpha - \zeta + \sqrt{(\zeta + (1+\sqrt\alpha)^2)
                   (\zeta + (1-\sqrt\alpha)^2)}}{2\zeta}
                 = \frac{2}{\sqrt{\cdots} + \alpha - 1 + \zeta},

    evaluated in whichever form has no cancellation. :math:`G(0) = 1/(\alpha - 1)` for
    :math:`\alpha > 1` and :math:`\infty` for :math:`\alpha \le 1`.

    Parameters
    ----------
    alpha : array_like
        Load :math:`\alpha > 0`.
    zeta : array_like
        Decay :math:`\zeta \ge 0` (sum convention), broadcast against ``alpha``.

    Returns
    -------
    numpy.ndarray
    """
    a, z = _broadcast(_check_alpha(alpha), _check_zeta(zeta))
    return _mp_core(a, z)[1]


def mp_stieltjes_derivative(alpha, zeta) -> np.ndarray:
    r""":math:`G'(\zeta) = -\int d\mu(\lambda)/(\lambda+\zeta)^2`, analytic (:func:`mp_stieltjes`).

    With :math:`D = \sqrt{(\zeta + (1+\sqrt\alpha)^2)(\zeta + (1-\sqrt\alpha)^2)}`:
    :math:`G' = -\frac{G^2}{2}\,(1 + (\zeta + 1 + \alpha)/D)`.

    Parameters
    ----------
    alpha : array_like
        Load :math:`\alpha > 0`.
    zeta : array_like
        Decay :math:`\zeta \ge 0`.
    """
    a, z = _broadcast(_check_alpha(alpha), _check_zeta(zeta))
    return _mp_core(a, z)[4]


@dataclass(frozen=True)
class RidgeParts:
    r"""Bias :math:`-\zeta^2 G'`, variance :math:`(\zeta G)'`, :math:`G` and :math:`\zeta G`."""

    alpha: np.ndarray
    zeta: np.ndarray
    bias: np.ndarray
    variance: np.ndarray
    G: np.ndarray
    zeta_G: np.ndarray

    def to_dict(self) -> dict:
        return to_plain_dict(self)


def ridge_parts(alpha, zeta) -> RidgeParts:
    r"""The two integrals of the ridge learning curve, in closed form.

    .. math::

        \text{bias} = \int \frac{\zeta^2\,d\mu}{(\lambda+\zeta)^2} = -\zeta^2 G'(\zeta),
        \qquad
        \text{variance} = \int \frac{\lambda\,d\mu}{(\lambda+\zeta)^2}
            = \frac{d(\zeta G)}{d\zeta} = \frac{2\alpha}{D\,(\zeta + 1 + \alpha + D)},

    so that :math:`\epsilon = \text{bias} + S\cdot\text{variance}`. At :math:`\zeta = 0`:
    bias :math:`\max(1-\alpha, 0)`, variance :math:`\alpha/(1-\alpha)` or
    :math:`1/(\alpha - 1)`.

    Parameters
    ----------
    alpha : array_like
        Load :math:`\alpha > 0`.
    zeta : array_like
        Decay :math:`\zeta \ge 0` (sum convention).
    """
    a, z = _broadcast(_check_alpha(alpha), _check_zeta(zeta))
    zG, G, var, bias = _mp_core(a, z)[:4]
    return RidgeParts(a, z, bias, var, G, zG)


# ------------------------------------------------------------------------ linear student
def ridge_linear(alpha, zeta, noise: float, *, beta: float = math.inf,
                 include_noise: bool = False) -> LearningCurve:
    r"""Linear student, ridge / "WN + gamma decay" (Krogh & Hertz 1992; Luo et al. Sec. 4).

    .. math::

        \epsilon(\alpha, \zeta) = -\zeta^2 G'(\zeta) + S\,\frac{d(\zeta G)}{d\zeta}
            + \frac{G(\zeta)}{\beta},

    (:func:`mp_stieltjes`, :func:`ridge_parts`); sum convention
    :math:`E = \frac12\sum_p(y_p - w\cdot x_p)^2 + \frac\zeta2|w|^2`, unhalved test error
    without label noise. The last term is the thermal spread of a Gibbs sample at inverse
    temperature :math:`\beta` (:math:`\mathrm{tr}(X^TX + \zeta)^{-1}/(\beta N)`).
    Luo et al. print the same formula (their :math:`\epsilon_{wn}`, legible up to OCR) but
    use :math:`\zeta = 1/(2M)` per sample; see the module docstring.
    :math:`\zeta = 0` is the min-norm limit (:func:`min_norm_linear`).

    Parameters
    ----------
    alpha : array_like
        Load :math:`\alpha = P/N > 0`.
    zeta : array_like
        Decay :math:`\zeta \ge 0`, sum convention, broadcast against ``alpha``.
    noise : float
        Label-noise variance :math:`S \ge 0`.
    beta : float
        Inverse temperature in :math:`(0, \infty]`.
    include_noise : bool
        Add :math:`S` (error on noisy test labels).

    Returns
    -------
    LearningCurve
    """
    a, z = _broadcast(_check_alpha(alpha), _check_zeta(zeta))
    S = _check_noise(noise)
    b = _check_beta(beta)
    zG, G, var, bias, _, lam2, gR = _mp_core(a, z)
    with np.errstate(invalid="ignore", over="ignore"):
        thermal = G / b if math.isfinite(b) else np.zeros_like(a)
        varS = S * var if S > 0 else np.zeros_like(var)  # S = 0: no variance, even at 1
        eps = bias + varS + thermal
        gamma2 = lam2 + varS + thermal
    method = "min-norm" if np.all(z == 0) else "wn-decay"
    temp = "" if not math.isfinite(b) else f", Gibbs sample at beta={b:g} (+G/beta)"
    note = ("Krogh-Hertz closed form via the Marchenko-Pastur Stieltjes transform, "
            f"zeta in the sum convention{temp}")
    return _curve("linear", method, a, eps, S, gamma2, gR, z, note, include_noise)


def min_norm_linear(alpha, noise: float, *, beta: float = math.inf,
                    include_noise: bool = False) -> LearningCurve:
    r"""Min-norm (ridgeless) linear student: :func:`ridge_linear` at :math:`\zeta \to 0`.

    .. math::

        \epsilon = 1 - \alpha + \frac{\alpha S}{1 - \alpha}\ (\alpha < 1), \qquad
        \frac{S}{\alpha - 1}\ (\alpha > 1), \qquad \infty\ (\alpha = 1)

    (Luo et al. Sec. 4.1 "vanilla SGD", after Advani & Saxe 2017; SGD from zero init
    converges to the min-norm interpolant). Order parameters :math:`\gamma R = \min(\alpha,
    1)`. Finite N: :func:`min_norm_finite_n`.

    Parameters
    ----------
    alpha : array_like
        Load :math:`\alpha > 0`.
    noise : float
        Label-noise variance :math:`S \ge 0`.
    beta : float
        Inverse temperature; finite :math:`\beta` adds :math:`G(0)/\beta`
        (:math:`1/(\beta(\alpha-1))`, infinite for :math:`\alpha \le 1`).
    include_noise : bool
        Add :math:`S`.
    """
    return ridge_linear(alpha, 0.0, noise, beta=beta, include_noise=include_noise)


def min_norm_finite_n(P, N: int, noise: float) -> np.ndarray:
    r"""Exact finite-N mean test error of the min-norm linear student (inverse Wishart).

    For Gaussian ``X`` (:math:`P\times N`, variance :math:`1/N`), any fixed :math:`w^*` with
    :math:`|w^*|^2 = N`, and averaging over ``X`` and the noise:

    .. math::

        E\,\epsilon = \Big(1 - \frac PN\Big) + \frac{S P}{N - P - 1}\ (P \le N - 2), \qquad
        E\,\epsilon = \frac{S N}{P - N - 1}\ (P \ge N + 2),

    :math:`\infty` for :math:`|P - N| \le 1` when :math:`S > 0`. Derivation: for
    :math:`P < N`, :math:`w = \Pi w^* + X^T(XX^T)^{-1}\xi\sqrt S`; the projection
    :math:`\Pi` on the row space is uniformly oriented, so
    :math:`E|(1-\Pi)w^*|^2/N = 1 - P/N`, and :math:`E[(XX^T)^{-1}] = N I_P/(N - P - 1)`
    (:math:`XX^T = W_P(N, I)/N`). For :math:`P > N`, the estimator is unbiased and
    :math:`E[(X^TX)^{-1}] = N I_N/(P - N - 1)`.

    Parameters
    ----------
    P : int or array_like of int
        Number of samples, :math:`P \ge 1`.
    N : int
        Input dimension, :math:`N \ge 1`.
    noise : float
        Label-noise variance :math:`S \ge 0`.
    """
    N = check_int("N", N, lo=1)
    Pa = np.atleast_1d(np.asarray(P))
    if Pa.dtype.kind not in "iu" or np.any(Pa < 1):
        raise ValueError(f"P must be integers >= 1, got {P!r}")
    S = _check_noise(noise)
    Pf = Pa.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        under = (1.0 - Pf / N) + np.where(Pf <= N - 2, S * Pf / (N - Pf - 1.0), np.inf)
        over = np.where(Pf >= N + 2, S * N / (Pf - N - 1.0), np.inf)
        out = np.where(Pf < N, under, over)
        if S == 0:
            out = np.maximum(1.0 - Pf / N, 0.0)
    return out


def optimal_ridge(alpha, noise: float, *, zeta_max: float | None = None,
                  xatol: float = 1e-11) -> LearningCurve:
    r"""Ridge curve at the decay that minimizes :math:`\epsilon`, found numerically per alpha.

    ``scipy.optimize.minimize_scalar`` (bounded Brent) on :func:`ridge_linear` over
    :math:`\zeta \in [0, \zeta_{\max}]`. Theory: :math:`d\epsilon/d\zeta = (S - \zeta)
    (\zeta G)''` and :math:`(\zeta G)'' = -2\int\lambda\,d\mu/(\lambda+\zeta)^3 < 0`, so
    :math:`\zeta^* = S` for every :math:`\alpha` (Luo et al.: "zeta = 0.25, a value equal to
    the noise magnitude", which holds in the sum convention only).

    Parameters
    ----------
    alpha : array_like
        Load :math:`\alpha > 0`.
    noise : float
        Label-noise variance :math:`S \ge 0`.
    zeta_max : float or None
        Upper end of the search interval (default :math:`4S + 1`).
    xatol : float
        Absolute tolerance on :math:`\zeta`.

    Returns
    -------
    LearningCurve
        ``zeta`` holds the minimizers, ``converged`` the optimizer's success flags.
    """
    from scipy.optimize import minimize_scalar

    a = np.atleast_1d(_check_alpha(alpha))
    S = _check_noise(noise)
    zmax = 4.0 * S + 1.0 if zeta_max is None else check_real("zeta_max", zeta_max, lo=0.0,
                                                               lo_open=True)
    xatol = check_real("xatol", xatol, lo=0.0, lo_open=True)
    zs, ok = np.empty(a.size), np.empty(a.size, dtype=bool)
    for i, ai in enumerate(a.ravel()):
        av = np.array([ai])

        def f(z, av=av):
            var, bias = _mp_core(av, np.array([z]))[2:4]
            return float(bias[0] + S * var[0])

        r = minimize_scalar(f, bounds=(0.0, zmax), method="bounded",
                            options={"xatol": xatol, "maxiter": 500})
        zs[i], ok[i] = r.x, bool(r.success)
    zs = zs.reshape(a.shape)
    c = ridge_linear(a, zs, S)
    return LearningCurve("linear", "wn-decay", a, c.eps, S, c.gamma, c.R, zs, SUM_CONVENTION,
                         "ridge at the numerically optimal zeta (theory: zeta* = S)",
                         ok.reshape(a.shape))


# -------------------------------------------------------------------------- ReLU student
def relu_exhaustive(alpha, noise: float, *, include_noise: bool = False) -> LearningCurve:
    r"""ReLU student, linear noisy teacher, exhaustive training: Luo et al. eq. (25).

    .. math::

        \epsilon = 1 - \frac\alpha4 + \frac{\alpha S}{2(2 - \alpha)}, \qquad \alpha < 2,

    from :math:`\gamma R = \alpha/2` and :math:`\gamma^2 = \alpha/2 + \alpha S/(2-\alpha)`
    (their eqs. 22-23 at :math:`a = 1`; these follow from eq. 25 with
    :math:`\epsilon = 1 + \gamma^2/2 - \gamma R`, the printed eq. 22 is illegible) and
    :math:`S = 0` gives the "noiseless lower bound" :math:`1 - \alpha/4`
    (:func:`relu_noiseless_bound`).

    Caveat (our finite-N check, validation L-F1a): this is exactly the min-norm
    least-squares fit of the samples with :math:`y > 0` alone, i.e. the linear min-norm curve
    at load :math:`\alpha/2` seen through :math:`1 + \gamma^2/2 - \gamma R`. Prop. 5 drops
    the constraint :math:`w\cdot x \le 0` that the :math:`y \le 0` samples put on a
    zero-excess-loss ReLU student (it replaces their integral by its maximum). The true
    global minimizers of the training loss differ: their min-norm member has lower
    :math:`\epsilon` at :math:`S = 0`, and with noise it stops existing before
    :math:`\alpha = 2`.

    Parameters
    ----------
    alpha : array_like
        Load, :math:`0 < \alpha < 2`.
    noise : float
        Label-noise variance :math:`S \ge 0`.
    include_noise : bool
        Add :math:`S`.
    """
    a = np.atleast_1d(check_array("alpha", alpha, lo=0.0, hi=2.0, lo_open=True, hi_open=True,
                                  min_size=1)).astype(float)
    S = _check_noise(noise)
    gR = 0.5 * a
    gamma2 = 0.5 * a + a * S / (2.0 - a)
    eps = 1.0 - 0.25 * a + a * S / (2.0 * (2.0 - a))
    return _curve("relu", "min-norm", a, eps, S, gamma2, gR, np.zeros_like(a),
                  "Luo et al. eq. 25 (replica, beta -> inf, zeta -> 0): equals the min-norm "
                  "fit of the y > 0 samples only; not the min-norm global minimizer of the "
                  "training loss (validation L-F1a)", include_noise)


def relu_noiseless_bound(alpha) -> np.ndarray:
    r"""Luo et al.'s noiseless "lower bound" :math:`1 - \alpha/4` (eq. 25 at :math:`S=0`).

    Parameters
    ----------
    alpha : array_like
        Load, :math:`0 < \alpha < 2`.
    """
    return relu_exhaustive(alpha, 0.0).eps


def eps_gamma_R(student: str, gamma, R) -> np.ndarray:
    r"""Test error of a student of scale ``gamma`` and overlap ``R`` with the *linear* teacher.

    .. math::

        \epsilon_{\rm lin} = 1 + \gamma^2 - 2\gamma R, \qquad
        \epsilon_{\rm relu} = 1 + \frac{\gamma^2}{2} - \gamma R

    (Luo et al. App. D eq. 18 and the ReLU form after it), unhalved, noise-free teacher.
    One implementation: delegates to
    ``integrals.eps_gen(student, gamma, R, teacher="linear")``.

    Parameters
    ----------
    student : {"linear", "relu"}
        Student activation.
    gamma : array_like
        :math:`\gamma = |w|/\sqrt N > 0`.
    R : array_like
        Overlap :math:`-1 \le R \le 1`.
    """
    from perceptron_theory.theory import integrals

    check_choice("student", student, STUDENTS)
    return integrals.eps_gen(student, gamma, R, teacher="linear")


# --------------------------------------------------------------------- decay conventions
def sum_decay_from_per_sample(zeta_ps, alpha, halved: bool = False):
    r"""Sum-convention decay equivalent to a per-sample decay on a mean loss.

    .. math::

        \frac1P\sum_p (y_p - \hat y_p)^2 + \zeta_{ps}\gamma^2
        = \frac2P\Big[\frac12\sum_p (y_p - \hat y_p)^2 + \frac{\alpha\zeta_{ps}}{2}|w|^2\Big]
        \;\Rightarrow\; \zeta = \alpha\,\zeta_{ps},

    using :math:`\gamma^2 = |w|^2/N`; with a halved mean loss
    :math:`\frac1P\sum_p\frac12(\dots)^2 + \zeta_{ps}\gamma^2`, :math:`\zeta = 2\alpha\zeta_{ps}`.
    ``halved=False`` is Luo et al.'s Sec. 4 WN loss and the ``"decay2"`` convention of
    :mod:`.batchnorm`; ``halved=True`` is ``"theorem1"``.

    Parameters
    ----------
    zeta_ps : array_like
        Per-sample decay :math:`\zeta_{ps} \ge 0`.
    alpha : array_like
        Load :math:`\alpha > 0`.
    halved : bool
        Whether the per-sample loss is halved.

    Returns
    -------
    float or numpy.ndarray
        A float when both inputs are scalars.
    """
    z = check_array("zeta_ps", zeta_ps, lo=0.0)
    a = _check_alpha(alpha)
    out = (2.0 if halved else 1.0) * a * z
    return float(out) if out.ndim == 0 else out


def bn_equivalent_decay(batch_size: int, model: str = "leading") -> float:
    r"""Per-sample equivalent gamma decay of BN for the linear student (``decay2``).

    ``"decay2"``: unhalved mean loss :math:`+\ \zeta_{ps}\gamma^2` (Luo et al. Sec. 4). The
    paper's BN drops the batch mean (:math:`\beta = 0`, "mu_B unnecessary"), so
    variance-only BN (``centered=False``) of :mod:`.batchnorm`:

    * ``"leading"`` -- :math:`1/(2M)`, the paper's value
      (``equivalent_decay_linear(M, convention="decay2", centered=False, exact=False)``);
    * ``"exact"`` -- the same independence model with exact Gamma-function moments
      (:math:`1/(2M) + 39/(16M^2) + \dots`);
    * ``"real-batch"`` -- gradient-matched decay when the sample is in its own batch,
      :func:`.batchnorm.equivalent_decay_real_batch` (:math:`\approx 1/(4M)`).

    Parameters
    ----------
    batch_size : int
        :math:`M` (``"exact"`` needs :math:`M \ge 3`).
    model : {"leading", "exact", "real-batch"}
        Which model of the batch noise.
    """
    from perceptron_theory.theory import batchnorm

    check_choice("model", model, BN_DECAYS)
    M = check_int("batch_size", batch_size, lo=2)
    if model == "real-batch":
        return batchnorm.equivalent_decay_real_batch(M, convention="decay2", centered=False)
    return batchnorm.equivalent_decay_linear(M, convention="decay2", centered=False,
                                             exact=(model == "exact"))


# ----------------------------------------------------------------------------- dispatch
def learning_curve(student: str, method: str, alpha, *, noise: float, zeta=0.0,
                   batch_size: int | None = None, beta: float = math.inf,
                   decay_convention: str | None = None, bn_decay: str = "leading",
                   include_noise: bool = False) -> LearningCurve:
    r"""Generalization error :math:`\epsilon(\alpha)` of one student trained one way.

    ``method``:

    * ``"min-norm"`` -- linear: :func:`min_norm_linear` (finite ``beta``: zero-decay Gibbs
      sample); ReLU: :func:`relu_exhaustive` (paper eq. 25, :math:`\alpha < 2`; finite
      ``beta`` goes to the replica solver).
    * ``"wn-decay"`` -- "WN + gamma decay" = ridge on w (module docstring), with decay
      ``zeta``; linear :func:`ridge_linear`, ReLU: the replica solver. With
      ``batch_size`` = M instead of ``zeta``: at BN's equivalent decay
      (:func:`bn_equivalent_decay`, per sample, ``decay2``) converted to the sum
      convention by ``decay_convention`` (default ``"decay2"``:
      :math:`\zeta = \alpha\zeta_{ps}`; ``"sum"``: the paper's plug-in
      :math:`\zeta = \zeta_{ps}`). Deprecated names (one release): ``"ridge"`` (with
      ``zeta``) and ``"bn"`` (with ``batch_size``).
    * ``"replica"`` -- :func:`perceptron_theory.theory.replica.learning_curve`, called as
      ``learning_curve(alpha, student=student, teacher="linear", noise=S, zeta=zeta_sum,
      beta=beta)`` with the decay in the sum convention (same convention as that module),
      its :class:`ReplicaCurve` repackaged as a :class:`LearningCurve`.

    Parameters
    ----------
    student : {"linear", "relu"}
        Student activation (the teacher is linear and noisy).
    method : {"min-norm", "wn-decay", "replica"}
        How the student is trained (above).
    alpha : array_like
        Load :math:`\alpha = P/N > 0`.
    noise : float
        Label-noise variance :math:`S \ge 0`.
    zeta : array_like
        Decay for ``"wn-decay"``/``"replica"``, read in ``decay_convention``; must be 0
        for ``"min-norm"`` and when ``batch_size`` is given.
    batch_size : int or None
        :math:`M \ge 2`: ``"wn-decay"`` at BN's equivalent decay (only there).
    beta : float
        Inverse temperature in :math:`(0, \infty]`.
    decay_convention : {"sum", "decay2", "theorem1"} or None
        How a decay is turned into the sum convention: ``"sum"`` as is, ``"decay2"``
        :math:`\times\alpha` (per-sample, unhalved mean loss), ``"theorem1"``
        :math:`\times 2\alpha` (per-sample, halved). Default: ``"sum"``, or ``"decay2"``
        for BN's decay (``batch_size`` given).
    bn_decay : {"leading", "exact", "real-batch"}
        BN decay model with ``batch_size`` (:func:`bn_equivalent_decay`).
    include_noise : bool
        Add :math:`S` to :math:`\epsilon`.

    Returns
    -------
    LearningCurve
    """
    check_choice("student", student, STUDENTS)
    given = method
    method = check_choice("method", _vocab.resolve_method("curve", method), METHODS)
    a = np.atleast_1d(_check_alpha(alpha)).astype(float)
    S = _check_noise(noise)
    z = _check_zeta(zeta)
    b = _check_beta(beta)
    if decay_convention is not None:
        check_choice("decay_convention", decay_convention, DECAY_CONVENTIONS)
    check_choice("bn_decay", bn_decay, BN_DECAYS)
    bn = batch_size is not None or given == "bn"  # BN's equivalent decay
    if bn:
        if method != "wn-decay":
            raise ValueError(f"batch_size is only used by method 'wn-decay' (BN's equivalent "
                             f"decay); got batch_size={batch_size!r} with method={method!r}")
        if batch_size is None:
            raise ValueError("batch_size must be an integer >= 2 for method 'bn', got None")
        M = check_int("batch_size", batch_size, lo=2 if bn_decay != "exact" else 3)
    if (method == "min-norm" or bn) and np.any(z != 0):
        raise ValueError(f"zeta must be 0 for method {method!r}"
                         f"{' with batch_size (BN sets it)' if bn else ''} (use method="
                         f"'wn-decay' with zeta); got zeta={zeta!r}")
    if student == "relu" and method == "min-norm" and math.isinf(b) and np.any(a >= 2.0):
        raise ValueError(f"alpha must be in (0, 2) for the ReLU closed form (Luo et al. eq. 25)"
                         f"; found {float(a[a >= 2.0][0])!r}")
    conv = decay_convention or ("decay2" if bn else "sum")
    factor = DECAY_CONVENTIONS[conv].sum_factor  # zeta_sum = factor * alpha * zeta

    if bn:
        z_ps = bn_equivalent_decay(M, bn_decay)
        z_sum = z_ps * np.ones_like(a) if factor is None else factor * a * z_ps
        if conv == "theorem1":  # BN's value is a decay2 number; theorem1's is half of it
            z_sum = z_sum / 2.0
        how = ("the paper's direct plug-in zeta = zeta_ps" if factor is None else
               "zeta = alpha * zeta_ps (per-sample decay of the mean loss, decay2)")
        note = (f"BN (M={M}) read as WN + gamma decay: zeta_ps = {z_ps:.6g} per sample "
                f"(bn_decay={bn_decay!r}, decay2 convention, variance-only BN), sum-convention "
                f"decay {how}")
    else:
        z_sum = np.broadcast_to(z if factor is None else factor * a * z, a.shape).astype(float)
        note = ""

    if method == "replica" or (student == "relu" and (method != "min-norm" or math.isfinite(b))):
        from perceptron_theory.theory import replica

        # a saddle point takes ~0.01-1 s (up to ~10 s at extreme parameters)
        check_work(f"the replica solver at {a.size} loads", a.size * 1e9)
        rc = replica.learning_curve(a.ravel(), student=student, teacher="linear", noise=S,
                                    zeta=np.broadcast_to(z_sum, a.shape).ravel(), beta=b)
        shape = a.shape
        eps = np.asarray(rc.eps, dtype=float).reshape(shape)
        return _flag_nonfinite(LearningCurve(
                             student, method, a, eps + S if include_noise else eps, S,
                             np.asarray(rc.gamma, dtype=float).reshape(shape),
                             np.asarray(rc.R, dtype=float).reshape(shape),
                             np.broadcast_to(z_sum, shape).astype(float), SUM_CONVENTION,
                             (note + "; " if note else "") + "replica-symmetric saddle point "
                             f"(theory.replica, beta={b:g}, continuation in alpha)",
                             np.asarray(rc.converged, dtype=bool).reshape(shape)))

    if student == "relu":  # min-norm at beta = inf
        return relu_exhaustive(a, S, include_noise=include_noise)
    c = ridge_linear(a, z_sum, S, beta=b, include_noise=include_noise)
    conv_note = SUM_CONVENTION if factor is None else (
        f"{SUM_CONVENTION}; input decay in the per-sample {conv} convention, zeta_sum = "
        f"{factor:g} * alpha * zeta")
    return _flag_nonfinite(LearningCurve("linear", method, a, c.eps, S, c.gamma, c.R, c.zeta,
                                         conv_note, (note + "; " if note else "") + c.note,
                                         c.converged))
