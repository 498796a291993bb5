"""deep.penalties: each penalty against its formula by hand, gradients, param groups.

Hand computations use numpy (float64) on tiny tensors, independent of the torch code;
the adaptive zeta is also checked against ``theory.batchnorm.zeta_theorem1``.
Every generator is seeded.
"""

import doctest
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from perceptron_theory.deep import norms, penalties  # noqa: E402
from perceptron_theory.deep.models import make_model  # noqa: E402
from perceptron_theory.deep.penalties import (  # noqa: E402
    PENALTIES,
    Record,
    adaptive_zeta,
    forward_with_record,
    make_penalty,
    norm_layers,
    param_groups,
)

pytestmark = pytest.mark.deep


def _gen(seed):
    return torch.Generator().manual_seed(seed)


class _Tiny(nn.Module):
    """features = relu(bn(fc(x))): one norm layer whose input and params we control."""

    def __init__(self, d_in=3, width=2, k=3):
        super().__init__()
        self.fc = nn.Linear(d_in, width, bias=False)
        self.bn = nn.BatchNorm1d(width)
        self.classifier = nn.Linear(width, k)

    def features(self, x):
        return torch.relu(self.bn(self.fc(x)))


def _tiny(seed=0):
    torch.manual_seed(seed)
    net = _Tiny()
    with torch.no_grad():
        net.bn.weight.copy_(torch.tensor([0.5, 2.0]))
        net.bn.bias.copy_(torch.tensor([0.3, -1.0]))
    return net


# ------------------------------------------------------------------------- record
def test_record_matches_the_model_and_removes_its_hooks():
    torch.manual_seed(0)
    net = make_model("cnn", norm="bn", in_channels=1, image_size=8,
                     channels=(2, 2, 3, 3), hidden=4).eval()
    x = torch.randn(5, 1, 8, 8, generator=_gen(0))
    rec = forward_with_record(net, x, record_norm_inputs=True)
    torch.testing.assert_close(rec.logits, net(x))
    torch.testing.assert_close(rec.embedding, net.features(x))
    assert rec.batch_size == 5 and rec.norm_inputs_recorded
    assert rec.norm_modules == norm_layers(net)
    assert [tuple(h.shape) for h in rec.norm_inputs] == [
        (5, 2, 8, 8), (5, 2, 8, 8), (5, 3, 8, 8), (5, 3, 8, 8), (5, 4)]
    # the first recorded input is the first conv's output
    torch.testing.assert_close(rec.norm_inputs[0], net.body[0](x))
    assert all(not m._forward_pre_hooks for m in net.modules())
    bare = forward_with_record(net, x)
    assert bare.norm_inputs == [] and not bare.norm_inputs_recorded


def test_record_of_norm_free_slots_and_foreign_models():
    net = make_model("mlp", norm="none", in_channels=1, image_size=2, layers=2, hidden=3)
    rec = forward_with_record(net, torch.randn(4, 4, generator=_gen(1)),
                              record_norm_inputs=True)
    assert len(rec.norm_inputs) == 2
    assert all(isinstance(m, nn.Identity) for m in rec.norm_modules)
    tiny = _tiny()
    rec = forward_with_record(tiny, torch.randn(4, 3, generator=_gen(2)),
                              record_norm_inputs=True)
    assert rec.norm_modules == [tiny.bn]
    with pytest.raises(ValueError, match="features"):
        forward_with_record(nn.Linear(2, 2), torch.randn(3, 2))


# ------------------------------------------------------------------- weight decay
def test_weight_decay_is_half_l2_and_matches_sgd_weight_decay():
    net = _tiny()
    rec = forward_with_record(net, torch.randn(4, 3, generator=_gen(3)))
    coef = 0.3
    pen = make_penalty("weight-decay", coef)(net, rec)
    by_hand = 0.5 * coef * sum(float((p.detach().double() ** 2).sum()) for p in (
        net.fc.weight, net.classifier.weight, net.classifier.bias))
    assert pen.item() == pytest.approx(by_hand, rel=1e-6)
    pen.backward()
    torch.testing.assert_close(net.fc.weight.grad, coef * net.fc.weight.detach())
    assert net.bn.weight.grad is None and net.bn.bias.grad is None
    # one SGD step on the penalty == one step of SGD(weight_decay=coef) on that group
    a, b = _tiny(), _tiny()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(param_groups(b, weight_decay=coef, norm_decay=0.0), lr=0.1)
    rec = forward_with_record(a, torch.zeros(4, 3))
    make_penalty("weight-decay", coef)(a, rec).backward()
    for p in b.parameters():
        p.grad = torch.zeros_like(p)
    opt_a.step()
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


# -------------------------------------------------------------------- gamma decay
def test_constant_gamma_decay_sums_gamma_squared_over_norm_layers():
    net = _tiny()
    rec = forward_with_record(net, torch.randn(4, 3, generator=_gen(4)))
    pen = make_penalty("gamma-decay", 0.2)
    assert not pen.needs_norm_inputs
    value = pen(net, rec)
    assert value.item() == pytest.approx(0.2 * (0.5**2 + 2.0**2))
    value.backward()
    torch.testing.assert_close(net.bn.weight.grad, 2 * 0.2 * net.bn.weight.detach())
    assert net.bn.bias.grad is None and net.fc.weight.grad is None


def test_gamma_decay_of_weight_norm_gains():
    torch.manual_seed(5)
    net = make_model("mlp", norm="wn+bn-mean", in_channels=1, image_size=2, hidden=3)
    rec = forward_with_record(net, torch.randn(4, 4, generator=_gen(5)))
    g = net.body[0].parametrizations.weight.original0
    assert make_penalty("gamma-decay", 1.0)(net, rec).item() == 0.0   # bn-mean has no gamma
    value = make_penalty("gamma-decay", 1.0, weight_norm_gain=True)(net, rec)
    assert value.item() == pytest.approx(float((g.detach() ** 2).sum()), rel=1e-6)


def _zeta_theory(h, gamma, beta, M, activation="relu"):
    """The one zeta(h): :func:`perceptron_theory.theory.batchnorm.zeta_theorem1` per
    channel (numpy float64, eps = 0), with the curvature A'' of ``activation`` at the PN
    output gamma h_hat + beta."""
    from scipy.special import expit

    from perceptron_theory.theory.batchnorm import zeta_theorem1

    h = np.asarray(h, dtype=float)
    C = h.shape[1]
    hc = np.moveaxis(h, 1, 0).reshape(C, -1)
    out = []
    for c in range(C):
        v = hc[c]
        hhat = (v - v.mean()) / v.std()
        curv = expit(gamma[c] * hhat + beta[c]) if activation == "relu" else 1.0
        out.append(zeta_theorem1(v, M, curv).zeta)  # rho estimated from v, as the penalty
    return np.array(out)


@pytest.mark.parametrize("shape", [(6, 2), (3, 2, 2, 2), (200, 1)])
@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_adaptive_zeta_is_the_theory_modules_zeta(shape, activation):
    """The torch penalty's zeta_c(h) equals theory.batchnorm.zeta_theorem1 channel by
    channel (dense and conv inputs, heavy tails, both curvatures); float32 vs float64."""
    h = torch.randn(*shape, generator=_gen(6)) * 1.7 + 0.4
    h[0, 0] += 3.0   # a heavy tail in channel 0 (nonzero kurtosis)
    if shape == (200, 1):
        h = torch.randn(*shape, generator=_gen(7)).exp()    # skewed, heavy-tailed
    C = shape[1]
    gamma, beta = torch.tensor([0.5, 2.0][:C]), torch.tensor([0.3, -1.0][:C])
    zeta = adaptive_zeta(h, gamma, beta, 8, activation=activation, eps=1e-12)
    expect = _zeta_theory(h.double().numpy(), gamma.numpy(), beta.numpy(), 8, activation)
    np.testing.assert_allclose(zeta.numpy(), expect, rtol=1e-5)
    assert not zeta.requires_grad


def test_adaptive_gamma_decay_value_and_detached_zeta():
    net = _tiny()
    x = torch.randn(6, 3, generator=_gen(8))
    rec = forward_with_record(net, x, record_norm_inputs=True)
    pen = make_penalty("gamma-decay", 1.5, adaptive=True)
    assert pen.needs_norm_inputs
    value = pen(net, rec)
    h = net.fc(x).detach().numpy()
    gamma = net.bn.weight.detach().numpy()
    zeta = _zeta_theory(h, gamma, net.bn.bias.detach().numpy(), 6)
    assert value.item() == pytest.approx(1.5 * float((zeta * gamma**2).sum()), rel=1e-4)
    value.backward()
    # only gamma^2 carries a gradient: d/dgamma = 2 coef zeta gamma, nothing upstream
    np.testing.assert_allclose(net.bn.weight.grad.numpy(), 2 * 1.5 * zeta * gamma, rtol=1e-4)
    assert net.bn.bias.grad is None and net.fc.weight.grad is None
    # M scales the estimate as 1/M
    half = make_penalty("gamma-decay", 1.5, adaptive=True, batch_size=12)(net, rec)
    assert half.item() == pytest.approx(value.item() / 2, rel=1e-6)
    with pytest.raises(ValueError, match="record_norm_inputs"):
        pen(net, forward_with_record(net, x))


# ------------------------------------------------------------ embedding / functional
def test_embedding_and_functional_l2_by_hand():
    net = _tiny()
    rec = forward_with_record(net, torch.randn(5, 3, generator=_gen(9)))
    e = rec.embedding.detach().double().numpy()
    z = rec.logits.detach().double().numpy()
    H, K = e.shape[1], z.shape[1]
    el2 = make_penalty("embedding-l2", 0.7)(net, rec)
    fl2 = make_penalty("functional-l2", 0.7)(net, rec)
    assert el2.item() == pytest.approx(0.7 * np.mean(np.sum(e**2, 1)) / H, rel=1e-6)
    assert fl2.item() == pytest.approx(0.7 * np.mean(np.sum(z**2, 1)) / K, rel=1e-6)
    el2_sum = make_penalty("embedding-l2", 0.7, reduction="sum")(net, rec)
    assert el2_sum.item() == pytest.approx(H * el2.item(), rel=1e-6)
    el2.backward(retain_graph=True)
    # the embedding penalty never touches the classifier; its gradient reaches features
    assert net.classifier.weight.grad is None
    assert net.fc.weight.grad is not None
    fl2.backward()
    assert net.classifier.weight.grad is not None


# ------------------------------------------------------------------ standardization
def test_standardization_by_hand():
    h1 = torch.randn(4, 3, 2, 2, generator=_gen(10)) * 2.0 + 1.0
    h2 = torch.randn(5, 2, generator=_gen(11)) * 0.5 - 0.3
    rec = Record(torch.zeros(4, 10), torch.zeros(4, 2), [h1, h2],
                 [nn.Identity(), nn.Identity()], True)
    value = make_penalty("standardization", 0.25, eps=1e-5)(nn.Identity(), rec)
    total = 0.0
    for h in (h1.double().numpy(), h2.double().numpy()):
        hc = np.moveaxis(h, 1, 0).reshape(h.shape[1], -1)
        mu, s2 = hc.mean(1), hc.var(1) + 1e-5
        total += np.sum(0.5 * (mu**2 + s2 - np.log(s2) - 1))
    assert value.item() == pytest.approx(0.25 * total, rel=1e-5)


def test_standardization_is_zero_with_zero_gradient_at_standard_statistics():
    h = torch.randn(64, 3, generator=_gen(12)).double()
    h = (h - h.mean(0)) / h.std(0, correction=0) * math.sqrt(1 - 1e-5)
    h.requires_grad_(True)
    rec = Record(torch.zeros(64, 10), torch.zeros(64, 2), [h], [nn.Identity()], True)
    value = penalties.standardization(nn.Identity(), rec, eps=1e-5)
    value.backward()
    assert abs(value.item()) < 1e-6
    assert h.grad.abs().max().item() < 1e-6


def test_standardization_gradient_flows_into_the_network():
    torch.manual_seed(13)
    net = make_model("cnn", norm="none", in_channels=1, image_size=8,
                     channels=(2, 2, 2, 2), hidden=3)
    rec = forward_with_record(net, torch.randn(4, 1, 8, 8, generator=_gen(13)),
                              record_norm_inputs=True)
    assert len(rec.norm_inputs) == 5       # norm-free slots count as layers (Dauphin)
    make_penalty("standardization", 1.0)(net, rec).backward()
    assert net.body[0].weight.grad.abs().sum() > 0
    assert net.classifier.weight.grad is None


# --------------------------------------------------------------------- regnorm-mean
def _regnorm_brute_force(z, eps):
    """E_{a,b} sum_i ((zbar_i^a + zbar_i^b)^2 - 2) over all ordered pairs (a, b)."""
    z = z.double().flatten(1).numpy()
    zbar = z / np.sqrt(np.mean(z**2, 1, keepdims=True) + eps)
    B = z.shape[0]
    return np.mean([np.sum((zbar[a] + zbar[b]) ** 2 - 2) for a in range(B) for b in range(B)])


@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 3, 3)])
def test_regnorm_mean_by_brute_force_and_the_layer(shape):
    z = torch.randn(*shape, generator=_gen(14)) + 0.7
    layer = norms.make_norm("regnorm", shape[1], dim=2 if len(shape) == 4 else 1)
    layer(z)
    model = nn.Sequential(layer)
    rec = Record(torch.zeros(shape[0], 10), torch.zeros(shape[0], 2), [z], [layer], True)
    value = make_penalty("regnorm-mean", 0.1)(model, rec)
    assert value.item() == pytest.approx(0.1 * _regnorm_brute_force(z, layer.eps), rel=1e-5)
    assert value.item() == pytest.approx(0.1 * layer.regularizer().item(), rel=1e-5)
    # ~ 2 sum_i (batch mean of zbar_i)^2: a batch {z, -z} has zero means, r ~ 0 (minimum)
    sym = torch.cat([z, -z])
    rec0 = Record(rec.logits, rec.embedding, [sym], [layer], True)
    assert abs(make_penalty("regnorm-mean", 1.0)(model, rec0).item()) < 1e-3
    assert value.item() > 0.01


def test_regnorm_mean_in_a_model_and_without_regnorm():
    torch.manual_seed(15)
    net = make_model("mlp", norm="regnorm", in_channels=1, image_size=2, hidden=4)
    x = torch.randn(6, 4, generator=_gen(15))
    rec = forward_with_record(net, x, record_norm_inputs=True)
    value = make_penalty("regnorm-mean", 1.0)(net, rec)
    assert value.item() == pytest.approx(norm_layers(net)[0].regularizer().item(), rel=1e-5)
    value.backward()
    assert net.body[0].weight.grad.abs().sum() > 0
    bn = make_model("mlp", norm="bn", in_channels=1, image_size=2, hidden=4)
    with pytest.raises(ValueError, match="RegNorm"):
        make_penalty("regnorm-mean", 1.0)(bn, forward_with_record(bn, x, record_norm_inputs=True))


# -------------------------------------------------------------------- param groups
@pytest.mark.parametrize("name,norm,opts", [
    ("resnet18", "none", {"width": 2, "fixup": True}),
    ("cnn", "wn+bn-mean", {"channels": (2, 2, 2, 2), "hidden": 3}),
    ("wrn", "bn", {"depth": 10, "width": 1, "base_width": 2}),
    ("mlp", "ln", {"hidden": 3}),
])
def test_param_groups_partition_every_parameter_once(name, norm, opts):
    torch.manual_seed(16)
    net = make_model(name, norm=norm, in_channels=1, image_size=8, **opts)
    groups = param_groups(net, weight_decay=5e-4, norm_decay=1e-4, scalar_decay=0.0)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))
    by_name = {g["name"]: g for g in groups}
    decays = {k: g["weight_decay"] for k, g in by_name.items()}
    assert decays == {k: {"weight": 5e-4, "norm": 1e-4, "scalar": 0.0}[k] for k in by_name}
    norm_params = {id(p) for m in norm_layers(net) for p in m.parameters()}
    wn_gains = {id(m.parametrizations.weight.original0) for m in net.modules()
                if nn.utils.parametrize.is_parametrized(m, "weight")}
    assert {id(p) for p in by_name.get("norm", {"params": []})["params"]} == \
        norm_params | wn_gains
    scalars = {id(p) for p in by_name.get("scalar", {"params": []})["params"]}
    if opts.get("fixup"):
        assert len(scalars) == 5 * 8 + 2
    else:
        assert scalars == set()
    assert id(net.classifier.weight) in {id(p) for p in by_name["weight"]["params"]}
    torch.optim.SGD(groups, lr=0.1, momentum=0.9)   # accepted as is


def test_param_group_defaults_and_checks():
    net = _tiny()
    groups = {g["name"]: g["weight_decay"] for g in param_groups(net, weight_decay=0.01)}
    assert groups == {"weight": 0.01, "norm": 0.01}
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(net, weight_decay=-1.0)
    with pytest.raises(ValueError, match="scalar_decay"):
        param_groups(net, weight_decay=0.0, scalar_decay=float("nan"))


# ------------------------------------------------------------------------ registry
def test_registry_and_make_penalty_checks():
    assert sorted(PENALTIES) == ["embedding-l2", "functional-l2", "gamma-decay",
                                 "regnorm-mean", "standardization", "weight-decay"]
    needs = {n: make_penalty(n, 1.0).needs_norm_inputs for n in PENALTIES}
    assert needs == {"weight-decay": False, "gamma-decay": False, "embedding-l2": False,
                     "functional-l2": False, "standardization": True, "regnorm-mean": True}
    pen = make_penalty("gamma-decay", 0.5, adaptive=True, batch_size=128)
    assert pen.to_dict() == {"name": "gamma-decay", "coef": 0.5, "needs_norm_inputs": True,
                             "options": {"adaptive": True, "batch_size": 128}}
    for args, kwargs, match in [
        (("l1", 1.0), {}, "name"),
        (("embedding-l2", -1.0), {}, "coef"),
        (("embedding-l2", 1.0), {"reduction": "max"}, "reduction"),
        (("gamma-decay", 1.0), {"adaptive": 1}, "adaptive"),
        (("gamma-decay", 1.0), {"batch_size": 1}, "batch_size"),
        (("gamma-decay", 1.0), {"activation": "tanh"}, "activation"),
        (("standardization", 1.0), {"eps": 0.0}, "eps"),
        (("weight-decay", 1.0), {"eps": 1e-5}, "eps"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_penalty(*args, **kwargs)


def test_doctests():
    res = doctest.testmod(penalties, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0
