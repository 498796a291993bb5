"""Population normalization (PN) and the lock-step refresh of its statistics."""

from __future__ import annotations

import threading
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from perceptron_theory._checks import check_int
from perceptron_theory.deep.norms._base import (
    EPS,
    _Norm,
    _sq_norm_rows,
)

__all__ = ["PopulationNorm", "refresh_population_stats"]


class PopulationNorm(_Norm):
    r"""Population normalization, PN (Luo et al. 2019, eq. 3 and Sec. 5, "PN + gamma decay").

    .. math::

        y = \gamma\, \frac{z - \mu^P}{\sqrt{(\sigma^P)^2 + \epsilon}} + \beta,

    with :math:`\mu^P_c, (\sigma^P_c)^2` (buffers ``population_mean``,
    ``population_var``) the mean and *biased* (population) variance over
    :math:`(N, H, W)` of this layer's input over a whole data set, computed by
    :func:`refresh_population_stats` (Luo et al. use 10k training samples). The output
    never depends on the other samples of the batch, in training or evaluation: PN is
    BN without the batch noise, which Luo et al. replace by an explicit gamma decay
    (``deep.penalties``).

    Before the first refresh the statistics are :math:`\mu^P = 0`,
    :math:`(\sigma^P)^2 = 1` (an affine layer, still batch-independent) -- refresh once
    before training and then periodically. The buffer ``num_refreshes`` counts
    refreshes (saved in the ``state_dict``). During the *first* sweep of the first
    refresh only, the layer normalizes with the statistics of each batch (as
    ``bn-train``), so that downstream layers see nearly normalized inputs from the
    start instead of the 0/1 placeholder.

    Parameters
    ----------
    num_channels : int
        :math:`C`.
    dim : int
        2 for ``(B, C, H, W)``, 1 for ``(B, C)``.
    eps : float
        :math:`\epsilon`.
    """

    def __init__(self, num_channels: int, dim: int = 2, eps: float = EPS):
        super().__init__(num_channels, dim, eps)
        self.register_buffer("population_mean", torch.zeros(num_channels))
        self.register_buffer("population_var", torch.ones(num_channels))
        self.register_buffer("num_refreshes", torch.zeros((), dtype=torch.long))
        self._acc: list | None = None  # [count, mean (C,), M2 (C,)] in float64 while collecting
        self._bootstrap = False  # first sweep ever: normalize by batch statistics
        self._sweep: _LockStepSweep | None = None  # set during an exact one-sweep refresh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self._sweep is not None:
            self._sweep.arrive(self, x)  # returns once every batch is in: exact statistics
        elif self._acc is not None:
            self._collect(x)
            if self._bootstrap and self._per_channel_count(x) > 1:
                return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(x, self.population_mean, self.population_var, self.weight,
                            self.bias, False, 0.0, self.eps)

    # --- collection (driven by refresh_population_stats) ---------------------------
    def _begin_collect(self) -> None:
        self._acc = [0, None, None]
        self._bootstrap = int(self.num_refreshes) == 0

    @torch.no_grad()
    def _collect(self, x: torch.Tensor) -> None:
        """Merge this batch into the running (count, mean, M2) -- Chan et al.'s update."""
        xd = self._x3(x.detach()).to(torch.float64)
        n_b = xd.shape[0] * xd.shape[2]
        mean_b = xd.mean((0, 2))
        m2_b = _sq_norm_rows(xd - mean_b.view(1, -1, 1), 0)
        n_a, mean_a, m2_a = self._acc
        if n_a == 0:
            self._acc = [n_b, mean_b, m2_b]
            return
        n = n_a + n_b
        delta = mean_b - mean_a
        self._acc = [n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n)]

    @torch.no_grad()
    def _end_collect(self) -> bool:
        n, mean, m2 = self._acc
        self._acc, self._bootstrap = None, False
        if n == 0:
            return False
        self.population_mean.copy_(mean)
        self.population_var.copy_(m2 / n)
        self.num_refreshes += 1
        return True


class _NotLockStep(RuntimeError):
    """The batches did not meet the PN layers in one common order (one sweep cannot be exact)."""


class _Aborted(Exception):
    """Raised in the other batches' threads when one of them failed."""


class _LockStepSweep:
    r"""One forward pass per batch, each in its own thread, in lock step at the PN layers.

    Exactly one thread runs at a time; the turn goes round 0, 1, ..., K - 1, 0, ... .
    A thread gives up its turn when its forward reaches a :class:`PopulationNorm` (after
    merging its input into the layer's accumulator) or ends. When the last batch reaches
    a layer, the layer's statistics are final -- every batch's input is in -- and are
    written to its buffers; then every thread continues through that layer with them.
    So each layer normalizes with the exact statistics of its inputs, the inputs computed
    with the exact statistics of every PN layer upstream: what ``passes = number of PN
    layers`` sweeps reach, at the cost of one sweep. The merge order (batch 0, 1, ...)
    is the sweeps' order, so the float64 accumulators see the same sums.

    Memory: while a layer waits for the last batch, every batch's live tensors (the
    layer's input, and skip connections) are held at once, i.e. about ``samples x``
    the largest PN input per sample (plus open skips), in the model's dtype.
    """

    def __init__(self, n_batches: int):
        self.n = n_batches
        self.go = [threading.Event() for _ in range(n_batches)]  # go[i]: batch i's turn
        self.error: BaseException | None = None
        self.round: object = None  # the layer (or "end") the current round is at
        self.final: set = set()  # ids of layers whose statistics this sweep finalized
        self.local = threading.local()

    def _pass_turn(self, i: int, wait: bool = True) -> None:
        self.go[i].clear()  # before waking the next: with one batch, the next is i itself
        self.go[(i + 1) % self.n].set()
        if wait:
            self._wait(i)

    def _wait(self, i: int) -> None:
        self.go[i].wait()
        if self.error is not None:
            raise _Aborted

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        for go in self.go:
            go.set()

    def _enter_round(self, i: int, where: object) -> None:
        if i == 0:
            self.round = where
        elif self.round is not where:
            raise _NotLockStep("the batches reached the PN layers in different orders")

    def arrive(self, layer: PopulationNorm, x: torch.Tensor) -> None:
        """Batch ``i``'s input at ``layer``: merge it; wait until the statistics are final."""
        i = self.local.index
        if id(layer) in self.final:
            first = self.local.first_input.get(id(layer))
            if first is not None and first[0]() is x and first[1] == x._version:
                return  # the very same input again (a recomputed pre-activation): counted
            raise _NotLockStep("a PN layer was called twice in one forward pass")
        self.local.first_input[id(layer)] = (weakref.ref(x), x._version)
        self._enter_round(i, layer)
        if i == 0:
            layer._begin_collect()
        layer._collect(x)
        if i == self.n - 1:
            layer._end_collect()
            self.final.add(id(layer))
        self._pass_turn(i)

    def run(self, model: nn.Module, inputs: list) -> None:
        """Run ``model`` on every input in lock step; re-raise the first failure."""
        def work(i: int, x: torch.Tensor) -> None:
            self.local.index, self.local.first_input = i, {}
            try:
                self._wait(i)
                with torch.no_grad():  # grad mode is per thread
                    model(x)
                self._enter_round(i, "end")
                self._pass_turn(i, wait=False)
            except _Aborted:
                pass
            except BaseException as exc:  # handed to the caller below
                self._fail(exc)

        threads = [threading.Thread(target=work, args=(i, x), daemon=True,
                                    name=f"pn-refresh-{i}") for i, x in enumerate(inputs)]
        self.go[0].set()
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        except BaseException as exc:  # e.g. KeyboardInterrupt: release the workers
            self._fail(exc)
            raise
        if self.error is not None:
            raise self.error


def refresh_population_stats(model: nn.Module, batches, *, passes: int | None = 2) -> None:
    r"""Recompute :math:`\mu^P, (\sigma^P)^2` of every :class:`PopulationNorm` in ``model``.

    Runs every batch of ``batches`` through ``model`` under ``torch.no_grad()`` with
    the whole model in ``eval()`` mode (dropout off, BN layers on running stats; each
    module's ``training`` flag is restored afterwards). Each PN layer accumulates, in
    float64 with Chan et al.'s pairwise update, the exact mean and biased variance per
    channel of its input over all samples and positions, and replaces its statistics
    with them.

    Layers later in the net see inputs normalized by earlier PN layers, so a sweep
    that updates every layer at its end is not exact. ``passes=k`` does ``k`` such
    sweeps, each using the statistics of the previous one: after sweep :math:`k` the
    first :math:`k` PN layers along every path (in call order) hold the exact
    population statistics of the data *given the exact statistics upstream*; the
    default 2 is exact for the first two and close for the rest when the previous
    statistics were recent (periodic refreshes during training). On a layer's very
    first refresh, its first sweep normalizes by batch statistics (see
    :class:`PopulationNorm`), so the default is close from the start too (exact, in one
    sweep, when ``batches`` is a single batch).

    ``passes=None`` makes every layer exact in **one** sweep: the batches run in lock
    step (one thread each, one at a time, see :class:`_LockStepSweep`), and each PN
    layer's statistics are finalized once all batches have reached it, before any batch
    goes on. The result equals that of one sweep per PN layer (``passes=`` their number,
    the previous meaning of ``None``) up to float rounding, at the memory cost of holding
    every batch's activations at the widest PN input at once (about
    ``samples x C x H x W`` values). Should the batches not meet the PN layers in one
    common order (a layer called twice per forward, data-dependent control flow), it
    falls back to one sweep per PN layer. ``num_refreshes`` counts one per refresh here
    and one per sweep otherwise.

    Parameters
    ----------
    model : torch.nn.Module
        Model containing :class:`PopulationNorm` layers (a no-op when it has none).
    batches : iterable
        Input batches: tensors, or tuples/lists whose first entry is the input (as a
        ``DataLoader`` yields). Moved to the model's device. A one-shot iterator is
        materialized into a list so that it can be swept ``passes`` times.
    passes : int or None
        Number of sweeps (>= 1), or ``None`` for exact statistics in one sweep.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from perceptron_theory.deep.norms import make_norm, refresh_population_stats
    >>> net = nn.Sequential(nn.Linear(3, 4), make_norm("pn", 4, dim=1), nn.ReLU(),
    ...                     nn.Linear(4, 2), make_norm("pn", 2, dim=1))
    >>> x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    >>> refresh_population_stats(net, x.split(25), passes=None)
    >>> h = net[3](net[2](net[1](net[0](x))))   # the second layer's input, exact stats upstream
    >>> torch.allclose(net[4].population_var, h.var(0, correction=0), rtol=1e-5)
    True
    """
    layers = [m for m in model.modules() if isinstance(m, PopulationNorm)]
    if not layers:
        return
    if passes is not None:
        passes = check_int("passes", passes, 1)
    if iter(batches) is batches:
        batches = list(batches)
    try:
        device = next(t for t in (*model.parameters(), *model.buffers())).device
    except StopIteration:  # pragma: no cover - a PN layer always has buffers
        device = torch.device("cpu")
    inputs = [(b[0] if isinstance(b, (tuple, list)) else b).to(device) for b in batches]
    if not inputs:
        raise ValueError("batches must hold at least one batch, got none")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        if passes is None:
            sweep = _LockStepSweep(len(inputs))
            saved = [{k: b.clone() for k, b in layer.named_buffers()} for layer in layers]
            for layer in layers:
                layer._sweep = sweep
            try:
                sweep.run(model, inputs)
                return
            except _NotLockStep:  # start the per-layer sweeps from the same state
                passes = len(layers)
                with torch.no_grad():
                    for layer, state in zip(layers, saved, strict=True):
                        for k, b in layer.named_buffers():
                            b.copy_(state[k])
            finally:
                for layer in layers:
                    layer._sweep, layer._acc, layer._bootstrap = None, None, False
        with torch.no_grad():
            for _ in range(passes):
                for layer in layers:
                    layer._begin_collect()
                for x in inputs:
                    model(x)
                for layer in layers:
                    layer._end_collect()
    finally:
        for layer in layers:
            layer._acc, layer._bootstrap, layer._sweep = None, False, None
        for m, mode in modes:
            m.training = mode
