"""The ``hessian`` probe: Hessian-vector products of a batch loss, top eigenvalues and the
eigenvalue density (R-F4, R-F6). The eigensolvers are :mod:`..spectral`'s."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..._checks import check_choice, check_int
from ..data import iterate_minibatches
from ..spectral import as_linear_operator, slq_density, top_eigenvalues
from ._common import MODES, _data, _device, _plain, probe_copy

HVP_METHODS = ("double-backward", "forward-over-reverse")
LOSSES = ("cross-entropy", "mse")


class HessianOperator:
    r"""Hessian-vector products :math:`v \mapsto \nabla^2_\theta L(\theta)\, v` of a fixed batch.

    :math:`\theta` = every trainable parameter of ``model`` (flattened in
    ``named_parameters`` order, ``dim`` entries); the loss, on ``n`` samples split into
    consecutive chunks :math:`B_j` of ``batch_size`` (the BN batches in
    ``mode="train"``), is

    .. math::

        L(\theta) = \sum_j \frac{|B_j|}{n}\, \ell_{B_j}(\theta), \qquad
        \ell_B = \frac{1}{|B|}\sum_{i\in B} \mathrm{CE}(NN(x_i), y_i)
        \quad\text{or}\quad \frac{1}{2|B|}\sum_{i\in B}\lVert NN(x_i) - y_i\rVert^2

    (``loss="cross-entropy"`` / ``"mse"``; the mse form has Hessian :math:`X^\top X/n`
    for a linear model with one output). The model is a :func:`probe_copy` in ``mode``
    (``"train"``: batch statistics of each chunk, as the training loss; ``"eval"``:
    running statistics), in ``dtype``.

    ``method``:

    * ``"double-backward"`` (Pearlmutter's trick, reverse-over-reverse): the first
      gradient :math:`g_j = \nabla\ell_{B_j}` is built once with ``create_graph=True``
      and kept; each product is one more backward pass through it,
      :math:`Hv = \sum_j \frac{|B_j|}{n}\nabla_\theta (g_j \cdot v)`. Works for every
      normalizer of ``deep.norms`` (their custom autograd functions differentiate twice)
      and weight norm; memory holds the graph of all ``n`` samples.
    * ``"forward-over-reverse"``: ``torch.func.jvp`` of ``torch.func.grad`` with
      ``functional_call``, recomputed for every product (no stored graph). Fails for
      custom autograd functions without forward-mode rules.

    Both agree with central differences of the gradient for every normalizer (tests).
    Caveats: weight norm is evaluated with plain ops (:func:`probe_copy`; torch's fused
    ``_weight_norm`` has a wrong double backward in torch 2.13); ``batch-renorm``'s
    :math:`r, d` are stop-gradient by design (Ioffe 2017), so its "Hessian" is that of
    the loss with :math:`r, d` frozen at the batch's values, not of the loss itself; and
    ``torch.func.hessian`` (vmapped) is *wrong* for BN with batch statistics in torch
    2.13 (an asymmetric :math:`\partial^2 L/\partial\gamma\,\partial W` block; cf.
    pytorch/pytorch#196699), which is why the products here never use ``vmap``.

    Parameters
    ----------
    model : torch.nn.Module
        Model (left untouched).
    x : torch.Tensor
        Inputs, shape ``(n, ...)``.
    y : torch.Tensor
        Class labels ``(n,)`` (cross entropy) or targets ``(n, K)`` (mse).
    mode : {"train", "eval"}
        Normalization mode.
    batch_size : int, optional
        Chunk size (default: all ``n`` in one chunk). Chunks of one sample are not
        allowed in ``mode="train"``.
    method : {"double-backward", "forward-over-reverse"}
        How products are computed.
    dtype : torch.dtype, optional
        Compute dtype (e.g. ``torch.float64``); the model's by default.
    loss : {"cross-entropy", "mse"}
        Per-sample loss.

    Attributes
    ----------
    dim : int
        Number of parameters.
    n_matvec : int
        Products computed so far.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 mode: str = "train", batch_size: int | None = None,
                 method: str = "double-backward", dtype: torch.dtype | None = None,
                 loss: str = "cross-entropy"):
        self.mode = check_choice("mode", mode, MODES)
        self.method = check_choice("method", method, HVP_METHODS)
        self.loss_name = check_choice("loss", loss, LOSSES)
        n = len(x)
        if n < 1 or len(y) != n:
            raise ValueError(f"x and y must hold the same number (>= 1) of samples, got "
                             f"{len(x)} and {len(y)}")
        bs = n if batch_size is None else check_int("batch_size", batch_size, 1)
        self.model = probe_copy(model, self.mode, dtype)
        self.dtype = next(self.model.parameters()).dtype
        device = _device(self.model)
        x = x.to(device=device, dtype=self.dtype)
        y = y.to(device)
        if self.loss_name == "mse":
            y = y.to(self.dtype)
        self.chunks = [(x[i], y[i]) for i in iterate_minibatches(n, bs)]
        if self.mode == "train" and any(len(c[1]) < 2 for c in self.chunks):
            raise ValueError(f"batch_size must leave chunks of >= 2 samples in mode 'train' "
                             f"(n = {n}, batch_size = {bs})")
        self.n = n
        self.named = [(k, p) for k, p in self.model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in self.named]
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.dim = int(sum(self.numels))
        self.n_matvec = 0
        self._grads = None
        if self.method == "double-backward":
            self._grads = []
            for xc, yc in self.chunks:
                g = torch.autograd.grad(self._loss(self.model(xc), yc), self.params,
                                        create_graph=True, allow_unused=True)
                self._grads.append((len(yc) / n, g))

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "cross-entropy":
            return F.cross_entropy(out, y)
        return 0.5 * (out - y.reshape(out.shape)).square().sum() / len(y)

    def _split(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [t.view(s) for t, s in zip(v.split(self.numels), self.shapes, strict=True)]

    def loss(self) -> float:
        """:math:`L(\\theta)` on the batch."""
        with torch.no_grad():
            return float(sum(len(yc) / self.n * self._loss(self.model(xc), yc)
                             for xc, yc in self.chunks))

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """:math:`Hv` for a flat ``v`` of ``dim`` entries (returned flat, compute dtype)."""
        v = v.to(device=self.params[0].device, dtype=self.dtype).reshape(-1)
        if v.numel() != self.dim:
            raise ValueError(f"v must have {self.dim} entries, got {v.numel()}")
        vs = self._split(v)
        out = torch.zeros(self.dim, dtype=self.dtype, device=v.device)
        if self.method == "double-backward":
            for w, g in self._grads:
                pairs = [(gi, vi, p) for gi, vi, p in zip(g, vs, self.params, strict=True)
                         if gi is not None and gi.requires_grad]
                if not pairs:
                    continue
                hv = torch.autograd.grad([gi for gi, _, _ in pairs], self.params,
                                         [vi for _, vi, _ in pairs], retain_graph=True,
                                         allow_unused=True)
                out += w * torch.cat([torch.zeros(k, dtype=self.dtype, device=v.device)
                                      if h is None else h.reshape(-1)
                                      for h, k in zip(hv, self.numels, strict=True)])
        else:
            from torch.func import functional_call, grad, jvp

            names = [k for k, _ in self.named]
            primals = {k: p.detach() for k, p in self.named}
            tangents = dict(zip(names, vs, strict=True))
            buffers = dict(self.model.named_buffers())
            for xc, yc in self.chunks:
                def f(ps, xc=xc, yc=yc):
                    return self._loss(functional_call(self.model, (ps, buffers), (xc,)), yc)

                hv = jvp(grad(f), (primals,), (tangents,))[1]
                out += len(yc) / self.n * torch.cat([hv[k].reshape(-1) for k in names])
        self.n_matvec += 1
        return out.detach()

    def dense(self) -> torch.Tensor:
        """The full ``(dim, dim)`` Hessian from ``dim`` products (small models only)."""
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.params[0].device)
        H = torch.stack([self.matvec(e) for e in eye], 1)
        return 0.5 * (H + H.T)

    def linear_operator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` in float64 (ARPACK's side)."""
        return as_linear_operator(self)


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def hessian_probe(model: nn.Module, data, *, n: int = 512, split: str = "train",
                  mode: str = "train", k: int = 10, tol: float = 1e-3,
                  batch_size: int | None = None, method: str = "double-backward",
                  dtype: str | None = None, density: bool = True, slq_steps: int = 50,
                  slq_vectors: int = 1, grid_points: int = 256, broadening: float = 0.01,
                  seed: int = 0) -> dict:
    r"""Top Hessian eigenvalues, :math:`\lambda_1/\lambda_K` and the density (R-F4, R-F6).

    The Hessian of the batch-mean cross entropy on ``n`` samples (Rao &
    Sohl-Dickstein: 512 CIFAR-10 samples) with respect to all trainable parameters
    (:class:`HessianOperator`); :math:`\lambda_1 \ge \dots \ge \lambda_K` by
    :func:`top_eigenvalues` with :math:`K` = ``k`` (10, the number of classes: Rao's
    heuristic choice), the outlier ratio :math:`\lambda_1/\lambda_K` (Ghorbani et al.
    2019) and, with ``density``, the SLQ eigenvalue density (:func:`slq_density`).

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    data : DataBundle or (x, y)
        Source of the batch.
    n : int
        Samples of the batch (seeded subset).
    split : {"train", "val", "test"}
        Split of a DataBundle.
    mode : {"train", "eval"}
        BN statistics: of each chunk (as in training) or running.
    k : int
        Number of top eigenvalues :math:`K`.
    tol : float
        eigsh's relative tolerance.
    batch_size : int, optional
        Chunk (BN batch) size; all ``n`` at once by default.
    method : {"double-backward", "forward-over-reverse"}
        Hessian-vector product (:class:`HessianOperator`).
    dtype : {"float32", "float64"}, optional
        Compute dtype (the model's by default).
    density : bool
        Also estimate the density by SLQ.
    slq_steps, slq_vectors, grid_points : int
        SLQ's Lanczos steps, start vectors and grid size.
    broadening : float
        SLQ's relative Gaussian width.
    seed : int
        Seed of the batch, eigsh's start vector and the SLQ vectors.

    Returns
    -------
    dict
        ``eigenvalues, lambda_1, lambda_ratio, k, n, dim, loss, mode, n_matvec`` and
        ``density`` (``grid, density, nodes, weights, sigma``) when asked for.
    """
    check_int("n", n, 1)
    seed = check_int("seed", seed, 0)
    if not isinstance(density, bool):
        raise ValueError(f"density must be True or False, got {density!r}")
    dt = None if dtype is None else _DTYPES[check_choice("dtype", dtype, _DTYPES)]
    x, y = _data(data, split, n, seed, _device(model))
    op = HessianOperator(model, x, y, mode=mode, batch_size=batch_size, method=method,
                         dtype=dt)
    eig = top_eigenvalues(op, k, tol=tol, seed=seed)
    out = {"eigenvalues": eig, "lambda_1": float(eig[0]),
           "lambda_ratio": float(eig[0] / eig[-1]) if eig[-1] != 0 else None,
           "k": int(k), "n": int(len(y)), "dim": op.dim, "loss": op.loss(), "mode": mode}
    if density:
        out["density"] = slq_density(op, steps=slq_steps, vectors=slq_vectors,
                                     grid_points=grid_points, broadening=broadening,
                                     seed=seed).to_dict()
    out["n_matvec"] = op.n_matvec
    return _plain(out)
