"""deep.probes: known answers (norms by hand, quadratic and dense Hessians, SLQ moments,
exact BN folding, correlation 1 of identical batches, zero drop at p = 0) and every
registry entry on a run directory written by train.train."""

import copy
import doctest
import importlib
import json
import math
import pkgutil
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from perceptron_theory.deep import probes as P  # noqa: E402
from perceptron_theory.deep import spectral  # noqa: E402
from perceptron_theory.deep.data import make_dataset  # noqa: E402
from perceptron_theory.deep.models import make_model  # noqa: E402
from perceptron_theory.deep.train import TrainConfig, train  # noqa: E402

pytestmark = pytest.mark.deep

EPS = 1e-5  # BN's epsilon
TINY_CNN = dict(channels=(4, 4, 8, 8), hidden=16)
# Small options for every registry entry (the test below checks the keys are PROBES').
SMALL = {
    "norms": {"n": 64},
    "dropout": {"masks": 3},
    "propagation": {"n": 16},
    "hessian": {"n": 16, "k": 3, "slq_steps": 4, "grid_points": 32},
    "bn-finetune": {"steps": 2, "every": 1, "batch_size": 16, "n_eval": 32},
    "test-batch-size": {"batch_sizes": [4, 16]},
}
TINY_RUN = dict(model="cnn", model_options={"channels": [4, 4, 8, 8], "hidden": 16}, norm="bn",
                dataset="synthetic", subset=160, test_subset=64, val_fraction=0.2,
                batch_size=32, epochs=1, lr=0.1, schedule="constant", device="cpu", seed=0,
                eval_batch_size=256)


def _batch(n=64, shape=(1, 8, 8), seed=0, classes=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g), torch.randint(0, classes, (n,), generator=g)


def _randomize_bn(net, seed=0):
    """Non-trivial gamma, beta and running statistics in every BN layer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return net


@pytest.mark.parametrize("module", [P, spectral, *(
    importlib.import_module(f"perceptron_theory.deep.probes.{m.name}")
    for m in pkgutil.iter_modules(P.__path__))], ids=lambda m: m.__name__)
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


# ============================================================================ norms
def _hand_model():
    """mlp 2 -> 2 (BN) -> 2 with set weights."""
    net = make_model("mlp", norm="bn", num_classes=2, in_channels=1, image_size=1,
                     in_features=2, hidden=2).double()
    fc, bn = net.body[0], net.body[1].norm
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        bn.weight.copy_(torch.tensor([2.0, 3.0]))
        bn.bias.copy_(torch.tensor([0.5, -1.0]))
        bn.running_mean.copy_(torch.tensor([1.0, -1.0]))
        bn.running_var.copy_(torch.tensor([4.0, 9.0]))
        net.classifier.weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 2.0]]))
        net.classifier.bias.copy_(torch.tensor([0.1, -0.2], dtype=torch.float64))
    return net


def test_norms_probe_hand_computed():
    net = _hand_model()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]], dtype=torch.float64)
    out = P.norms_probe(net, (x, torch.zeros(4, dtype=torch.long)), coef=0.1)
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    gamma, beta = np.array([2.0, 3.0]), np.array([0.5, -1.0])
    rm, rv = np.array([1.0, -1.0]), np.array([4.0, 9.0])
    Wc, bc = np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([0.1, -0.2])
    X = x.numpy()

    assert out["norm_layers"] == ["body.1.norm"] and out["preceding_op"] == ["body.0"]
    assert out["gamma_sq"] == pytest.approx([6.5]) and out["beta_sq"] == pytest.approx([0.625])
    assert out["weight_layers"] == ["body.0", "classifier"]
    assert out["weight_norm"] == pytest.approx([math.sqrt(30.0), math.sqrt(1 + 1 + 0.25 + 4)])
    per_channel = np.abs(gamma) * np.linalg.norm(W, axis=1) / np.sqrt(rv + EPS)
    assert out["sigma_source"] == ["running"]
    assert out["effective_norm"] == pytest.approx([np.sqrt((per_channel ** 2).sum())],
                                                  rel=1e-12)
    assert out["effective_norm_mean"] == pytest.approx([per_channel.mean()], rel=1e-12)

    z = X @ W.T
    emb = np.maximum(gamma * (z - rm) / np.sqrt(rv + EPS) + beta, 0.0)  # eval: running stats
    logits = emb @ Wc.T + bc
    assert out["embedding_sq"] == pytest.approx((emb ** 2).sum(1).mean(), rel=1e-12)
    assert out["output_sq"] == pytest.approx((logits ** 2).sum(1).mean(), rel=1e-12)

    d = out["dauphin_eq1"]
    v = z.var(0)  # biased batch variance: training-mode BN
    a = gamma * (z - z.mean(0)) / np.sqrt(v + EPS) + beta
    gb = (gamma ** 2 + beta ** 2).sum()  # 14.25
    assert d["gamma_beta_sq"] == pytest.approx(14.25)
    assert d["penalty"] == pytest.approx(0.05 * 14.25) and d["paper_lhs"] == pytest.approx(1.425)
    assert d["swish0"] == pytest.approx(gb / 4)
    # the identity behind eq. 1: E||gamma BN(h) + beta||^2 = sum gamma^2 v/(v+eps) + beta^2
    assert d["pre_activation_sq"] == pytest.approx((a ** 2).sum(1).mean(), rel=1e-12)
    assert d["pre_activation_exact"] == pytest.approx(d["pre_activation_sq"], rel=1e-12)
    assert d["embedding_sq"] == pytest.approx((np.maximum(a, 0) ** 2).sum(1).mean(), rel=1e-12)
    assert d["paper_rhs"] == pytest.approx(0.1 / 4 * d["embedding_sq"])
    assert d["embedding_is_relu_of_norm"] is True


def test_relu_gaussian_formula_monte_carlo():
    """E||ReLU(gamma h + beta)||^2 for Gaussian h: the closed form of norms_probe's docstring.

    A wide BN layer on Gaussian inputs: the per-channel batch standardization of 20000
    samples is Gaussian to O(1/sqrt(n)), so measured and predicted agree to ~1%.
    """
    torch.manual_seed(0)
    net = make_model("mlp", norm="bn", in_channels=1, image_size=1, in_features=16,
                     hidden=16).double()
    with torch.no_grad():
        net.body[1].norm.weight.copy_(torch.linspace(-2, 2, 16))
        net.body[1].norm.bias.copy_(torch.linspace(-1, 1.5, 16))
    x = torch.randn(20000, 16, dtype=torch.float64)
    d = P.norms_probe(net, (x, torch.zeros(20000, dtype=torch.long)), n=None)["dauphin_eq1"]
    assert d["embedding_sq"] == pytest.approx(d["relu_gaussian"], rel=0.02)


# ======================================================================== propagation
@pytest.mark.parametrize("norm", ["bn", "ln", "none"])
def test_identical_minibatches_correlate_fully(norm):
    net = make_model("deep-fc", norm=norm, in_channels=1, image_size=4, depth=6, width=16)
    x, y = _batch(32, (1, 4, 4))
    out = P.propagation_probe(net, (x, y), noise=0.0, n=32)
    assert len(out["rep_corr"]) == 6 + 2 and len(out["grad_corr"]) == 7
    np.testing.assert_allclose(out["rep_corr"], 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["rep_pearson"], 1.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["grad_corr"], 1.0, rtol=0, atol=1e-6)
    assert out["grad_ratio"] == pytest.approx(out["grad_norm"][0] / out["grad_norm"][-1])
    noisy = P.propagation_probe(net, (x, y), noise=0.5, n=32)
    assert all(c < 1 - 1e-6 for c in noisy["rep_corr"])


# ============================================================================= dropout
def test_dropout_probe_zero_p_and_seeding():
    net = make_model("cnn", norm="bn", in_channels=1, image_size=8, **TINY_CNN)
    data = _batch(64)
    out = P.dropout_probe(net, data, p=0.0)
    assert out["drop"] == 0.0 and out["acc_dropout_std"] == 0.0
    a = P.dropout_probe(net, data, p=0.5, masks=4, seed=3)
    b = P.dropout_probe(net, data, p=0.5, masks=4, seed=3)
    assert a == b and len(a["acc_dropout_per_mask"]) == 4
    assert a["drop"] == pytest.approx(a["acc"] - a["acc_dropout"])
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        P.dropout_probe(net, data, p=1.0)


# ============================================================================= Hessian
def test_hessian_of_quadratic_model_is_gram_matrix():
    """Linear model, loss (1/2n) sum (w.x - y)^2: H = X^T X / n exactly."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(50, 20, generator=g, dtype=torch.float64)
    Y = torch.randn(50, 1, generator=g, dtype=torch.float64)
    lin = nn.Linear(20, 1, bias=False).double()
    want = np.linalg.eigvalsh((X.T @ X / 50).numpy())
    op = P.HessianOperator(lin, X, Y, loss="mse", mode="eval")
    np.testing.assert_allclose(op.dense().numpy(), (X.T @ X / 50).numpy(), rtol=0, atol=1e-13)
    top = P.top_eigenvalues(op, 5, tol=0)
    np.testing.assert_allclose(top, want[::-1][:5], rtol=1e-10)
    chunked = P.HessianOperator(lin, X, Y, loss="mse", mode="eval", batch_size=7)
    np.testing.assert_allclose(chunked.dense().numpy(), op.dense().numpy(), atol=1e-13)


def _mlp64():
    torch.manual_seed(0)
    net = make_model("mlp", norm="bn", num_classes=3, in_channels=1, image_size=1,
                     in_features=6, hidden=5)
    with torch.no_grad():
        net.classifier.weight.mul_(3.0)  # a less trivial loss landscape
    x, y = _batch(40, (6,), seed=2, classes=3)
    return net, x.double(), y


def _dense_reference(net, x, y, mode):
    """The dense Hessian, independently of HessianOperator.

    eval mode: ``torch.func.hessian`` of the flattened-parameter loss. train mode:
    central differences (h = 1e-5, float64: error ~1e-10 relative) of autograd
    gradients, because in torch 2.13 the vmapped transforms (``torch.func.hessian``,
    ``jacrev(jacrev)``) return a wrong, asymmetric Hessian for batch norm with batch
    statistics (the d(dL/dgamma)/dW block; cf. pytorch/pytorch#196699), while
    double backward, un-vmapped forward-over-reverse and finite differences agree.
    """
    from torch.func import functional_call, hessian

    m = P.probe_copy(net, mode, torch.float64)
    names = [k for k, _ in m.named_parameters()]
    shapes = [p.shape for _, p in m.named_parameters()]
    sizes = [p.numel() for _, p in m.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for _, p in m.named_parameters()])

    def loss(t):
        ps = {k: c.view(s) for k, c, s in zip(names, t.split(sizes), shapes, strict=True)}
        return nn.functional.cross_entropy(functional_call(m, ps, (x,)), y)

    if mode == "eval":
        return hessian(loss)(theta)

    def grad(t):
        t = t.clone().requires_grad_(True)
        return torch.autograd.grad(loss(t), t)[0]

    h = 1e-5
    eye = torch.eye(len(theta), dtype=torch.float64)
    return torch.stack([(grad(theta + h * e) - grad(theta - h * e)) / (2 * h) for e in eye], 1)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_eigsh_matches_dense_hessian_float64(mode):
    net, x, y = _mlp64()
    H = _dense_reference(net, x, y, mode)
    op = P.HessianOperator(net, x, y, mode=mode, dtype=torch.float64)
    assert op.dim == H.shape[0] == 6 * 5 + 2 * 5 + 5 * 3 + 3
    np.testing.assert_allclose(op.dense().numpy(), H.numpy(), rtol=0,
                               atol=1e-8 * float(H.abs().max()))
    fwd = P.HessianOperator(net, x, y, mode=mode, dtype=torch.float64,
                            method="forward-over-reverse")
    v = torch.randn(op.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hv = op.matvec(v)
    np.testing.assert_allclose(fwd.matvec(v).numpy(), hv.numpy(), rtol=0,
                               atol=1e-12 * float(hv.abs().max()))
    dense = np.sort(np.linalg.eigvalsh(op.dense().numpy()))[::-1]
    top = P.top_eigenvalues(op, 6, tol=0)
    np.testing.assert_allclose(top, dense[:6], rtol=1e-6, atol=1e-10 * dense[0])
    ref = np.sort(np.linalg.eigvalsh(0.5 * (H + H.T).numpy()))[::-1]
    np.testing.assert_allclose(top, ref[:6], rtol=1e-6, atol=1e-8 * ref[0])


@pytest.mark.parametrize("norm", ["bn", "wn+bn", "wn", "ln", "gn", "ghost-bn", "bn-var",
                                  "bmlv", "lmbv", "pre-ln", "regnorm"])
def test_hvp_matches_finite_differences_for_every_kind_of_norm(norm):
    """H u vs central differences of the autograd gradient (h = 1e-5: O(h^2) ~ 1e-10),
    and u.Hw = w.Hu; weight norm included (torch's fused kernel fails both)."""
    opts = {"groups": 2} if norm == "gn" else (
        {"virtual_batch_size": 8} if norm == "ghost-bn" else None)
    torch.manual_seed(0)
    net = make_model("mlp", norm=norm, in_channels=1, image_size=3, hidden=6,
                     norm_options=opts).double()
    x, y = _batch(16, (1, 3, 3), seed=4)
    op = P.HessianOperator(net, x.double(), y)
    flat = torch.cat([p.detach().reshape(-1) for p in op.params])

    def grad(t):
        with torch.no_grad():
            for p, c in zip(op.params, t.split(op.numels), strict=True):
                p.copy_(c.view_as(p))
        g = torch.autograd.grad(nn.functional.cross_entropy(op.model(op.chunks[0][0]), y),
                                op.params, allow_unused=True)
        return torch.cat([torch.zeros(p.numel(), dtype=p.dtype) if gi is None
                          else gi.reshape(-1) for gi, p in zip(g, op.params, strict=True)])

    gen = torch.Generator().manual_seed(1)
    u, w = (torch.randn(op.dim, dtype=torch.float64, generator=gen) for _ in range(2))
    hu, hw = op.matvec(u), op.matvec(w)
    h = 1e-5
    fd = (grad(flat + h * u) - grad(flat - h * u)) / (2 * h)
    grad(flat)
    assert float((hu - fd).norm() / fd.norm()) < 1e-6
    assert float(w @ hu) == pytest.approx(float(u @ hw), rel=1e-10, abs=1e-12)


def test_lanczos_quadrature_is_exact_to_degree_2m_minus_1():
    net, x, y = _mlp64()
    op = P.HessianOperator(net, x, y, dtype=torch.float64)
    H = op.dense().numpy()
    v0 = np.random.default_rng(0).standard_normal(op.dim)
    m = 6
    alpha, beta = P.lanczos(lambda v: H @ v, op.dim, m, v0)
    assert len(alpha) == m and len(beta) == m - 1
    theta, U = np.linalg.eigh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
    q = v0 / np.linalg.norm(v0)
    scale = np.abs(np.linalg.eigvalsh(H)).max()
    for k in range(2 * m):
        exact = q @ np.linalg.matrix_power(H, k) @ q
        assert (U[0] ** 2 * theta ** k).sum() == pytest.approx(exact, abs=1e-9 * scale ** k)


def test_slq_density_integrates_to_one_and_matches_dense_moments():
    net, x, y = _mlp64()
    H = P.HessianOperator(net, x, y, dtype=torch.float64).dense().numpy()
    lam = np.linalg.eigvalsh(H)
    p, V = H.shape[0], 40

    class Dense:  # the same products from the stored matrix (fast)
        dim = p

        def matvec(self, v):
            return torch.from_numpy(H @ v.numpy())

    dens = P.slq_density(Dense(), steps=p, vectors=V, grid_points=400, seed=0)
    assert dens.integral() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(np.nansum(dens.weights, 1), 1.0, atol=1e-12)
    # full Lanczos: every Ritz value is an eigenvalue (degenerate ones found once)
    nodes = dens.nodes[np.isfinite(dens.nodes)]
    assert np.abs(nodes[:, None] - lam[None, :]).min(1).max() < 1e-8 * np.abs(lam).max()
    # moments: Hutchinson estimates of tr(H^k)/p with Rademacher vectors; standard error
    # sqrt(2 sum_{i != j} A_ij^2 / V) / p for A = H^k
    for k in (1, 2):
        A = np.linalg.matrix_power(H, k)
        se = math.sqrt(2 * ((A ** 2).sum() - (np.diag(A) ** 2).sum()) / V) / p
        assert dens.moment(k) == pytest.approx(np.trace(A) / p, abs=4 * se)
    # the density's own mean (symmetric broadening) is the first moment
    mean = spectral._trapezoid(dens.grid * dens.density, dens.grid)
    assert mean == pytest.approx(dens.moment(1), abs=1e-6 * np.abs(lam).max())
    ref = P.broadened_density(lam, None, dens.grid, dens.sigma)
    assert spectral._trapezoid(ref, dens.grid) == pytest.approx(1.0, abs=1e-6)


# ========================================================================= BN folding
@pytest.mark.parametrize("name, norm, opts", [
    ("cnn", "bn", TINY_CNN),
    ("cnn", "wn+bn", TINY_CNN),
    ("resnet18", "bn", {"width": 4}),
    ("mlp", "bn", {"hidden": 12}),
])
def test_bn_folding_reproduces_eval_outputs(name, norm, opts):
    torch.manual_seed(0)
    net = _randomize_bn(make_model(name, norm=norm, in_channels=1, image_size=8, **opts))
    before = copy.deepcopy(net.state_dict())
    x, _ = _batch(16)
    folded = P.fold_batchnorm(net, example=x)
    plain = make_model(name, norm="none", in_channels=1, image_size=8, **opts)
    assert list(folded.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(folded.state_dict())
    with torch.no_grad():
        want = P.probe_copy(net, "eval")(x)
        got = plain.eval()(x)
    assert float((got - want).abs().max()) <= 1e-5 * max(1.0, float(want.abs().max()))
    # the original is untouched (its weight-norm class included) and still runs
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    net.eval()(x)


def test_bn_folding_refuses_what_it_cannot_fold():
    x, _ = _batch(8)
    with pytest.raises(ValueError, match="not fed directly by a conv/linear"):
        P.fold_batchnorm(make_model("wrn", norm="bn", in_channels=1, image_size=8, depth=10,
                                    width=1, base_width=4), example=x)
    with pytest.raises(ValueError, match="needs torch BN layers"):
        P.fold_batchnorm(make_model("cnn", norm="ln", in_channels=1, image_size=8, **TINY_CNN),
                         example=x)


def test_finetune_starts_from_bn_effective_norms():
    torch.manual_seed(0)
    net = _randomize_bn(make_model("cnn", norm="bn", in_channels=1, image_size=8, **TINY_CNN))
    data = _batch(64)
    ft = P.finetune_probe(net, data, steps=3, every=2, batch_size=16)
    assert ft["step"] == [0, 2, 3] and len(ft["weight_norm"]) == 3
    assert ft["fold_max_rel_err"] < 1e-5
    norms = P.norms_probe(net, data)
    idx = [ft["weight_layers"].index(op) for op in norms["preceding_op"]]
    np.testing.assert_allclose([ft["weight_norm"][0][i] for i in idx], norms["effective_norm"],
                               rtol=1e-5)
    assert ft["weight_norm"][-1] != ft["weight_norm"][0]



def test_finetune_control_continues_bn_on_the_same_batches():
    """The BN control starts where the folded net starts (same eval function, same
    effective norms), leaves the plain run unchanged, and moves BN's effective norms."""
    torch.manual_seed(0)
    net = _randomize_bn(make_model("cnn", norm="bn", in_channels=1, image_size=8, **TINY_CNN))
    data = _batch(64)
    plain = P.finetune_probe(net, data, steps=3, every=2, batch_size=16, lr=0.05)
    both = P.finetune_probe(net, data, steps=3, every=2, batch_size=16, lr=0.05, control=True)
    for k in ("weight_norm", "train_loss", "val_loss", "train_acc", "val_acc"):
        assert both[k] == plain[k], k
    np.testing.assert_allclose(both["control_weight_norm"][0], both["weight_norm"][0],
                               rtol=1e-5)
    assert both["control_train_loss"][0] == pytest.approx(both["train_loss"][0], rel=1e-5)
    assert both["control_weight_norm"][-1] != both["control_weight_norm"][0]
    assert both["control_val_loss"][-1] != both["val_loss"][-1]
    with pytest.raises(ValueError, match="control"):
        P.finetune_probe(net, data, control=1)

# =================================================================== test batch size
def test_test_batch_size_probe():
    x, y = _batch(64)
    ln = make_model("cnn", norm="ln", in_channels=1, image_size=8, **TINY_CNN)
    out = P.eval_batch_size_probe(ln, (x, y), batch_sizes=(4, 16, 64, 128))
    assert out["n_evaluated"] == [64, 64, 64, 0] and out["acc_batch_stats"][-1] is None
    for acc in out["acc_batch_stats"][:3]:  # no batch dependence: the same at every size
        assert acc == out["acc_running_stats"]
    bn = _randomize_bn(make_model("cnn", norm="bn", in_channels=1, image_size=8, **TINY_CNN))
    out = P.eval_batch_size_probe(bn, (x, y), batch_sizes=(2, 64))
    assert out["loss_batch_stats"][0] != out["loss_batch_stats"][1]


# ======================================================= the model is never modified
@pytest.mark.parametrize("norm", ["bn", "wn+bn"])
def test_probes_leave_model_and_global_rng_untouched(norm):
    torch.manual_seed(0)
    net = make_model("cnn", norm=norm, in_channels=1, image_size=8, dropout=0.2, **TINY_CNN)
    net.train()
    before = copy.deepcopy(net.state_dict())
    rng = torch.get_rng_state()
    data = _batch(64)
    for name, fn in P.PROBES.items():
        out = fn(net, data, **SMALL[name])
        json.dumps(out, allow_nan=False)
    assert net.training and torch.equal(torch.get_rng_state(), rng)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in net.parameters())


# =========================================================== run directories, callbacks
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_run")
    train(TrainConfig(**TINY_RUN), out, progress=False)
    return out


def test_run_probe_every_registry_entry(run_dir):
    assert set(SMALL) == set(P.PROBES)
    for name in P.PROBES:
        res = P.run_probe(run_dir, name, options=SMALL[name])
        json.dumps(res, allow_nan=False)
        assert res["probe"] == name and res["epoch"] == 1 and isinstance(res["result"], dict)
    res = P.run_probe(run_dir, "norms", options={"n": 32})
    assert res["options"]["coef"] == TrainConfig(**TINY_RUN).weight_decay
    with pytest.raises(ValueError, match="probe must be one of"):
        P.run_probe(run_dir, "curvature")
    with pytest.raises(FileNotFoundError, match="config.json"):
        P.run_probe(run_dir / "nowhere", "norms")


def test_callback_logs_and_does_not_change_training(tmp_path):
    cfg = TrainConfig(**{**TINY_RUN, "model_options": {"channels": [4, 4, 8, 8], "hidden": 16,
                                                       "dropout": 0.1}})
    bundle = make_dataset("synthetic", subset=160, test_subset=64, val_fraction=0.2, seed=0)
    cb = P.as_callback("dropout", bundle, masks=2)
    with_cb = train(cfg, tmp_path / "a", progress=False, callbacks=[cb])
    without = train(cfg, tmp_path / "b", progress=False)
    assert "probe/dropout" in with_cb.final and "acc_dropout" in with_cb.final["probe/dropout"]
    assert with_cb.final["train_loss"] == without.final["train_loss"]
    assert with_cb.final["val_loss"] == without.final["val_loss"]
    line = json.loads((tmp_path / "a" / "log.jsonl").read_text().splitlines()[-1])
    assert line["probe/dropout"]["masks"] == 2


def test_gamma_vs_batch_size_tiny():
    cfg = TrainConfig(model="mlp", model_options={"hidden": 8}, norm="bn", dataset="synthetic",
                      subset=64, test_subset=16, val_fraction=0.25, epochs=1, lr=0.05,
                      schedule="constant", device="cpu", seed=0)
    out = P.gamma_vs_batch_size(cfg, [8, 16])
    assert out["batch_sizes"] == [8, 16] and out["layers"] == ["body.1.norm"]
    assert len(out["gamma_sq"]) == 2 and len(out["gamma_sq"][0]) == 1
    assert all(v is not None for v in out["val_loss"])
    one = P.gamma_vs_batch_size(cfg, [8], layer=0)
    assert one["gamma_sq"] == [out["gamma_sq"][0][0]]  # runs are deterministic


def test_propagation_over_training_tiny():
    cfg = TrainConfig(**{**TINY_RUN, "model": "deep-fc",
                         "model_options": {"depth": 3, "width": 16}})
    out = P.propagation_over_training(cfg, steps=3, every=2, n=16)
    assert out["step"] == [0, 2, 3] and len(out["propagation"]) == 3
    assert out["batch_loss"][0] is None and all(np.isfinite(out["batch_loss"][1:]))
    assert len(out["propagation"][0]["rep_corr"]) == 3 + 2


def test_probe_over_training_reproduces_train(run_dir):
    """Step-resolved training is train.train's run: same weights after one epoch."""
    cfg = TrainConfig(**TINY_RUN)  # 128 training samples / 32 = 4 steps per epoch
    out = P.probe_over_training(cfg, steps=4, every=4, probes={"norms": {"n": 32}})
    model, bundle, _, epoch = P.load_run(run_dir)
    ref = P.norms_probe(model, bundle, n=32)
    assert epoch == 1 and out["step"] == [0, 4]
    got = out["norms"][-1]
    np.testing.assert_allclose(got["weight_norm"], ref["weight_norm"], rtol=1e-6)
    np.testing.assert_allclose(got["gamma_sq"], ref["gamma_sq"], rtol=1e-6)
    assert got["embedding_sq"] == pytest.approx(ref["embedding_sq"], rel=1e-5)


# ============================================= one training loop: probe_over_training
#: A tiny run that uses every part of the loop: dropout (the global RNG stream),
#: augmentation, two penalties, momentum, norm decay, warm-up then cosine, and an epoch
#: boundary (128 training samples / 32 = 4 steps per epoch; 6 steps).
OVER_TRAINING = dict(
    model="cnn", model_options={"channels": [4, 4, 8, 8], "hidden": 16, "dropout": 0.1},
    norm="bn", dataset="synthetic", subset=160, test_subset=64, val_fraction=0.2,
    batch_size=32, epochs=2, lr=0.1, momentum=0.9, schedule="cosine", warmup_epochs=0.5,
    weight_decay=5e-4, norm_decay=1e-3, augment=True, device="cpu", seed=3,
    eval_batch_size=256, penalties={"embedding-l2": 0.01, "functional-l2": 0.001})
#: What ``probe_over_training(OVER_TRAINING, steps=6, every=2, probes={"norms": {"n": 32},
#: "propagation": {"n": 16}}, n_eval=24)`` returned before the refactor, when it had an
#: SGD loop of its own (commit 2a0c772); the last record's probe outputs in part.
RECORDED = {
    "step": [0, 2, 4, 6],
    "lr": [0.0125, 0.024048494156391084, 0.017283542904563624, 0.007716457095436379],
    "batch_loss": [None, 2.393739700317383, 2.436293363571167, 2.4462623596191406],
    "val_acc": [0.041666666666666664] * 4,
    "weight_norm_0": [1.0703986946865376, 1.071102003535032, 1.0737952699747677,
                      1.0758570853665086],
    "weight_norm": [1.0758570853665086, 1.1422353061376622, 1.6374056905287748,
                    1.6769187759440558, 2.3558824560854648, 1.8409991377280486],
    "gamma_sq": [0.9995367525712, 0.9995040820297838, 0.9994793466041254,
                 0.9994846158269728, 0.99325533711095],
    "embedding_sq": 1.048845866332786,
    "grad_norm": [1.0709140620914317, 1.9056299756412347, 1.3929146794835865,
                  1.6147984527346009, 3.669704776171164, 0.7295590128559383],
}


def test_probe_over_training_reproduces_its_pre_refactor_history():
    """probe_over_training now trains through train.train (step callbacks, no files);
    with BN (no population statistics) it gives the history its own loop gave, at the
    same seed. Recorded and re-run on the same machine the two agree bit for bit; the
    tolerance leaves room for other CPUs' kernels, far below what a changed seed stream,
    schedule or penalty would move (>= 1e-3 in the losses)."""
    cfg = TrainConfig(**OVER_TRAINING)
    out = P.probe_over_training(cfg, steps=6, every=2, n_eval=24,
                                probes={"norms": {"n": 32}, "propagation": {"n": 16}})
    assert out["step"] == RECORDED["step"] and out["diverged"] is False
    assert out["batch_loss"][0] is None
    np.testing.assert_allclose(out["lr"], RECORDED["lr"], rtol=1e-12)
    np.testing.assert_allclose(out["batch_loss"][1:], RECORDED["batch_loss"][1:], rtol=1e-5)
    np.testing.assert_allclose(out["val_acc"], RECORDED["val_acc"], rtol=1e-12)
    np.testing.assert_allclose([r["weight_norm"][0] for r in out["norms"]],
                               RECORDED["weight_norm_0"], rtol=1e-5)
    last = out["norms"][-1]
    np.testing.assert_allclose(last["weight_norm"], RECORDED["weight_norm"], rtol=1e-5)
    np.testing.assert_allclose(last["gamma_sq"], RECORDED["gamma_sq"], rtol=1e-5)
    assert last["embedding_sq"] == pytest.approx(RECORDED["embedding_sq"], rel=1e-5)
    np.testing.assert_allclose(out["propagation"][-1]["grad_norm"], RECORDED["grad_norm"],
                               rtol=1e-5)


def _reference_over_training(cfg, steps, every, n_eval):
    """probe_over_training's record (``step, lr, batch_loss, val_acc`` and the first
    weight norm) from an SGD loop written out here, independently of ``train.train``:
    the seed streams (init 100, population statistics 200, batch order 300,
    augmentation 400), the exact one-sweep PN refresh, parameter groups and the
    schedule, as ``train``'s module docstring states them."""
    from perceptron_theory.deep.data import augment, derive_seed, iterate_minibatches
    from perceptron_theory.deep.models import make_model
    from perceptron_theory.deep.norms import refresh_population_stats
    from perceptron_theory.deep.penalties import forward_with_record, param_groups
    from perceptron_theory.deep.train import learning_rate

    rec = {"step": [], "lr": [], "batch_loss": [], "val_acc": [], "weight_norm_0": []}
    with torch.random.fork_rng():
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        bundle = make_dataset(cfg.dataset, val_fraction=cfg.val_fraction, subset=cfg.subset,
                              test_subset=cfg.test_subset, seed=cfg.seed)
        vx, vy = P._common._data(bundle, "val", n_eval, 7, torch.device("cpu"))
        n_train = len(bundle.train_y)
        spe = n_train // cfg.batch_size
        torch.manual_seed(derive_seed(cfg.seed, 100))
        model = make_model(cfg.model, norm=cfg.norm, num_classes=bundle.num_classes,
                           in_channels=bundle.in_channels, image_size=bundle.image_size,
                           **cfg.model_options)
        opt = torch.optim.SGD(param_groups(model, weight_decay=cfg.weight_decay,
                                           norm_decay=cfg.norm_decay),
                              lr=cfg.effective_lr, momentum=cfg.momentum)

        def record(step, lr, loss):
            rec["step"].append(step)
            rec["lr"].append(lr)
            rec["batch_loss"].append(loss)
            ev = copy.deepcopy(model).eval()
            with torch.no_grad():
                rec["val_acc"].append(float((ev(vx).argmax(1) == vy).double().mean()))
            rec["weight_norm_0"].append(float(model.body[0].weight.detach().double().norm()))

        step, epoch = 0, 0
        record(0, learning_rate(cfg, 0, spe), None)
        while step < steps:
            epoch += 1
            g_pn = torch.Generator().manual_seed(derive_seed(cfg.seed, 200, epoch))
            idx = torch.randperm(n_train, generator=g_pn)[:cfg.pn_samples]
            refresh_population_stats(model, [bundle.train_x[i] for i in
                                             idx.split(cfg.eval_batch_size)], passes=None)
            model.train()
            g_order = torch.Generator().manual_seed(derive_seed(cfg.seed, 300, epoch))
            g_aug = torch.Generator().manual_seed(derive_seed(cfg.seed, 400, epoch, 0))
            for idx in iterate_minibatches(n_train, cfg.batch_size, generator=g_order,
                                           drop_last=True):
                xb = augment(bundle.train_x[idx], g_aug)
                lr = learning_rate(cfg, step, spe)
                for group in opt.param_groups:
                    group["lr"] = lr
                ce = F.cross_entropy(forward_with_record(model, xb).logits.float(),
                                     bundle.train_y[idx])
                opt.zero_grad(set_to_none=True)
                ce.backward()
                opt.step()
                step += 1
                if step % every == 0 or step == steps:
                    record(step, lr, float(ce.detach()))
                if step == steps:
                    break
    return rec


def test_probe_over_training_with_population_norm_equals_an_independent_loop():
    """PN: the old probe_over_training refreshed the population statistics with the
    default two sweeps, ``train`` with the exact one-sweep refresh; unifying the loops
    changed PN histories by design (batch losses by ~0.5% on this run; the old loop with
    ``passes=None`` gives the new history bit for bit, checked at the refactor). So this
    test compares with an independent re-computation, the loop written out above."""
    cfg = TrainConfig(**{**OVER_TRAINING, "norm": "pn", "penalties": (), "pn_samples": 100,
                         "eval_batch_size": 30})
    out = P.probe_over_training(cfg, steps=6, every=3, n_eval=24, probes={"norms": {"n": 32}})
    ref = _reference_over_training(cfg, steps=6, every=3, n_eval=24)
    assert out["step"] == ref["step"] == [0, 3, 6]
    for key in ("lr", "batch_loss", "val_acc"):
        assert out[key] == pytest.approx(ref[key], rel=1e-12, abs=0), key
    got = [r["weight_norm"][0] for r in out["norms"]]
    assert got == pytest.approx(ref["weight_norm_0"], rel=1e-12)
    assert got[-1] != got[0]
