r"""Gaussian integrals of the soft-committee-machine ODEs (Saad & Solla 1995).

Symbol map: ``C`` is the covariance of the jointly Gaussian fields
:math:`x \sim N(0, C)` (student fields :math:`\lambda_i`, teacher fields :math:`\nu_n`);
``act`` names an activation :math:`g` and ``dact`` the activation whose *derivative*
:math:`g'` appears; the activations are those of :data:`ACTIVATIONS`:

* ``"erf"``: :math:`g(x) = \mathrm{erf}(x/\sqrt2)`, :math:`g'(x) = \sqrt{2/\pi}\,e^{-x^2/2}`;
* ``"relu"``: :math:`g(x) = \max(x, 0)`, :math:`g'(x) = \Theta(x)` (step);
* ``"linear"``: :math:`g(x) = x`, :math:`g'(x) = 1`.

.. math::

    I_2 = E[g_1(x_1) g_2(x_2)], \quad I_3 = E[g_1'(x_1)\, x_2\, g_3(x_3)], \quad
    I_4 = E[g_1'(x_1) g_2'(x_2) g_3(x_3) g_4(x_4)], \quad J_2 = E[g_1'(x_1) g_2'(x_2)].

Every function takes a stack of covariance matrices ``C`` of shape ``(..., n, n)``
(``n`` = 2, 3, 4, 2) and returns an array of shape ``(...)``.

Conventions
-----------
* Repeated fields are allowed: the committee ODE calls e.g. :math:`I_4(\lambda_i,
  \lambda_i, \lambda_j, \nu_n)`, whose ``C`` is singular (``C11 = C22 = C12``). Every
  result is exact there (the closed forms are continuous; ReLU's :math:`I_4` merges
  repeated fields before it integrates, see :func:`I4`).
* A field of zero variance (a student with :math:`w = 0`) is the constant 0; then
  :math:`\Theta(0) = 0` (as :func:`perceptron_theory.theory.integrals.activation_function`
  and the simulations, ``x > 0``), :math:`\mathrm{relu}(0) = \mathrm{erf}(0) = 0`,
  :math:`\mathrm{erf}'(0) = \sqrt{2/\pi}`.
* ``C`` must be symmetric and positive semi-definite to a relative tolerance of
  ``1e-10`` (of its largest diagonal entry); it is symmetrized before use.

Methods
-------
* A factor :math:`\mathrm{erf}'(x_k)` is absorbed into the Gaussian (the reweighting
  trick): :math:`e^{-x_k^2/2} N(x; 0, C) = (1 + C_{kk})^{-1/2} N(x; 0, \tilde C)` with
  :math:`\tilde C = C - C_{:k} C_{k:} / (1 + C_{kk})` (Sherman-Morrison on the precision
  matrix). This gives Saad & Solla's :math:`I_3, I_4, J_2` from their :math:`I_2` and the
  erf/ReLU mixtures from the ReLU forms.
* A linear factor :math:`x_k` is removed by Stein's lemma,
  :math:`E[x_k F(x)] = \sum_j C_{kj} E[\partial_j F(x)]`.
* ReLU integrals are truncated Gaussian moments
  :math:`M(C, a) = E[\prod_k x_k^{a_k}\Theta(x_k)]` (``relu = x step``; a linear
  :math:`g(x) = x` is :math:`\mathrm{relu}(x) - \mathrm{relu}(-x)`): repeated fields are
  merged exactly (:func:`_relu_moment`), then Stein's lemma (Tallis 1961) reduces
  :math:`M` to closed-form 1-3 field orthants and, for :math:`I_4^{\rm relu}` only, the
  4-field orthant :math:`P_4`, a 1-D Plackett integral on geometrically graded
  Gauss-Legendre panels (:func:`_orthant4`; 16 panels x 12 nodes: error <= 6e-14 against
  40 nodes/panel on random and near-repeated fields, 2.7e-12 at 10, 2.7e-10 at 8).
  Accuracy: ~1e-13 for positive-definite and exactly repeated fields; near-repeated
  fields (1 - rho ~ 1e-12) lose accuracy to input rounding, measured <= 1.2e-8.
  Not exact: a rank-deficient ``C`` whose deficiency is not a repeated field (three
  fields linearly dependent), and :math:`I_4` with two ReLU derivatives and an erf
  activation (these combinations raise ValueError).

References: D. Saad and S. A. Solla, Phys. Rev. E 52, 4225 (1995), appendix;
Y. Cho and L. K. Saul, NeurIPS 2009 (arc-cosine kernel);
R. L. Plackett, Biometrika 41, 351 (1954) (orthant probabilities).

>>> import numpy as np
>>> C = np.array([[1.0, 0.5], [0.5, 1.0]])
>>> round(float(I2(C, "linear", "linear")), 12)
0.5
>>> round(float(I2(C, "erf", "erf")), 12)  # (2/pi) arcsin(1/4)
0.16086124651
"""

from __future__ import annotations

import numpy as np

from perceptron_theory.vocabulary import ACTIVATIONS

__all__ = ["ACTIVATIONS", "I2", "I3", "I4", "J2", "activation_pair", "PSD_RTOL"]

#: Relative tolerance of the symmetry and positive-semi-definiteness checks on ``C``.
PSD_RTOL = 1e-10

_PI = np.pi
_SQRT_2_PI = np.sqrt(2.0 / np.pi)  # erf'(0)
_SQRT_2PI = np.sqrt(2.0 * np.pi)


def activation_pair(act: str):
    """Return ``(g, g')`` of an activation as numpy callables (for Monte Carlo checks)."""
    _check_act("act", act)
    if act == "linear":
        return (lambda x: np.asarray(x, dtype=float)), (lambda x: np.ones_like(x, dtype=float))
    if act == "relu":
        return (lambda x: np.maximum(x, 0.0)), (lambda x: (np.asarray(x) > 0).astype(float))
    from scipy.special import erf

    return (lambda x: erf(np.asarray(x) / np.sqrt(2.0))), (
        lambda x: _SQRT_2_PI * np.exp(-np.asarray(x) ** 2 / 2.0))


# ------------------------------------------------------------------------- input checks
def _check_act(name: str, act) -> str:
    if act not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {', '.join(ACTIVATIONS)}; got {act!r}")
    return act


def _unsupported(func: str, acts) -> ValueError:
    return ValueError(f"{func}{tuple(acts)!r} is not supported (no exact form implemented "
                      f"for this combination of activations)")


def _check_cov(C, n: int, check: bool = True) -> np.ndarray:
    """``C`` as a float array ``(..., n, n)``, symmetric PSD within :data:`PSD_RTOL`."""
    try:
        a = np.asarray(C, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"C must be an array of real {n}x{n} covariance matrices") from None
    if a.ndim < 2 or a.shape[-2:] != (n, n):
        raise ValueError(f"C must have shape (..., {n}, {n}); got {a.shape}")
    if not check:
        return a
    if not np.all(np.isfinite(a)):
        raise ValueError("C must be finite")
    diag = np.diagonal(a, axis1=-2, axis2=-1)
    scale = np.maximum(np.max(np.abs(diag), axis=-1), np.finfo(float).tiny)
    tol = PSD_RTOL * scale[..., None, None]
    if np.any(np.abs(a - np.swapaxes(a, -1, -2)) > tol):
        raise ValueError("C must be symmetric (within a relative tolerance "
                         f"{PSD_RTOL:g} of its largest diagonal entry)")
    a = 0.5 * (a + np.swapaxes(a, -1, -2))
    if np.any(diag < -tol[..., 0]) or np.any(
            np.linalg.eigvalsh(a)[..., 0] < -tol[..., 0, 0]):
        raise ValueError("C must be positive semi-definite (smallest eigenvalue >= "
                         f"-{PSD_RTOL:g} x its largest diagonal entry)")
    return a


# ----------------------------------------------------------------- one- and two-point forms
def _sqrt0(x):
    return np.sqrt(np.maximum(x, 0.0))


def _div0(num, den):
    """``num / den`` where ``den > 0``, else 0 (the zero-variance convention)."""
    den = np.asarray(den, dtype=float)
    ok = den > 0
    return np.where(ok, np.asarray(num, dtype=float) / np.where(ok, den, 1.0), 0.0)


def _asin(x):
    return np.arcsin(np.clip(x, -1.0, 1.0))


def _mean_dg(act: str, v):
    """:math:`E[g'(x)]`, :math:`x \\sim N(0, v)`."""
    if act == "linear":
        return np.ones_like(v)
    if act == "erf":
        return _SQRT_2_PI / np.sqrt(1.0 + v)
    return np.where(v > 0, 0.5, 0.0)


def _orthant2(caa, cbb, cab):
    """:math:`P(x_a > 0, x_b > 0) = 1/4 + \\arcsin(\\rho)/(2\\pi)` (0 for a null field)."""
    vv = caa * cbb
    return np.where(vv > 0, 0.25 + _asin(_div0(cab, _sqrt0(vv))) / (2 * _PI), 0.0)


def _e_gg(a: str, b: str, caa, cbb, cab):
    """:math:`E[g_a(x) g_b(y)]` for ``Var x = caa``, ``Var y = cbb``, ``Cov = cab``."""
    if a == "linear":  # Stein: E[x g(y)] = cab E[g'(y)]
        return cab * _mean_dg(b, cbb)
    if b == "linear":
        return cab * _mean_dg(a, caa)
    if a == b == "erf":
        return 2 / _PI * _asin(cab / np.sqrt((1.0 + caa) * (1.0 + cbb)))
    if a == b == "relu":  # arc-cosine kernel of degree 1
        return (_sqrt0(caa * cbb - cab * cab)
                + cab * (0.5 * _PI + _asin(_div0(cab, _sqrt0(caa * cbb))))) / (2 * _PI)
    if a == "relu":  # E[erf(x) relu(y)]: Stein on y, the erf' factor absorbed
        a, b, caa, cbb = b, a, cbb, caa
    return np.where(cbb > 0, cab / np.sqrt(2 * _PI * (1.0 + caa)), 0.0)


def _e_dgdg(a: str, b: str, caa, cbb, cab):
    """:math:`E[g_a'(x) g_b'(y)]`."""
    if a == "linear":
        return _mean_dg(b, cbb)
    if b == "linear":
        return _mean_dg(a, caa)
    if a == b == "erf":
        return 2 / _PI / np.sqrt((1.0 + caa) * (1.0 + cbb) - cab * cab)
    if a == b == "relu":
        return _orthant2(caa, cbb, cab)
    if a == "relu":
        a, b, caa, cbb = b, a, cbb, caa
    return _SQRT_2_PI / np.sqrt(1.0 + caa) * np.where(cbb > 0, 0.5, 0.0)


def _absorb_erf_prime(C: np.ndarray, k: int):
    """Absorb :math:`\\mathrm{erf}'(x_k)` into the Gaussian.

    Returns ``(factor, C_tilde)`` with :math:`E[\\mathrm{erf}'(x_k) F(x)] =
    \\mathrm{factor}\\; E_{\\tilde C}[F(x)]`, ``factor`` :math:`= \\sqrt{2/\\pi}/\\sqrt{1 +
    C_{kk}}` and :math:`\\tilde C = C - C_{:k} C_{k:}/(1 + C_{kk})`.
    """
    d = 1.0 + C[..., k, k]
    Ct = C - C[..., :, k, None] * C[..., None, k, :] / d[..., None, None]
    return _SQRT_2_PI / np.sqrt(d), Ct


def _drop(C: np.ndarray, k: int) -> np.ndarray:
    """Marginal covariance without field ``k``."""
    keep = [i for i in range(C.shape[-1]) if i != k]
    return C[..., keep, :][..., :, keep]


# -------------------------------------------------------------------------- public API
def I2(C, act1: str, act2: str, *, check: bool = True) -> np.ndarray:
    r"""Two-field integral :math:`I_2 = E[g_1(x_1) g_2(x_2)]`, :math:`x \sim N(0, C)`.

    .. math::

        I_2^{\rm erf} = \frac{2}{\pi}\arcsin\frac{C_{12}}{\sqrt{(1+C_{11})(1+C_{22})}},
        \quad I_2^{\rm relu} = \frac{\sqrt{C_{11}C_{22} - C_{12}^2}
            + C_{12}\,(\pi/2 + \arcsin\rho)}{2\pi},
        \quad I_2^{\rm lin} = C_{12},

    with :math:`\rho = C_{12}/\sqrt{C_{11}C_{22}}` (ReLU: the degree-1 arc-cosine kernel,
    Cho & Saul 2009); mixed: :math:`E[x_1 g(x_2)] = C_{12} E[g'(x_2)]`,
    :math:`E[\mathrm{erf}(x_1)\,\mathrm{relu}(x_2)] = C_{12}/\sqrt{2\pi(1+C_{11})}`.
    Saad & Solla (1995), eq. (A1) for erf.

    Parameters
    ----------
    C : array_like, shape (..., 2, 2)
        Covariances of :math:`(x_1, x_2)`.
    act1, act2 : str
        Activations of :math:`x_1` and :math:`x_2`, from :data:`ACTIVATIONS`.
    check : bool
        Validate ``C`` (symmetric PSD); inner loops that guarantee it may skip this.

    Returns
    -------
    ndarray, shape (...)
    """
    _check_act("act1", act1), _check_act("act2", act2)
    C = _check_cov(C, 2, check)
    return _e_gg(act1, act2, C[..., 0, 0], C[..., 1, 1], C[..., 0, 1])


def J2(C, dact1: str, dact2: str, *, check: bool = True) -> np.ndarray:
    r"""Derivative pair :math:`J_2 = E[g_1'(x_1) g_2'(x_2)]` (the label-noise term).

    .. math::

        J_2^{\rm erf} = \frac{2}{\pi}\frac{1}{\sqrt{(1+C_{11})(1+C_{22}) - C_{12}^2}}, \quad
        J_2^{\rm relu} = P(x_1 > 0, x_2 > 0) = \frac14 + \frac{\arcsin\rho}{2\pi},
        \quad J_2^{\rm lin} = 1;

    mixed: :math:`E[\mathrm{erf}'(x_1)\Theta(x_2)] = \tfrac12\sqrt{2/\pi}/\sqrt{1+C_{11}}`
    (the erf' factor absorbed; :math:`P(x_2 > 0) = 1/2` under the reweighted Gaussian).
    Saad & Solla (1995), appendix.

    Parameters
    ----------
    C : array_like, shape (..., 2, 2)
        Covariances of :math:`(x_1, x_2)`.
    dact1, dact2 : str
        Activations whose derivatives are taken, from :data:`ACTIVATIONS`.
    check : bool
        Validate ``C``.
    """
    _check_act("dact1", dact1), _check_act("dact2", dact2)
    C = _check_cov(C, 2, check)
    return _e_dgdg(dact1, dact2, C[..., 0, 0], C[..., 1, 1], C[..., 0, 1])


def I3(C, dact: str, act3: str, *, check: bool = True) -> np.ndarray:
    r"""Three-field integral :math:`I_3 = E[g_d'(x_1)\, x_2\, g_3(x_3)]`.

    Stein's lemma on :math:`x_2`:
    :math:`I_3 = C_{21} E[g_d''(x_1) g_3(x_3)] + C_{23} E[g_d'(x_1) g_3'(x_3)]`.

    .. math::

        I_3^{\rm erf} = \frac{2}{\pi}\frac{C_{23}(1+C_{11}) - C_{12}C_{13}}
            {(1+C_{11})\sqrt{(1+C_{11})(1+C_{33}) - C_{13}^2}}, \qquad
        I_3^{\rm lin} = C_{23},

    .. math::

        I_3^{\rm relu} = \frac{C_{12}\sqrt{C_{11}C_{33} - C_{13}^2}}{2\pi C_{11}}
            + C_{23}\Big(\frac14 + \frac{\arcsin\rho_{13}}{2\pi}\Big)

    (ReLU: :math:`E[\delta(x_1)\mathrm{relu}(x_3)] = p_1(0)\,E[\mathrm{relu}(x_3)\mid
    x_1 = 0]`). Mixed forms follow from the same two terms: a linear ``dact`` gives
    :math:`C_{23}E[g_3'(x_3)]`; an erf ``dact`` absorbs :math:`\mathrm{erf}'(x_1)` and
    gives :math:`\sqrt{2/\pi}(1+C_{11})^{-1/2}\,\tilde C_{23}\,\tilde E[g_3'(x_3)]`.
    All nine combinations are exact. Saad & Solla (1995), eq. (A2) for erf.

    Parameters
    ----------
    C : array_like, shape (..., 3, 3)
        Covariances of :math:`(x_1, x_2, x_3)`.
    dact : str
        Activation whose derivative multiplies :math:`x_1`.
    act3 : str
        Activation of :math:`x_3`.
    check : bool
        Validate ``C``.
    """
    _check_act("dact", dact), _check_act("act3", act3)
    C = _check_cov(C, 3, check)
    c11, c12, c13 = C[..., 0, 0], C[..., 0, 1], C[..., 0, 2]
    c23, c33 = C[..., 1, 2], C[..., 2, 2]
    if dact == "linear":
        return c23 * _mean_dg(act3, c33)
    if dact == "erf":
        f, Ct = _absorb_erf_prime(C, 0)
        return f * Ct[..., 1, 2] * _mean_dg(act3, Ct[..., 2, 2])
    # relu: C12 E[delta(x1) g3(x3)] + C23 E[step(x1) g3'(x3)]
    out = c23 * _e_dgdg("relu", act3, c11, c33, c13)
    if act3 == "relu":  # only relu has a nonzero conditional mean E[g3(x3) | x1 = 0]
        out = out + c12 * _div0(_sqrt0(c11 * c33 - c13 * c13), 2 * _PI * c11)
    return out


def I4(C, dact1: str, dact2: str, act3: str, act4: str, *,
       check: bool = True) -> np.ndarray:
    r"""Four-field integral :math:`I_4 = E[g_1'(x_1) g_2'(x_2) g_3(x_3) g_4(x_4)]`.

    erf (Saad & Solla 1995, eq. A3):

    .. math::

        I_4^{\rm erf} = \frac{4}{\pi^2}\frac{1}{\sqrt{\Lambda_4}}
            \arcsin\frac{\Lambda_0}{\sqrt{\Lambda_1\Lambda_2}}, \qquad
        \Lambda_4 = (1+C_{11})(1+C_{22}) - C_{12}^2,

    computed by absorbing both :math:`\mathrm{erf}'` factors
    (:math:`\Lambda_0/\sqrt{\Lambda_1\Lambda_2}` is the reweighted correlation
    :math:`\tilde C_{34}/\sqrt{(1+\tilde C_{33})(1+\tilde C_{44})}`); an erf' factor next to
    any activations reduces to :func:`I2` or a three-field form in the same way.
    A linear ``dact`` drops its factor; linear :math:`g_3, g_4` give :math:`C_{34}` for
    linear everywhere.

    Parameters
    ----------
    C : array_like, shape (..., 4, 4)
        Covariances of :math:`(x_1, x_2, x_3, x_4)`.
    dact1, dact2 : str
        Activations whose derivatives multiply :math:`x_1`, :math:`x_2`.
    act3, act4 : str
        Activations of :math:`x_3`, :math:`x_4`.
    check : bool
        Validate ``C``.
    """
    acts = (dact1, dact2, act3, act4)
    for name, a in zip(("dact1", "dact2", "act3", "act4"), acts, strict=True):
        _check_act(name, a)
    C = _check_cov(C, 4, check)
    return _expect(C, [dact1, dact2], [act3, act4], acts)


def _expect(C, dacts: list, acts: list, orig) -> np.ndarray:
    """:math:`E[\\prod_k g_{d_k}'(x_k) \\prod_l g_l(x_l)]`; derivatives first in ``C``."""
    if "erf" in dacts:
        k = dacts.index("erf")
        f, Ct = _absorb_erf_prime(C, k)
        return f * _expect(_drop(Ct, k), dacts[:k] + dacts[k + 1:], acts, orig)
    if "linear" in dacts:
        k = dacts.index("linear")
        return _expect(_drop(C, k), dacts[:k] + dacts[k + 1:], acts, orig)
    if not dacts:
        return _e_gg(acts[0], acts[1], C[..., 0, 0], C[..., 1, 1], C[..., 0, 1])
    # only steps (relu') remain among the derivatives
    n = C.shape[-1]
    if "linear" in acts:  # x = relu(x) - relu(-x)
        k = len(dacts) + acts.index("linear")
        flip = np.ones(n)
        flip[k] = -1.0
        rest = acts[:k - len(dacts)] + ["relu"] + acts[k - len(dacts) + 1:]
        return (_expect(C, dacts, rest, orig)
                - _expect(C * flip[:, None] * flip[None, :], dacts, rest, orig))
    if "erf" not in acts:
        return _relu_moment(C, (0,) * len(dacts) + (1,) * len(acts))
    if len(dacts) != 1:
        raise _unsupported("I4", orig)
    live = C[..., 0, 0] > 0  # step(0) = 0 for a null field
    if acts == ["erf", "erf"]:  # step = (1 + sign)/2, and the sign part is odd
        return np.where(live, 0.5 * _e_gg("erf", "erf", C[..., 1, 1], C[..., 2, 2],
                                          C[..., 1, 2]), 0.0)
    if acts == ["relu", "erf"]:  # E[step(x1) erf(x2) relu(x3)]
        C = C[..., [0, 2, 1], :][..., :, [0, 2, 1]]
    return np.where(live, _step_erf_relu(C), 0.0)


def _step_erf_relu(C):
    """:math:`E[\\Theta(x_1)\\,\\mathrm{erf}(x_2)\\,\\mathrm{relu}(x_3)]` (Stein on x3).

    .. math::

        C_{31}\\,p_1(0)\\,E[\\mathrm{erf}(x_2)\\Theta(x_3) | x_1 = 0]
        + C_{32}\\,E[\\Theta(x_1)\\mathrm{erf}'(x_2)\\Theta(x_3)]
        + C_{33}\\,p_3(0)\\,E[\\Theta(x_1)\\mathrm{erf}(x_2) | x_3 = 0],

    with :math:`E[\\mathrm{erf}(a)\\Theta(b)] = \arcsin(S_{ab}/\\sqrt{S_{bb}(1+S_{aa})})/\\pi`.
    ``x1 == x3`` (repeated field) reduces to :math:`E[\\mathrm{erf}(x_2)\\mathrm{relu}(x_3)]`.
    """
    c11, c22, c33 = C[..., 0, 0], C[..., 1, 1], C[..., 2, 2]
    c12, c13, c23 = C[..., 0, 1], C[..., 0, 2], C[..., 1, 2]

    def e_erf_step(saa, sbb, sab):
        return _asin(_div0(sab, _sqrt0(sbb * (1.0 + saa)))) / _PI

    with np.errstate(invalid="ignore", divide="ignore"):
        t1 = c13 * _div0(e_erf_step(c22 - _div0(c12 * c12, c11), c33 - _div0(c13 * c13, c11),
                                    c23 - _div0(c12 * c13, c11)), np.sqrt(2 * _PI * c11))
        f, Ct = _absorb_erf_prime(C, 1)
        t2 = c23 * f * _orthant2(Ct[..., 0, 0], Ct[..., 2, 2], Ct[..., 0, 2])
        t3 = c33 * _div0(e_erf_step(c22 - _div0(c23 * c23, c33), c11 - _div0(c13 * c13, c33),
                                    c12 - _div0(c23 * c13, c33)), np.sqrt(2 * _PI * c33))
    out = t1 + t2 + t3
    rho2 = _div0(c13 * c13, c11 * c33)
    dup = (rho2 >= 1.0 - _DUP_RTOL)
    if np.any(dup):  # x3 = c x1: step(x1) relu(x3) = relu(x3) (c > 0) or 0 (c < 0)
        same = _e_gg("erf", "relu", c22, c33, c23)
        out = np.where(dup, np.where(c13 > 0, same, 0.0), out)
    return out


# ------------------------------------------------------------------- ReLU: truncated moments
#: Two fields with :math:`\rho^2 \ge 1 - ` this are treated as the same field.
_DUP_RTOL = 1e-15


def _cond(C: np.ndarray, j: int) -> np.ndarray:
    """Covariance of the other fields given :math:`x_j = 0` (``C_jj > 0``)."""
    cj = C[..., :, j]
    S = C - cj[..., :, None] * cj[..., None, :] / C[..., j, j][..., None, None]
    return _drop(S, j)


def _corr(C: np.ndarray) -> np.ndarray:
    d = 1.0 / np.sqrt(np.diagonal(C, axis1=-2, axis2=-1))
    return C * d[..., :, None] * d[..., None, :]


def _relu_moment(C: np.ndarray, a: tuple) -> np.ndarray:
    """Truncated moment :math:`M(C, a) = E[\\prod_k x_k^{a_k} \\Theta(x_k)]`.

    Repeated fields (:math:`\rho_{ij}^2 \\ge 1 - 10^{-15}`) are merged first:
    :math:`x_j = c\\,x_i` gives :math:`x_i^{a_i} x_j^{a_j}\\Theta\\Theta = c^{a_j}
    x_i^{a_i + a_j}\\Theta(x_i)` for :math:`c > 0` and 0 for :math:`c < 0`; a null field
    gives 0. The merged, distinct fields go to :func:`_moment_distinct`.
    """
    C = np.asarray(C, dtype=float)
    shape = C.shape[:-2]
    n = C.shape[-1]
    Cf = C.reshape(-1, n, n)
    out = np.zeros(Cf.shape[0])
    diag = np.diagonal(Cf, axis1=-2, axis2=-1)
    live = np.all(diag > 0, axis=-1)
    if not np.any(live):
        return out.reshape(shape)
    iu, ju = np.triu_indices(n, 1)
    rho = np.zeros((Cf.shape[0], len(iu)))
    rho[live] = _corr(Cf[live])[:, iu, ju]
    dup = rho * rho >= 1.0 - _DUP_RTOL
    key = np.where(dup, np.sign(rho), 0).astype(int)  # +1 same field, -1 opposite
    for pattern in np.unique(key[live], axis=0):
        rows = live & np.all(key == pattern, axis=1)
        links = dict(zip(zip(iu, ju, strict=True), pattern, strict=True))
        out[rows] = _merged_moment(Cf[rows], a, links)
    return out.reshape(shape)


def _merged_moment(C: np.ndarray, a: tuple, links: dict) -> np.ndarray:
    n = len(a)
    parent = list(range(n))
    sign = [1] * n  # x_k = sign_k * c_k * x_parent
    for (i, j), s in sorted(links.items()):
        if s == 0 or parent[j] != j:
            continue
        if s < 0:
            return np.zeros(C.shape[0])  # step(x) step(-c x) = 0
        root = parent[i]
        parent[j] = root
        sign[j] = sign[i] * s
    if any(sg < 0 for sg in sign):
        return np.zeros(C.shape[0])
    roots = sorted(set(parent))
    coef = np.ones(C.shape[0])
    b = []
    for r in roots:
        b.append(sum(a[k] for k in range(n) if parent[k] == r))
        for k in range(n):
            if parent[k] == r and k != r and a[k]:
                coef = coef * np.sqrt(C[:, k, k] / C[:, r, r]) ** a[k]
    Cs = C[:, roots, :][:, :, roots]
    return coef * _moment_distinct(Cs, tuple(b))


def _moment_distinct(C: np.ndarray, a: tuple) -> np.ndarray:
    r""":math:`M(C, a)` for distinct fields by Stein's lemma (Tallis 1961).

    With :math:`a_i \ge 1` and :math:`b = a - e_i`:

    .. math::

        M(C, a) = \sum_{j: b_j \ge 1} C_{ij} b_j M(C, b - e_j)
            + \sum_{j: b_j = 0} C_{ij}\,p_j(0)\,M(C^{(j)}, b_{\setminus j}),

    :math:`p_j(0) = (2\pi C_{jj})^{-1/2}`, :math:`C^{(j)}` the covariance of the other
    fields given :math:`x_j = 0`. At :math:`a = 0` the orthant probability
    (:func:`_orthant`).
    """
    n = len(a)
    if n == 0:
        return np.ones(C.shape[0])
    if not any(a):
        return _orthant(C)
    i = int(np.argmax(a))
    b = list(a)
    b[i] -= 1
    out = np.zeros(C.shape[0])
    for j in range(n):
        if b[j] >= 1:
            bj = list(b)
            bj[j] -= 1
            out = out + C[:, i, j] * b[j] * _moment_distinct(C, tuple(bj))
        else:
            pj = 1.0 / np.sqrt(2 * _PI * C[:, j, j])
            out = out + C[:, i, j] * pj * _moment_distinct(_cond(C, j), tuple(b[:j] + b[j + 1:]))
    return out


def _orthant(C: np.ndarray) -> np.ndarray:
    """:math:`P(x > 0)` for ``n <= 4`` fields (closed forms for n <= 3, Plackett for 4).

    :math:`P_2 = 1/4 + \arcsin\rho/(2\\pi)`,
    :math:`P_3 = 1/8 + \\sum_{i<j}\arcsin\rho_{ij}/(4\\pi)`; :math:`P_4`: :func:`_orthant4`.
    """
    n = C.shape[-1]
    if n == 1:
        return np.where(C[:, 0, 0] > 0, 0.5, 0.0)
    if n == 2:
        return _orthant2(C[:, 0, 0], C[:, 1, 1], C[:, 0, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        R = _corr(C)
    if n == 3:
        return 0.125 + (_asin(R[:, 0, 1]) + _asin(R[:, 0, 2]) + _asin(R[:, 1, 2])) / (4 * _PI)
    return _orthant4(R)


def graded_nodes(m: int = 12, ratio: float = 0.25, levels: int = 15):
    """Gauss-Legendre nodes on [0, 1] in panels graded geometrically toward 0.

    Panels ``[ratio^(k+1), ratio^k]`` for ``k < levels`` and ``[0, ratio^levels]``,
    ``m`` nodes each. Returns ``(s, w)``.
    """
    x, w = np.polynomial.legendre.leggauss(m)
    edges = np.concatenate([[0.0], ratio ** np.arange(levels, -1, -1.0)])
    lo, hi = edges[:-1, None], edges[1:, None]
    return ((lo + hi) / 2 + (hi - lo) / 2 * x).ravel(), ((hi - lo) / 2 * w).ravel()


#: Quadrature of :func:`_orthant4` (the convergence study is in the tests).
P4_NODES = graded_nodes()


def _orthant4(R: np.ndarray, nodes=None) -> np.ndarray:
    r"""4-D orthant probability of a correlation matrix by Plackett's reduction.

    Along :math:`R(t) = I + t (R - I)` (off-diagonals scaled by ``t``),

    .. math::

        P_4(R) = \frac1{16} + \int_0^1 \sum_{i<j} R_{ij}\,
            \frac{1}{2\pi\sqrt{1 - t^2 R_{ij}^2}}
            \Big(\frac14 + \frac{\arcsin\rho_{kl\cdot ij}(t)}{2\pi}\Big)\,dt

    (Plackett 1954: :math:`\partial P/\partial\rho_{ij} = \phi_2(0, 0; \rho_{ij})\,
    P(x_k, x_l > 0 \mid x_i = x_j = 0)`; :math:`\rho_{kl\cdot ij}` the partial correlation).
    With :math:`t = 1 - s^2` the square-root endpoint singularities of singular ``R``
    become smooth; near-singular ``R`` puts branch points at :math:`s \approx \pm i
    \sqrt{\epsilon}`, resolved by the geometrically graded panels of :func:`graded_nodes`.
    """
    s, w = P4_NODES if nodes is None else nodes
    s2 = s * s
    t = 1.0 - s2
    out = np.full(R.shape[0], 1.0 / 16.0)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    Rt = R[:, :, :, None] * t  # (B, 4, 4, nodes); diagonal unused
    for i, j in pairs:
        k, m = [q for q in range(4) if q not in (i, j)]
        r = np.abs(R[:, i, j])[:, None]
        one_m_r = (1.0 - r) + s2 * r  # 1 - t |R_ij|, exact at R_ij = +-1
        dens = 1.0 / (2 * _PI * np.sqrt(one_m_r * (1.0 + t * r)))
        # partial correlations: first given x_i, then x_j
        cki, cli, cji = Rt[:, k, i], Rt[:, m, i], Rt[:, j, i]
        with np.errstate(invalid="ignore", divide="ignore"):
            def pc(a, b, ab, ca, cb):
                return (ab - ca * cb) / np.sqrt((1 - ca * ca) * (1 - cb * cb))
            kl_i = pc(k, m, Rt[:, k, m], cki, cli)
            kj_i = pc(k, j, Rt[:, k, j], cki, cji)
            lj_i = pc(m, j, Rt[:, m, j], cli, cji)
            kl_ij = (kl_i - kj_i * lj_i) / np.sqrt((1 - kj_i * kj_i) * (1 - lj_i * lj_i))
        kl_ij = np.nan_to_num(kl_ij, nan=0.0)
        f = R[:, i, j][:, None] * dens * (0.25 + _asin(kl_ij) / (2 * _PI))
        out = out + (f * (2 * s * w)).sum(axis=-1)
    return out
