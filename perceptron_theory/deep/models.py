r"""Networks of the deep experiments, behind one registry keyed by CLI name.

Every model is a :class:`Net`: ``model.features(x)`` is the *embedding*
:math:`\mathrm{Emb}(x)`, shape ``(B, D)`` -- the input of the final linear layer
(Dauphin & Cubuk's notation, :math:`NN(x) = W\,\mathrm{Emb}(x)`); ``model.classifier``
is that final :class:`torch.nn.Linear` (``D -> num_classes``); and
``model(x) = classifier(head_dropout(features(x)))``, where ``head_dropout`` is the
identity unless ``dropout_placement="before-last"``.

============  ==============================================  ===========================
name          architecture (``norm`` sits in every *slot* N)   source
============  ==============================================  ===========================
cnn           [conv3-N-ReLU] x 4 (32, 32, 64, 64), maxpool 2,  Luo et al. 2019, App. B
              fc512-N-ReLU, fc10
resnet18      CIFAR stem conv3-N-ReLU (no maxpool), 4 stages   He et al. 2016; Luo Sec. 5
              x 2 basic blocks (64..512), avgpool, fc
wrn           WRN-d-k, pre-activation blocks N-ReLU-conv,      Zagoruyko & Komodakis 2016;
              final N-ReLU, avgpool, fc; ``skip=False`` drops  Rao & Sohl-Dickstein 2020
              every shortcut
mlp           [fc300-N-ReLU] x 1, fc10                        Annamalai & Thakur, Sec. IV
deep-fc       [fc-N-ReLU] x 20 (He init), fc                  Rao & Sohl-Dickstein, Fig. 1
============  ==============================================  ===========================

Norm slots
----------
A *slot* (:class:`NormSlot`) is a position where the papers put a normalizer: after
every conv / hidden linear layer (post-activation nets: cnn, resnet18, mlp, deep-fc;
shortcut convs of resnet18 included) or, in the pre-activation WRN, before every
ReLU. Slot = ``make_norm(norm)`` followed by dropout when
``dropout_placement="after-norm"``. For ``norm="none"`` / ``"wn"`` the slot's layer is
the identity, but the slot stays (so the standardization loss and "after-norm"
dropout still find the positions, as for Luo's "dropout after each WN layer").
Names ``wn`` / ``wn+X`` weight-normalize, and ``pre-ln`` / ``pre-regnorm`` pre-center,
every conv/linear op whose output reaches a slot before a nonlinearity
(``norms.prepare_op``) -- in all five models that is every conv/linear except the
classifier. The classifier is never weight-normalized. A conv/linear feeding a slot
with a layer has no bias (the layer's :math:`\beta` takes its place); otherwise it has
one (or, with Fixup, scalar biases instead).

Options common to all models
----------------------------
``dropout`` (float in [0, 1)), ``dropout_placement`` in {"after-norm", "before-last"}:
after every slot (Luo et al. App. B.3: 0.1 after each BN, 0.2 after each WN) or only
on the embedding before the classifier (Dauphin & Cubuk Sec. 3.1; Tan & Le's
EfficientNet). ``single_bn_at_embedding`` (Dauphin & Cubuk Sec. 4.4): ``norm`` is
placed at the embedding only and every other slot is norm-free -- resnet18: the
output of the last stage goes through N-ReLU before the average pooling (Dauphin's
:math:`\mathrm{Emb} = \phi(\gamma\,\mathrm{BN}(\mathrm{PreEmb}) + \beta)`); wrn: its final
slot; cnn/mlp/deep-fc: the slot of the last hidden layer. It needs a norm that is a
plain layer (not ``none``, ``wn*``, ``pre-*``).

Fixup (Zhang, Dauphin & Ma 2019, Sec. 3; D-fixup)
-------------------------------------------------
``fixup=True`` (resnet18, wrn with ``skip=True``) needs norm-free residual branches
(``norm="none"``, or ``single_bn_at_embedding``). Per residual branch of
:math:`m = 2` convs, with :math:`L` branches in the net:

1. the branch's last conv and the classifier (weight and bias) start at 0, so every
   branch outputs exactly 0 and each block is ``shortcut(x)`` (+ ReLU in resnet18);
2. the branch's first conv is He-normal (fan-out, as in the authors' code) scaled by
   :math:`L^{-1/(2m-2)} = L^{-1/2}`; stem and shortcut convs are plain He-normal;
3. a scalar multiplier (init 1) per branch and scalar biases (init 0) before each
   conv, each ReLU and the classifier (``bias1a, bias1b, bias2a, bias2b, scale``,
   the authors' names; the classifier's is ``fixup_bias``, added at the end of
   ``features``).

Examples
--------
>>> import torch
>>> from perceptron_theory.deep.models import make_model
>>> net = make_model("cnn", norm="bn", in_channels=1, image_size=16,
...                  channels=(4, 4, 8, 8), hidden=16)
>>> net(torch.randn(5, 1, 16, 16)).shape, net.features(torch.randn(5, 1, 16, 16)).shape
(torch.Size([5, 10]), torch.Size([5, 16]))
>>> sorted(MODELS)
['cnn', 'deep-fc', 'mlp', 'resnet18', 'wrn']
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence

import torch
from torch import nn

from perceptron_theory._checks import check_choice, check_int, check_real
from perceptron_theory.deep.norms import (
    NORMS,
    make_norm,
    prepare_op,
    split_norm,
    uses_pre_centering,
    uses_weight_norm,
)

__all__ = [
    "MODELS",
    "DROPOUT_PLACEMENTS",
    "make_model",
    "model_options",
    "Net",
    "NormSlot",
    "CNN",
    "ResNet18",
    "WideResNet",
    "FullyConnected",
    "mlp",
    "deep_fc",
]

#: Where ``dropout`` goes: after every norm slot, or on the embedding only.
DROPOUT_PLACEMENTS = ("after-norm", "before-last")


# ================================================================== shared pieces
class NormSlot(nn.Module):
    """A position where the papers normalize: ``drop(norm(x))``.

    Parameters
    ----------
    norm : torch.nn.Module
        The normalization layer (``nn.Identity`` for a norm-free slot).
    dropout : float
        Dropout probability after the layer (0: ``nn.Identity``).
    """

    def __init__(self, norm: nn.Module, dropout: float = 0.0):
        super().__init__()
        self.norm = norm
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.norm(x))


class _Plan:
    """What every slot and op of one model gets, from ``make_model``'s common arguments."""

    def __init__(self, norm: str, norm_options: dict | None, dropout: float,
                 dropout_placement: str, single_bn_at_embedding: bool):
        self.norm = check_choice("norm", norm, NORMS)
        if norm_options is not None and not isinstance(norm_options, dict):
            raise ValueError(f"norm_options must be a dict or None, got {norm_options!r}")
        self.norm_options = dict(norm_options or {})
        self.dropout = check_real("dropout", dropout, 0.0, 1.0, hi_open=True)
        self.placement = check_choice("dropout_placement", dropout_placement,
                                      DROPOUT_PLACEMENTS)
        if not isinstance(single_bn_at_embedding, bool):
            raise ValueError(f"single_bn_at_embedding must be True or False, got "
                             f"{single_bn_at_embedding!r}")
        self.single = single_bn_at_embedding
        _, self.layer = split_norm(self.norm)
        if self.single and (self.layer == "none" or uses_weight_norm(self.norm)
                            or uses_pre_centering(self.norm)):
            raise ValueError(f"norm must be a plain normalization layer with "
                             f"single_bn_at_embedding=True (e.g. 'bn'), got {self.norm!r}")

    def slot_norm(self, embedding: bool) -> str:
        """Registry name of the layer in a slot (``embedding``: the embedding slot)."""
        return self.norm if (embedding or not self.single) else "none"

    def has_layer(self, embedding: bool = False) -> bool:
        return split_norm(self.slot_norm(embedding))[1] != "none"

    def slot(self, num_channels: int, dim: int = 2, *, embedding: bool = False) -> NormSlot:
        name = self.slot_norm(embedding)
        options = self.norm_options if name == self.norm else {}
        p = self.dropout if self.placement == "after-norm" else 0.0
        return NormSlot(make_norm(name, num_channels, dim=dim, **options), p)

    def prepare(self, op: nn.Module, embedding: bool = False) -> nn.Module:
        """Weight norm / pre-centering on an op that feeds a slot (after its init)."""
        return prepare_op(op, self.slot_norm(embedding))

    def head_dropout(self) -> nn.Module:
        if self.placement == "before-last" and self.dropout > 0:
            return nn.Dropout(self.dropout)
        return nn.Identity()


class Net(nn.Module):
    """Base class: ``forward(x) = classifier(head_dropout(features(x)))``.

    Subclasses set ``classifier`` (``nn.Linear``), ``head_dropout`` and
    ``embedding_dim`` and implement :meth:`features`.
    """

    classifier: nn.Linear
    head_dropout: nn.Module
    embedding_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Embedding, shape ``(B, embedding_dim)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head_dropout(self.features(x)))


def _scalar(value: float) -> nn.Parameter:
    return nn.Parameter(torch.full((1,), float(value)))


def _add(x: torch.Tensor, b: nn.Parameter | None) -> torch.Tensor:
    return x if b is None else x + b


def _he_normal_(weight: torch.Tensor, scale: float = 1.0) -> None:
    """He-normal with fan-out, as torchvision's ResNets and the Fixup authors' code."""
    fan_out = weight.shape[0] * math.prod(weight.shape[2:])
    with torch.no_grad():
        weight.normal_(0.0, math.sqrt(2.0 / fan_out) * scale)


def _conv(cin: int, cout: int, k: int, stride: int = 1, padding: int | None = None, *,
          bias: bool) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2 if padding is None else padding, bias=bias)


def _check_channels(name: str, value, length: int) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or \
            len(value) != length:
        raise ValueError(f"{name} must be a sequence of {length} positive integers, "
                         f"got {value!r}")
    return tuple(check_int(f"{name}[{i}]", v, 1) for i, v in enumerate(value))


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _finish(net: Net, plan: _Plan, num_classes: int, fixup: bool = False) -> None:
    """Add the classifier (zero-initialized under Fixup) and the head dropout."""
    net.classifier = nn.Linear(net.embedding_dim, num_classes)
    if fixup:
        nn.init.zeros_(net.classifier.weight)
        nn.init.zeros_(net.classifier.bias)
    net.head_dropout = plan.head_dropout()


# ============================================================================ CNN
class CNN(Net):
    r"""Luo et al.'s 4conv+2fc CNN (App. B; after Salimans & Kingma 2016).

    ``conv(3,32)-conv(3,32)-conv(3,64)-conv(3,64)-pool(2,2)-fc(512)-fc(10)``, each conv
    and fc512 followed by a norm slot and ReLU; ``pool(2,2)`` is max-pooling, kernel 2,
    stride 2, once, after the fourth conv (as the paper's string reads). The paper does
    not give the padding; ``padding="same"`` (1, our default) keeps the spatial size so
    the pooled map is ``image_size // 2`` (16 x 16 x 64 for CIFAR-10); ``"valid"`` (0)
    shrinks it by 8 first (12 x 12 x 64). Embedding: the ReLU output of fc512 (+ slot).

    Parameters
    ----------
    plan : _Plan
        Norm/dropout plan (built by :func:`make_model`).
    num_classes, in_channels, image_size : int
        Output classes, input channels, input height = width.
    channels : sequence of 4 int
        Conv widths (32, 32, 64, 64).
    hidden : int
        Width of the fc layer (512) = embedding dimension.
    padding : {"same", "valid"}
        Conv padding (see above).
    init : {"default", "he"}
        torch's default init of the convs and fc512 (uniform, variance ``1/(3 fan_in)``:
        the signal shrinks about sqrt(6)x per conv-ReLU layer, so a norm-free net starts
        with logits ~100x too small and can sit on the chance plateau), or He-normal
        (fan-in, zero bias), under which norm-free arms train. The classifier keeps
        torch's default either way.
    """

    def __init__(self, plan: _Plan, num_classes: int, in_channels: int, image_size: int, *,
                 channels: Sequence[int] = (32, 32, 64, 64), hidden: int = 512,
                 padding: str = "same", init: str = "default"):
        super().__init__()
        channels = _check_channels("channels", channels, 4)
        hidden = check_int("hidden", hidden, 1)
        padding = check_choice("padding", padding, ("same", "valid"))
        init = check_choice("init", init, ("default", "he"))
        pad = 1 if padding == "same" else 0
        side = image_size - (0 if pad else 8)
        if side < 2:
            raise ValueError(f"image_size must be >= {2 if pad else 10} for the cnn with "
                             f"padding={padding!r}, got {image_size}")
        bias = not plan.has_layer()
        layers, cin = [], in_channels
        for c in channels:
            conv = _conv(cin, c, 3, padding=pad, bias=bias)
            if init == "he":
                _he(conv)
            layers += [plan.prepare(conv), plan.slot(c), nn.ReLU()]
            cin = c
        layers += [nn.MaxPool2d(2, 2), nn.Flatten()]
        fc = nn.Linear(cin * (side // 2) ** 2, hidden, bias=not plan.has_layer(True))
        if init == "he":
            _he(fc)
        layers += [plan.prepare(fc, embedding=True), plan.slot(hidden, 1, embedding=True),
                   nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.embedding_dim = hidden
        _finish(self, plan, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _he(m: nn.Module) -> None:
    """He-normal weights (fan-in, ReLU gain) and zero bias."""
    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    if m.bias is not None:
        nn.init.zeros_(m.bias)


# ======================================================================= ResNet-18
class _BasicBlock(nn.Module):
    """ResNet basic block, post-activation: ``relu(N(conv(relu(N(conv x)))) + sc(x))``."""

    def __init__(self, plan: _Plan, cin: int, cout: int, stride: int, fixup: bool):
        super().__init__()
        bias = not plan.has_layer() and not fixup
        self.conv1 = _conv(cin, cout, 3, stride, bias=bias)
        self.slot1 = plan.slot(cout)
        self.conv2 = _conv(cout, cout, 3, bias=bias)
        self.slot2 = plan.slot(cout)
        self.shortcut_conv = None
        if stride != 1 or cin != cout:
            self.shortcut_conv = _conv(cin, cout, 1, stride, 0, bias=bias)
            self.shortcut_slot = plan.slot(cout)
        self.fixup = fixup
        if fixup:
            self.bias1a, self.bias1b, self.bias2a = _scalar(0), _scalar(0), _scalar(0)
            self.scale, self.bias2b = _scalar(1), _scalar(0)
        else:
            self.bias1a = self.bias1b = self.bias2a = self.scale = self.bias2b = None

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch alone (exactly 0 at a Fixup initialization)."""
        out = self.conv1(_add(x, self.bias1a))
        out = torch.relu(_add(self.slot1(out), self.bias1b))
        out = self.slot2(self.conv2(_add(out, self.bias2a)))
        if self.fixup:
            out = out * self.scale + self.bias2b
        return out

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut_conv is None:
            return x
        return self.shortcut_slot(self.shortcut_conv(_add(x, self.bias1a)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.branch(x) + self.shortcut(x))


def _finish_residual(net: Net, plan: _Plan, blocks: list, num_classes: int,
                     fixup: bool) -> None:
    """Initialize a residual net (:func:`_init_residual`), let the norm plan prepare the
    stem and every block conv (e.g. weight norm), then add the head (:func:`_finish`)."""
    _init_residual(net, blocks, fixup)
    for m in [net.stem, *(c for b in blocks for c in (b.conv1, b.conv2, b.shortcut_conv)
                          if c is not None)]:
        plan.prepare(m)
    _finish(net, plan, num_classes, fixup)


def _init_residual(net: nn.Module, blocks: list, fixup: bool) -> None:
    """He-normal convs; with Fixup, scale first convs by L^{-1/2}, zero the last convs."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            _he_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if fixup:
        L = len(blocks)
        for b in blocks:
            _he_normal_(b.conv1.weight, L ** -0.5)  # m = 2 convs: L^{-1/(2m-2)}
            nn.init.zeros_(b.conv2.weight)


class ResNet18(Net):
    r"""ResNet-18 for 32 x 32 inputs (He et al. 2016; Luo et al. Fig. 2a,b,g,h).

    CIFAR-style stem: one 3x3 conv (stride 1) + slot + ReLU, no max-pool; four stages of
    two basic blocks with widths ``(w, 2w, 4w, 8w)``, strides ``(1, 2, 2, 2)``;
    1x1-conv + slot shortcuts where the shape changes; global average pooling; the
    embedding has ``8 w`` dimensions (512). Convs are He-normal (fan-out).

    Parameters
    ----------
    plan : _Plan
        Norm/dropout plan.
    num_classes, in_channels, image_size : int
        Output classes, input channels, input height = width.
    width : int
        Base width :math:`w` (64).
    fixup : bool
        Fixup initialization (module docstring); needs norm-free blocks.
    """

    def __init__(self, plan: _Plan, num_classes: int, in_channels: int, image_size: int, *,
                 width: int = 64, fixup: bool = False):
        super().__init__()
        width = check_int("width", width, 1)
        fixup = _check_fixup(plan, fixup)
        self.fixup = fixup
        self.stem = _conv(in_channels, width, 3, bias=not plan.has_layer() and not fixup)
        self.stem_slot = plan.slot(width)
        self.stem_bias = _scalar(0) if fixup else None
        blocks, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2 ** i
            blocks += [_BasicBlock(plan, cin, cout, stride, fixup),
                       _BasicBlock(plan, cout, cout, 1, fixup)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.embedding_slot = plan.slot(cin, embedding=True) if plan.single else None
        self.fixup_bias = _scalar(0) if fixup else None
        self.embedding_dim = cin
        _finish_residual(self, plan, blocks, num_classes, fixup)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(_add(self.stem_slot(self.stem(x)), self.stem_bias))
        out = self.blocks(out)
        if self.embedding_slot is not None:
            out = torch.relu(self.embedding_slot(out))
        return _add(out.mean((2, 3)), self.fixup_bias)


def _check_fixup(plan: _Plan, fixup) -> bool:
    fixup = _check_bool("fixup", fixup)
    if fixup and plan.norm != "none" and not plan.single:
        raise ValueError(f"fixup=True needs norm-free residual blocks: norm='none' or "
                         f"single_bn_at_embedding=True; got norm={plan.norm!r}")
    return fixup


# ======================================================================= WideResNet
class _WideBlock(nn.Module):
    """Pre-activation wide block: ``conv(relu(N(conv(relu(N x))))) + sc``."""

    def __init__(self, plan: _Plan, cin: int, cout: int, stride: int, skip: bool,
                 fixup: bool):
        super().__init__()
        bias = not plan.has_layer() and not fixup
        self.slot1 = plan.slot(cin)
        self.conv1 = _conv(cin, cout, 3, stride, bias=bias)
        self.slot2 = plan.slot(cout)
        self.conv2 = _conv(cout, cout, 3, bias=bias)
        self.skip = skip
        self.shortcut_conv = None
        if skip and (stride != 1 or cin != cout):
            self.shortcut_conv = _conv(cin, cout, 1, stride, 0, bias=bias)
        self.fixup = fixup
        if fixup:
            self.bias1a, self.bias1b, self.bias2a = _scalar(0), _scalar(0), _scalar(0)
            self.scale, self.bias2b = _scalar(1), _scalar(0)
        else:
            self.bias1a = self.bias1b = self.bias2a = self.scale = self.bias2b = None

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        return _add(torch.relu(_add(self.slot1(x), self.bias1a)), self.bias1b)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch alone (exactly 0 at a Fixup initialization)."""
        out = self.conv1(self._pre(x))
        out = torch.relu(_add(self.slot2(out), self.bias2a))
        out = self.conv2(out)
        if self.fixup:
            out = out * self.scale + self.bias2b
        return out

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.shortcut_conv is None else self.shortcut_conv(self._pre(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        return out + self.shortcut(x) if self.skip else out


class WideResNet(Net):
    r"""WideResNet-d-k (Zagoruyko & Komodakis 2016), pre-activation, for 32 x 32 inputs.

    Stem 3x3 conv to 16 channels; three stages of :math:`n = (d - 4)/6` wide blocks of
    widths ``(16k, 32k, 64k)``, strides ``(1, 2, 2)``; final slot + ReLU; global average
    pooling; embedding of ``64 k`` dimensions. ``skip=False`` removes every shortcut
    (Rao & Sohl-Dickstein's nets "without skip connections"): their "26-layer
    WideResnet" is ``depth=28, skip=False`` (24 block convs + stem + classifier = 26
    weight layers; the +4 of :math:`d = 6n + 4` counts the shortcut convs that
    ``skip=False`` drops). Convs are He-normal (fan-out).

    Parameters
    ----------
    plan : _Plan
        Norm/dropout plan.
    num_classes, in_channels, image_size : int
        Output classes, input channels, input height = width.
    depth : int
        :math:`d` with :math:`(d - 4) \bmod 6 = 0`, :math:`d \ge 10` (16).
    width : int
        Widening factor :math:`k` (4); ``k`` is an alias.
    k : int, optional
        Alias of ``width``.
    base_width : int
        Channels of the stem and the unwidened first stage (16).
    skip : bool
        Keep the residual connections.
    fixup : bool
        Fixup initialization (module docstring); needs ``skip=True`` and norm-free
        blocks.
    """

    def __init__(self, plan: _Plan, num_classes: int, in_channels: int, image_size: int, *,
                 depth: int = 16, width: int | None = None, k: int | None = None,
                 base_width: int = 16, skip: bool = True, fixup: bool = False):
        super().__init__()
        depth = check_int("depth", depth, 10)
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got {depth}")
        if width is not None and k is not None and width != k:
            raise ValueError(f"width and its alias k disagree: width={width!r}, k={k!r}")
        width = check_int("width", width if width is not None else (4 if k is None else k), 1)
        base_width = check_int("base_width", base_width, 1)
        skip = _check_bool("skip", skip)
        fixup = _check_fixup(plan, fixup)
        if fixup and not skip:
            raise ValueError("fixup=True needs skip=True (Fixup initializes residual "
                             "branches); got skip=False")
        self.fixup = fixup
        n = (depth - 4) // 6
        self.stem = _conv(in_channels, base_width, 3, bias=not plan.has_layer() and not fixup)
        blocks, cin = [], base_width
        for i, stride in enumerate((1, 2, 2)):
            cout = base_width * width * 2 ** i
            for j in range(n):
                blocks.append(_WideBlock(plan, cin, cout, stride if j == 0 else 1, skip, fixup))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.final_slot = plan.slot(cin, embedding=True)
        self.final_bias = _scalar(0) if fixup else None
        self.fixup_bias = _scalar(0) if fixup else None
        self.embedding_dim = cin
        _finish_residual(self, plan, blocks, num_classes, fixup)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        out = torch.relu(_add(self.final_slot(out), self.final_bias))
        return _add(out.mean((2, 3)), self.fixup_bias)


# ================================================================= fully connected
class FullyConnected(Net):
    r"""Fully connected ReLU net: ``[linear-slot-ReLU] x depth``, then the classifier.

    The input is flattened (``x.flatten(1)``), so any shape with ``in_features``
    entries per sample works. The embedding is the last hidden layer's ReLU output.

    Parameters
    ----------
    plan : _Plan
        Norm/dropout plan.
    num_classes, in_channels, image_size : int
        Output classes; ``in_channels * image_size**2`` is the default ``in_features``.
    width : int
        Hidden units per layer.
    depth : int
        Number of hidden layers (>= 1).
    in_features : int, optional
        Input dimension, overriding ``in_channels * image_size**2``.
    init : {"default", "he"}
        torch's default ``nn.Linear`` init, or He-normal (fan-in, zero bias) for signal
        propagation at depth.
    """

    def __init__(self, plan: _Plan, num_classes: int, in_channels: int, image_size: int, *,
                 width: int, depth: int, in_features: int | None = None,
                 init: str = "default"):
        super().__init__()
        width = check_int("width", width, 1)
        depth = check_int("depth", depth, 1)
        init = check_choice("init", init, ("default", "he"))
        d_in = (in_channels * image_size * image_size if in_features is None
                else check_int("in_features", in_features, 1))
        self.in_features = d_in
        layers = []
        for i in range(depth):
            last = i == depth - 1
            fc = nn.Linear(d_in if i == 0 else width, width, bias=not plan.has_layer(last))
            if init == "he":
                _he(fc)
            layers += [plan.prepare(fc, last), plan.slot(width, 1, embedding=last), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.embedding_dim = width
        _finish(self, plan, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(f"input must have {self.in_features} features per sample "
                             f"after flattening, got shape {tuple(x.shape)}")
        return self.body(x)


def mlp(plan: _Plan, num_classes: int, in_channels: int, image_size: int, *,
        hidden: int = 300, layers: int = 1, in_features: int | None = None) -> FullyConnected:
    r"""Annamalai & Thakur's MLP (Sec. IV): ``layers`` hidden layers of ``hidden`` ReLU units.

    "One hidden layer of 300 nodes (with ReLU activation) followed by a dense classifier
    layer (with SoftMax activation) of 10 nodes. BN is applied right after every dense
    layer": dense -> slot -> ReLU. We normalize the hidden layer(s) only: a norm on the
    logits would not leave ``classifier`` the final linear layer, and the paper's
    quantities (weight norms, :math:`\alpha`) are those of the 300 hidden units. The
    paper's Gaussian "small values" init is unspecified; torch's default is used.

    Parameters
    ----------
    plan : _Plan
        Norm/dropout plan.
    num_classes, in_channels, image_size : int
        Output classes; ``in_channels * image_size**2`` inputs.
    hidden : int
        Hidden units (300).
    layers : int
        Hidden layers (1).
    in_features : int, optional
        Input dimension override.
    """
    return FullyConnected(plan, num_classes, in_channels, image_size,
                          width=check_int("hidden", hidden, 1),
                          depth=check_int("layers", layers, 1), in_features=in_features,
                          init="default")


def deep_fc(plan: _Plan, num_classes: int, in_channels: int, image_size: int, *,
            depth: int = 20, width: int = 512, in_features: int | None = None
            ) -> FullyConnected:
    r"""Rao & Sohl-Dickstein's deep ReLU net for propagation studies (Fig. 1; R-F1).

    ``depth`` hidden layers (20) of ``width`` units (512: the paper gives no width),
    He-normal init (fan-in) so that the norm-free net propagates at depth.

    Parameters
    ----------
    plan : _Plan
        Norm/dropout plan.
    num_classes, in_channels, image_size : int
        Output classes; ``in_channels * image_size**2`` inputs.
    depth : int
        Hidden layers (20).
    width : int
        Hidden units per layer (512).
    in_features : int, optional
        Input dimension override.
    """
    return FullyConnected(plan, num_classes, in_channels, image_size, width=width,
                          depth=depth, in_features=in_features, init="he")


# ======================================================================== registry
_BUILDERS = {
    "cnn": CNN,
    "resnet18": ResNet18,
    "wrn": WideResNet,
    "mlp": mlp,
    "deep-fc": deep_fc,
}

_COMMON = ("dropout", "dropout_placement", "single_bn_at_embedding")
_FIXED = ("plan", "num_classes", "in_channels", "image_size")


def model_options(name: str) -> dict:
    """Model-specific options of ``name`` and their defaults (beyond the common ones).

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.

    Returns
    -------
    dict
        ``{option: default}``.
    """
    builder = _BUILDERS[check_choice("name", name, _BUILDERS)]
    params = inspect.signature(builder).parameters
    return {k: p.default for k, p in params.items() if k not in _FIXED}


def make_model(name: str, *, norm: str = "bn", num_classes: int = 10, in_channels: int = 3,
               image_size: int = 32, norm_options: dict | None = None, dropout: float = 0.0,
               dropout_placement: str = "after-norm", single_bn_at_embedding: bool = False,
               **options) -> Net:
    """Build model ``name`` with normalizer ``norm`` in every slot (module docstring).

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`: cnn, resnet18, wrn, mlp, deep-fc.
    norm : str
        A key of ``norms.NORMS``.
    num_classes : int
        Outputs of the classifier (>= 1).
    in_channels : int
        Input channels (>= 1).
    image_size : int
        Input height = width (>= 1; the cnn needs >= 2, or >= 10 with valid padding).
    norm_options : dict, optional
        Options of the normalizer (``NORMS[norm].options``), e.g. ``{"groups": 8}``.
    dropout : float
        Dropout probability in [0, 1).
    dropout_placement : {"after-norm", "before-last"}
        After every norm slot, or on the embedding before the classifier.
    single_bn_at_embedding : bool
        ``norm`` at the embedding only, every other slot norm-free (Dauphin & Cubuk).
    **options
        Model-specific options (:func:`model_options`): cnn ``channels, hidden,
        padding``; resnet18 ``width, fixup``; wrn ``depth, width (k), base_width, skip,
        fixup``; mlp ``hidden, layers, in_features``; deep-fc ``depth, width,
        in_features``.

    Returns
    -------
    Net
        The model, in training mode, on the CPU.
    """
    name = check_choice("name", name, _BUILDERS)
    num_classes = check_int("num_classes", num_classes, 1)
    in_channels = check_int("in_channels", in_channels, 1)
    image_size = check_int("image_size", image_size, 1)
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"option {unknown[0]!r} is not accepted by model {name!r}; valid "
                         f"options: {', '.join((*valid, *_COMMON))}")
    plan = _Plan(norm, norm_options, dropout, dropout_placement, single_bn_at_embedding)
    return _BUILDERS[name](plan, num_classes, in_channels, image_size, **options)


MODELS = {name: functools.partial(make_model, name) for name in _BUILDERS}
"""Registry keyed by CLI name: ``MODELS[name](**kwargs) == make_model(name, **kwargs)``."""
