"""The ``dropout`` probe: accuracy under test-time dropout on the embedding (D-T3)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..._checks import check_int, check_real
from ..data import derive_seed, iterate_minibatches
from ._common import _data, _device, _plain, probe_copy


def dropout_probe(model: nn.Module, data, *, p: float = 0.5, masks: int = 10,
                  split: str = "test", n: int | None = None, mode: str = "eval",
                  batch_size: int = 1000, seed: int = 0) -> dict:
    r"""Accuracy under dropout on the embedding at test time, and the drop (D-T3).

    With :math:`m_{nd} \sim \mathrm{Bernoulli}(1-p)` i.i.d. (inverted dropout, as
    ``nn.Dropout``), the prediction is :math:`\arg\max_k [W (m \odot \mathrm{Emb}(x))
    /(1-p) + b]_k`. ``acc_dropout`` is the accuracy averaged over ``masks`` independent
    masks (seeded); ``drop = acc - acc_dropout`` (Dauphin & Cubuk 2021, Table 3: BN and
    embedding L2 make nets robust to this dropout). ``p = 0`` gives ``drop = 0``
    exactly.

    Parameters
    ----------
    model : torch.nn.Module
        A ``deep.models`` net.
    data : DataBundle or (x, y)
        Evaluation samples.
    p : float
        Dropout probability in [0, 1).
    masks : int
        Number of masks (>= 1).
    split : {"train", "val", "test"}
        Split of a DataBundle.
    n : int, optional
        Samples (seeded subset; all when None).
    mode : {"eval", "train"}
        Normalization mode of the embedding network (see the module docstring).
    batch_size : int
        Chunk size of the embedding pass (the BN batch in ``mode="train"``).
    seed : int
        Seed of the subset and the masks.

    Returns
    -------
    dict
        ``p, masks, n, acc, acc_dropout, acc_dropout_std, acc_dropout_per_mask, drop``.
    """
    p = check_real("p", p, 0.0, 1.0, hi_open=True)
    masks = check_int("masks", masks, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed, 0)
    net = probe_copy(model, mode)
    x, y = _data(data, split, n, seed, _device(model))
    with torch.no_grad():
        emb = torch.cat([net.features(x[i]) for i in iterate_minibatches(len(y), batch_size)])
        acc = float((net.classifier(emb).argmax(1) == y).double().mean())
        g = torch.Generator(device=emb.device).manual_seed(derive_seed(seed, 1))
        per_mask = []
        for _ in range(masks):
            keep = torch.full_like(emb, 1.0 - p)
            mask = torch.bernoulli(keep, generator=g) / (1.0 - p)
            pred = net.classifier(emb * mask).argmax(1)
            per_mask.append(float((pred == y).double().mean()))
    mean = float(np.mean(per_mask))
    return _plain({"p": p, "masks": masks, "n": int(len(y)), "acc": acc,
                   "acc_dropout": mean, "acc_dropout_std": float(np.std(per_mask)),
                   "acc_dropout_per_mask": per_mask, "drop": acc - mean})
