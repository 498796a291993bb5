"""deep.norms against hand computations: every registry name, both dims, train and eval.

Tiers: each layer's output vs an independent float64 re-implementation of its formula
(explicit means and variances over the stated axes; running statistics as a hand-kept
EMA) to ~1e-12; autograd vs finite differences (``gradcheck``, float64) for first and
second derivatives; special cases (ghost BN with m = B is BN, batch renorm with
r_max = 1, d_max = 0 is BN, PN after a refresh uses the exact data statistics);
bad input -> ValueError naming the parameter and the value. All generators seeded.
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.autograd import gradcheck, gradgradcheck  # noqa: E402

from perceptron_theory.deep import norms  # noqa: E402

pytestmark = pytest.mark.deep

NAMES = norms.norm_names()
REQUIRED = ("none", "bn", "bn-train", "ghost-bn", "batch-renorm", "pn", "wn", "bn-mean",
            "bn-var", "ln", "gn", "in", "bmlv", "lmbv", "pre-ln", "regnorm", "pre-regnorm",
            "wn+bn-mean", "wn+bn-var", "wn+bn")
EPS = 1e-5
MOM = 0.1
C = 6
TOL = {"rtol": 1e-10, "atol": 1e-10}


def shape_of(dim: int, batch: int = 8) -> tuple[int, ...]:
    return (batch, C) if dim == 1 else (batch, C, 3, 2)


def sample(dim: int, seed: int, batch: int = 8) -> torch.Tensor:
    """float64 input with per-channel offsets and scales (so means and scales matter)."""
    g = torch.Generator().manual_seed(seed)
    shape = shape_of(dim, batch)
    view = (1, C) if dim == 1 else (1, C, 1, 1)
    offset = torch.linspace(-1.5, 2.0, C, dtype=torch.float64).view(view)
    scale = torch.linspace(0.5, 3.0, C, dtype=torch.float64).view(view)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale + offset


def build(name: str, dim: int, seed: int = 0, **options) -> nn.Module:
    """float64 layer with random gamma / beta; pre-centered names without the guard."""
    if norms.NORMS[name].pre_centering:
        options.setdefault("check_centering", False)
    m = norms.make_norm(name, C, dim=dim, **options).double()
    g = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return m


# ----------------------------------------------------------------- hand re-implementation
def _axes(dim):
    return ((0,), (1,)) if dim == 1 else ((0, 2, 3), (1, 2, 3))


def _view(t, dim):
    return t.view(1, C) if dim == 1 else t.view(1, C, 1, 1)


class Reference:
    """Independent float64 implementation of every registry layer (running stats by EMA)."""

    def __init__(self, name: str, dim: int, module: nn.Module, **options):
        self.layer = norms.split_norm(name)[1]
        self.dim = dim
        self.w = getattr(module, "weight", None)
        self.b = getattr(module, "bias", None)
        self.w = None if self.w is None else self.w.detach().clone()
        self.b = None if self.b is None else self.b.detach().clone()
        self.opt = {**norms.NORMS[name].options, **options}
        z, o = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
        self.rm, self.rv, self.rstd = z.clone(), o.clone(), o.clone()

    # statistics with explicit formulas
    def bmean(self, x):
        ax = _axes(self.dim)[0]
        return x.sum(ax, keepdim=True) / (x.numel() / C)

    def bvar(self, x):
        ax = _axes(self.dim)[0]
        return ((x - self.bmean(x)) ** 2).sum(ax, keepdim=True) / (x.numel() / C)

    def lmean(self, x):
        ax = _axes(self.dim)[1]
        return x.sum(ax, keepdim=True) / x[0].numel()

    def lvar(self, x):
        ax = _axes(self.dim)[1]
        return ((x - self.lmean(x)) ** 2).sum(ax, keepdim=True) / x[0].numel()

    def affine(self, t):
        if self.w is not None:
            t = t * _view(self.w, self.dim)
        if self.b is not None:
            t = t + _view(self.b, self.dim)
        return t

    def ema(self, attr, value):
        setattr(self, attr, (1 - self.opt.get("momentum", MOM)) * getattr(self, attr)
                + self.opt.get("momentum", MOM) * value.flatten())

    def unbiased(self, var, x):
        n = x.numel() / C
        return var * n / (n - 1)

    def forward(self, x, training: bool):
        L, d, sq = self.layer, self.dim, torch.sqrt
        if L == "none":
            return x
        if L in ("bn", "ghost-bn") and training:  # ghost with B <= m is BN
            mu, var = self.bmean(x), self.bvar(x)
            self.ema("rm", mu)
            self.ema("rv", self.unbiased(var, x))
            return self.affine((x - mu) / sq(var + EPS))
        if L in ("bn", "ghost-bn"):
            return self.affine((x - _view(self.rm, d)) / sq(_view(self.rv, d) + EPS))
        if L == "bn-train":
            return self.affine((x - self.bmean(x)) / sq(self.bvar(x) + EPS))
        if L == "batch-renorm" and training:
            mu, std = self.bmean(x), sq(self.bvar(x) + EPS)
            r = (std / _view(self.rstd, d)).clamp(1 / self.opt["r_max"], self.opt["r_max"])
            dd = ((mu - _view(self.rm, d)) / _view(self.rstd, d)).clamp(-self.opt["d_max"],
                                                                        self.opt["d_max"])
            self.ema("rm", mu)
            self.ema("rstd", std)
            return self.affine((x - mu) / std * r + dd)
        if L == "batch-renorm":
            return self.affine((x - _view(self.rm, d)) / _view(self.rstd, d))
        if L == "pn":  # before any refresh: mu_P = 0, sigma_P^2 = 1
            return self.affine(x / sq(torch.tensor(1.0 + EPS, dtype=x.dtype)))
        if L == "bn-mean" and training:
            mu = self.bmean(x)
            self.ema("rm", mu)
            return self.affine(x - mu)
        if L == "bn-mean":
            return self.affine(x - _view(self.rm, d))
        if L == "bn-var" and training:
            var = self.bvar(x)
            self.ema("rv", self.unbiased(var, x))
            return self.affine(x / sq(var + EPS))
        if L == "bn-var":
            return self.affine(x / sq(_view(self.rv, d) + EPS))
        if L == "ln":
            return self.affine((x - self.lmean(x)) / sq(self.lvar(x) + EPS))
        if L == "gn":
            G = max(g for g in range(1, min(self.opt["groups"], C) + 1) if C % g == 0)
            xg = x.reshape(x.shape[0], G, -1)
            mu = xg.mean(2, keepdim=True)
            var = ((xg - mu) ** 2).mean(2, keepdim=True)
            return self.affine(((xg - mu) / sq(var + EPS)).reshape(x.shape))
        if L == "in":
            if d == 1:
                return self.affine(torch.zeros_like(x))
            mu = x.mean((2, 3), keepdim=True)
            var = ((x - mu) ** 2).mean((2, 3), keepdim=True)
            return self.affine((x - mu) / sq(var + EPS))
        if L == "bmlv":
            return self.affine((x - self.bmean(x)) / sq(self.lvar(x) + EPS))
        if L == "lmbv":
            return self.affine((x - self.lmean(x)) / sq(self.bvar(x) + EPS))
        if L in ("pre-ln", "regnorm", "pre-regnorm"):
            ms = (x**2).sum(_axes(d)[1], keepdim=True) / x[0].numel()
            return self.affine(x / sq(ms + EPS))
        raise AssertionError(f"no reference for {L}")


# ------------------------------------------------------------------------------ registry
def test_registry_has_every_required_name_and_is_serializable():
    assert set(REQUIRED) <= set(NAMES)
    assert tuple(norms.NORMS) == NAMES
    for name, spec in norms.NORMS.items():
        assert spec.name == name
        json.dumps(spec.to_dict())
        assert spec.layer in norms.NORMS and norms.NORMS[spec.layer].layer == spec.layer


def test_doctests():
    res = doctest.testmod(norms, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


def test_importing_perceptron_theory_deep_does_not_import_torch():
    code = ("import sys, perceptron_theory, perceptron_theory.deep; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_custom_layers_are_not_torch_batchnorm_subclasses():
    for spec in norms.NORMS.values():
        if isinstance(spec.factory, type):
            assert not issubclass(spec.factory, nn.modules.batchnorm._BatchNorm), spec.name


@pytest.mark.parametrize("name", NAMES)
def test_affine_parameters_are_named_weight_and_bias(name):
    m = norms.make_norm(name, C, **({"check_centering": False}
                                    if norms.NORMS[name].pre_centering else {}))
    assert {n for n, _ in m.named_parameters()} <= {"weight", "bias"}


# ---------------------------------------------------------------- shapes and hand values
@pytest.mark.parametrize("dim", (1, 2))
@pytest.mark.parametrize("name", NAMES)
def test_output_shape_float32(name, dim):
    kw = {"check_centering": False} if norms.NORMS[name].pre_centering else {}
    m = norms.make_norm(name, C, dim=dim, **kw)
    x = torch.randn(shape_of(dim), generator=torch.Generator().manual_seed(1))
    assert m(x).shape == x.shape and m(x).dtype == torch.float32
    m.eval()
    assert m(x).shape == x.shape


@pytest.mark.parametrize("dim", (1, 2))
@pytest.mark.parametrize("name", NAMES)
def test_train_then_eval_match_hand_computation(name, dim):
    """Three training steps (outputs and running stats), then evaluation."""
    m = build(name, dim)
    ref = Reference(name, dim, m)
    m.train()
    for step in range(3):
        x = sample(dim, seed=step)
        torch.testing.assert_close(m(x), ref.forward(x, True), **TOL)
    m.eval()
    x = sample(dim, seed=10)
    torch.testing.assert_close(m(x), ref.forward(x, False), **TOL)
    for buf in ("running_mean", "running_var", "running_std"):
        if getattr(m, buf, None) is not None and name not in ("bmlv", "lmbv"):
            want = {"running_mean": ref.rm, "running_var": ref.rv, "running_std": ref.rstd}
            torch.testing.assert_close(getattr(m, buf), want[buf], **TOL)


@pytest.mark.parametrize("dim", (1, 2))
@pytest.mark.parametrize("name", ["bmlv", "lmbv"])
def test_bmlv_lmbv_running_stats_option(name, dim):
    m = build(name, dim, track_running_stats=True)
    ref = Reference(name, dim, m)
    for step in range(3):
        x = sample(dim, seed=step)
        m(x)
        ref.ema("rm", ref.bmean(x))
        ref.ema("rv", ref.unbiased(ref.bvar(x), x))
    m.eval()
    x = sample(dim, seed=10)
    w, b = _view(ref.w, dim), _view(ref.b, dim)
    if name == "bmlv":
        torch.testing.assert_close(m.running_mean, ref.rm, **TOL)
        want = (x - _view(ref.rm, dim)) / torch.sqrt(ref.lvar(x) + EPS) * w + b
    else:
        torch.testing.assert_close(m.running_var, ref.rv, **TOL)
        want = (x - ref.lmean(x)) / torch.sqrt(_view(ref.rv, dim) + EPS) * w + b
    torch.testing.assert_close(m(x), want, **TOL)


# ------------------------------------------------------------------------------ gradients
def _functional(m: nn.Module):
    names = [n for n, _ in m.named_parameters()]

    def f(x, *params):
        return torch.func.functional_call(m, dict(zip(names, params, strict=True)), (x,))

    return f, [p.detach().clone().requires_grad_(True) for p in m.parameters()]


def _grad_opts(name):
    # momentum 0: running statistics (which batch renorm's r, d read) stay put while
    # gradcheck perturbs the input; batch renorm with running stats far from the batch
    # ones has r and d clipped, i.e. locally constant, as the paper's stop-gradient says
    opts = {}
    if "momentum" in norms.NORMS[name].options:
        opts["momentum"] = 0.0
    return opts


@pytest.mark.parametrize("dim", (1, 2))
@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64_train_and_eval(name, dim):
    m = build(name, dim, **_grad_opts(name))
    if name == "batch-renorm":
        with torch.no_grad():
            m.running_mean.fill_(10.0)
            m.running_std.fill_(0.01)
    x = sample(dim, seed=3, batch=4).requires_grad_(True)
    f, params = _functional(m)
    for training in (True, False):
        m.train(training)
        assert gradcheck(f, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dim", (1, 2))
@pytest.mark.parametrize("name", ["bn-var", "bmlv", "lmbv", "pre-ln", "regnorm", "ghost-bn",
                                  "ln", "gn", "bn-mean", "pn"])
def test_second_derivatives(name, dim):
    """Hessian-vector products (curvature probes) are exact: gradgradcheck, float64."""
    opts = _grad_opts(name)
    if name == "ghost-bn":
        opts["virtual_batch_size"] = 2  # two chunks of the batch of 4
    m = build(name, dim, **opts)
    x = sample(dim, seed=4, batch=4).requires_grad_(True)
    f, params = _functional(m)
    assert gradgradcheck(f, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_pre_centering_gradients():
    op = norms.apply_pre_centering(nn.Linear(5, 3).double())
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64).requires_grad_(True)
    assert gradcheck(op, (x,), eps=1e-6, atol=1e-6)
    assert gradgradcheck(lambda t: op(t).square(), (x,), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dim", (1, 2))
@pytest.mark.parametrize("name", ["ghost-bn", "bn-var", "bmlv", "lmbv", "pre-regnorm"])
def test_fused_kernels_equal_plain_autograd(name, dim):
    """Values, running stats and gradients with the kernels on and off (float32)."""
    opts = {"virtual_batch_size": 4} if name == "ghost-bn" else {}
    x = sample(dim, seed=16).float()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    results = []
    for enabled in (True, False):
        m = build(name, dim, **opts).float()
        xx = x.clone().requires_grad_(True)
        with norms.fused_kernels(enabled):
            y = m(xx)
            (y * g).sum().backward()
        results.append([y.detach(), xx.grad, *[p.grad for p in m.parameters()],
                        *m.buffers()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")  # torch.func
def test_torch_func_transforms_work_through_the_layers():
    """functorch (jvp, vmap) falls back to the plain-autograd formulas."""
    m = build("bmlv", 2)
    x = sample(2, seed=17, batch=4)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    _, tangent = torch.func.jvp(m, (x,), (v,))
    h = 1e-6
    torch.testing.assert_close(tangent, (m(x + h * v) - m(x - h * v)) / (2 * h),
                               rtol=1e-6, atol=1e-6)
    r = norms.make_norm("regnorm", C, dim=1).double()
    xs = sample(1, seed=18, batch=4)
    grad = torch.func.grad(lambda t: (r(t) ** 2).sum())(xs)
    (want,) = torch.autograd.grad((r(xs.requires_grad_(True)) ** 2).sum(), xs)
    torch.testing.assert_close(grad, want, **TOL)


def test_bn_var_uncentered_and_its_gradients():
    m = build("bn-var", 2, centered=False, momentum=0.0)
    x = sample(2, seed=5, batch=4)
    ms = (x**2).mean((0, 2, 3), keepdim=True)
    want = x / torch.sqrt(ms + EPS) * _view(m.weight, 2) + _view(m.bias, 2)
    torch.testing.assert_close(m(x), want, **TOL)
    f, params = _functional(m)
    assert gradcheck(f, (x.requires_grad_(True), *params), eps=1e-6, atol=1e-6)
    assert gradgradcheck(f, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


# ------------------------------------------------------------------------ special cases
@pytest.mark.parametrize("dim", (1, 2))
def test_bn_train_uses_batch_stats_at_eval(dim):
    m = build("bn-train", dim)
    x = sample(dim, seed=6)
    y_train = m(x)
    m.eval()
    torch.testing.assert_close(m(x), y_train, rtol=0, atol=0)


@pytest.mark.parametrize("dim", (1, 2))
def test_ghost_bn_with_m_equal_batch_is_bn(dim):
    B = 8
    ghost = build("ghost-bn", dim, virtual_batch_size=B)
    bn = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(C).double()
    bn.load_state_dict(ghost.state_dict(), strict=False)
    for step in range(3):
        x = sample(dim, seed=step, batch=B)
        torch.testing.assert_close(ghost(x), bn(x), **TOL)
    torch.testing.assert_close(ghost.running_mean, bn.running_mean, **TOL)
    torch.testing.assert_close(ghost.running_var, bn.running_var, **TOL)
    ghost.eval()
    bn.eval()
    x = sample(dim, seed=9, batch=B)
    torch.testing.assert_close(ghost(x), bn(x), **TOL)


@pytest.mark.parametrize("dim", (1, 2))
@pytest.mark.parametrize("batch, sizes", [(12, [4, 4, 4]), (14, [4, 4, 6])])
def test_ghost_bn_normalizes_each_chunk_by_its_own_stats(dim, batch, sizes):
    """Chunks of m = 4 (the leftover samples join the last); running stats average them."""
    m = build("ghost-bn", dim, virtual_batch_size=4)
    x = sample(dim, seed=7, batch=batch)
    ref = Reference("bn", dim, m)
    outs, means, variances = [], [], []
    for chunk in torch.split(x, sizes):
        outs.append(ref.affine((chunk - ref.bmean(chunk)) / torch.sqrt(ref.bvar(chunk) + EPS)))
        means.append(ref.bmean(chunk).flatten())
        variances.append(ref.unbiased(ref.bvar(chunk), chunk).flatten())
    torch.testing.assert_close(m(x), torch.cat(outs), **TOL)
    torch.testing.assert_close(m.running_mean, MOM * torch.stack(means).mean(0), **TOL)
    torch.testing.assert_close(m.running_var,
                               1 - MOM + MOM * torch.stack(variances).mean(0), **TOL)
    f, params = _functional(build("ghost-bn", dim, virtual_batch_size=4, momentum=0.0))
    xs = sample(dim, seed=8, batch=batch - 4).requires_grad_(True)
    assert gradcheck(f, (xs, *params), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dim", (1, 2))
def test_batch_renorm_with_r1_d0_is_bn_and_r_d_carry_no_gradient(dim):
    m = build("batch-renorm", dim, r_max=1.0, d_max=0.0)
    bn = (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(C).double()
    with torch.no_grad():
        bn.weight.copy_(m.weight)
        bn.bias.copy_(m.bias)
    x = sample(dim, seed=11)
    torch.testing.assert_close(m(x), bn(x), **TOL)
    # unclipped regime: the gradient is that of gamma (xhat r + d) + beta with r, d fixed
    m = build("batch-renorm", dim, r_max=10.0, d_max=10.0)
    with torch.no_grad():
        m.running_mean.fill_(0.3)
        m.running_std.fill_(1.7)
    x = sample(dim, seed=12).requires_grad_(True)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    (dx,) = torch.autograd.grad((m(x) * g).sum(), x)
    ref = Reference("batch-renorm", dim, m)
    with torch.no_grad():
        mu, std = ref.bmean(x), torch.sqrt(ref.bvar(x) + EPS)
        r, d = std / 1.7, (mu - 0.3) / 1.7
    y = ref.affine((x - ref.bmean(x)) / torch.sqrt(ref.bvar(x) + EPS) * r + d)
    (want,) = torch.autograd.grad((y * g).sum(), x)
    torch.testing.assert_close(dx, want, **TOL)


@pytest.mark.parametrize("dim", (1, 2))
def test_bn_mean_has_no_scaling(dim):
    m = build("bn-mean", dim)
    assert m.weight is None and m.bias is not None
    x = sample(dim, seed=13)
    shift = m(x) - x  # = beta - mu_B, the same at every sample and position
    torch.testing.assert_close(shift, shift[:1].expand_as(shift).contiguous(), **TOL)
    beta = _view(m.bias, dim)
    torch.testing.assert_close(m(3.0 * x) - beta, 3.0 * (m(x) - beta), **TOL)  # no division


# ------------------------------------------------------------------------------------- PN
class _TwoPN(nn.Module):
    """conv -> PN -> ReLU -> conv -> PN -> flatten -> linear -> PN (three PN in series)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.c1 = nn.Conv2d(2, C, 3, padding=1).double()
        self.p1 = norms.make_norm("pn", C).double()
        self.c2 = nn.Conv2d(C, C, 3, padding=1).double()
        self.p2 = norms.make_norm("pn", C).double()
        self.fc = nn.Linear(C * 16, 5).double()
        self.p3 = norms.make_norm("pn", 5, dim=1).double()
        self.drop = nn.Dropout(0.5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5 + 0.2)

    def forward(self, x):
        h1 = self.c1(x)
        h2 = self.c2(torch.relu(self.p1(h1)))
        h3 = self.fc(self.drop(self.p2(h2)).flatten(1))
        self.inputs = (h1, h2, h3)
        return self.p3(h3)


def _exact_stats(t: torch.Tensor):
    axes = (0,) if t.dim() == 2 else (0, 2, 3)
    return t.mean(axes), t.var(axes, correction=0)


def test_pn_refresh_gives_exact_population_statistics():
    net = _TwoPN().train()
    data = [torch.randn(6, 2, 4, 4, generator=torch.Generator().manual_seed(s),
                        dtype=torch.float64) * 2 + 1 for s in range(4)]
    layers = (net.p1, net.p2, net.p3)
    norms.refresh_population_stats(net, ((x, None) for x in data), passes=None)
    assert net.training and net.drop.training  # modes restored
    full = torch.cat(data)
    with torch.no_grad():
        net.eval()
        net(full)
    for layer, h in zip(layers, net.inputs, strict=True):
        mean, var = _exact_stats(h)
        torch.testing.assert_close(layer.population_mean, mean, **TOL)
        torch.testing.assert_close(layer.population_var, var, **TOL)
        assert int(layer.num_refreshes) == 1  # one exact refresh (one sweep)
        # the forward pass normalizes with exactly those statistics, in train and eval
        shape = (1, -1) if h.dim() == 2 else (1, -1, 1, 1)
        want = ((h - mean.view(shape)) / torch.sqrt(var.view(shape) + EPS)
                * layer.weight.view(shape) + layer.bias.view(shape))
        layer.train()
        torch.testing.assert_close(layer(h), want, **TOL)
    # one sweep is exact for the first layer only (the others saw old upstream stats)
    norms.refresh_population_stats(net, data[:2], passes=1)
    exact = _TwoPN()
    exact.load_state_dict(net.state_dict())
    norms.refresh_population_stats(exact, data[:2], passes=3)
    torch.testing.assert_close(net.p1.population_var, exact.p1.population_var, **TOL)
    assert not torch.allclose(net.p2.population_var, exact.p2.population_var, rtol=1e-3)


def _pn_layers(net: nn.Module) -> list:
    return [m for m in net.modules() if isinstance(m, norms.PopulationNorm)]


def _assert_same_pn_stats(a: nn.Module, b: nn.Module, rtol: float) -> None:
    for la, lb in zip(_pn_layers(a), _pn_layers(b), strict=True):
        torch.testing.assert_close(la.population_mean, lb.population_mean, rtol=rtol,
                                   atol=rtol * float(lb.population_var.sqrt().max()))
        torch.testing.assert_close(la.population_var, lb.population_var, rtol=rtol, atol=0)


def _one_sweep_vs_per_layer_sweeps(net: nn.Module, batches: list, rtol: float,
                                   sweeps: int = 1) -> None:
    """passes=None (one lock-step sweep) vs one plain sweep per PN layer, from the same
    state; the lock-step sweep runs the model once per batch (``sweeps`` = 1)."""
    import copy

    norms.refresh_population_stats(net, batches[:1], passes=1)  # a non-trivial start
    one, per_layer = copy.deepcopy(net), copy.deepcopy(net)
    calls = []
    one.register_forward_pre_hook(lambda m, a: calls.append(len(a[0])))
    norms.refresh_population_stats(one, batches, passes=None)
    norms.refresh_population_stats(per_layer, batches, passes=len(_pn_layers(net)))
    assert calls == [len(b) for b in batches] * sweeps
    _assert_same_pn_stats(one, per_layer, rtol)
    assert all(l._sweep is None and l._acc is None for l in _pn_layers(one))


@pytest.mark.parametrize("model, options", [
    ("cnn", {"channels": (4, 4, 8, 8), "hidden": 16}),     # 5 PN layers in series
    ("wrn", {"depth": 10, "width": 1, "base_width": 4}),  # skips; slot1 called twice
    ("resnet18", {}),                                      # 20 PN layers, shortcut slots
])
def test_pn_one_sweep_refresh_equals_one_sweep_per_layer(model, options):
    from perceptron_theory.deep.models import make_model

    torch.manual_seed(0)
    size = 12 if model == "cnn" else 8
    net = make_model(model, norm="pn", in_channels=1, image_size=size, **options)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(90, 1, size, size, generator=g) * 2 + 0.5
    # float32 models: the two schemes differ by rounding at most (rtol 1e-5)
    _one_sweep_vs_per_layer_sweeps(net, list(x.split(40)), rtol=1e-5)


def test_pn_one_sweep_refresh_float64_and_fallback():
    g = torch.Generator().manual_seed(3)
    data = [torch.randn(n, 2, 4, 4, generator=g, dtype=torch.float64) for n in (5, 7, 6)]
    _one_sweep_vs_per_layer_sweeps(_TwoPN(), data, rtol=1e-12)
    _one_sweep_vs_per_layer_sweeps(_TwoPN(), data[:1], rtol=1e-12)  # a single batch

    class Shared(nn.Module):  # one PN layer on two different inputs: falls back to sweeps
        def __init__(self):
            super().__init__()
            self.pn = norms.make_norm("pn", 2).double()
            self.conv = nn.Conv2d(2, 2, 3, padding=1).double()

        def forward(self, x):
            return self.pn(self.conv(torch.relu(self.pn(x))))

    torch.manual_seed(0)
    # the lock-step sweep stops at the second call; one sweep per layer from the start
    _one_sweep_vs_per_layer_sweeps(Shared(), data, rtol=1e-12, sweeps=2)


def test_pn_one_sweep_refresh_reraises_model_errors():
    class Fails(nn.Module):
        def __init__(self):
            super().__init__()
            self.p1, self.p2 = norms.make_norm("pn", 2), norms.make_norm("pn", 2)

        def forward(self, x):
            h = self.p1(x)
            if len(x) == 3:
                raise ArithmeticError("batch of three")
            return self.p2(h)

    net = Fails()
    with pytest.raises(ArithmeticError, match="batch of three"):
        norms.refresh_population_stats(net, [torch.randn(4, 2, 2, 2), torch.randn(3, 2, 2, 2)],
                                       passes=None)
    assert all(l._sweep is None and l._acc is None for l in (net.p1, net.p2))
    norms.refresh_population_stats(net, [torch.randn(4, 2, 2, 2)], passes=None)  # usable


def test_pn_first_refresh_bootstraps_with_batch_statistics():
    """First sweep ever: batch stats, so one sweep over one batch is exact everywhere."""
    net = _TwoPN()
    x = torch.randn(12, 2, 4, 4, generator=torch.Generator().manual_seed(5),
                    dtype=torch.float64)
    norms.refresh_population_stats(net, [x], passes=1)
    with torch.no_grad():
        net.eval()
        net(x)
    for layer, h in zip((net.p1, net.p2, net.p3), net.inputs, strict=True):
        mean, var = _exact_stats(h)
        torch.testing.assert_close(layer.population_mean, mean, **TOL)
        torch.testing.assert_close(layer.population_var, var, **TOL)


def test_pn_output_does_not_depend_on_the_batch():
    m = build("pn", 2)
    x = sample(2, seed=14)
    torch.testing.assert_close(m(x)[:3], m(x[:3]), rtol=0, atol=0)


def test_refresh_checks_arguments_and_ignores_models_without_pn():
    net = _TwoPN()
    with pytest.raises(ValueError, match="passes"):
        norms.refresh_population_stats(net, [torch.zeros(2, 2, 4, 4)], passes=0)
    with pytest.raises(ValueError, match="batches"):
        norms.refresh_population_stats(net, [])
    norms.refresh_population_stats(nn.Linear(2, 2), [torch.zeros(1, 2)])  # no-op


# ------------------------------------------------------------ weight norm, pre-centering
def test_split_norm_and_uses_weight_norm():
    assert norms.split_norm("wn+bn-mean") == (True, "bn-mean")
    assert norms.split_norm("wn") == (True, "none")
    assert norms.split_norm("bn") == (False, "bn")
    for name in NAMES:
        wn, layer = norms.split_norm(name)
        assert wn == norms.uses_weight_norm(name) == name.startswith("wn")
        assert type(norms.make_norm(name, C, **({"check_centering": False} if
                                                norms.NORMS[name].pre_centering else {}))) \
            is type(norms.make_norm(layer, C, **({"check_centering": False} if
                                                 norms.NORMS[layer].pre_centering else {})))
    assert isinstance(norms.make_norm("wn", C), nn.Identity)
    assert [n for n in NAMES if norms.uses_pre_centering(n)] == ["pre-ln", "pre-regnorm"]


def test_apply_weight_norm_keeps_the_function_and_normalizes_rows():
    conv = nn.Conv2d(3, 4, 3).double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    before = conv(x)
    out = norms.apply_weight_norm(conv)
    assert out is conv
    torch.testing.assert_close(conv(x), before, **TOL)
    p = conv.parametrizations.weight
    v, g = p.original1, p.original0
    torch.testing.assert_close(conv.weight, g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1),
                               **TOL)
    with pytest.raises(ValueError, match="weight"):
        norms.apply_weight_norm(nn.ReLU())


@pytest.mark.parametrize("name", ["pre-ln", "pre-regnorm"])
def test_pre_centering_subtracts_the_layer_mean_before_the_op(name):
    g = torch.Generator().manual_seed(2)
    conv = nn.Conv2d(3, C, 3, padding=1).double()
    lin = nn.Linear(12, C).double()
    for op, x in ((conv, torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64) + 2),
                  (lin, torch.randn(4, 12, generator=g, dtype=torch.float64) + 2)):
        dim = 2 if op is conv else 1
        want_z = op(x - x.mean(tuple(range(1, x.dim())), keepdim=True))
        assert norms.prepare_op(op, name) is op
        norms.apply_pre_centering(op)  # idempotent
        layer = norms.make_norm(name, C, dim=dim).double()
        z = op(x)
        torch.testing.assert_close(z, want_z, **TOL)
        ms = z.square().mean(tuple(range(1, z.dim())), keepdim=True)
        torch.testing.assert_close(layer(z), z / torch.sqrt(ms + EPS), **TOL)


def test_pre_ln_guard_raises_without_pre_centering():
    layer = norms.make_norm("pre-ln", C, dim=1)
    with pytest.raises(RuntimeError, match="apply_pre_centering"):
        layer(torch.randn(4, C))
    wn_op = norms.prepare_op(nn.Linear(3, C), "wn+bn")
    assert hasattr(wn_op, "parametrizations") and not hasattr(wn_op, "_pt_pre_centered")


# ------------------------------------------------------------------------------- RegNorm
@pytest.mark.parametrize("dim", (1, 2))
def test_regnorm_regularizer_is_rao_eq3(dim):
    m = build("regnorm", dim)
    with pytest.raises(RuntimeError, match="forward"):
        m.regularizer()
    x = sample(dim, seed=15).requires_grad_(True)
    m(x)
    zbar = x.flatten(1) / torch.sqrt(x.flatten(1).square().mean(1, keepdim=True) + EPS)
    pair = (zbar[:, None, :] + zbar[None, :, :]).square() - 2.0  # all (a, b) pairs
    r = pair.sum(2).mean()
    torch.testing.assert_close(m.regularizer(), r, **TOL)
    torch.testing.assert_close(m.last_batch_mean.flatten(), zbar.mean(0), **TOL)
    assert m.last_batch_mean.shape == x.shape[1:]
    (gr,) = torch.autograd.grad(m.regularizer(), x)
    (want,) = torch.autograd.grad(r, x)
    torch.testing.assert_close(gr, want, **TOL)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, words", [
    (lambda: norms.make_norm("batchnorm", 4), ["name", "'batchnorm'", "bn"]),
    (lambda: norms.make_norm("bn", 0), ["num_channels", "0"]),
    (lambda: norms.make_norm("bn", 4, dim=3), ["dim", "3"]),
    (lambda: norms.make_norm("ghost-bn", 4, virtual_batch_size=1), ["virtual_batch_size", "1"]),
    (lambda: norms.make_norm("ghost-bn", 4, groups=2), ["groups", "ghost-bn"]),
    (lambda: norms.make_norm("batch-renorm", 4, r_max=0.5), ["r_max", "0.5"]),
    (lambda: norms.make_norm("batch-renorm", 4, d_max=-1), ["d_max", "-1"]),
    (lambda: norms.make_norm("bn", 4, momentum=2.0), ["momentum", "2.0"]),
    (lambda: norms.make_norm("ln", 4, eps=0.0), ["eps", "0.0"]),
    (lambda: norms.make_norm("gn", 4, groups=0), ["groups", "0"]),
    (lambda: norms.make_norm("bn-var", 4, centered="yes"), ["centered", "'yes'"]),
    (lambda: norms.make_norm("none", 4, eps=1e-3), ["eps", "none"]),
    (lambda: norms.split_norm("wn+ln"), ["name", "'wn+ln'"]),
    (lambda: norms.uses_weight_norm("WN"), ["name", "'WN'"]),
    (lambda: norms.make_norm("bn-var", 4, dim=1)(torch.randn(1, 4)), ["more than one value"]),
    (lambda: norms.make_norm("lmbv", 4)(torch.randn(3, 5, 2, 2)), ["shape", "(3, 5, 2, 2)"]),
])
def test_bad_input_raises_value_error_naming_it(call, words):
    with pytest.raises(ValueError) as err:
        call()
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_gn_groups_are_clipped_to_a_divisor():
    assert norms.make_norm("gn", 48).groups == 24
    assert norms.make_norm("gn", 64).groups == 32
    assert norms.make_norm("gn", 7, groups=4).groups == 1


def test_options_reach_the_layer():
    assert norms.make_norm("bn", 4, momentum=0.2, eps=1e-3).momentum == 0.2
    assert norms.make_norm("ghost-bn", 4, virtual_batch_size=16).virtual_batch_size == 16
    assert norms.make_norm("batch-renorm", 4, r_max=2.0).r_max == 2.0
    assert not norms.make_norm("bn-train", 4).track_running_stats
