"""The ``norms`` probe: per-layer norms, BN's effective norm, Dauphin & Cubuk's eq. 1."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._checks import check_int, check_real
from ._common import (
    _channel_sigma,
    _data,
    _device,
    _norm_named,
    _plain,
    _sq_per_sample,
    _trace_pairs,
    _weight_layers,
    probe_copy,
)


def norms_probe(model: nn.Module, data, *, split: str = "train", n: int | None = 512,
                coef: float = 1.0, seed: int = 0) -> dict:
    r"""Norms of every layer, of the embedding and of the output; Dauphin & Cubuk's eq. 1.

    Symbol map: :math:`\gamma_c, \beta_c` = ``weight``, ``bias`` of a norm layer;
    :math:`w_c` = row :math:`c` of the preceding conv/linear weight (all but the output
    axis flattened; the *effective* weight for weight-normalized layers);
    :math:`\sigma_c = \sqrt{\mathrm{running\_var}_c + \epsilon}`; :math:`\lambda` =
    ``coef``; :math:`h_c` = the layer's input, :math:`\hat h_c` = its batch-standardized
    value; :math:`z = \gamma\hat h + \beta` its output; :math:`S` = spatial positions per
    channel (1 after a linear layer).

    Per norm layer: ``gamma_sq`` :math:`= \overline{\gamma_c^2}` and ``beta_sq`` (means
    over channels) and BN's effective norm (Luo et al. 2019, Sec. 5 and Fig. 4: the
    plain-SGD weight that computes the same function at eval is
    :math:`w^{sgd}_c = \gamma_c w_c / \sigma_c`)

    .. math::

        \texttt{effective\_norm} = \Big(\sum_c \frac{\gamma_c^2 \lVert w_c\rVert^2}
        {\sigma_c^2}\Big)^{1/2} = \lVert W^{sgd}\rVert_F, \qquad
        \texttt{effective\_norm\_mean} = \frac1C\sum_c
        \frac{|\gamma_c|\,\lVert w_c\rVert}{\sigma_c};

    per conv/linear: ``weight_norm`` :math:`= \lVert W\rVert_F`; and, in eval mode,
    ``embedding_sq`` :math:`= E\lVert\mathrm{Emb}(x)\rVert^2` and ``output_sq``
    :math:`= E\lVert NN(x)\rVert^2` (D-F2/F3).

    Dauphin & Cubuk (2021), eq. 1, for :math:`\mathrm{Emb} = \mathrm{Swish}_\rho(\gamma\,
    \mathrm{BN}(\mathrm{PreEmb}) + \beta)`, as printed:

    .. math::

        \lambda\lVert\gamma\rVert^2 + \lambda\lVert\beta\rVert^2 =
        \frac{\lambda}{4} E\lVert\mathrm{Emb}(x)\rVert^2 + O(|\rho|).

    Its derivation (App. A) uses only :math:`\mathrm{Swish}_0(z) = z/2` and, per channel,
    :math:`E\hat h_c = 0`, :math:`E\hat h_c^2 = 1` (exact over the batch that BN
    normalizes, up to :math:`\mathrm{var}/(\mathrm{var}+\epsilon)`), which give
    :math:`E\lVert z\rVert^2/S = \lVert\gamma\rVert^2 + \lVert\beta\rVert^2` and
    :math:`E\lVert\mathrm{Emb}\rVert^2 = (\lVert\gamma\rVert^2+\lVert\beta\rVert^2)/4`
    (App. A's last line). Corrected: then :math:`\lambda(\lVert\gamma\rVert^2 +
    \lVert\beta\rVert^2) = 4\lambda\, E\lVert\mathrm{Emb}\rVert^2`; eq. 1's
    :math:`\lambda/4` contradicts the appendix by a factor of 16 (the proportionality,
    the paper's point, stands). For our ReLU nets the embedding is
    :math:`\mathrm{ReLU}(z)`, and no identity holds in general; for Gaussian
    :math:`\hat h_c` (:math:`\Phi, \phi` the standard normal cdf and pdf):

    .. math::

        E\lVert\mathrm{ReLU}(z)\rVert^2 = \sum_c (\gamma_c^2 + \beta_c^2)\,
        \Phi(\beta_c/|\gamma_c|) + |\gamma_c|\beta_c\,\phi(\beta_c/|\gamma_c|),

    :math:`= \lVert\gamma\rVert^2/2` at :math:`\beta = 0` (any symmetric
    :math:`\hat h`). ``dauphin_eq1`` returns, for the last norm layer with a
    :math:`\gamma` (batch statistics over the probe batch, running ones for ``_eval``):
    ``gamma_beta_sq`` :math:`=\lVert\gamma\rVert^2 + \lVert\beta\rVert^2`;
    ``pre_activation_sq`` :math:`= E\lVert z\rVert^2/S` (measured) and
    ``pre_activation_exact`` :math:`= \sum_c \gamma_c^2 v_c/(v_c+\epsilon) + \beta_c^2`
    (:math:`v_c` the biased batch variance: the identity with BN's :math:`\epsilon`);
    ``embedding_sq`` / ``embedding_sq_eval`` (measured);
    ``relu_gaussian`` (the formula above); ``swish0`` :math:`=
    (\lVert\gamma\rVert^2+\lVert\beta\rVert^2)/4`; the two sides
    ``penalty`` :math:`= \frac{\lambda}{2}(\lVert\gamma\rVert^2+\lVert\beta\rVert^2)` (the
    decay torch's SGD ``weight_decay`` :math:`=\lambda` applies, the package's
    convention), ``paper_lhs`` :math:`= \lambda(\lVert\gamma\rVert^2+\lVert\beta\rVert^2)`
    and ``paper_rhs`` :math:`= \frac{\lambda}{4}E\lVert\mathrm{Emb}\rVert^2`; and
    ``embedding_is_relu_of_norm`` -- whether :math:`\mathrm{Emb} = \mathrm{ReLU}(z)`
    exactly (cnn, mlp, deep-fc, ``single_bn_at_embedding``; not after a residual sum
    or average pooling, where the numbers are only indicative).

    Parameters
    ----------
    model : torch.nn.Module
        A ``deep.models`` net.
    data : DataBundle or (x, y)
        Samples of ``split`` are used.
    split : {"train", "val", "test"}
        Split of a DataBundle.
    n : int, optional
        Samples (a seeded subset; all when None). Also the batch of the batch
        statistics.
    coef : float
        :math:`\lambda` of the eq. 1 sides (>= 0).
    seed : int
        Seed of the subset.

    Returns
    -------
    dict
        ``norm_layers, gamma_sq, beta_sq, preceding_op, sigma_source, effective_norm,
        effective_norm_mean, weight_layers, weight_norm, embedding_sq, output_sq, n,
        dauphin_eq1`` (None where a quantity does not apply).
    """
    coef = check_real("coef", coef, 0.0)
    seed = check_int("seed", seed, 0)
    device = _device(model)
    x, _ = _data(data, split, n, seed, device)
    ev = probe_copy(model, "eval")
    tr = probe_copy(model, "train")

    # weights and the eval-mode norms of the embedding and the output
    weights = {name: op.weight.detach().double() for name, op in _weight_layers(ev)}
    with torch.no_grad():
        emb = ev.features(x)
        out = ev.classifier(emb)
    embedding_sq_eval = float(_sq_per_sample(emb).mean())
    output_sq = float(_sq_per_sample(out).mean())

    # batch-mode pass: norm-layer inputs and outputs, the embedding
    pairs = _trace_pairs(tr, x)
    ins: dict[str, torch.Tensor] = {}
    outs: dict[str, torch.Tensor] = {}
    handles = []
    for name, layer in _norm_named(tr):
        def hook(_m, args, output, name=name):
            ins[name], outs[name] = args[0].detach(), output.detach()
        handles.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            emb_tr = tr.features(x)
    finally:
        for h in handles:
            h.remove()

    names, g2, b2, ops, sources, eff, eff_mean = [], [], [], [], [], [], []
    for name, layer in _norm_named(tr):
        gamma, beta = getattr(layer, "weight", None), getattr(layer, "bias", None)
        gamma = gamma.detach().double() if isinstance(gamma, torch.Tensor) else None
        beta = beta.detach().double() if isinstance(beta, torch.Tensor) else None
        names.append(name)
        g2.append(None if gamma is None else float(gamma.square().mean()))
        b2.append(None if beta is None else float(beta.square().mean()))
        op = pairs.get(name)
        ops.append(op)
        sigma, source = _channel_sigma(layer, ins.get(name))
        if op is None or sigma is None or gamma is None or sigma.numel() != gamma.numel():
            sources.append(None)
            eff.append(None)
            eff_mean.append(None)
            continue
        row = weights[op].flatten(1).norm(dim=1)  # ||w_c||
        scale = gamma.abs() * row / sigma
        sources.append(source)
        eff.append(float(scale.square().sum().sqrt()))
        eff_mean.append(float(scale.mean()))

    dauphin = None
    with_gamma = [(nm, ly) for nm, ly in _norm_named(tr)
                  if isinstance(getattr(ly, "weight", None), torch.Tensor) and nm in outs]
    if with_gamma:
        name, layer = with_gamma[-1]
        gamma = layer.weight.detach().double()
        beta = (layer.bias.detach().double() if isinstance(layer.bias, torch.Tensor)
                else torch.zeros_like(gamma))
        h, z = ins[name].double(), outs[name].double()
        spatial = z[0, 0].numel()
        hc = h.transpose(0, 1).reshape(h.shape[1], -1)
        v = hc.var(1, correction=0)
        eps = float(getattr(layer, "eps", 1e-5))
        gb = float((gamma.square() + beta.square()).sum())
        a = gamma.abs().clamp_min(1e-300)
        t = beta / a
        Phi = 0.5 * torch.erfc(-t / math.sqrt(2.0))
        phi = torch.exp(-0.5 * t.square()) / math.sqrt(2.0 * math.pi)
        relu_gauss = float(((gamma.square() + beta.square()) * Phi + a * beta * phi).sum())
        emb_sq = float(_sq_per_sample(emb_tr).mean())
        direct = bool(z.dim() == 2 and z.shape == emb_tr.shape
                      and torch.allclose(torch.relu(z), emb_tr.double(), rtol=0, atol=0))
        dauphin = {
            "layer": name, "coef": coef, "gamma_beta_sq": gb,
            "pre_activation_sq": float(_sq_per_sample(z).mean()) / spatial,
            "pre_activation_exact": float((gamma.square() * v / (v + eps)
                                           + beta.square()).sum()),
            "embedding_sq": emb_sq, "embedding_sq_eval": embedding_sq_eval,
            "relu_gaussian": relu_gauss, "swish0": gb / 4.0,
            "penalty": 0.5 * coef * gb, "paper_lhs": coef * gb, "paper_rhs": 0.25 * coef * emb_sq,
            "embedding_is_relu_of_norm": direct,
        }

    wl = _weight_layers(ev)
    return _plain({
        "norm_layers": names, "gamma_sq": g2, "beta_sq": b2, "preceding_op": ops,
        "sigma_source": sources, "effective_norm": eff, "effective_norm_mean": eff_mean,
        "weight_layers": [nm for nm, _ in wl],
        "weight_norm": [float(weights[nm].norm()) for nm, _ in wl],
        "embedding_sq": embedding_sq_eval, "output_sq": output_sq, "n": int(len(x)),
        "dauphin_eq1": dauphin,
    })
