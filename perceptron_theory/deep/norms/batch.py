"""Normalizers by batch statistics: ghost BN, batch renormalization, mean-only and
variance-only BN (torch's own BN is used for ``bn`` and ``bn-train``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from perceptron_theory._checks import check_int, check_real
from perceptron_theory.deep.norms._base import (
    EPS,
    MOMENTUM,
    _check_momentum,
    _Norm,
    _sq_norm_rows,
    _unbiased,
)
from perceptron_theory.deep.norms._kernels import (
    _ghost_ref,
    _GhostFn,
    _run,
    _var_only_ref,
    _VarOnlyFn,
)

__all__ = ["GhostBatchNorm", "BatchRenorm", "MeanOnlyBatchNorm", "VarianceOnlyBatchNorm"]


class GhostBatchNorm(_Norm):
    r"""Ghost batch normalization (Hoffer, Hubara & Soudry 2017, "Train longer...", Alg. 1).

    The batch of :math:`B` samples is cut into :math:`k = \lfloor B/m \rfloor` consecutive
    chunks :math:`G_j` of ``virtual_batch_size`` :math:`m` samples (the
    :math:`B \bmod m` leftover samples join the last chunk; :math:`B \le m` is one chunk,
    i.e. plain BN), each normalized by its own statistics over :math:`(N, H, W)`:

    .. math::

        \hat z_{ncs} = \frac{z_{ncs} - \mu^{G_j}_c}{\sqrt{(\sigma^{G_j}_c)^2 + \epsilon}},
        \quad n \in G_j, \qquad y = \gamma \hat z + \beta .

Running statistics take one step per forward call with the *average over chunks*
    of the chunk mean and of the unbiased chunk variance,
    :math:`r_\mu \leftarrow (1-m_o) r_\mu + m_o \frac1k\sum_j \mu^{G_j}` (and likewise
    for the variance; what ``F.instance_norm`` does with running stats); with
    :math:`m \ge B` the layer is exactly ``BatchNorm`` (running stats included). All
    chunks are normalized at once on a ``(k, m, C, HW)`` view (no loop), except when
    :math:`B` is not a multiple of :math:`m`.
    Evaluation uses the running statistics, like BN.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    virtual_batch_size : int
        Chunk size :math:`m \ge 2`.
    eps : float
        :math:`\epsilon`.
    momentum : float
        :math:`m_o` of the running averages.
    """

    def __init__(self, num_channels: int, dim: int = 2, virtual_batch_size: int = 32,
                 eps: float = EPS, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, eps)
        self.virtual_batch_size = check_int("virtual_batch_size", virtual_batch_size, 2)
        self.momentum = _check_momentum(momentum)
        self.register_buffer("running_mean", torch.zeros(num_channels))
        self.register_buffer("running_var", torch.ones(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        B, C, m = x.shape[0], self.num_channels, self.virtual_batch_size
        if B <= m:
            self._need_two(self._per_channel_count(x))
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                True, self.momentum, self.eps)
        if B % m == 0:
            n = m * (x.numel() // (B * C))
            self._need_two(n)
            y, mean, var = _run(_GhostFn, _ghost_ref, self._x3(x), self.weight, self.bias,
                                 self.eps, m)
            with torch.no_grad():
                self.running_mean.lerp_(mean.mean(0), self.momentum)
                self.running_var.lerp_(_unbiased(var, n).mean(0), self.momentum)
            return y.view(x.shape)
        return self._ragged(x)

    def _ragged(self, x: torch.Tensor) -> torch.Tensor:
        """Rare path (``B`` not a multiple of ``m``): chunks of ``m``, the rest in the last."""
        m = self.virtual_batch_size
        k = x.shape[0] // m
        sizes = [m] * (k - 1) + [x.shape[0] - m * (k - 1)]
        outs, means, variances = [], [], []
        for chunk in torch.split(x, sizes):
            n = self._per_channel_count(chunk)
            self._need_two(n)
            mean = chunk.mean(self._batch_axes, keepdim=True)
            var = (chunk - mean).square().mean(self._batch_axes, keepdim=True)
            outs.append((chunk - mean) * torch.rsqrt(var + self.eps))
            means.append(mean.detach().flatten())
            variances.append(_unbiased(var.detach().flatten(), n))
        with torch.no_grad():
            self.running_mean.lerp_(torch.stack(means).mean(0), self.momentum)
            self.running_var.lerp_(torch.stack(variances).mean(0), self.momentum)
        return self._affine(torch.cat(outs))

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", virtual_batch_size={self.virtual_batch_size}, "
                f"momentum={self.momentum:g}")


class BatchRenorm(_Norm):
    r"""Batch renormalization (Ioffe 2017, "Batch Renormalization", Algorithm 1).

    With the batch statistics :math:`\mu_B`, :math:`\sigma_B = \sqrt{(\sigma^B)^2+\epsilon}`
    and running :math:`\mu, \sigma` (buffers ``running_mean``, ``running_std``):

    .. math::

        r = \mathrm{sg}\Big[\mathrm{clip}_{[1/r_{\max},\, r_{\max}]}
            \frac{\sigma_B}{\sigma}\Big], \quad
        d = \mathrm{sg}\Big[\mathrm{clip}_{[-d_{\max},\, d_{\max}]}
            \frac{\mu_B - \mu}{\sigma}\Big], \quad
        y = \gamma\Big(\frac{z - \mu_B}{\sigma_B}\, r + d\Big) + \beta,

    :math:`\mathrm{sg}` = stop-gradient (``r`` and ``d`` are treated as constants, as in
    the paper), then :math:`\mu \leftarrow \mu + m(\mu_B - \mu)`,
    :math:`\sigma \leftarrow \sigma + m(\sigma_B - \sigma)` (the paper averages the
    *standard deviation*, with :math:`\epsilon` inside, initialized to 1). Evaluation:
    :math:`y = \gamma (z - \mu)/\sigma + \beta`. With :math:`r_{\max} = 1, d_{\max} = 0`
    it is BN; the paper ramps from there to :math:`r_{\max} = 3, d_{\max} = 5` (the
    defaults here) -- a schedule is set by assigning the ``r_max`` / ``d_max``
    attributes during training.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    r_max : float
        :math:`r_{\max} \ge 1`.
    d_max : float
        :math:`d_{\max} \ge 0`.
    eps : float
        :math:`\epsilon`.
    momentum : float
        :math:`m` (the paper's :math:`\alpha`).
    """

    def __init__(self, num_channels: int, dim: int = 2, r_max: float = 3.0,
                 d_max: float = 5.0, eps: float = EPS, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, eps)
        self.r_max = check_real("r_max", r_max, 1.0)
        self.d_max = check_real("d_max", d_max, 0.0)
        self.momentum = _check_momentum(momentum)
        self.register_buffer("running_mean", torch.zeros(num_channels))
        self.register_buffer("running_std", torch.ones(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training:
            inv = 1.0 / self._c(self.running_std)
            return self._affine(x - self._c(self.running_mean), inv)
        self._need_two(self._per_channel_count(x))
        with torch.no_grad():
            x3 = self._x3(x)
            mean = x3.mean((0, 2))
            std = torch.sqrt(_sq_norm_rows(x3 - mean.view(1, -1, 1), 0) / x3[:, 0].numel()
                             + self.eps)
            r = (std / self.running_std).clamp_(1.0 / self.r_max, self.r_max)
            d = ((mean - self.running_mean) / self.running_std).clamp_(-self.d_max, self.d_max)
        # gamma (r xhat + d) + beta = BN with weight gamma r and bias beta + gamma d
        w = r if self.weight is None else self.weight * r
        b = d if self.weight is None else self.weight * d
        b = b if self.bias is None else b + self.bias
        y = F.batch_norm(x, None, None, w, b, True, 0.0, self.eps)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_std.lerp_(std, self.momentum)
        return y

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", r_max={self.r_max:g}, d_max={self.d_max:g}, "
                f"momentum={self.momentum:g}")

class MeanOnlyBatchNorm(_Norm):
    r"""Mean-only batch normalization (Salimans & Kingma 2016, Sec. 3; Luo et al. Sec. 5).

    .. math::

        y = z - \mu^B + \beta \quad\text{(training)}, \qquad
        y = z - \mu_{\rm run} + \beta \quad\text{(evaluation)},

    no division and no :math:`\gamma` (the scale comes from the weight-normalized op:
    Luo et al.'s "WN + mean-only BN", ``wn+bn-mean``, isolates the :math:`\mu_B`
    noise). The module has ``bias`` and ``weight = None``.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    momentum : float
        Of the running mean ``running_mean``.
    """

    def __init__(self, num_channels: int, dim: int = 2, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, EPS, weight=False)
        self.momentum = _check_momentum(momentum)
        self.register_buffer("running_mean", torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training:
            return x + (self._c(self.bias) - self._c(self.running_mean))
        mean = x.mean(self._batch_axes, keepdim=True)
        with torch.no_grad():
            self.running_mean.lerp_(mean.flatten(), self.momentum)
        return x + (self._c(self.bias) - mean)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, dim={self.dim}, momentum={self.momentum:g}"


class VarianceOnlyBatchNorm(_Norm):
    r"""Variance-only batch normalization (Luo et al. 2019, Sec. 5, "WN + variance-only BN").

    .. math::

        y = \gamma\, \frac{z}{\sqrt{s^2 + \epsilon}} + \beta, \qquad
        s^2 = (\sigma^B)^2 = \frac{1}{BHW}\sum_{n,s}(z - \mu^B)^2
        \quad (\texttt{centered=True}),

    and at evaluation :math:`s^2` = the running unbiased batch variance. The mean is
    *not* subtracted. Luo et al. give no formula; they build it to carry BN's
    :math:`\sigma_B` noise without the :math:`\mu_B` noise (mean-only BN carries the
    other half), and their :math:`\sigma_B` (eq. 2, prior
    :math:`\sigma_B \sim N(\sigma_P, (\rho+2)/(4M))`) is the batch standard deviation
    about the batch mean -- so that is the default. ``centered=False`` uses the second
    moment about zero, :math:`s^2 = \frac{1}{BHW}\sum z^2` (running average of that
    moment at evaluation): this is ``theory.batchnorm``'s variance-only BN
    (``centered=False``, known mean) when the population mean is 0, but its scale then
    also carries :math:`\mu_B^2` noise.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    centered : bool
        Batch variance about the batch mean (default) or second moment about zero.
    eps : float
        :math:`\epsilon`.
    momentum : float
        Of the running statistic ``running_var``.
    """

    def __init__(self, num_channels: int, dim: int = 2, centered: bool = True,
                 eps: float = EPS, momentum: float = MOMENTUM):
        super().__init__(num_channels, dim, eps)
        if not isinstance(centered, bool):
            raise ValueError(f"centered must be True or False, got {centered!r}")
        self.centered = centered
        self.momentum = _check_momentum(momentum)
        self.register_buffer("running_var", torch.ones(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if not self.training:
            return self._affine(x, self._c(torch.rsqrt(self.running_var + self.eps)))
        n = self._per_channel_count(x)
        if self.centered:
            self._need_two(n)
        y, _, var = _run(_VarOnlyFn, _var_only_ref, self._x3(x), self.weight, self.bias,
                         self.eps, self.centered)
        with torch.no_grad():
            self.running_var.lerp_(_unbiased(var, n) if self.centered else var, self.momentum)
        return y.view(x.shape)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", centered={self.centered}, momentum={self.momentum:g}"
