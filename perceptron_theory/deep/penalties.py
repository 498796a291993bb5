r"""Additive penalties of the deep experiments, behind one registry keyed by CLI name.

Symbol map: ``coef`` = the penalty's coefficient (:math:`\lambda`; :math:`\zeta` for
gamma decay); :math:`M` = ``batch_size`` (samples in the batch); :math:`\mathrm{Emb}(x)
\in \mathbb{R}^H` = ``model.features(x)`` (the embedding, :math:`H` = its dimension);
:math:`NN(x) \in \mathbb{R}^K` = the logits; :math:`h` = the input of a norm layer
(``(B, C, H, W)`` or ``(B, C)``), :math:`\gamma_c, \beta_c` = its ``weight``/``bias``.
The training objective is the batch-mean cross entropy (unhalved NLL) plus every
penalty's value; each penalty below already includes its ``coef``.

===================  ====================================================  =================
name                 value (``coef`` included)                             source
===================  ====================================================  =================
weight-decay         :math:`\frac{\lambda}{2}\sum\lVert\theta\rVert^2` over  L2 prior
                     the "weight" parameter group (:func:`param_groups`)
gamma-decay          :math:`\sum_{l,c}\zeta\,\gamma_{lc}^2`; ``adaptive``:     Luo et al. eq. 3,
                     :math:`\lambda\sum_{l,c}\zeta_{lc}(h)\,\gamma_{lc}^2`   App. C.1-C.4
embedding-l2         :math:`\lambda\,E\lVert\mathrm{Emb}(x)\rVert^2/H`          Dauphin eq. 2
functional-l2        :math:`\lambda\,E\lVert NN(x)\rVert^2/K`                   Dauphin eq. 3
standardization      :math:`\lambda\sum_{l,c}\mathrm{KL}(N(\mu,\sigma^2)\Vert    Dauphin eq. 4;
                     N(0,1))` of every recorded norm input                  Collins 2019
regnorm-mean         :math:`\lambda\sum_l r^l` over RegNorm layers            Rao eq. 3, App. B
===================  ====================================================  =================

Dropout, the other regularizer of these papers, is a model option, not a penalty:
``make_model(..., dropout=p, dropout_placement="after-norm" | "before-last")``
(Luo et al. App. B.3: after every BN / WN layer; Dauphin & Cubuk Sec. 3.1: on the
embedding before the last layer, whose additive form relates to functional and
embedding L2, their eq. 5).

A penalty is called as ``penalty(model, record, x)`` on the :class:`Record` of the same
forward pass (:func:`forward_with_record`); ``penalty.needs_norm_inputs`` says whether
that record must hold the inputs of the norm layers.

Examples
--------
>>> import torch
>>> from perceptron_theory.deep.models import make_model
>>> from perceptron_theory.deep.penalties import forward_with_record, make_penalty
>>> _ = torch.manual_seed(0)
>>> net = make_model("mlp", norm="bn", in_channels=1, image_size=4, hidden=8)
>>> rec = forward_with_record(net, torch.randn(6, 1, 4, 4), record_norm_inputs=True)
>>> len(rec.norm_inputs), tuple(rec.embedding.shape), tuple(rec.logits.shape)
(1, (6, 8), (6, 10))
>>> make_penalty("gamma-decay", 0.5)(net, rec).item()   # 0.5 * (8 gammas equal to 1)
4.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from perceptron_theory._checks import check_choice, check_int, check_real
from perceptron_theory.deep import norms as _norms
from perceptron_theory.deep.models import NormSlot

__all__ = [
    "Record",
    "forward_with_record",
    "is_norm_layer",
    "norm_layers",
    "Penalty",
    "PENALTIES",
    "make_penalty",
    "param_groups",
    "weight_decay",
    "gamma_decay",
    "adaptive_zeta",
    "embedding_l2",
    "functional_l2",
    "standardization",
    "regnorm_mean",
]

EPS = 1e-5

_TORCH_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
                nn.LocalResponseNorm)
_OUR_NORMS = tuple({s.factory for s in _norms.NORMS.values() if isinstance(s.factory, type)})


def is_norm_layer(module: nn.Module) -> bool:
    """Whether ``module`` is a normalization layer (``deep.norms`` or torch's).

    Parameters
    ----------
    module : torch.nn.Module
        Any module; ``nn.Identity`` (the layer of ``none`` / ``wn``) is not one.

    Returns
    -------
    bool
    """
    return isinstance(module, _TORCH_NORMS + _OUR_NORMS)


def norm_layers(model: nn.Module) -> list[nn.Module]:
    """Every normalization layer of ``model``, in module order (:func:`is_norm_layer`).

    Parameters
    ----------
    model : torch.nn.Module
        Any model.

    Returns
    -------
    list of torch.nn.Module
    """
    return [m for m in model.modules() if is_norm_layer(m)]


# ========================================================================= record
@dataclass(frozen=True)
class Record:
    """What one forward pass recorded (:func:`forward_with_record`).

    Attributes
    ----------
    logits : torch.Tensor, shape (B, K)
        ``classifier(head_dropout(embedding))``.
    embedding : torch.Tensor, shape (B, H)
        ``model.features(x)``, the input of the final linear layer (before the head
        dropout of ``dropout_placement="before-last"``).
    norm_inputs : list of torch.Tensor
        Input of every norm slot / norm layer, in call order (empty unless recorded).
    norm_modules : list of torch.nn.Module
        The norm layer belonging to each entry of ``norm_inputs`` (``nn.Identity`` for a
        norm-free slot of a ``deep.models`` net, e.g. under ``norm="none"``).
    norm_inputs_recorded : bool
        Whether the inputs were asked for.
    """

    logits: torch.Tensor
    embedding: torch.Tensor
    norm_inputs: list = field(default_factory=list)
    norm_modules: list = field(default_factory=list)
    norm_inputs_recorded: bool = False

    @property
    def batch_size(self) -> int:
        """:math:`M`, the number of samples of the forward pass."""
        return int(self.logits.shape[0])


def _record_targets(module: nn.Module):
    """(hooked module, norm layer) pairs: slots, and norm layers outside any slot."""
    for child in module.children():
        if isinstance(child, NormSlot):
            yield child, child.norm
        elif is_norm_layer(child):
            yield child, child
        else:
            yield from _record_targets(child)


def forward_with_record(model: nn.Module, x: torch.Tensor, *,
                        record_norm_inputs: bool = False) -> Record:
    """Run ``model`` on ``x`` and keep what the penalties need.

    ``embedding = model.features(x)``,
    ``logits = model.classifier(model.head_dropout(embedding))`` (``head_dropout``
    optional: a model without it has ``logits = classifier(embedding)``), i.e. the same
    computation as ``model(x)``. With ``record_norm_inputs`` a forward pre-hook on every
    :class:`~perceptron_theory.deep.models.NormSlot` (and on every norm layer that is
    not inside one, for models from elsewhere) stores its input, with the graph, in
    call order; the hooks are removed before returning.

    Parameters
    ----------
    model : torch.nn.Module
        A model with ``features`` and ``classifier`` (every ``deep.models`` net).
    x : torch.Tensor
        Input batch.
    record_norm_inputs : bool
        Record the inputs of the norm slots / layers.

    Returns
    -------
    Record
    """
    if not callable(getattr(model, "features", None)) or \
            not isinstance(getattr(model, "classifier", None), nn.Module):
        raise ValueError(f"model must have features(x) and a classifier module (as every "
                         f"deep.models net), got {type(model).__name__}")
    inputs: list = []
    modules: list = []
    handles = []
    if record_norm_inputs:
        for hooked, layer in _record_targets(model):
            def hook(_mod, args, layer=layer):
                inputs.append(args[0])
                modules.append(layer)
            handles.append(hooked.register_forward_pre_hook(hook))
    try:
        embedding = model.features(x)
        head = getattr(model, "head_dropout", None)
        logits = model.classifier(embedding if head is None else head(embedding))
    finally:
        for h in handles:
            h.remove()
    return Record(logits, embedding, inputs, modules, bool(record_norm_inputs))


def _need_inputs(record: Record, penalty: str) -> None:
    if not record.norm_inputs_recorded:
        raise ValueError(f"penalty {penalty!r} needs the norm inputs: build the record with "
                         f"forward_with_record(..., record_norm_inputs=True)")


def _channels_first(h: torch.Tensor) -> torch.Tensor:
    """``(B, C, ...)`` -> ``(C, B * ...)``: each row holds one channel's batch values."""
    return h.transpose(0, 1).reshape(h.shape[1], -1)


# ================================================================= parameter groups
def _classify(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Split the parameters of ``model`` into weight / norm / scalar (each exactly once)."""
    groups: dict[str, list] = {"weight": [], "norm": [], "scalar": []}
    seen: set[int] = set()
    for module in model.modules():
        wn_gain = (isinstance(module, parametrize.ParametrizationList)
                   and type(module[0]).__name__ == "_WeightNorm")
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if is_norm_layer(module) or (wn_gain and pname == "original0"):
                groups["norm"].append(p)
            elif p.numel() == 1:
                groups["scalar"].append(p)
            else:
                groups["weight"].append(p)
    return groups


def param_groups(model: nn.Module, *, weight_decay: float, norm_decay: float | None = None,
                 scalar_decay: float | None = None) -> list[dict]:
    r"""Parameter groups for ``torch.optim.SGD``, each parameter in exactly one.

    * ``"norm"``: the affine parameters of every norm layer (:math:`\gamma` =
      ``weight``, :math:`\beta` = ``bias``) and the gains :math:`g` of weight-normalized
      layers (``parametrizations.weight.original0``; Luo et al. read :math:`g` as WN's
      :math:`\gamma`) -- decay ``norm_decay`` (default ``weight_decay``);
    * ``"scalar"``: every other 0-dim or one-element parameter (Fixup's scalar biases
      and multipliers) -- decay ``scalar_decay`` (default 0, as Fixup's authors);
    * ``"weight"``: all the rest -- conv/linear weights and biases, the directions
      :math:`v` of weight-normalized layers -- decay ``weight_decay``.

    SGD's ``weight_decay`` :math:`\lambda` adds :math:`\lambda\theta` to the gradient,
    the gradient of :math:`\frac{\lambda}{2}\lVert\theta\rVert^2` (the ``weight-decay``
    penalty's convention). Empty groups are left out.

    Parameters
    ----------
    model : torch.nn.Module
        Any model.
    weight_decay : float
        Decay of the "weight" group (>= 0).
    norm_decay : float, optional
        Decay of the "norm" group (>= 0); ``weight_decay`` when omitted.
    scalar_decay : float, optional
        Decay of the "scalar" group (>= 0); 0 when omitted.

    Returns
    -------
    list of dict
        ``{"name", "params", "weight_decay"}`` per non-empty group, in the order
        weight, norm, scalar.
    """
    weight_decay = check_real("weight_decay", weight_decay, 0.0)
    norm_decay = weight_decay if norm_decay is None else check_real("norm_decay",
                                                                    norm_decay, 0.0)
    scalar_decay = 0.0 if scalar_decay is None else check_real("scalar_decay",
                                                              scalar_decay, 0.0)
    decays = {"weight": weight_decay, "norm": norm_decay, "scalar": scalar_decay}
    return [{"name": k, "params": ps, "weight_decay": decays[k]}
            for k, ps in _classify(model).items() if ps]


# ======================================================================= penalties
def weight_decay(model: nn.Module, record: Record) -> torch.Tensor:
    r"""Explicit, halved L2 on the "weight" parameter group (conv/linear weights).

    .. math::

        R_{WD} = \frac{1}{2}\sum_{\theta \in \text{weight group}} \lVert\theta\rVert^2,

    the conv/linear weights and biases (for weight-normalized layers the raw directions
    :math:`v`), as :func:`param_groups` defines them. Convention: ``coef`` times this has
    gradient ``coef * theta``, exactly what ``torch.optim.SGD(weight_decay=coef)`` adds
    for that group, so the penalty and the optimizer's decay are interchangeable.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    record : Record
        Unused (kept for the common signature).

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    params = _classify(model)["weight"]
    if not params:
        return record.logits.new_zeros(())
    return 0.5 * sum(p.square().sum() for p in params)


def adaptive_zeta(h: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor | None,
                  batch_size: int, *, activation: str = "relu", eps: float = EPS
                  ) -> torch.Tensor:
    r"""Luo et al.'s data-dependent decay factor :math:`\zeta_c(h)` per channel (detached).

    For channel :math:`c` of a norm input ``h`` with values :math:`h_j` over the
    :math:`P` batch entries (samples, and positions for a conv), batch mean
    :math:`\bar h`, biased variance :math:`s^2`:

    .. math::

        \hat h_j = \frac{h_j - \bar h}{\sqrt{s^2 + \epsilon}}, \quad
        \tilde h_j = \gamma_c \hat h_j + \beta_c, \quad
        \rho_c = \frac{\overline{(h - \bar h)^4}}{s^4} - 3,

        \zeta_c = \frac{\rho_c + 2}{8M}\, I_c + \frac{1}{2M}\,\overline{A''(\tilde h)},
        \qquad I_c = \overline{A''(\tilde h_j)\,\hat h_j^2},

    with :math:`A'' = \mathrm{sigmoid}` for ReLU (its softplus GLM, App. C.2) and
    :math:`A'' = 1` for a linear unit; :math:`\rho` is the *excess* kurtosis (0 for a
    Gaussian). Source: Luo et al. 2019, eq. 3 (Theorem 1, App. C.1-C.2) and App. C.4
    for a deep net, where the per-unit curvature of the loss in the PN output is
    replaced by its single-layer ReLU/softplus form. :math:`I(\gamma)` is the
    Hessian-form Fisher estimate that the proof uses (the text's
    :math:`\overline{(\partial\ell/\partial\gamma)^2}` needs per-sample gradients; the
    two agree in expectation at the true model), as ``theory.batchnorm.zeta_theorem1``
    with ``curvature = sigmoid(h~)`` -- the one :math:`\zeta(h)`: this torch form (the
    deep arm imports no theory) is tested channel by channel against it. The mean part
    is :math:`1/(2M)` times the mean sigmoid *of the PN output* :math:`\tilde h` (what
    :math:`A''` is evaluated at).
    Loss convention: Theorem 1's -- unhalved NLL (cross entropy) plus
    :math:`\zeta\gamma^2`. Leading order in :math:`1/M`.

    ``M`` is a batch size of *samples*. For a conv channel the batch statistics pool
    :math:`M H W` correlated entries, so the true noise is smaller than :math:`1/M`
    suggests and larger than :math:`1/(MHW)`; we use :math:`M` (pass the BN batch size
    being emulated, e.g. 128 for Luo's "PN + gamma decay" of Fig. 2a).

    Parameters
    ----------
    h : torch.Tensor, shape (B, C) or (B, C, H, W)
        Norm-layer input.
    gamma : torch.Tensor, shape (C,)
        :math:`\gamma`.
    beta : torch.Tensor, shape (C,), optional
        :math:`\beta` (0 when None).
    batch_size : int
        :math:`M \ge 2`.
    activation : {"relu", "linear"}
        Curvature :math:`A''`: sigmoid (ReLU via softplus) or 1.
    eps : float
        :math:`\epsilon` in the standardization.

    Returns
    -------
    torch.Tensor, shape (C,)
        :math:`\zeta_c`, detached.
    """
    activation = check_choice("activation", activation, ("relu", "linear"))
    batch_size = check_int("batch_size", batch_size, 2)
    eps = _eps("eps", eps)
    with torch.no_grad():
        hc = _channels_first(h.detach().float())
        if gamma.numel() != hc.shape[0]:
            raise ValueError(f"gamma must hold one value per channel ({hc.shape[0]}), got "
                             f"shape {tuple(gamma.shape)}")
        var, mean = torch.var_mean(hc, 1, correction=0, keepdim=True)
        centered = hc - mean
        hhat = centered * torch.rsqrt(var + eps)
        m4 = centered.pow(4).mean(1, keepdim=True)
        rho = torch.where(var > 0, m4 / var.square().clamp_min(1e-30) - 3.0,
                          torch.zeros_like(var)).squeeze(1)
        g = gamma.detach().float().reshape(-1, 1)
        b = 0.0 if beta is None else beta.detach().float().reshape(-1, 1)
        curv = torch.sigmoid(g * hhat + b) if activation == "relu" else torch.ones_like(hhat)
        fisher = (curv * hhat.square()).mean(1)
        M = float(batch_size)
        return (rho + 2.0) / (8.0 * M) * fisher + curv.mean(1) / (2.0 * M)


def gamma_decay(model: nn.Module, record: Record, *, adaptive: bool = False,
                activation: str = "relu", batch_size: int | None = None,
                weight_norm_gain: bool = False, eps: float = EPS) -> torch.Tensor:
    r"""Gamma decay, Luo et al.'s regularizer of BN's scale (eq. 3, App. C.4).

    .. math::

        R_\gamma = \sum_{l}\sum_{c} \gamma_{lc}^2 \quad \text{(constant } \zeta
        \text{ = coef)}, \qquad
        R_\gamma^{adaptive} = \sum_{l}\sum_{c} \mathrm{sg}[\zeta_{lc}(h)]\, \gamma_{lc}^2,

    summed over channels (Luo's :math:`\sum_i \zeta_i^l (\gamma_i^l)^2`, App. C.4) and
    over every norm layer with a :math:`\gamma` (``bn-mean`` has none); ``coef`` then
    multiplies (so ``coef`` is :math:`\zeta` itself, or a multiplier of the adaptive
    :math:`\zeta(h)`, 1 = the theorem). :math:`\zeta_{lc}(h)` is :func:`adaptive_zeta` of
    the layer's recorded input; :math:`\mathrm{sg}` = detached, so only
    :math:`\gamma^2` carries a gradient (:math:`2\zeta\gamma`). Loss convention of
    Theorem 1: unhalved NLL + :math:`\zeta\gamma^2` (the "decay2" convention of
    ``theory.batchnorm``, halved loss + :math:`\frac{\zeta}{2}\gamma^2`, is the same
    objective at twice the ``coef``).

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    record : Record
        Record of the same forward pass (with the norm inputs if ``adaptive``).
    adaptive : bool
        Data-dependent :math:`\zeta_{lc}(h)` instead of a constant.
    activation : {"relu", "linear"}
        Curvature used by the adaptive estimate.
    batch_size : int, optional
        :math:`M` of the adaptive estimate; the record's batch size when omitted.
    weight_norm_gain : bool
        Also decay the gains :math:`g` of weight-normalized layers (constant
        :math:`\zeta` only; Luo's "WN + gamma decay").
    eps : float
        :math:`\epsilon` of the adaptive standardization.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    total = record.logits.new_zeros((), dtype=torch.float32)
    if adaptive:
        _need_inputs(record, "gamma-decay")
        M = record.batch_size if batch_size is None else batch_size
        if M < 2:
            raise ValueError(f"batch_size must be >= 2 for the adaptive gamma decay, got {M}")
        for h, layer in zip(record.norm_inputs, record.norm_modules, strict=True):
            gamma = getattr(layer, "weight", None)
            if not isinstance(gamma, torch.Tensor):
                continue
            zeta = adaptive_zeta(h, gamma, getattr(layer, "bias", None), M,
                                 activation=activation, eps=eps)
            total = total + (zeta.to(gamma.dtype) * gamma.square()).sum()
    else:
        for layer in norm_layers(model):
            gamma = getattr(layer, "weight", None)
            if isinstance(gamma, torch.Tensor):
                total = total + gamma.square().sum()
    if weight_norm_gain:
        for module in model.modules():
            if isinstance(module, parametrize.ParametrizationList) and \
                    type(module[0]).__name__ == "_WeightNorm":
                total = total + module.original0.square().sum()
    return total


def _mean_square(t: torch.Tensor, reduction: str) -> torch.Tensor:
    """Batch mean of the per-sample sum (``"sum"``) or mean (``"mean"``) of ``t**2`` over
    dimension 1, computed in float32 (as the penalties always were)."""
    sq = t.float().square()
    return (sq.sum(1) if reduction == "sum" else sq.mean(1)).mean()

def embedding_l2(model: nn.Module, record: Record, *, reduction: str = "mean") -> torch.Tensor:
    r"""Embedding L2, Dauphin & Cubuk's :math:`R_{EL2}` (eq. 2).

    .. math::

        R_{EL2} = \frac{1}{H}\, E_x\big[\lVert \mathrm{Emb}(x)\rVert^2\big]
                = \frac{1}{MH}\sum_{n=1}^{M}\sum_{d=1}^{H} \mathrm{Emb}(x_n)_d^2,

    the batch mean over the record's embedding (before a "before-last" dropout).
    ``reduction="sum"`` drops the :math:`1/H` (:math:`E\lVert\mathrm{Emb}\rVert^2`, the
    quantity of Dauphin's eq. 1, where gamma/beta decay :math:`\lambda` acts as
    :math:`\lambda/4 \cdot E\lVert\mathrm{Emb}\rVert^2`).

    Parameters
    ----------
    model : torch.nn.Module
        Unused.
    record : Record
        Record of the forward pass.
    reduction : {"mean", "sum"}
        Mean (paper) or sum over the :math:`H` embedding units.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return _mean_square(record.embedding, reduction)


def functional_l2(model: nn.Module, record: Record, *, reduction: str = "mean") -> torch.Tensor:
    r"""Functional L2, Dauphin & Cubuk's :math:`R_{FL2}` (eq. 3), on the logits.

    .. math::

        R_{FL2} = \frac{1}{K}\, E_x\big[\lVert NN(x)\rVert^2\big]
                = \frac{1}{MK}\sum_{n=1}^{M}\sum_{k=1}^{K} NN(x_n)_k^2 .

    ``reduction="sum"`` drops the :math:`1/K`.

    Parameters
    ----------
    model : torch.nn.Module
        Unused.
    record : Record
        Record of the forward pass.
    reduction : {"mean", "sum"}
        Mean (paper) or sum over the :math:`K` logits.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return _mean_square(record.logits, reduction)


def standardization(model: nn.Module, record: Record, *, eps: float = EPS) -> torch.Tensor:
    r"""Standardization loss (Collins et al. 2019; Dauphin & Cubuk eq. 4).

    For every recorded norm input (every norm slot: also the norm-free slots of a
    ``norm="none"`` / Fixup net, where Dauphin & Cubuk use it) and every channel
    :math:`c`, with the batch mean :math:`\mu_c` and biased batch variance
    :math:`\sigma_c^2` over :math:`(N, H, W)` -- the statistics BN would compute:

    .. math::

        R_{std} = \sum_l \sum_c \mathrm{KL}\big(N(\mu_c, s_c^2)\,\Vert\, N(0, 1)\big)
                = \sum_l \sum_c \tfrac12\big(\mu_c^2 + s_c^2 - \log s_c^2 - 1\big),
        \qquad s_c^2 = \sigma_c^2 + \epsilon,

    (the paper writes :math:`\sigma_i^2` for the variance; the :math:`\epsilon` keeps the
    log finite and the value :math:`\ge 0`). Note: a Fixup branch's last conv starts at
    0, so its slot sees :math:`s^2 = \epsilon` and contributes
    :math:`\approx \tfrac12(-\log\epsilon - 1)` per channel until it grows.

    Parameters
    ----------
    model : torch.nn.Module
        Unused.
    record : Record
        Record with the norm inputs.
    eps : float
        :math:`\epsilon` added to the variance.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    _need_inputs(record, "standardization")
    total = record.logits.new_zeros((), dtype=torch.float32)
    for h in record.norm_inputs:
        var, mean = torch.var_mean(_channels_first(h.float()), 1, correction=0)
        s2 = var + eps
        total = total + 0.5 * (mean.square() + s2 - torch.log(s2) - 1.0).sum()
    return total


def regnorm_mean(model: nn.Module, record: Record) -> torch.Tensor:
    r"""RegNorm's batch-mean regularizer, summed over RegNorm layers (Rao & Sohl-Dickstein).

    For a RegNorm / PreRegNorm layer with recorded input :math:`z` (``(B, ...)``,
    :math:`N_l` units :math:`i` per sample over :math:`(C, H, W)`) and
    :math:`\bar z^a = z^a / \sqrt{\frac{1}{N_l}\sum_i (z_i^a)^2 + \epsilon}` (the layer's
    own normalization, before :math:`\gamma, \beta`), eq. 3 with :math:`a, b` two
    independent uniform draws from the batch:

    .. math::

        r = E_{a,b}\Big[\sum_i \big((\bar z_i^a + \bar z_i^b)^2 - 2\big)\Big]
          = 2\sum_i \big(E_a \bar z_i^a\big)^2
            + 2\Big(E_a \sum_i (\bar z_i^a)^2 - N_l\Big),

    evaluated exactly by the right-hand side. The second term is
    :math:`-2N_l E_a[\epsilon/(\mathrm{rms}_a^2 + \epsilon)] \approx 0`, so
    :math:`r \approx 2\sum_i \bar m_i^2`, minimal at zero batch mean of every unit
    :math:`i` -- per unit (position and channel), not per channel. Source: Rao &
    Sohl-Dickstein 2020, eq. 3 and App. B; corrected: App. B's last lines read
    :math:`E_{a,b}[\bar z_i^a \bar z_i^b] = E_a[(\bar z_i^a)^2]` and end with
    :math:`r = 2\sum_i E_a[(\bar z_i^a)^2]` (a constant); for independent
    :math:`a, b` it is :math:`(E_a \bar z_i^a)^2`, giving the result above and the
    stated minimizer. The penalty is ``coef`` :math:`\times \sum_l r^l` (the paper's
    :math:`\lambda\sum_l r^l`). The same value as ``norms.RegNorm.regularizer()``,
    computed here from the record, independently.

    Parameters
    ----------
    model : torch.nn.Module
        The model (must contain RegNorm layers).
    record : Record
        Record with the norm inputs.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    _need_inputs(record, "regnorm-mean")
    if not any(isinstance(m, _norms.RegNorm) for m in model.modules()):
        raise ValueError("penalty 'regnorm-mean' needs RegNorm layers: build the model with "
                         "norm='regnorm' or 'pre-regnorm'")
    total = record.logits.new_zeros((), dtype=torch.float32)
    for z, layer in zip(record.norm_inputs, record.norm_modules, strict=True):
        if not isinstance(layer, _norms.RegNorm):
            continue
        zf = z.float().flatten(1)
        n_units = zf.shape[1]
        zbar = zf * torch.rsqrt(zf.square().mean(1, keepdim=True) + layer.eps)
        total = total + 2.0 * zbar.mean(0).square().sum() \
            + 2.0 * (zbar.square().sum(1).mean() - n_units)
    return total


# ======================================================================== registry
PENALTIES: dict[str, Callable[..., torch.Tensor]] = {
    "weight-decay": weight_decay,
    "gamma-decay": gamma_decay,
    "embedding-l2": embedding_l2,
    "functional-l2": functional_l2,
    "standardization": standardization,
    "regnorm-mean": regnorm_mean,
}
"""Unscaled penalties ``fn(model, record, **options)`` keyed by CLI name."""


def _bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _eps(name: str, value) -> float:
    return check_real(name, value, 0.0, lo_open=True)


_OPTION_CHECKS: dict[str, dict[str, Callable]] = {
    "weight-decay": {},
    "gamma-decay": {
        "adaptive": _bool,
        "activation": lambda n, v: check_choice(n, v, ("relu", "linear")),
        "batch_size": lambda n, v: None if v is None else check_int(n, v, 2),
        "weight_norm_gain": _bool,
        "eps": _eps,
    },
    "embedding-l2": {"reduction": lambda n, v: check_choice(n, v, ("mean", "sum"))},
    "functional-l2": {"reduction": lambda n, v: check_choice(n, v, ("mean", "sum"))},
    "standardization": {"eps": _eps},
    "regnorm-mean": {},
}


@dataclass(frozen=True)
class Penalty:
    """A registry penalty bound to its coefficient and options.

    ``penalty(model, record, x=None)`` returns ``coef * PENALTIES[name](model, record,
    **options)``, a scalar tensor.

    Attributes
    ----------
    name : str
        Registry name.
    coef : float
        Coefficient (>= 0).
    options : mapping
        Validated options.
    needs_norm_inputs : bool
        The record must come from ``forward_with_record(..., record_norm_inputs=True)``.
    """

    name: str
    coef: float
    options: Mapping = field(default_factory=dict)
    needs_norm_inputs: bool = False

    def __call__(self, model: nn.Module, record: Record, x: torch.Tensor | None = None
                 ) -> torch.Tensor:
        return self.coef * PENALTIES[self.name](model, record, **self.options)

    def to_dict(self) -> dict:
        """Plain-dict view for JSON."""
        return {"name": self.name, "coef": self.coef, "options": dict(self.options),
                "needs_norm_inputs": self.needs_norm_inputs}


def make_penalty(name: str, coef: float, **options) -> Penalty:
    """Build penalty ``name`` with coefficient ``coef`` (module table).

    Parameters
    ----------
    name : str
        A key of :data:`PENALTIES`.
    coef : float
        Coefficient (>= 0), multiplied into the value.
    **options
        Options of that penalty (keyword arguments of its function): gamma-decay
        ``adaptive, activation, batch_size, weight_norm_gain, eps``; embedding-l2 and
        functional-l2 ``reduction``; standardization ``eps``.

    Returns
    -------
    Penalty
    """
    name = check_choice("name", name, PENALTIES)
    coef = check_real("coef", coef, 0.0)
    checks = _OPTION_CHECKS[name]
    unknown = sorted(set(options) - set(checks))
    if unknown:
        raise ValueError(f"option {unknown[0]!r} is not accepted by penalty {name!r}; "
                         f"valid options: {', '.join(checks) or 'none'}")
    options = {k: checks[k](k, v) for k, v in options.items()}
    needs = name in ("standardization", "regnorm-mean") or (
        name == "gamma-decay" and options.get("adaptive", False))
    return Penalty(name, coef, options, bool(needs))
