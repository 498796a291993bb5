"""The registry of normalizers keyed by CLI name, and the functions that read it."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import nn

from perceptron_theory._checks import check_choice, check_int, check_real
from perceptron_theory.deep.norms._base import (
    EPS,
    MOMENTUM,
    _check_momentum,
)
from perceptron_theory.deep.norms.batch import (
    BatchRenorm,
    GhostBatchNorm,
    MeanOnlyBatchNorm,
    VarianceOnlyBatchNorm,
)
from perceptron_theory.deep.norms.layer import GroupNorm, InstanceNorm, LayerNorm
from perceptron_theory.deep.norms.mixed import BatchMeanLayerVar, LayerMeanBatchVar
from perceptron_theory.deep.norms.population import PopulationNorm
from perceptron_theory.deep.norms.rms import PreLayerNorm, PreRegNorm, RegNorm, _center_input_hook

__all__ = [
    "NORMS", "NormSpec", "make_norm", "norm_names", "split_norm", "uses_weight_norm",
    "uses_pre_centering", "apply_weight_norm", "apply_pre_centering", "prepare_op",
]


def _identity(num_channels: int, dim: int) -> nn.Module:
    return nn.Identity()


def _bn(num_channels: int, dim: int, eps: float = EPS, momentum: float = MOMENTUM):
    cls = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
    return cls(num_channels, eps=check_real("eps", eps, 0.0, lo_open=True),
               momentum=_check_momentum(momentum))


def _bn_train(num_channels: int, dim: int, eps: float = EPS):
    cls = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
    return cls(num_channels, eps=check_real("eps", eps, 0.0, lo_open=True),
               track_running_stats=False)


@dataclass(frozen=True)
class NormSpec:
    """One registry entry: how to build a normalizer and what it does.

    Attributes
    ----------
    name : str
        CLI name.
    factory : callable
        ``factory(num_channels, dim, **options) -> nn.Module`` (the layer part).
    summary : str
        One line: what the layer computes.
    source : str
        Paper and section.
    options : mapping
        Accepted options and their defaults.
    layer : str
        Name of the layer part (``split_norm(name)[1]``).
    weight_norm : bool
        The preceding conv/linear gets :func:`apply_weight_norm`.
    pre_centering : bool
        The preceding conv/linear gets :func:`apply_pre_centering`.
    batch_train : bool
        In training, a sample's output depends on the other samples of its batch.
    batch_eval : bool
        Same, in evaluation.
    regularized : bool
        The layer exposes a penalty (``regularizer()``, ``last_batch_mean``).
    """

    name: str
    factory: Callable[..., nn.Module] = field(repr=False)
    summary: str
    source: str
    options: Mapping[str, object] = field(default_factory=dict)
    layer: str = ""
    weight_norm: bool = False
    pre_centering: bool = False
    batch_train: bool = False
    batch_eval: bool = False
    regularized: bool = False

    def __post_init__(self):
        object.__setattr__(self, "options", types.MappingProxyType(dict(self.options)))
        if not self.layer:
            object.__setattr__(self, "layer", self.name)

    def to_dict(self) -> dict:
        """Plain-dict view for JSON (without the factory)."""
        return {"name": self.name, "summary": self.summary, "source": self.source,
                "options": dict(self.options), "layer": self.layer,
                "weight_norm": self.weight_norm, "pre_centering": self.pre_centering,
                "batch_train": self.batch_train, "batch_eval": self.batch_eval,
                "regularized": self.regularized}


_EM = {"eps": EPS, "momentum": MOMENTUM}
_BASE = [
    NormSpec("none", _identity, "no normalization (identity)", "-"),
    NormSpec("bn", _bn, "batch norm; running stats at eval (torch BatchNorm)",
             "Ioffe & Szegedy 2015", _EM, batch_train=True),
    NormSpec("bn-train", _bn_train, "batch norm with batch stats at eval too",
             "Rao & Sohl-Dickstein 2020, 'Batch-Train' (Table 3, Fig. 5)", {"eps": EPS},
             batch_train=True, batch_eval=True),
    NormSpec("ghost-bn", GhostBatchNorm, "BN within chunks of virtual_batch_size samples",
             "Hoffer et al. 2017, Alg. 1", {"virtual_batch_size": 32, **_EM},
             batch_train=True),
    NormSpec("batch-renorm", BatchRenorm, "batch renormalization with r, d corrections",
             "Ioffe 2017, Alg. 1", {"r_max": 3.0, "d_max": 5.0, **_EM}, batch_train=True),
    NormSpec("pn", PopulationNorm, "normalization by population statistics of the data",
             "Luo et al. 2019, eq. 3 and Sec. 5", {"eps": EPS}),
    NormSpec("wn", _identity, "weight norm on the preceding op, no layer",
             "Salimans & Kingma 2016", layer="none", weight_norm=True),
    NormSpec("bn-mean", MeanOnlyBatchNorm, "mean-only BN: z - mu_B + beta",
             "Salimans & Kingma 2016 Sec. 3; Luo et al. 2019 Sec. 5",
             {"momentum": MOMENTUM}, batch_train=True),
    NormSpec("bn-var", VarianceOnlyBatchNorm, "variance-only BN: gamma z / sigma_B + beta",
             "Luo et al. 2019 Sec. 5 (our reading)", {"centered": True, **_EM},
             batch_train=True),
    NormSpec("ln", LayerNorm, "layer norm over (C, H, W), per-channel affine",
             "Ba et al. 2016; Rao & Sohl-Dickstein Table 1", {"eps": EPS}),
    NormSpec("gn", GroupNorm, "group norm", "Wu & He 2018", {"groups": 32, "eps": EPS}),
    NormSpec("in", InstanceNorm, "instance norm with affine", "Ulyanov et al. 2016",
             {"eps": EPS}),
    NormSpec("bmlv", BatchMeanLayerVar, "batch mean, layer std",
             "Rao & Sohl-Dickstein 2020, Table 1", {"track_running_stats": False, **_EM},
             batch_train=True, batch_eval=True),
    NormSpec("lmbv", LayerMeanBatchVar, "layer mean, batch std",
             "Rao & Sohl-Dickstein 2020, Table 1", {"track_running_stats": False, **_EM},
             batch_train=True, batch_eval=True),
    NormSpec("pre-ln", PreLayerNorm, "layer mean removed before the op, layer RMS after",
             "Rao & Sohl-Dickstein 2020, Sec. 3.1, Table 1",
             {"eps": EPS, "check_centering": True}, pre_centering=True),
    NormSpec("regnorm", RegNorm, "layer RMS normalization + batch-mean penalty",
             "Rao & Sohl-Dickstein 2020, Sec. 3.2, App. B", {"eps": EPS}, regularized=True),
    NormSpec("pre-regnorm", PreRegNorm, "pre-ln's layer with regnorm's penalty",
             "Rao & Sohl-Dickstein 2020, Table 3 note", {"eps": EPS, "check_centering": True},
             pre_centering=True, regularized=True),
]


def _composite(layer: NormSpec) -> NormSpec:
    return NormSpec(f"wn+{layer.name}", layer.factory, f"weight norm + {layer.summary}",
                    f"Luo et al. 2019 Sec. 5 (L-F2cd); {layer.source}", layer.options,
                    layer=layer.name, weight_norm=True, pre_centering=layer.pre_centering,
                    batch_train=layer.batch_train, batch_eval=layer.batch_eval,
                    regularized=layer.regularized)


_by_name = {s.name: s for s in _BASE}
NORMS: dict[str, NormSpec] = {
    **_by_name, **{f"wn+{n}": _composite(_by_name[n]) for n in ("bn", "bn-mean", "bn-var")}}
"""Registry of normalizers keyed by CLI name (see the module table)."""


def norm_names() -> tuple[str, ...]:
    """All registry names, in registry order."""
    return tuple(NORMS)


def _spec(name: str) -> NormSpec:
    return NORMS[check_choice("name", name, NORMS)]


def split_norm(name: str) -> tuple[bool, str]:
    """Split a registry name into (weight norm on the op?, layer name).

    Parameters
    ----------
    name : str
        A registry name.

    Returns
    -------
    tuple of (bool, str)
        ``"wn+bn-mean" -> (True, "bn-mean")``, ``"wn" -> (True, "none")``,
        ``"bn" -> (False, "bn")``.
    """
    s = _spec(name)
    return s.weight_norm, s.layer


def uses_weight_norm(name: str) -> bool:
    """Whether ``name`` reparametrizes the preceding conv/linear with weight norm."""
    return _spec(name).weight_norm


def uses_pre_centering(name: str) -> bool:
    """Whether ``name`` needs :func:`apply_pre_centering` on the preceding conv/linear."""
    return _spec(name).pre_centering


def make_norm(name: str, num_channels: int, *, dim: int = 2, **options) -> nn.Module:
    """Build the layer part of normalizer ``name`` for ``num_channels`` channels.

    Parameters
    ----------
    name : str
        A registry name (:func:`norm_names`); for ``wn+X`` the layer ``X`` is returned
        and the caller applies :func:`apply_weight_norm` to the preceding op.
    num_channels : int
        :math:`C` >= 1.
    dim : int
        2: input ``(B, C, H, W)``; 1: input ``(B, C)``.
    **options
        Options of that normalizer (``NORMS[name].options`` lists them with their
        defaults), e.g. ``virtual_batch_size``, ``groups``, ``r_max``, ``eps``.

    Returns
    -------
    torch.nn.Module
        The layer (``nn.Identity`` for ``none`` and ``wn``).
    """
    spec = _spec(name)
    num_channels = check_int("num_channels", num_channels, 1)
    dim = check_int("dim", dim, 1, 2)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        valid = ", ".join(spec.options) or "none"
        raise ValueError(f"option {unknown[0]!r} is not accepted by norm {name!r}; "
                         f"valid options: {valid}")
    return spec.factory(num_channels, dim, **{**spec.options, **options})


def apply_weight_norm(module: nn.Module) -> nn.Module:
    r"""Weight-normalize ``module.weight`` per output unit (Salimans & Kingma 2016).

    :math:`W_o = g_o\, v_o / \lVert v_o\rVert` over all but the output dimension
    (``torch.nn.utils.parametrizations.weight_norm(module, name="weight", dim=0)``);
    the parameters become ``module.parametrizations.weight.original0`` (:math:`g`) and
    ``original1`` (:math:`v`).

    Parameters
    ----------
    module : torch.nn.Module
        A conv or linear layer (anything with a ``weight`` parameter).

    Returns
    -------
    torch.nn.Module
        The same module, reparametrized in place.
    """
    if not isinstance(getattr(module, "weight", None), nn.Parameter):
        raise ValueError(f"module must have a 'weight' parameter to weight-normalize, "
                         f"got {type(module).__name__}")
    return nn.utils.parametrizations.weight_norm(module, name="weight", dim=0)


def apply_pre_centering(module: nn.Module) -> nn.Module:
    r"""Make ``module`` see :math:`x - \mu^i(x)`: PreLayerNorm's pre-op half.

    Registers a forward pre-hook that subtracts from the first input each sample's
    mean over all its features (:math:`(C, H, W)` for a conv, the features for a
    linear layer). Idempotent. See :class:`PreLayerNorm`.

    Parameters
    ----------
    module : torch.nn.Module
        The conv or linear op preceding a ``pre-ln`` / ``pre-regnorm`` layer.

    Returns
    -------
    torch.nn.Module
        The same module, with the hook.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not getattr(module, "_pt_pre_centered", False):
        module.register_forward_pre_hook(_center_input_hook)
        module._pt_pre_centered = True
    return module


def prepare_op(module: nn.Module, name: str) -> nn.Module:
    """Apply to the op preceding normalizer ``name`` what the name asks for.

    Weight norm (:func:`apply_weight_norm`) for ``wn`` / ``wn+X``, pre-centering
    (:func:`apply_pre_centering`) for ``pre-ln`` / ``pre-regnorm``; otherwise nothing.

    Parameters
    ----------
    module : torch.nn.Module
        Conv or linear op.
    name : str
        Registry name of the normalizer that follows it.

    Returns
    -------
    torch.nn.Module
        The same module.
    """
    spec = _spec(name)
    if spec.weight_norm:
        module = apply_weight_norm(module)
    if spec.pre_centering:
        module = apply_pre_centering(module)
    return module
