r"""Luo et al.'s Theorem 1: BN = PN + :math:`\zeta(h)\gamma^2` (claim L-eq3).

The adaptive decay :func:`zeta_theorem1`, the population-normalized loss and its
stationary points (:func:`pn_loss`, :func:`pn_stationary_gamma`,
:func:`pn_stationary_point`) and the deterministic surrogate
:func:`pn_loss_plus_decay`. Notation and conventions: :mod:`.batchnorm`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _stats

from perceptron_theory._checks import check_array, check_choice, check_int, check_real
from perceptron_theory.theory.batchnorm.losses import LOSSES, _check_hy, _standardize
from perceptron_theory.theory.batchnorm.noise import _check_batch_size, inverse_std_moment
from perceptron_theory.theory.conventions import DECAY_CONVENTIONS, PER_SAMPLE_CONVENTIONS

__all__ = [
    "ZetaTheorem1", "zeta_theorem1", "pn_loss", "pn_stationary_gamma", "pn_stationary_point",
    "pn_loss_plus_decay",
]


@dataclass(frozen=True)
class ZetaTheorem1:
    """Luo et al.'s adaptive decay factor and its ingredients."""

    zeta: float
    sigma_part: float
    mu_part: float
    rho: float
    fisher: float
    mean_curvature: float
    batch_size: int
    convention: str
    fisher_estimate: str

    def to_dict(self) -> dict:
        return asdict(self)


def zeta_theorem1(h, batch_size: int, curvature, *, rho: float | None = None,
                  dloss_dgamma=None, centered: bool = True, convention: str = "theorem1",
                  moments: str = "leading") -> ZetaTheorem1:
    r"""Adaptive gamma-decay factor :math:`\zeta(h)` of Luo et al. Theorem 1 (eq. 3).

    .. math::

        \zeta(h) = \frac{\rho + 2}{8M}\, I(\gamma) + \frac{1}{2M}\,\overline{A''}, \qquad
        I(\gamma) = \frac1P\sum_j A''(\tilde h_j)\,\hat h_j^2, \qquad
        \overline{A''} = \frac1P \sum_j A''(\tilde h_j),

    with :math:`\hat h_j = (h_j - \bar h)/\mathrm{sd}(h)` and the curvature
    :math:`A''(\tilde h_j)` of the per-sample loss in the post-BN pre-activation
    (1 for ``mse``; :math:`\mathrm{sigmoid}(\tilde h)` for ``glm-softplus``, the paper's
    ReLU case where :math:`\overline{A''}` is the mean sigmoid). From the second-order
    Taylor term :math:`R_q = \frac12\overline{A'' E(\tilde h_{BN}-\tilde h)^2}` with
    :math:`\mathrm{Var}\,\sigma_B \approx \sigma_P^2(\rho+2)/(4M)` and
    :math:`E(\mu_B-\mu_P)^2/\sigma_B^2 \approx 1/M`, dropping :math:`O(M^{-2})`.
    The first-order term :math:`R_f` is omitted (it vanishes at a PN-stationary gamma).

    Source: Luo et al. 2019, eq. 3 and App. C.1-C.2 (convention: loss
    :math:`A(\tilde h) - y\tilde h`, i.e. the *halved* squared error for ``mse``, plus
    :math:`\zeta\gamma^2`; ``convention="decay2"`` doubles it). The paper's text defines
    :math:`I(\gamma) = \frac1P\sum_j (\partial\ell_j/\partial\gamma)^2` (outer product);
    its proof uses the Hessian form :math:`A''\hat h^2` above. The two agree in
    expectation only at the true model (:math:`E[(A'-y)^2|h] = A''`); pass
    ``dloss_dgamma`` to use the outer-product estimate. ``centered=False``
    (variance-only BN): mean part 0, sigma part unchanged at this order.

    ``moments="gaussian-exact"`` keeps the whole second-order term of the independence
    model with the exact Gaussian-h moments :math:`c_1 = \sigma_P E[1/\sigma_B]`,
    :math:`c_2 = \sigma_P^2 E[1/\sigma_B^2]` (:func:`inverse_std_moment`) instead of
    their 1/M expansions:

    .. math::

        \zeta = \frac{c_2 - 2c_1 + 1}{2}\, I(\gamma) + \frac{c_2}{2M}\,\overline{A''},

    exactly :math:`R_q/\gamma^2` for Gaussian h (``rho`` is then not used and reported
    as 0). Its excess over the leading form is the :math:`O(M^{-2})` term Theorem 1
    drops: :math:`(71/32)\,I/M^2 + (3/2)\,\overline{A''}/M^2 + \dots`, large at small
    M (at M = 8 the exact value is about twice the leading one).

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values :math:`h_j = w^T x_j`.
    batch_size : int
        :math:`M \ge 2`.
    curvature : array_like, shape (P,) or scalar
        :math:`A''(\tilde h_j) \ge 0`.
    rho : float, optional
        Excess kurtosis of h; estimated by ``scipy.stats.kurtosis`` (Fisher, biased)
        when omitted.
    dloss_dgamma : array_like, shape (P,), optional
        Per-sample :math:`\partial\ell_j/\partial\gamma`; if given,
        :math:`I(\gamma) = \overline{(\partial\ell/\partial\gamma)^2}`.
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).
    convention : {"theorem1", "decay2"}
        Loss convention (module docstring).
    moments : {"leading", "gaussian-exact"}
        1/M-expanded noise moments (Theorem 1) or exact Gaussian-h moments.

    Returns
    -------
    ZetaTheorem1
    """
    h = check_array("h", h, min_size=2)
    if h.ndim != 1:
        raise ValueError(f"h must be one-dimensional, got shape {h.shape}")
    M = _check_batch_size(batch_size)
    curv = check_array("curvature", curvature, 0.0)
    if curv.ndim == 0:
        curv = np.full_like(h, float(curv))
    if curv.shape != h.shape:
        raise ValueError(f"curvature must be a scalar or have the shape of h {h.shape}, "
                         f"got {curv.shape}")
    convention = check_choice("convention", convention, PER_SAMPLE_CONVENTIONS)
    moments = check_choice("moments", moments, ("leading", "gaussian-exact"))
    if moments == "gaussian-exact":
        nu = M - 1 if centered else M
        if nu <= 2:
            raise ValueError(f"batch_size must be >= {4 if centered else 3} for "
                             f"moments='gaussian-exact' (E[1/sigma_B^2] finite); got {M}")
    hhat, _, _ = _standardize(h)
    if moments == "gaussian-exact":
        rho = 0.0
    elif rho is None:
        rho = float(_stats.kurtosis(h, fisher=True, bias=True))
    rho = check_real("rho", rho, -2.0)
    if dloss_dgamma is None:
        fisher, est = float(np.mean(curv * hhat**2)), "hessian"
    else:
        g = check_array("dloss_dgamma", dloss_dgamma)
        if g.shape != h.shape:
            raise ValueError(f"dloss_dgamma must have the shape of h {h.shape}, got {g.shape}")
        fisher, est = float(np.mean(g**2)), "outer"
    f = DECAY_CONVENTIONS[convention].theorem1_factor
    mean_curv = float(curv.mean())
    if moments == "leading":
        sig = f * (rho + 2.0) / (8.0 * M) * fisher
        mu = f * mean_curv / (2.0 * M) if centered else 0.0
    else:
        c1 = inverse_std_moment(M, 1.0, centered=centered)
        c2 = inverse_std_moment(M, 2.0, centered=centered)
        sig = f * 0.5 * (c2 - 2.0 * c1 + 1.0) * fisher
        mu = f * 0.5 * c2 / M * mean_curv if centered else 0.0
    return ZetaTheorem1(sig + mu, sig, mu, rho, fisher, mean_curv, M, convention, est)


def pn_loss(h, y, gamma: float, beta: float = 0.0, loss: str = "mse") -> float:
    r"""Population-normalized loss :math:`\frac1P\sum_j \ell(\gamma\hat h_j + \beta, y_j)`.

    :math:`\hat h = (h - \mu_P)/\sigma_P` with :math:`\mu_P, \sigma_P` the mean and
    (ddof 0) standard deviation of the ``h`` passed: the data are the population.

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values.
    y : array_like, shape (P,)
        Targets.
    gamma : float
        BN scale.
    beta : float
        BN shift.
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.

    Returns
    -------
    float
    """
    h, y = _check_hy(h, y)
    gamma = check_real("gamma", gamma)
    beta = check_real("beta", beta)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    hhat, _, _ = _standardize(h)
    return float(np.mean(L.value(gamma * hhat + beta, y)))


def pn_stationary_gamma(h, y, beta: float = 0.0, loss: str = "mse") -> float:
    r"""Gamma where the PN loss is stationary, :math:`\overline{(A'(\tilde h) - y)\hat h} = 0`.

    For ``mse`` this is :math:`\overline{y\hat h}` (closed form); otherwise a bracketed
    root (the PN loss is convex in gamma, :math:`A'' > 0`). At this gamma the first-order
    term :math:`R_f` of Theorem 1 vanishes.

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values.
    y : array_like, shape (P,)
        Targets.
    beta : float
        BN shift (held fixed).
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.

    Returns
    -------
    float
    """
    from scipy.optimize import brentq

    h, y = _check_hy(h, y)
    beta = check_real("beta", beta)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    hhat, _, _ = _standardize(h)
    if loss == "mse":
        return float(np.mean((y - beta) * hhat) / np.mean(hhat**2))

    def grad(g):
        return float(np.mean((L.mean(g * hhat + beta) - y) * hhat))

    lo, hi = -1.0, 1.0
    for _ in range(60):
        if grad(lo) < 0 < grad(hi):
            break
        lo, hi = 2 * lo, 2 * hi
    else:  # pragma: no cover - separable data
        raise ValueError("the PN loss has no stationary gamma (data separable in gamma)")
    return float(brentq(grad, lo, hi, xtol=1e-14, rtol=1e-14))


def pn_stationary_point(h, y, loss: str = "mse", *, tol: float = 1e-12,
                        max_iter: int = 200) -> tuple[float, float]:
    r"""Joint PN-stationary :math:`(\gamma, \beta)`.

    Solves :math:`\overline{(A'(\tilde h) - y)\hat h} = \overline{A'(\tilde h) - y} = 0`.

    The PN loss is convex in :math:`(\gamma, \beta)` (:math:`A'' > 0`); solved by damped
    Newton steps with Hessian :math:`\overline{A''\,[\hat h^2, \hat h; \hat h, 1]}`
    (closed form :math:`(\overline{y\hat h}, \bar y)` for ``mse``). At this point both
    first-order terms of the independence model vanish; in real batches the term
    :math:`-\frac{\gamma}{2M}\overline{(A'-y)\hat h^3}` survives
    (:func:`real_batch_leading_excess`).

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values.
    y : array_like, shape (P,)
        Targets.
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.
    tol : float
        Tolerance on the gradient norm.
    max_iter : int
        Newton iterations.

    Returns
    -------
    tuple of float
        :math:`(\gamma, \beta)`.
    """
    h, y = _check_hy(h, y)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    tol = check_real("tol", tol, 0.0, lo_open=True)
    max_iter = check_int("max_iter", max_iter, 1)
    hhat, _, _ = _standardize(h)
    if loss == "mse":
        return float(np.mean(y * hhat)), float(np.mean(y))

    def obj(p):
        return float(np.mean(L.value(p[0] * hhat + p[1], y)))

    p = np.array([0.0, 0.0])
    f = obj(p)
    for _ in range(max_iter):
        ht = p[0] * hhat + p[1]
        r, c = L.mean(ht) - y, L.curvature(ht)
        g = np.array([np.mean(r * hhat), np.mean(r)])
        if np.sqrt(g @ g) < tol:
            break
        H = np.array([[np.mean(c * hhat**2), np.mean(c * hhat)], [np.mean(c * hhat), np.mean(c)]])
        step = np.linalg.solve(H, g)
        t = 1.0
        while t > 1e-8:
            fn = obj(p - t * step)
            if fn <= f:
                break
            t *= 0.5
        p, f = p - t * step, fn
    else:
        raise ValueError(f"no PN-stationary point found in max_iter={max_iter} Newton steps "
                         "(data separable?)")
    return float(p[0]), float(p[1])


def pn_loss_plus_decay(h, y, gamma: float, beta: float = 0.0, batch_size: int = 32,
                       loss: str = "mse", *, rho: float | None = None,
                       centered: bool = True) -> float:
    r"""Luo et al.'s deterministic surrogate of BN: PN loss :math:`+\ \zeta(h)\gamma^2`.

    .. math::

        \frac1P\sum_j E_{\mu_B,\sigma_B}\,\ell(\tilde h_{BN,j}) \simeq
        \frac1P\sum_j \ell(\tilde h_j) + \zeta(h)\gamma^2,

    :math:`\zeta(h)` from :func:`zeta_theorem1` with the curvature
    :math:`A''(\gamma\hat h + \beta)` of ``loss`` (``theorem1`` convention). Source:
    Luo et al. 2019, eq. 3 / Theorem 1; valid up to :math:`O(M^{-2})` and up to the
    first-order term :math:`R_f`, which vanishes at :func:`pn_stationary_gamma`.

    Parameters
    ----------
    h : array_like, shape (P,)
        Pre-BN values.
    y : array_like, shape (P,)
        Targets.
    gamma : float
        BN scale.
    beta : float
        BN shift.
    batch_size : int
        :math:`M \ge 2`.
    loss : {"mse", "glm-softplus"}
        Key of :data:`LOSSES`.
    rho : float, optional
        Excess kurtosis of h (estimated when omitted).
    centered : bool
        Standard BN (``True``) or variance-only BN (``False``).

    Returns
    -------
    float
    """
    h, y = _check_hy(h, y)
    gamma = check_real("gamma", gamma)
    beta = check_real("beta", beta)
    L = LOSSES[check_choice("loss", loss, LOSSES)]
    M = _check_batch_size(batch_size)
    hhat, _, _ = _standardize(h)
    z = zeta_theorem1(h, M, L.curvature(gamma * hhat + beta), rho=rho, centered=centered)
    return pn_loss(h, y, gamma, beta, loss) + z.zeta * gamma**2
