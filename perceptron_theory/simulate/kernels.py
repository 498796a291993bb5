r"""Numba update rules: one SGD step of every student, as small pure functions.

Symbol map (README notation table): ``N`` input dimension, ``M`` = ``batch_size``,
``lr`` = :math:`\eta`, ``zeta`` = :math:`\zeta` (decay on :math:`\gamma`), ``S`` = label-noise
variance, :math:`h = w\cdot x`, :math:`t = w^*\cdot x`, :math:`x \sim N(0, I/N)`,
:math:`|w^*|^2 = N`.

Loss convention (the one of :mod:`perceptron_theory.theory.dynamics`)
--------------------------------------------------------------------
Per sample :math:`\ell = \tfrac12 (y - g(s))^2 + \tfrac\zeta2\gamma^2` with
:math:`y = g^*(t) + \sqrt S\,\xi`; the plain student instead (or also) carries the L2
decay :math:`\tfrac{\lambda}{2N}|w|^2` per sample (``weight_decay``; :math:`= \tfrac\lambda2
Q^2`, the plain analogue of the gamma decay), so a step of ``M`` samples multiplies
:math:`w` by :math:`1 - \eta M\lambda/N` before adding the data term.
A step on a batch of ``M`` samples descends the **sum** of the per-sample losses: the
weights move by :math:`-\eta\,\nabla_w\sum_m \ell_m`,
the scalars :math:`\gamma, \beta` by :math:`-(\eta/N)\,\partial\sum_m\ell_m` (the rate that puts
every order parameter on the time scale :math:`t = \text{samples}/N` of eq. 6). With
``M = 1`` this is exactly Luo et al. eq. (5); a torch user's mean-over-batch rate is
:math:`\eta_{\rm torch} = M\eta`.

Students
--------
* **plain** (``sgd``): :math:`s = h`.
* **normalized**: :math:`\hat h_m = (h_m - \mu)/\sigma`, :math:`s_m = \gamma\hat h_m + \beta`,
  where the centre :math:`\mu` is the batch mean :math:`\mu_B` or the population mean
  :math:`\mu_P = 0`, and the scale :math:`\sigma` is the batch standard deviation
  :math:`\sigma_B = (\overline{(h-\mu_B)^2} + \epsilon)^{1/2}` or the population one
  :math:`\sigma_P = |w|/\sqrt N` (exact for Gaussian inputs; differentiated through ``w``,
  so population normalization *is* weight normalization plus a bias). Batch statistics
  are taken over virtual batches of ``ghost`` samples (``ghost = M``: ordinary BN).
  The backward pass through the statistics, with :math:`G_m = \partial\ell/\partial\hat h_m
  = -\gamma\delta_m`, :math:`\delta = g'(s)(y - g(s))`, :math:`z_m = (h_m-\mu_B)/\sigma`:

  .. math::

      \frac{\partial \sum\ell}{\partial h_m} = \frac1\sigma\Big(G_m
          - [\mu{=}\mu_B]\,\overline{G} - [\sigma{=}\sigma_B]\, z_m\,\overline{G\hat h}\Big),
      \qquad
      \frac{\partial \sum\ell}{\partial w} = \sum_m \frac{\partial\sum\ell}{\partial h_m} x_m
          - [\sigma{=}\sigma_P]\,\frac{\sum_m G_m\hat h_m}{N\sigma_P^2}\, w .

  With :math:`\mu = \mu_P, \sigma = \sigma_P` this is the weight-normalized gradient
  :math:`-\gamma\delta\, x_\perp / L` of Luo et al. eq. (5).

Test time: batch statistics are replaced by running averages (momentum ``0.1``, unbiased
variance, as ``torch.nn.BatchNorm``); population statistics are exact.

Activations: codes ``0`` linear, ``1`` ReLU, ``2`` :math:`\mathrm{erf}(x/\sqrt2)` (Saad & Solla).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from perceptron_theory.simulate._rng import fill_normal, fill_normal_dot, next_u64, normal

#: The code :func:`act` / :func:`dact` branch on, for each of
#: :data:`perceptron_theory.vocabulary.ACTIVATIONS` (a test checks the keys).
ACTIVATION_CODES = {"linear": 0, "relu": 1, "erf": 2}
BN_EPS = 1e-5
RUNNING_MOMENTUM = 0.1
# a run counts as diverged once L^2, gamma^2 or beta^2 exceed this (or turn non-finite)
DIVERGENCE_BOUND = 1e12

_SQRT2 = math.sqrt(2.0)
# reassociation lets LLVM vectorize the O(MN) dot products and the update (the RNG is
# integer arithmetic and unaffected); no NaN/inf assumptions: divergence must stay visible
_FAST = {"reassoc", "contract", "nsz", "arcp"}
_SQRT2_PI = math.sqrt(2.0 / math.pi)


def numpy_act(activation: str):
    """g as a numpy function of arrays, for read-outs outside the kernels (the same three
    activations as :func:`act`)."""
    if activation == "linear":
        return lambda x: x
    if activation == "relu":
        return lambda x: np.maximum(x, 0.0)
    from scipy.special import erf

    return lambda x: erf(x / _SQRT2)


@njit(cache=True, inline="always")
def act(code, x):
    """g(x) for activation ``code``."""
    if code == 0:
        return x
    if code == 1:
        return x if x > 0.0 else 0.0
    return math.erf(x / _SQRT2)


@njit(cache=True, inline="always")
def dact(code, x):
    """g'(x) for activation ``code`` (ReLU: 1 for x > 0, else 0)."""
    if code == 0:
        return 1.0
    if code == 1:
        return 1.0 if x > 0.0 else 0.0
    return _SQRT2_PI * math.exp(-0.5 * x * x)


@njit(cache=True)
def labels(t, teacher, noise_std, state, y):
    """``y[m] = g*(t[m]) + noise_std * xi`` (shape=(M,)), in place."""
    if noise_std > 0.0:
        fill_normal(state, y, noise_std)  # in bulk: see the cost note in ._rng
    else:
        y[:] = 0.0
    for m in range(t.shape[0]):
        y[m] += act(teacher, t[m])


@njit(cache=True)
def plain_grads(h, y, student, dh):
    """Plain student ``s = h``: ``dh[m] = d(sum l)/dh_m`` (shape=(M,)); returns 0 (no w-term)."""
    for m in range(h.shape[0]):
        dh[m] = -dact(student, h[m]) * (y[m] - act(student, h[m]))
    return 0.0


@njit(cache=True)
def normalized_grads(h, y, gamma, beta, sigma_pop, center_batch, scale_batch, ghost, student,
                     zeta, inv_n, dh, stats):
    """Backward pass of the normalized student on one batch.

    ``h``, ``y``, ``dh`` shape=(M,). Writes ``dh[m] = d(sum l)/dh_m`` and returns
    ``(c_w, g_gamma, g_beta)``: the coefficient of ``w`` in ``d(sum l)/dw``, and the
    gradients of ``sum l`` (decay included) with respect to gamma and beta.
    ``stats`` (shape=(2,)) receives the mean over virtual batches of the batch mean and
    of the unbiased batch variance (for the running statistics).
    """
    M = h.shape[0]
    g_gamma = 0.0
    g_beta = 0.0
    sum_g_hhat = 0.0  # for the population-scale w-term
    stats[0] = 0.0
    stats[1] = 0.0
    n_chunks = M // ghost
    for c in range(n_chunks):
        lo = c * ghost
        hi = lo + ghost
        mu_b = 0.0
        for m in range(lo, hi):
            mu_b += h[m]
        mu_b /= ghost
        var_b = 0.0
        for m in range(lo, hi):
            var_b += (h[m] - mu_b) ** 2
        var_b /= ghost
        if ghost > 1:
            stats[0] += mu_b / n_chunks
            stats[1] += var_b * ghost / (ghost - 1) / n_chunks
        mu = mu_b if center_batch else 0.0
        sigma = math.sqrt(var_b + BN_EPS) if scale_batch else sigma_pop
        mean_g = 0.0
        mean_g_hhat = 0.0
        for m in range(lo, hi):
            hhat = (h[m] - mu) / sigma
            s = gamma * hhat + beta
            delta = dact(student, s) * (y[m] - act(student, s))
            g = -gamma * delta
            dh[m] = g  # provisional: G_m
            mean_g += g / ghost
            mean_g_hhat += g * hhat / ghost
            g_gamma -= delta * hhat
            g_beta -= delta
        sum_g_hhat += mean_g_hhat * ghost
        for m in range(lo, hi):
            v = dh[m]
            if center_batch:
                v -= mean_g
            if scale_batch:
                v -= (h[m] - mu_b) / sigma * mean_g_hhat
            dh[m] = v / sigma
    g_gamma += M * zeta * gamma
    c_w = 0.0
    if not scale_batch:
        c_w = -sum_g_hhat * inv_n / (sigma_pop * sigma_pop)
    return c_w, g_gamma, g_beta


# -------------------------------------------------------------------------- randomness
@njit(cache=True, inline="always")
def _uniform(state):
    return ((next_u64(state) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def chi2(state, k, z0=np.nan):
    """A chi-square variate with ``k`` >= 1 degrees of freedom (Marsaglia & Tsang 2000 gamma).

    ``z0``, if given, is a standard normal drawn in bulk by the caller and used for the first
    attempt (accepted with probability > 0.95 for k >= 3); later attempts draw their own.
    """
    a = 0.5 * k
    boost = 1.0
    if a < 1.0:  # Gamma(a) = Gamma(a + 1) U^(1/a)
        boost = _uniform(state) ** (1.0 / a)
        a += 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    first = not math.isnan(z0)
    while True:
        if first:
            x = z0
            first = False
        else:
            x = normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        if math.log(_uniform(state)) < 0.5 * x * x + d - d * v + d * math.log(v):
            return 2.0 * d * v * boost


@njit(cache=True)
def gram_quadratic(dh, state, dof, inv_n, z):
    """``|sum_m dh_m r_m|^2`` for independent ``r_m ~ N(0, I_dof / N)`` without the vectors.

    Bartlett decomposition of the Wishart Gram matrix ``r_m . r_n = (T T^T)_mn / N``:
    ``T`` lower triangular, ``T_jj^2 ~ chi^2_{dof - j}``, ``T_ij ~ N(0, 1)`` (i > j);
    returns ``|T^T dh|^2 / N``. ``dh`` shape=(M,); ``z`` shape=(M (M + 1) / 2,) scratch
    for the normals, drawn in bulk.
    """
    M = dh.shape[0]
    fill_normal(state, z, 1.0)
    total = 0.0
    k = M
    for j in range(M):
        acc = math.sqrt(chi2(state, dof - j, z[j])) * dh[j]
        for i in range(j + 1, M):
            acc += z[k] * dh[i]
            k += 1
        total += acc * acc
    return total * inv_n


def reduced_scratch_size(M: int) -> int:
    """Length of the scratch array :func:`reduced_step` needs for batch size ``M``."""
    return 2 * M + M * (M + 1) // 2


# ------------------------------------------------------------------------------ steps
# cfg (int64):  [student, teacher, normalized, center_batch, scale_batch, ghost, learn_beta,
#                freeze_L]
# prm (float64): [lr, zeta, noise_std, L_frozen(, weight_decay)]: the plain student's L2
#                decay, absent = 0
# sc (float64):  [gamma, beta, |w|^2 / N, w.w* / N, running mean, running variance]
CFG_FIELDS = ("student", "teacher", "normalized", "center_batch", "scale_batch", "ghost",
              "learn_beta", "freeze_L")
SC_FIELDS = ("gamma", "beta", "q2", "c", "running_mean", "running_var")


@njit(cache=True)
def _grads(cfg, prm, h, y, dh, stats, sc, inv_n):
    """Dispatch to the plain or normalized backward pass; returns (c_w, g_gamma, g_beta).

    The plain student's L2 decay ``prm[4]`` (absent: 0) adds ``M lambda / N`` to ``c_w``.
    """
    if cfg[2] == 0:
        wd = prm[4] if prm.shape[0] > 4 else 0.0
        return plain_grads(h, y, cfg[0], dh) + h.shape[0] * wd * inv_n, 0.0, 0.0
    return normalized_grads(h, y, sc[0], sc[1], math.sqrt(sc[2]), cfg[3] != 0, cfg[4] != 0,
                            cfg[5], cfg[0], prm[1], inv_n, dh, stats)


@njit(cache=True)
def _scalars_update(cfg, prm, sc, g_gamma, g_beta, stats, inv_n):
    """gamma, beta with rate lr/N; running statistics with momentum 0.1."""
    if cfg[2] == 0:
        return
    sc[0] -= prm[0] * inv_n * g_gamma
    if cfg[6] != 0:
        sc[1] -= prm[0] * inv_n * g_beta
    if cfg[3] != 0 or cfg[4] != 0:
        sc[4] = (1.0 - RUNNING_MOMENTUM) * sc[4] + RUNNING_MOMENTUM * stats[0]
        sc[5] = (1.0 - RUNNING_MOMENTUM) * sc[5] + RUNNING_MOMENTUM * stats[1]


@njit(cache=True, fastmath=_FAST)
def vector_update(cfg, prm, w, w_star, X, h, y, dh, stats, sc):
    """The update on a given batch: ``X`` shape=(M, N), ``h = X w`` and ``y`` shape=(M,).

    Updates ``w`` (shape=(N,)) and ``sc`` (shape=(6,), ``SC_FIELDS``) in place; ``dh``
    and ``stats`` are scratch.
    """
    M, N = X.shape
    inv_n = 1.0 / N
    c_w, g_gamma, g_beta = _grads(cfg, prm, h, y, dh, stats, sc, inv_n)
    lr = prm[0]
    shrink = 1.0 - lr * c_w
    for i in range(N):
        w[i] *= shrink
    for m in range(M):  # one vectorizable pass per sample
        c = -lr * dh[m]
        for i in range(N):
            w[i] += c * X[m, i]
    w2 = 0.0
    ww = 0.0
    for i in range(N):
        w2 += w[i] * w[i]
        ww += w[i] * w_star[i]
    if cfg[7] != 0:  # keep |w| / sqrt(N) = L_frozen (the output does not depend on |w|)
        f = prm[3] / math.sqrt(w2 * inv_n)
        for i in range(N):
            w[i] *= f
        w2 *= f * f
        ww *= f
    sc[2] = w2 * inv_n
    sc[3] = ww * inv_n
    _scalars_update(cfg, prm, sc, g_gamma, g_beta, stats, inv_n)


@njit(cache=True, fastmath=_FAST)
def vector_step(cfg, prm, w, w_star, X, h, t, y, dh, stats, state, sc):
    """One online SGD step with full input vectors (the literal simulation).

    ``w``, ``w_star`` shape=(N,); ``X`` shape=(M, N), overwritten with the fresh batch;
    ``h``, ``t``, ``y``, ``dh`` shape=(M,); ``stats`` shape=(2,); ``sc`` shape=(6,)
    (``SC_FIELDS``), updated in place together with ``w``.
    """
    M, N = X.shape
    scale = math.sqrt(1.0 / N)
    for m in range(M):
        h[m], t[m] = fill_normal_dot(state, X[m], scale, w, w_star)
    labels(t, cfg[1], prm[2], state, y)
    vector_update(cfg, prm, w, w_star, X, h, y, dh, stats, sc)


@njit(cache=True)
def reduced_step(cfg, prm, N, z, h, t, y, dh, stats, state, sc):
    """One SGD step of the same update, exact in distribution, without the N-vectors.

    Rotational invariance: with ``e1 = w*/sqrt(N)`` and ``e2`` the unit vector of ``w``'s
    component orthogonal to it, write ``x_m = a_m e1 + b_m e2 + r_m``; ``a_m, b_m ~ N(0, 1/N)``
    and ``r_m ~ N(0, I_{N-2}/N)`` in the orthogonal complement. The forward and backward
    passes need only ``(a_m, b_m)``; after the step ``w . e1`` and ``w . e2`` are explicit
    and the out-of-plane part has squared norm ``lr^2 |sum_m dh_m r_m|^2`` (Wishart Gram,
    :func:`gram_quadratic`). The next batch is again isotropic, so the order parameters
    ``(|w|^2/N, w.w*/N)`` are an exact Markov chain: the law of the trajectory is that of
    :func:`vector_step` at the same ``N``, at ``O(M^2)`` cost per step instead of ``O(MN)``.
    ``z`` shape=(``reduced_scratch_size(M)``,) scratch.
    """
    M = h.shape[0]
    inv_n = 1.0 / N
    q = math.sqrt(sc[2])
    R = sc[3] / q
    if R > 1.0:
        R = 1.0
    elif R < -1.0:
        R = -1.0
    p = math.sqrt(max(1.0 - R * R, 0.0))
    sqrt_n = math.sqrt(N)
    ab = z[:2 * M]  # (a_m, b_m) interleaved
    fill_normal(state, ab, math.sqrt(inv_n))
    for m in range(M):
        h[m] = sqrt_n * q * (R * ab[2 * m] + p * ab[2 * m + 1])
        t[m] = sqrt_n * ab[2 * m]
    labels(t, cfg[1], prm[2], state, y)
    c_w, g_gamma, g_beta = _grads(cfg, prm, h, y, dh, stats, sc, inv_n)
    lr = prm[0]
    shrink = 1.0 - lr * c_w
    # in-plane coordinates of w (units of sqrt N) after the step
    u1 = shrink * q * R
    u2 = shrink * q * p
    for m in range(M):
        u1 -= lr * dh[m] * ab[2 * m] / sqrt_n
        u2 -= lr * dh[m] * ab[2 * m + 1] / sqrt_n
    out2 = lr * lr * gram_quadratic(dh, state, N - 2, inv_n, z[2 * M:]) * inv_n
    q2 = u1 * u1 + u2 * u2 + out2
    if cfg[7] != 0:
        f = prm[3] * prm[3] / q2
        q2 *= f
        u1 *= math.sqrt(f)
    sc[2] = q2
    sc[3] = u1
    _scalars_update(cfg, prm, sc, g_gamma, g_beta, stats, inv_n)
