"""The ``bn-finetune`` probe: fold BN into the preceding ops (exact at eval), then
fine-tune the plain net with ``train.train``'s SGD, optionally beside the BN net (L-F4)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..._checks import check_int, check_real
from ..data import derive_seed
from ..runs import BASE_BATCH, TrainConfig
from ..train import evaluate, train
from ._common import (
    _bundle,
    _data,
    _device,
    _norm_named,
    _plain,
    _raw_weight,
    _trace_pairs,
    _weight_layers,
    probe_copy,
)


def _plain_op(op: nn.Module) -> nn.Module:
    """A fresh, unparametrized conv/linear with the configuration of ``op`` and a bias.

    (A deep copy of a weight-normalized module shares its parametrized *class* with the
    original, so ``remove_parametrizations`` on the copy would break the original.)
    """
    kw = {"device": op.weight.device, "dtype": op.weight.dtype}
    if isinstance(op, nn.Linear):  # skip_init: no global-RNG draws for an init we overwrite
        return nn.utils.skip_init(nn.Linear, op.in_features, op.out_features, bias=True, **kw)
    cls = next(c for c in (nn.Conv1d, nn.Conv2d, nn.Conv3d) if isinstance(op, c))
    return nn.utils.skip_init(cls, op.in_channels, op.out_channels, op.kernel_size,
                              stride=op.stride, padding=op.padding, dilation=op.dilation,
                              groups=op.groups, bias=True, padding_mode=op.padding_mode, **kw)


def fold_batchnorm(model: nn.Module, *, example: torch.Tensor) -> nn.Module:
    r"""The plain (``norm="none"``) net computing ``model``'s eval-mode function exactly.

    Luo et al. (2019), Sec. 5 and App. B.2 (:math:`w^{sgd} = \gamma w^{bn}/\sigma`). For a
    conv/linear op :math:`z = W h + b` feeding a BN layer
    :math:`y = \gamma (z - \mu)/\sigma + \beta` with running :math:`\mu`,
    :math:`\sigma = \sqrt{\mathrm{running\_var} + \epsilon}`, per output channel
    :math:`c`:

    .. math::

        W'_c = \frac{\gamma_c}{\sigma_c} W_c, \qquad
        b'_c = \frac{\gamma_c}{\sigma_c}(b_c - \mu_c) + \beta_c,

    and the BN layer becomes the identity. The result is a copy with the same module
    tree as ``make_model(name, norm="none", ...)`` (the convs gain the biases that a
    norm-free slot's op has), in eval mode, weight-norm parametrizations removed.

    Parameters
    ----------
    model : torch.nn.Module
        A net whose every norm layer is torch BN with running statistics and an affine
        part, fed directly by a conv/linear (cnn, mlp, deep-fc, resnet18 with
        ``norm="bn"`` or ``"wn+bn"``; not the pre-activation wrn).
    example : torch.Tensor
        A batch that traces which op feeds which norm layer (:func:`_trace_pairs`).

    Returns
    -------
    torch.nn.Module
    """
    net = probe_copy(model, "eval")
    pairs = _trace_pairs(net, example.to(_device(net)))
    ops = dict(_weight_layers(net))
    for name, layer in _norm_named(net):
        ok = (isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine
              and isinstance(layer.running_var, torch.Tensor))
        if not ok:
            raise ValueError(f"fold_batchnorm needs torch BN layers with running statistics "
                             f"and affine parameters; {name!r} is {type(layer).__name__}")
        if name not in pairs:
            raise ValueError(f"norm layer {name!r} is not fed directly by a conv/linear op; "
                             f"BN cannot be folded (pre-activation nets such as wrn)")
    parent = dict(net.named_modules())
    with torch.no_grad():
        for name, layer in _norm_named(net):
            op_name = pairs[name]
            op = ops[op_name]
            s = layer.weight / torch.sqrt(layer.running_var + layer.eps)
            w = op.weight.detach()
            b = op.bias.detach() if op.bias is not None else torch.zeros_like(s)
            plain_op = _plain_op(op)
            plain_op.weight.copy_(w * s.view(-1, *([1] * (w.dim() - 1))))
            plain_op.bias.copy_((b - layer.running_mean) * s + layer.bias)
            for full, new in ((op_name, plain_op), (name, nn.Identity())):
                owner, _, attr = full.rpartition(".")
                setattr(parent[owner] if owner else net, attr, new)
    return net


def finetune_probe(model: nn.Module, data, *, lr: float = 1e-3, steps: int = 100,
                   every: int = 10, batch_size: int = 128, momentum: float = 0.0,
                   n_eval: int | None = 1000, control: bool = False, seed: int = 0) -> dict:
    r"""Fold BN (:func:`fold_batchnorm`) and fine-tune the plain net with SGD (L-F4).

    Luo et al. (2019), Sec. 5 "Regularization and parameter norm" and App. B.2, Fig. 4:
    from :math:`w^{sgd} = \gamma w^{bn}/\sigma` (same eval function), vanilla SGD at
    learning rate :math:`10^{-3}` releases BN's regularization: the weight norms grow,
    the training loss falls and the validation loss rises. Recorded at steps
    :math:`0, e, 2e, \dots` (:math:`e` = ``every``): :math:`\lVert W_l\rVert_F` of every
    conv/linear and the mean cross entropy / accuracy in eval mode on ``n_eval`` (seeded)
    training and validation samples (``train.evaluate``). The SGD steps are
    ``train.train``'s (no files; the folded net trained from the given weights): the
    training split in minibatches of ``batch_size`` from a fresh seeded permutation per
    pass (``train``'s batch-order stream of ``seed``), constant rate ``lr`` (up to
    rounding, as ``TrainConfig(lr=lr * 128 / batch_size)``), no weight decay and no
    penalty; ``momentum`` 0 (plain SGD).

    With ``control`` the original BN net is trained too, by ``train`` with the same
    configuration: on the very same minibatches with the same optimizer (batch statistics
    in training, running statistics updated), what continuing *with* BN does over the
    same steps. Its recorded weight norms are those of its fold, :math:`\lVert\gamma
    W/\sigma\rVert` (BN's effective norm), so the two sets of norms are comparable and
    equal at step 0. Without this control, a rising validation loss could be plain
    overfitting by further training rather than the release of BN's regularization.

    Parameters
    ----------
    model : torch.nn.Module
        A BN net that :func:`fold_batchnorm` accepts.
    data : DataBundle or (x, y)
        ``train`` and ``val`` splits (one pair is used for both).
    lr : float
        Learning rate (> 0).
    steps : int
        SGD steps (>= 0).
    every : int
        Recording interval in steps (>= 1).
    batch_size : int
        Minibatch size (>= 2; capped at the training split's size).
    momentum : float
        SGD momentum in [0, 1).
    n_eval : int, optional
        Samples of each split used for the losses (all when None).
    control : bool
        Also continue the BN net on the same minibatches (``control_*`` keys).
    seed : int
        Seed of the subsets, and ``train``'s seed (batch order; dropout of the control).

    Returns
    -------
    dict
        ``fold_max_abs_err, fold_max_rel_err, weight_layers, bn_weight_norm, step,
        weight_norm`` (per record, per layer), ``train_loss, train_acc, val_loss,
        val_acc``; with ``control`` also ``control_weight_norm, control_train_loss,
        control_train_acc, control_val_loss, control_val_acc``.
    """
    lr = check_real("lr", lr, 0.0, lo_open=True)
    steps = check_int("steps", steps, 0)
    every = check_int("every", every, 1)
    batch_size = check_int("batch_size", batch_size, 2)
    momentum = check_real("momentum", momentum, 0.0, 1.0, hi_open=True)
    if not isinstance(control, bool):
        raise ValueError(f"control must be True or False, got {control!r}")
    seed = check_int("seed", seed, 0)
    device = _device(model)
    bundle = _bundle(data, device)
    bs = min(batch_size, len(bundle.train_y))
    ex, ey = _data(bundle, "train", n_eval, derive_seed(seed, 3), device)
    vx, vy = _data(bundle, "val", n_eval, derive_seed(seed, 4), device) \
        if len(bundle.val_y) else (ex, ey)
    trace = ex[:min(len(ex), 64)]
    ref = probe_copy(model, "eval")
    plain_net = fold_batchnorm(model, example=trace)
    with torch.no_grad():
        a, b = ref(vx), plain_net(vx)
    err = float((a - b).abs().max())
    rel = err / max(float(a.abs().max()), 1e-30)
    bn_norms = [float(_raw_weight(m).detach().double().norm()) for _, m in _weight_layers(ref)]

    # (prefix, net, the plain net it computes at eval: its norms are recorded)
    arms = [("", plain_net, lambda: plain_net)]
    if control:
        bn_net = copy.deepcopy(model)
        arms.append(("control_", bn_net, lambda: fold_batchnorm(bn_net, example=trace)))
    config = TrainConfig(batch_size=bs, epochs=1, lr=lr * BASE_BATCH / bs, momentum=momentum,
                         weight_decay=0.0, schedule="constant", seed=seed)
    keys = ("weight_norm", "train_loss", "train_acc", "val_loss", "val_acc")
    rec = {"step": [], **{f"{pre}{k}": [] for pre, _, _ in arms for k in keys}}
    for pre, net, folded in arms:
        recorded = []

        def record(_model, step, _info, pre=pre, net=net, folded=folded, recorded=recorded):
            if step % every and step != steps:
                return
            recorded.append(step)
            for split, (xx, yy) in (("train", (ex, ey)), ("val", (vx, vy))):
                loss, acc = evaluate(net, xx, yy, 1000)
                rec[f"{pre}{split}_loss"].append(loss)
                rec[f"{pre}{split}_acc"].append(acc)
            rec[f"{pre}weight_norm"].append(
                [float(m.weight.detach().double().norm()) for _, m in _weight_layers(folded())])

        train(config, model=net, data=bundle, max_steps=steps, step_callbacks=[record],
              eval_splits=(), progress=False)
        rec["step"] = recorded
    return _plain({"fold_max_abs_err": err, "fold_max_rel_err": rel,
                   "weight_layers": [nm for nm, _ in _weight_layers(plain_net)],
                   "bn_weight_norm": bn_norms, "lr": lr, "batch_size": batch_size, **rec})
