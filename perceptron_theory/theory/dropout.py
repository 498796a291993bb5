r"""Dropout on the embedding before a linear last layer, as an additive penalty.

Symbol map (Dauphin & Cubuk 2021, Sec. 2.1 and 3.1): ``h`` = :math:`\mathrm{Emb}(x) \in
\mathbb{R}^H`, one row per sample, shape ``(N, H)``; ``W`` = :math:`\mathbf W \in
\mathbb{R}^{K\times H}` (column :math:`W_{:j}` belongs to embedding unit :math:`j`);
``b`` = the last layer's bias; ``p`` = the drop probability; the mask
:math:`m_j \sim \mathrm{Bernoulli}(1-p)` i.i.d. over units and samples. *Inverted*
dropout (``torch.nn.Dropout``, ``deep.models``' ``dropout_placement="before-last"``)
feeds :math:`m\odot h/(1-p)` to the last layer; plain dropout feeds :math:`m\odot h`.
:math:`E` without subscript is the mean over the ``N`` samples.

Squared loss (exact)
--------------------
.. math::

    E_m\lVert y - W(m\odot h)/(1-p) - b\rVert^2
      = \lVert y - Wh - b\rVert^2 + \lambda \sum_j h_j^2 \lVert W_{:j}\rVert^2,
    \qquad \lambda = \frac{p}{1-p},

(plain dropout: :math:`\lVert y - (1-p)Wh - b\rVert^2 + p(1-p)\sum_j h_j^2\lVert
W_{:j}\rVert^2`). Averaged over samples the penalty is :math:`\lambda R_{Dropout}`,

.. math::

    R_{Dropout} = \mathrm{tr}\big(W\,\mathrm{diag}(E[hh^T])\,W^T\big)
                = \sum_j E[h_j^2]\,\lVert W_{:j}\rVert^2 ,

exactly Dauphin & Cubuk's eq. before (5) (after Wang & Manning 2013), whose unstated
:math:`\lambda` is :math:`p/(1-p)` for inverted dropout and unhalved, summed squared error.

Relation to FL2 / EL2 (:func:`penalty_relations`)
------------------------------------------------
With :math:`K R_{FL2} = E\lVert Wh\rVert^2` and :math:`H R_{EL2} = E\lVert h\rVert^2`
(eqs. 2-3; the bias left out of :math:`NN`):

* :math:`K R_{FL2} = R_{Dropout} + \sum_{j\ne k}(W^TW)_{jk}E[h_jh_k]` exactly; the paper's
  ":math:`\approx`" is ``=`` iff the sum vanishes, e.g. when the *uncentered* second
  moments are diagonal (:math:`E[h_jh_k] = 0`, which a ReLU / Swish embedding with
  positive means violates) or when :math:`W` has orthogonal columns.
* :math:`\min_j\lVert W_{:j}\rVert^2\, H R_{EL2} \le R_{Dropout} \le
  \max_j\lVert W_{:j}\rVert^2\, H R_{EL2}`, with
  :math:`R_{Dropout} = \lVert W\rVert_F^2 R_{EL2}` (EL2 scaled by the squared weight
  norm) when all columns have the same norm or all units the same
  :math:`E[h_j^2]`.
* Eq. 5's bound :math:`R_{Dropout} \le \frac14\lVert W\rVert^4 + \frac H4 R_{EL2}` is
  **wrong**: the left side is invariant under :math:`h\to ch, W\to W/c` (same network,
  same dropout loss) while the right side, minimized over :math:`c`, is
  :math:`\frac34 2^{-2/3}(\lVert W\rVert_F^2\, H R_{EL2})^{2/3}`, so an equivalent
  rescaled network violates it whenever :math:`R_{Dropout}` exceeds that; e.g.
  :math:`H=K=1, W=1, h=1`: :math:`1 > \frac12`. Correct (largest column norm, then AM-GM):
  :math:`R_{Dropout} \le \lVert W\rVert_F^2\, H R_{EL2} \le
  \frac14\big(\lVert W\rVert_F^2 + H R_{EL2}\big)^2`; the paper's right side is this
  square with the cross term dropped and :math:`R_{EL2}` not squared (Sec. 2.1's
  unsquared :math:`E\lVert NN\rVert \le \frac12\lVert W\rVert^2 + \frac H2 R_{EL2}` is
  correct).

Softmax cross-entropy (approximate)
-----------------------------------
With :math:`z_0 = Wh + b`, :math:`s = \mathrm{softmax}(z_0)`, the logit Hessian
:math:`A = \mathrm{diag}(s) - ss^T` and :math:`v_j = h_j W_{:j}`, the perturbation
:math:`\delta = \sum_j \xi_j v_j` (:math:`\xi_j = m_j/(1-p) - 1`, mean 0, variance
:math:`\lambda`) gives (Wang & Manning 2013; Wager et al. 2013)

.. math::

    E_m[\ell] - \ell(z_0) \approx \frac{\lambda}{2}\sum_j v_j^T A\, v_j
    \qquad \text{("quadratic")},

and, exact to first order in :math:`p` (one dropped unit at a time),

.. math::

    E_m[\ell] - \ell(z_0) = \lambda \sum_j D(v_j) + O(p^2), \quad
    D(v) = \mathrm{lse}(z_0 - v) - \mathrm{lse}(z_0) + s^Tv
    \qquad \text{("bregman")},

the Bregman divergence of log-sum-exp (label independent, like the quadratic, and
:math:`D(v) = \frac12 v^TAv + O(\lVert v\rVert^3)`). Rates (tested): at fixed
:math:`W, h` the quadratic's error is :math:`p\,c_3 + O(p^2)` with
:math:`c_3 = E\sum_j(D(v_j) - \frac12 v_j^TAv_j)` (:func:`quadratic_error_coefficient`):
it shrinks **linearly** in p, like the penalty itself, so its *relative* error does not
vanish as :math:`p\to0`; it does vanish with the size of the logit perturbation,
:math:`W\to sW` giving error :math:`O(s^3)` against a penalty :math:`O(s^2)` (the
paper's low-confidence regime). On a wide layer (:math:`W \sim N(0, 1/H)`,
:math:`v_j = O(H^{-1/2})`) :math:`c_3 = O(H^{-1/2})` is small, but :math:`\delta`, a sum
of H terms, stays :math:`O(\sqrt{\lambda})`: the error there is
:math:`O(pH^{-1/2}) + O(p^2)`. The Bregman form's error is :math:`O(p^2)`. At uniform
softmax (:math:`z_0` constant) :math:`A = (I - \mathbf 1\mathbf 1^T/K)/K`, and the quadratic
penalty is
:math:`\frac{\lambda}{2K}\sum_j h_j^2\lVert W_{:j} - \bar W_{j}\rVert^2` (column mean
:math:`\bar W_j` removed): :math:`\frac{\lambda}{2K}R_{Dropout}` for column-centred
:math:`W`, a factor :math:`1/(2K)` below the squared loss, so
:math:`\approx\frac{\lambda}{2}R_{FL2}` for decorrelated features.

Examples
--------
>>> import numpy as np
>>> from perceptron_theory.theory import dropout as dp
>>> W, h = np.array([[1.0, 2.0]]), np.array([[1.0, 1.0]])
>>> float(dp.dropout_regularizer(W, h)), dp.dropout_strength(0.5)
(5.0, 1.0)
>>> r = dp.penalty_relations(np.array([[1.0]]), np.array([[1.0]]))
>>> r.r_dropout, r.paper_bound, r.paper_bound_holds
(1.0, 0.5, False)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import logsumexp, softmax

from perceptron_theory._checks import check_array, check_choice, check_real

__all__ = ["dropout_strength", "dropout_regularizer", "DropoutLoss", "squared_loss_dropout",
           "cross_entropy_dropout", "quadratic_error_coefficient", "PenaltyRelations",
           "penalty_relations"]


def _inputs(W, h, b=None):
    W = check_array("W", W)
    h = check_array("h", h)
    if W.ndim != 2:
        raise ValueError(f"W must have shape (K, H), got shape {W.shape}")
    if h.ndim == 1:
        h = h[None, :]
    if h.ndim != 2 or h.shape[1] != W.shape[1]:
        raise ValueError(f"h must have shape (N, H) with H = {W.shape[1]} (columns of W), "
                         f"got shape {h.shape}")
    if b is None:
        b = np.zeros(W.shape[0])
    else:
        b = check_array("b", b)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape (K,) = ({W.shape[0]},), got {b.shape}")
    return W, h, b


def _p(p) -> float:
    return check_real("p", p, 0.0, 1.0, hi_open=True)


def dropout_strength(p: float, *, inverted: bool = True) -> float:
    r"""The penalty's coefficient :math:`\lambda` for drop probability p.

    .. math::

        \lambda = \frac{p}{1-p}\ \text{(inverted dropout)}, \qquad
        \lambda = p(1-p)\ \text{(plain dropout, output mean shrunk to } (1-p)Wh).

    Parameters
    ----------
    p : float
        Drop probability in [0, 1).
    inverted : bool
        Inverted dropout (``torch.nn.Dropout``: kept units scaled by 1/(1-p)).

    Returns
    -------
    float
    """
    p = _p(p)
    return p / (1.0 - p) if inverted else p * (1.0 - p)


def dropout_regularizer(W, h) -> float:
    r""":math:`R_{Dropout} = \mathrm{tr}(W\,\mathrm{diag}(E[hh^T])\,W^T)
    = \sum_j E[h_j^2]\lVert W_{:j}\rVert^2` (Dauphin & Cubuk, Sec. 3.1).

    Parameters
    ----------
    W : array, shape (K, H)
        Last-layer weight.
    h : array, shape (N, H) or (H,)
        Embeddings; :math:`E` is the mean over the N rows.

    Returns
    -------
    float
    """
    W, h, _ = _inputs(W, h)
    return float(np.mean(h * h, axis=0) @ np.sum(W * W, axis=0))


@dataclass(frozen=True)
class DropoutLoss:
    """Expected loss under dropout = loss of the mean network + additive penalty.

    Attributes
    ----------
    loss : str
        ``"squared"`` or ``"cross-entropy"``.
    p : float
        Drop probability.
    clean : float
        Sample mean of the loss without dropout (inverted) or of the mean network
        (plain dropout, :math:`(1-p)Wh + b`).
    penalty : float
        The additive penalty (exact for squared loss; the chosen approximation for
        cross-entropy).
    expected : float
        ``clean + penalty``.
    approximation : str
        ``"exact"``, ``"quadratic"`` or ``"bregman"``.
    """

    loss: str
    p: float
    clean: float
    penalty: float
    expected: float
    approximation: str

    def to_dict(self) -> dict:
        return asdict(self)


def squared_loss_dropout(W, h, y, p: float, *, b=None, inverted: bool = True) -> DropoutLoss:
    r"""Exact mask expectation of the summed squared error with dropout on ``h``.

    .. math::

        E_m \frac1N\sum_n \lVert y_n - W D(h_n) - b\rVert^2
        = \frac1N\sum_n\lVert y_n - cWh_n - b\rVert^2 + \lambda\, R_{Dropout},

    :math:`D(h) = m\odot h/(1-p)`, :math:`c = 1`, :math:`\lambda = p/(1-p)` (inverted) or
    :math:`D(h) = m\odot h`, :math:`c = 1-p`, :math:`\lambda = p(1-p)` (plain). Unhalved
    loss, summed over the K outputs. Source: Dauphin & Cubuk 2021, Sec. 3.1 (after Wang &
    Manning 2013), there with an unspecified :math:`\lambda`; agrees.

    Parameters
    ----------
    W : array, shape (K, H)
        Last-layer weight.
    h : array, shape (N, H) or (H,)
        Embeddings.
    y : array, shape (N, K) or (K,)
        Targets.
    p : float
        Drop probability in [0, 1).
    b : array, shape (K,), optional
        Bias (0 when omitted).
    inverted : bool
        Inverted dropout (default, as ``torch.nn.Dropout``).

    Returns
    -------
    DropoutLoss
    """
    W, h, b = _inputs(W, h, b)
    p = _p(p)
    y = np.atleast_2d(check_array("y", y))
    if y.shape != (h.shape[0], W.shape[0]):
        raise ValueError(f"y must have shape (N, K) = ({h.shape[0]}, {W.shape[0]}), "
                         f"got {y.shape}")
    c = 1.0 if inverted else 1.0 - p
    clean = float(np.mean(np.sum((y - c * h @ W.T - b) ** 2, axis=1)))
    pen = dropout_strength(p, inverted=inverted) * dropout_regularizer(W, h)
    return DropoutLoss("squared", p, clean, pen, clean + pen, "exact")


def _ce_parts(W, h, b):
    """(z0, s, v) with v[n, j] = h_nj W_:j, shape (N, H, K)."""
    z0 = h @ W.T + b
    return z0, softmax(z0, axis=1), h[:, :, None] * W.T[None, :, :]


def _quadratic_terms(s, v) -> np.ndarray:
    """v_j^T (diag(s) - s s^T) v_j, shape (N, H)."""
    return np.sum(v * v * s[:, None, :], axis=2) - np.sum(v * s[:, None, :], axis=2) ** 2


def _bregman_terms(z0, s, v) -> np.ndarray:
    """D(v_j) = lse(z0 - v_j) - lse(z0) + s.v_j, shape (N, H)."""
    return (logsumexp(z0[:, None, :] - v, axis=2) - logsumexp(z0, axis=1)[:, None]
            + np.sum(v * s[:, None, :], axis=2))


def cross_entropy_dropout(W, h, labels, p: float, *, b=None,
                          approximation: str = "quadratic") -> DropoutLoss:
    r"""Softmax cross-entropy with inverted dropout on ``h``: clean loss + penalty.

    .. math::

        \text{quadratic:}\ \frac{\lambda}{2} E\sum_j h_j^2\, W_{:j}^T
            \big(\mathrm{diag}(s) - ss^T\big) W_{:j}, \qquad
        \text{bregman:}\ \lambda\, E\sum_j D(h_jW_{:j}),

    :math:`\lambda = p/(1-p)`, :math:`s = \mathrm{softmax}(Wh + b)`,
    :math:`D(v) = \mathrm{lse}(z_0 - v) - \mathrm{lse}(z_0) + s^Tv` (module docstring).
    Errors: quadratic :math:`p\,c_3 + O(p^2)` (:func:`quadratic_error_coefficient`) and
    :math:`O(s^3)` under :math:`W \to sW`; bregman :math:`O(p^2)`. Loss: mean over
    samples of the unhalved NLL :math:`\mathrm{lse}(z) - z_y`. Source: Dauphin & Cubuk
    2021, Sec. 3.1 ("Taylor expansion ... low-confidence", no formula given); the
    quadratic form is Wang & Manning 2013 / Wager et al. 2013.

    Parameters
    ----------
    W : array, shape (K, H)
        Last-layer weight.
    h : array, shape (N, H) or (H,)
        Embeddings.
    labels : array of int, shape (N,)
        Class indices in [0, K).
    p : float
        Drop probability in [0, 1).
    b : array, shape (K,), optional
        Bias (0 when omitted).
    approximation : {"quadratic", "bregman"}
        Second order in the logit perturbation, or first order in p.

    Returns
    -------
    DropoutLoss
    """
    W, h, b = _inputs(W, h, b)
    p = _p(p)
    approximation = check_choice("approximation", approximation, ("quadratic", "bregman"))
    labels = np.atleast_1d(np.asarray(labels))
    if labels.shape != (h.shape[0],) or not np.issubdtype(labels.dtype, np.integer) \
            or labels.min() < 0 or labels.max() >= W.shape[0]:
        raise ValueError(f"labels must be {h.shape[0]} integers in [0, {W.shape[0]}), "
                         f"got {labels!r}")
    z0, s, v = _ce_parts(W, h, b)
    clean = float(np.mean(logsumexp(z0, axis=1) - z0[np.arange(len(labels)), labels]))
    lam = dropout_strength(p)
    if approximation == "quadratic":
        pen = 0.5 * lam * float(np.mean(np.sum(_quadratic_terms(s, v), axis=1)))
    else:
        pen = lam * float(np.mean(np.sum(_bregman_terms(z0, s, v), axis=1)))
    return DropoutLoss("cross-entropy", p, clean, pen, clean + pen, approximation)


def quadratic_error_coefficient(W, h, *, b=None) -> float:
    r""":math:`c_3 = \lim_{p\to0}(E_m[\ell] - \ell(z_0) - \text{quadratic})/p
    = E\sum_j\big(D(v_j) - \tfrac12 v_j^TAv_j\big)`.

    The leading error of the quadratic cross-entropy penalty: :math:`O(\lVert v\rVert^3)`
    per unit (third and higher logit cumulants of one dropped unit).

    Parameters
    ----------
    W : array, shape (K, H)
        Last-layer weight.
    h : array, shape (N, H) or (H,)
        Embeddings.
    b : array, shape (K,), optional
        Bias.

    Returns
    -------
    float
    """
    W, h, b = _inputs(W, h, b)
    z0, s, v = _ce_parts(W, h, b)
    return float(np.mean(np.sum(_bregman_terms(z0, s, v) - 0.5 * _quadratic_terms(s, v),
                                axis=1)))


@dataclass(frozen=True)
class PenaltyRelations:
    r"""How :math:`R_{Dropout}` relates to FL2 and EL2 (module docstring).

    Attributes
    ----------
    r_dropout : float
        :math:`\sum_j E[h_j^2]\lVert W_{:j}\rVert^2`.
    k_r_fl2 : float
        :math:`K R_{FL2} = E\lVert Wh\rVert^2`.
    offdiagonal : float
        :math:`\sum_{j\ne k}(W^TW)_{jk}E[h_jh_k]`, so that ``k_r_fl2 = r_dropout +
        offdiagonal``.
    h_r_el2 : float
        :math:`H R_{EL2} = E\lVert h\rVert^2`.
    weight_norm2 : float
        :math:`\lVert W\rVert_F^2`.
    min_column_norm2, max_column_norm2 : float
        :math:`\min_j / \max_j \lVert W_{:j}\rVert^2`: the EL2 sandwich
        ``min * h_r_el2 <= r_dropout <= max * h_r_el2``.
    paper_bound : float
        Eq. 5's :math:`\frac14\lVert W\rVert_F^4 + \frac H4 R_{EL2}` (not a bound).
    corrected_bound : float
        :math:`\frac14(\lVert W\rVert_F^2 + H R_{EL2})^2
        \ge \lVert W\rVert_F^2 H R_{EL2} \ge R_{Dropout}`.
    paper_bound_rescaled : float
        ``paper_bound`` minimized over the equivalent networks :math:`(W/c, ch)`:
        :math:`\frac34 2^{-2/3}(\lVert W\rVert_F^2 H R_{EL2})^{2/3}`
        (``r_dropout`` is the same for all of them).
    """

    r_dropout: float
    k_r_fl2: float
    offdiagonal: float
    h_r_el2: float
    weight_norm2: float
    min_column_norm2: float
    max_column_norm2: float
    paper_bound: float
    corrected_bound: float
    paper_bound_rescaled: float

    @property
    def paper_bound_holds(self) -> bool:
        return bool(self.r_dropout <= self.paper_bound)

    def to_dict(self) -> dict:
        return {**asdict(self), "paper_bound_holds": self.paper_bound_holds}


def penalty_relations(W, h) -> PenaltyRelations:
    r"""Evaluate :math:`R_{Dropout}`, :math:`K R_{FL2}`, :math:`H R_{EL2}` and the bounds.

    .. math::

        K R_{FL2} = R_{Dropout} + \sum_{j\ne k}(W^TW)_{jk}E[h_jh_k], \qquad
        \min_j\lVert W_{:j}\rVert^2 H R_{EL2} \le R_{Dropout}
        \le \max_j\lVert W_{:j}\rVert^2 H R_{EL2}
        \le \tfrac14\big(\lVert W\rVert_F^2 + H R_{EL2}\big)^2 .

    Source: Dauphin & Cubuk 2021, eq. 5 (:math:`K R_{FL2} \approx R_{Dropout} \le
    \frac14\lVert W\rVert^4 + \frac H4 R_{EL2}`); corrected: the right-hand bound is
    false in general (module docstring), replaced by ``corrected_bound``.

    Parameters
    ----------
    W : array, shape (K, H)
        Last-layer weight.
    h : array, shape (N, H) or (H,)
        Embeddings (bias left out of :math:`NN = Wh`).

    Returns
    -------
    PenaltyRelations
    """
    W, h, _ = _inputs(W, h)
    second = h.T @ h / h.shape[0]                    # E[h h^T], shape (H, H)
    gram = W.T @ W                                   # W^T W, shape (H, H)
    col2 = np.diag(gram).copy()
    r_drop = float(np.diag(second) @ col2)
    k_fl2 = float(np.mean(np.sum((h @ W.T) ** 2, axis=1)))
    off = float(np.sum(gram * second) - np.sum(np.diag(gram) * np.diag(second)))
    el2 = float(np.trace(second))
    w2 = float(np.sum(col2))
    return PenaltyRelations(r_drop, k_fl2, off, el2, w2, float(col2.min()), float(col2.max()),
                            0.25 * w2 * w2 + 0.25 * el2, 0.25 * (w2 + el2) ** 2,
                            0.75 * 2.0 ** (-2.0 / 3.0) * (w2 * el2) ** (2.0 / 3.0))
