"""deep.models: shapes, norm placement, weight norm / pre-centering, Fixup, options.

Tiny widths throughout (a few channels), so the whole file runs in seconds on 2 CPU
cores. Every generator is seeded.
"""

import doctest
import math

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from perceptron_theory.deep import models, norms  # noqa: E402
from perceptron_theory.deep.models import MODELS, NormSlot, make_model  # noqa: E402
from perceptron_theory.deep.penalties import norm_layers  # noqa: E402

pytestmark = pytest.mark.deep

#: Tiny versions of every model (the paper sizes are tested separately, build only).
SMALL = {
    "cnn": {"channels": (3, 3, 4, 4), "hidden": 6},
    "resnet18": {"width": 2},
    "wrn": {"depth": 10, "width": 1, "base_width": 4},
    "mlp": {"hidden": 6},
    "deep-fc": {"depth": 3, "width": 6},
}
#: Norm slots with a layer in each tiny model (norm everywhere).
N_SLOTS = {"cnn": 5, "resnet18": 1 + 8 * 2 + 3, "wrn": 3 * 2 + 1, "mlp": 1, "deep-fc": 3}


def _small(name, norm="bn", in_channels=3, image_size=16, **kw):
    opts = {**SMALL[name], **kw}
    norm_options = {"groups": 2} if norm in ("gn",) else None
    return make_model(name, norm=norm, in_channels=in_channels, image_size=image_size,
                      norm_options=norm_options, **opts)


def _x(b, c, s, seed=0):
    return torch.randn(b, c, s, s, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("norm", ["none", "bn", "wn+bn-mean", "ln", "gn"])
@pytest.mark.parametrize("in_channels,image_size", [(1, 16), (3, 28)])
def test_output_and_feature_shapes(name, norm, in_channels, image_size):
    torch.manual_seed(0)
    net = _small(name, norm, in_channels, image_size)
    x = _x(5, in_channels, image_size)
    y, f = net(x), net.features(x)
    assert y.shape == (5, 10)
    assert f.shape == (5, net.embedding_dim)
    assert isinstance(net.classifier, nn.Linear)
    assert net.classifier.in_features == net.embedding_dim
    assert torch.isfinite(y).all()
    net.eval()   # forward = classifier(features(x)) exactly
    torch.testing.assert_close(net(x), net.classifier(net.features(x)), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("norm", list(norms.NORMS))
def test_every_registry_norm_trains_one_step(name, norm):
    """Every normalizer of the registry builds, runs forward and backward in each model."""
    torch.manual_seed(1)
    net = _small(name, norm, 1, 8)
    x = _x(6, 1, 8, seed=1)
    if norm == "pn":
        norms.refresh_population_stats(net, [x])
    loss = net(x).square().mean()
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    layer = norms.split_norm(norm)[1]
    n_layers = len(norm_layers(net))
    assert n_layers == (0 if layer == "none" else N_SLOTS[name])


def test_slot_counts_and_types():
    cnn = _small("cnn", "bn")
    kinds = [type(m) for m in norm_layers(cnn)]
    assert kinds == [nn.BatchNorm2d] * 4 + [nn.BatchNorm1d]
    assert [m.num_features for m in norm_layers(cnn)] == [3, 3, 4, 4, 6]
    # every slot, with or without a layer, is a NormSlot
    assert sum(isinstance(m, NormSlot) for m in _small("resnet18", "none").modules()) == 20
    assert sum(isinstance(m, NormSlot) for m in _small("wrn", "none").modules()) == 7


def test_paper_sizes():
    """Defaults are the papers' sizes (build only)."""
    cnn = make_model("cnn", norm="bn")                  # Luo App. B on CIFAR-10
    convs = [m for m in cnn.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in cnn.modules()) == 1
    fc = [m for m in cnn.body if isinstance(m, nn.Linear)][0]
    assert (fc.in_features, fc.out_features) == (16 * 16 * 64, 512)
    valid = make_model("cnn", norm="bn", padding="valid")
    assert [m for m in valid.body if isinstance(m, nn.Linear)][0].in_features == 12 * 12 * 64
    mlp = make_model("mlp", norm="bn", in_channels=1, image_size=28)   # Annamalai
    assert mlp.embedding_dim == 300 and mlp.in_features == 784
    assert [type(m) for m in norm_layers(mlp)] == [nn.BatchNorm1d]
    fc20 = make_model("deep-fc", norm="none", in_channels=1, image_size=4)
    assert sum(isinstance(m, nn.Linear) for m in fc20.modules()) == 21
    r18 = make_model("resnet18", norm="bn")
    assert r18.embedding_dim == 512 and r18.stem.kernel_size == (3, 3)
    assert not any(isinstance(m, nn.MaxPool2d) for m in r18.modules())
    assert sum(p.numel() for p in r18.parameters()) == pytest.approx(11.17e6, rel=0.01)
    wrn = make_model("wrn", norm="bn")                  # WRN-16-4
    assert wrn.embedding_dim == 256 and len(wrn.blocks) == 6
    assert make_model("wrn", norm="bn", k=2, depth=10).embedding_dim == 128


def test_conv_bias_only_without_a_norm_layer():
    with_bn = _small("cnn", "bn")
    plain = _small("cnn", "none")
    assert all(c.bias is None for c in with_bn.modules() if isinstance(c, nn.Conv2d))
    assert all(c.bias is not None for c in plain.modules() if isinstance(c, nn.Conv2d))


# ------------------------------------------------------ weight norm, pre-centering
@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("norm", ["wn", "wn+bn-mean"])
def test_weight_norm_on_every_op_but_the_classifier(name, norm):
    net = _small(name, norm)
    ops = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for op in ops:
        wn = nn.utils.parametrize.is_parametrized(op, "weight")
        assert wn is (op is not net.classifier)
    layers = norm_layers(net)
    assert all(isinstance(m, norms.MeanOnlyBatchNorm) for m in layers)
    assert len(layers) == (0 if norm == "wn" else N_SLOTS[name])


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_pre_ln_is_invariant_to_a_per_sample_input_shift(name):
    """pre-ln centers the first op's input: adding c_n to sample n changes nothing."""
    torch.manual_seed(2)
    net = _small(name, "pre-ln", 1, 8).eval()
    x = _x(4, 1, 8, seed=2)
    shift = torch.arange(4.0).reshape(4, 1, 1, 1) * 3.0
    torch.testing.assert_close(net(x + shift), net(x), rtol=1e-4, atol=1e-5)
    plain = _small(name, "ln", 1, 8).eval()
    assert not torch.allclose(plain(x + shift), plain(x), atol=1e-3)


# ----------------------------------------------------------------------------- Fixup
@pytest.mark.parametrize("name", ["resnet18", "wrn"])
def test_fixup_branches_start_at_zero(name):
    torch.manual_seed(3)
    net = _small(name, "none", fixup=True, **({"width": 4} if name == "resnet18" else {}))
    assert norm_layers(net) == []
    x = _x(3, 3, 16, seed=3)
    out = torch.relu(net.stem(x)) if name == "resnet18" else net.stem(x)
    for block in net.blocks:
        assert torch.equal(block.branch(out), torch.zeros_like(block.branch(out)))
        expect = block.shortcut(out)
        if name == "resnet18":
            expect = torch.relu(expect)
        nxt = block(out)
        torch.testing.assert_close(nxt, expect, rtol=0, atol=0)
        out = nxt
    # zero classifier: every logit is exactly 0
    assert torch.equal(net(x), torch.zeros(3, 10))
    assert torch.count_nonzero(net.classifier.weight) == 0


@pytest.mark.parametrize("name", ["resnet18", "wrn"])
def test_fixup_scalars_and_depth_scaled_init(name):
    torch.manual_seed(4)
    opts = {"width": 8} if name == "resnet18" else {"width": 2, "base_width": 8}
    net = _small(name, "none", fixup=True, **opts)
    blocks = list(net.blocks)
    L = len(blocks)
    for b in blocks:
        assert b.scale.item() == 1.0
        for s in (b.bias1a, b.bias1b, b.bias2a, b.bias2b):
            assert s.shape == (1,) and s.item() == 0.0
        assert torch.count_nonzero(b.conv2.weight) == 0
    # first convs: He normal (fan-out) times L^{-1/2}; pooled over blocks of equal shape
    w = torch.cat([b.conv1.weight.flatten() / math.sqrt(2.0 / (b.conv1.weight.shape[0] * 9))
                   for b in blocks])
    # n weights ~ N(0, 1/L): the sample std is within 5 standard errors of L^{-1/2}
    se = L ** -0.5 / math.sqrt(2 * w.numel())
    assert abs(w.std().item() - L ** -0.5) < 5 * se
    n_scalars = sum(p.numel() == 1 for p in net.parameters())
    assert n_scalars == 5 * L + 2   # + stem (resnet18) or final (wrn) bias, classifier bias


def test_fixup_argument_checks():
    with pytest.raises(ValueError, match="fixup"):
        _small("resnet18", "bn", fixup=True)
    with pytest.raises(ValueError, match="fixup"):
        _small("wrn", "wn", fixup=True)
    with pytest.raises(ValueError, match="skip"):
        _small("wrn", "none", fixup=True, skip=False)
    # Fixup with one BN at the embedding (Dauphin Sec. 4.4) is allowed
    net = _small("resnet18", "bn", fixup=True, single_bn_at_embedding=True)
    assert len(norm_layers(net)) == 1


def test_wrn_without_skip_connections():
    torch.manual_seed(5)
    net = _small("wrn", "bn", skip=False, depth=16)
    assert all(b.shortcut_conv is None and not b.skip for b in net.blocks)
    x = _x(4, 3, 16, seed=5)
    assert net(x).shape == (4, 10)
    h = net.stem(x)
    block = net.blocks[1]
    torch.testing.assert_close(block(net.blocks[0](h)), block.branch(net.blocks[0](h)))
    with_skip = _small("wrn", "bn", depth=16)
    n_skip = sum(isinstance(m, nn.Conv2d) for m in with_skip.modules())
    n_noskip = sum(isinstance(m, nn.Conv2d) for m in net.modules())
    assert n_skip - n_noskip == 2   # stages 2 and 3 change shape (stage 1: 4 -> 4 channels)


# ------------------------------------------------------ single BN, dropout placement
@pytest.mark.parametrize("name", sorted(SMALL))
def test_single_bn_at_embedding_has_exactly_one_norm_layer(name):
    torch.manual_seed(6)
    net = _small(name, "bn", single_bn_at_embedding=True)
    (layer,) = norm_layers(net)
    assert isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d))
    assert layer.num_features == net.embedding_dim
    x = _x(4, 3, 16, seed=6)
    assert net(x).shape == (4, 10)
    # the rest of the net is norm-free: its convs carry biases
    ops = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in ops)


def test_single_bn_needs_a_layer_norm():
    for bad in ("none", "wn", "wn+bn", "pre-ln"):
        with pytest.raises(ValueError, match="single_bn_at_embedding"):
            _small("cnn", bad, single_bn_at_embedding=True)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_dropout_after_norm(name):
    net = _small(name, "bn", dropout=0.1)
    slots = [m for m in net.modules() if isinstance(m, NormSlot)]
    assert slots and all(isinstance(s.drop, nn.Dropout) and s.drop.p == 0.1 for s in slots)
    assert all(isinstance(s.norm, (nn.BatchNorm1d, nn.BatchNorm2d)) for s in slots)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == len(slots)
    assert isinstance(net.head_dropout, nn.Identity)
    # WN: dropout at the same positions (Luo App. B.3), slots without a layer
    wn = _small(name, "wn", dropout=0.2)
    assert sum(isinstance(m, nn.Dropout) for m in wn.modules()) == len(slots)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_dropout_before_last(name):
    torch.manual_seed(7)
    net = _small(name, "ln", dropout=0.5, dropout_placement="before-last")
    drops = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert drops == [net.head_dropout] and net.head_dropout.p == 0.5
    x = _x(4, 3, 16, seed=7)
    # features are deterministic (dropout sits after them), logits are not
    torch.testing.assert_close(net.features(x), net.features(x))
    assert not torch.equal(net(x), net(x))
    net.eval()
    torch.testing.assert_close(net(x), net.classifier(net.features(x)))


def test_no_dropout_by_default():
    for name in SMALL:
        assert not any(isinstance(m, nn.Dropout) for m in _small(name, "bn").modules())


# --------------------------------------------------------------- registry, arguments
def test_registry_matches_make_model():
    assert sorted(MODELS) == ["cnn", "deep-fc", "mlp", "resnet18", "wrn"]
    torch.manual_seed(8)
    a = MODELS["mlp"](norm="bn", in_channels=1, image_size=4, hidden=5)
    torch.manual_seed(8)
    b = make_model("mlp", norm="bn", in_channels=1, image_size=4, hidden=5)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    assert models.model_options("wrn") == {"depth": 16, "width": None, "k": None,
                                           "base_width": 16, "skip": True, "fixup": False}


def test_fc_accepts_any_shape_with_the_right_size():
    net = make_model("deep-fc", norm="bn", in_features=12, depth=2, width=4)
    assert net(torch.randn(3, 12)).shape == (3, 10)
    assert net(torch.randn(3, 3, 2, 2)).shape == (3, 10)
    with pytest.raises(ValueError, match="12 features"):
        net(torch.randn(3, 13))


@pytest.mark.parametrize("kwargs,match", [
    ({"name": "vgg"}, "name"),
    ({"norm": "batchnorm"}, "norm"),
    ({"num_classes": 0}, "num_classes"),
    ({"in_channels": 0}, "in_channels"),
    ({"dropout": 1.0}, "dropout"),
    ({"dropout": -0.1}, "dropout"),
    ({"dropout_placement": "before-norm"}, "dropout_placement"),
    ({"widht": 4}, "widht"),
    ({"norm_options": {"groups": 2}}, "groups"),
    ({"name": "wrn", "depth": 12}, "depth"),
    ({"name": "wrn", "width": 2, "k": 3}, "k"),
    ({"name": "wrn", "skip": "no"}, "skip"),
    ({"name": "cnn", "padding": "valid", "image_size": 9}, "image_size"),
    ({"name": "cnn", "channels": (4, 4)}, "channels"),
    ({"name": "mlp", "hidden": 0}, "hidden"),
    ({"name": "deep-fc", "depth": 0}, "depth"),
    ({"name": "resnet18", "fixup": 1}, "fixup"),
    ({"single_bn_at_embedding": "yes"}, "single_bn_at_embedding"),
])
def test_bad_arguments_raise_value_error_naming_the_parameter(kwargs, match):
    kwargs = {"name": "resnet18", "norm": "bn", **kwargs}
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        make_model(name, **kwargs)


def test_doctests():
    res = doctest.testmod(models, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0
