"""The ``test-batch-size`` probe: test accuracy vs the test-time batch size, batch vs
running statistics (R-F5, L-F2ef)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..._checks import check_int
from ..data import derive_seed, iterate_minibatches
from ._common import _data, _device, _plain, probe_copy


def eval_batch_size_probe(model: nn.Module, data, *,
                          batch_sizes: Sequence[int] = (2, 8, 32, 128, 512),
                          split: str = "test", n: int | None = None, seed: int = 0) -> dict:
    r"""Test accuracy vs test-time batch size, batch vs running statistics (R-F5, L-F2ef).

    Rao & Sohl-Dickstein (2020), Sec. 7 and Fig. 5: evaluating with the statistics of
    the test batch itself ("Batch-Train"-style evaluation, ``mode="train"`` without
    running-stat updates) makes the accuracy depend on the test batch size :math:`B`;
    running statistics do not. The test samples are shuffled (seeded) and cut into
    ``n // B`` batches of exactly :math:`B` (the rest dropped: ``n_evaluated``).
    Normalizers without batch dependence give the same number at every :math:`B`.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    data : DataBundle or (x, y)
        Evaluation samples.
    batch_sizes : sequence of int
        Test batch sizes (>= 2; sizes above the sample count give None).
    split : {"train", "val", "test"}
        Split of a DataBundle.
    n : int, optional
        Samples (seeded subset; all when None).
    seed : int
        Seed of the subset and the shuffle.

    Returns
    -------
    dict
        ``batch_sizes, acc_batch_stats, loss_batch_stats, n_evaluated, acc_running_stats,
        loss_running_stats, n``.
    """
    if isinstance(batch_sizes, (int, np.integer)):
        batch_sizes = [batch_sizes]
    sizes = [check_int("batch_sizes entry", b, 2) for b in batch_sizes]
    seed = check_int("seed", seed, 0)
    x, y = _data(data, split, n, seed, _device(model))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(derive_seed(seed, 6)))
    x, y = x.index_select(0, order.to(x.device)), y.index_select(0, order.to(y.device))

    def run(net, bsz, drop_last):
        logits, ys = [], []
        with torch.no_grad():
            for idx in iterate_minibatches(len(y), bsz, drop_last=drop_last):
                idx = idx.to(x.device)
                logits.append(net(x.index_select(0, idx)).float())
                ys.append(y.index_select(0, idx))
        if not logits:
            return None, None, 0
        lg, yy = torch.cat(logits), torch.cat(ys)
        return (float((lg.argmax(1) == yy).double().mean()), float(F.cross_entropy(lg, yy)),
                len(yy))

    batch_net = probe_copy(model, "train")
    accs, losses, counts = [], [], []
    for b in sizes:
        acc, loss, cnt = run(batch_net, b, True)
        accs.append(acc)
        losses.append(loss)
        counts.append(cnt)
    acc_r, loss_r, _ = run(probe_copy(model, "eval"), 1000, False)
    return _plain({"batch_sizes": sizes, "acc_batch_stats": accs, "loss_batch_stats": losses,
                   "n_evaluated": counts, "acc_running_stats": acc_r,
                   "loss_running_stats": loss_r, "n": int(len(y))})
