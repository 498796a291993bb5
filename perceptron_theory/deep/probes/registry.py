"""The probe registry: one :class:`ProbeSpec` per probe, keyed by CLI name; running a
probe on a run folder (:func:`run_probe`) or as a training callback (:func:`as_callback`).

Shaped like :data:`~perceptron_theory.deep.norms.NORMS`: the CLI, the tests and the
report iterate :data:`PROBES` (name, summary, claims, source, options) instead of
listing probes by hand.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from ..._checks import check_choice, check_int
from ..runs import TrainConfig, load_run
from ._common import _device, _plain, _rng_guard
from .bn_finetune import finetune_probe
from .dropout import dropout_probe
from .eval_batch_size import eval_batch_size_probe
from .hessian import hessian_probe
from .norms import norms_probe
from .propagation import propagation_probe


def _keyword_options(fn: Callable) -> dict:
    """``{name: default}`` of the keyword-only parameters of ``fn``."""
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.kind is p.KEYWORD_ONLY}


@dataclass(frozen=True)
class ProbeSpec:
    """One registry entry: a probe, what it measures and which options it takes.

    Calling the spec, ``spec(model, data, **options)``, checks the option names
    (:meth:`check_options`) and runs ``fn``; each probe checks its option values
    itself, before any work, with messages that name the option.

    Attributes
    ----------
    name : str
        CLI name.
    fn : callable
        ``fn(model, data, **options) -> dict`` of JSON-ready numbers and lists.
    summary : str
        One line: what it measures.
    claims : tuple of str
        Claims of ``validation`` it serves.
    source : str
        Paper and section.
    options : mapping
        Accepted options and their defaults (read from ``fn``'s keyword-only
        parameters when not given).
    run_defaults : callable, optional
        ``run_defaults(config) -> {option: value}``: defaults that :func:`run_probe`
        takes from the run's :class:`~perceptron_theory.deep.runs.TrainConfig` where the
        caller leaves them out.
    """

    name: str
    fn: Callable[..., dict] = field(repr=False)
    summary: str
    claims: tuple = ()
    source: str = ""
    options: Mapping[str, object] = None
    run_defaults: Callable[[TrainConfig], dict] | None = field(default=None, repr=False)

    def __post_init__(self):
        opts = _keyword_options(self.fn) if self.options is None else dict(self.options)
        object.__setattr__(self, "options", types.MappingProxyType(opts))
        object.__setattr__(self, "claims", tuple(self.claims))

    def check_options(self, options: Mapping | None) -> dict:
        """``options`` as a dict; ValueError naming the first unknown option.

        Parameters
        ----------
        options : mapping, optional
            Keyword options of the probe.

        Returns
        -------
        dict
        """
        options = dict(options or {})
        for key in options:
            if key not in self.options:
                raise ValueError(f"option {key!r} is not accepted by probe {self.name!r}; "
                                 f"valid options: {', '.join(self.options)}")
        return options

    def __call__(self, model, data, **options) -> dict:
        return self.fn(model, data, **self.check_options(options))

    def to_dict(self) -> dict:
        """Plain-dict view for JSON (without the function)."""
        return {"name": self.name, "summary": self.summary, "claims": list(self.claims),
                "source": self.source, "options": _plain(dict(self.options))}


def _norms_from_run(config: TrainConfig) -> dict:
    return {"coef": config.norm_decay if config.norm_decay is not None
            else config.weight_decay}


_SPECS = [
    ProbeSpec("norms", norms_probe,
              "per-layer gamma^2, beta^2, weight norms, BN's effective norm, E||Emb||^2, "
              "E||NN||^2, both sides of Dauphin & Cubuk's eq. 1",
              ("L-F4", "A-TI", "A-TII", "D-F2/F3", "D-eq1"),
              "Luo et al. 2019 Sec. 5, Fig. 4; Dauphin & Cubuk 2021 eq. 1, App. A",
              run_defaults=_norms_from_run),
    ProbeSpec("dropout", dropout_probe,
              "accuracy under test-time dropout on the embedding, and the drop from clean",
              ("D-T3",), "Dauphin & Cubuk 2021, Table 3"),
    ProbeSpec("propagation", propagation_probe,
              "correlation of representations and weight gradients of two noisy copies of "
              "a minibatch, layer by layer; first-to-last gradient-norm ratio",
              ("R-F1", "R-F3"), "Rao & Sohl-Dickstein 2020, Sec. 4, Figs. 1, 3"),
    ProbeSpec("hessian", hessian_probe,
              "top-k Hessian eigenvalues (Lanczos on Hessian-vector products), "
              "lambda_1/lambda_K and the SLQ eigenvalue density",
              ("R-F4", "R-F6"), "Rao & Sohl-Dickstein 2020, Figs. 4, 6; Ghorbani et al. 2019"),
    ProbeSpec("bn-finetune", finetune_probe,
              "fold BN into the preceding ops, fine-tune the plain net with SGD: weight "
              "norms and train / val loss along the way (optional BN control)",
              ("L-F4",), "Luo et al. 2019, Sec. 5 and App. B.2, Fig. 4",
              run_defaults=lambda config: {"batch_size": config.batch_size}),
    ProbeSpec("test-batch-size", eval_batch_size_probe,
              "test accuracy vs test-time batch size with batch statistics (Batch-Train) "
              "vs running statistics",
              ("R-F5", "L-F2ef"), "Rao & Sohl-Dickstein 2020, Sec. 7, Fig. 5"),
]
PROBES: dict[str, ProbeSpec] = {s.name: s for s in _SPECS}
"""Probes keyed by CLI name; each entry is callable as ``PROBES[name](model, data,
**options)``."""


def probe_names() -> tuple[str, ...]:
    """All registry names, in registry order."""
    return tuple(PROBES)


def as_callback(probe: str | Callable[..., dict], data, every: int = 1, *,
                key: str | None = None, **options) -> Callable:
    """A ``train.train`` callback running ``probe`` every ``every`` epochs.

    The returned ``cb(model, epoch, metrics)`` gives ``{key: probe(model, data,
    **options)}`` on epochs divisible by ``every`` (None otherwise), which ``train``
    merges into the epoch's log line. The probe runs on a copy of the model with the
    global RNG states restored afterwards, so a run with the callback trains exactly
    as one without.

    Parameters
    ----------
    probe : str or callable
        A :data:`PROBES` name or a probe function.
    data : DataBundle or (x, y)
        The probe's data (e.g. the run's own ``make_dataset`` bundle).
    every : int
        Epoch interval (>= 1).
    key : str, optional
        Log key; ``"probe/<name>"`` by default.
    **options
        Options of the probe.

    Returns
    -------
    callable
    """
    if isinstance(probe, str):
        name = check_choice("probe", probe, PROBES)
        fn = PROBES[name]
        options = fn.check_options(options)
    elif callable(probe):
        fn, name = probe, getattr(probe, "__name__", "probe")
    else:
        raise ValueError(f"probe must be a name in PROBES or a callable, got {probe!r}")
    every = check_int("every", every, 1)
    key = key or f"probe/{name}"

    def callback(model, epoch, metrics):
        if epoch % every:
            return None
        with _rng_guard(_device(model)):
            return {key: fn(model, data, **options)}

    return callback


def run_probe(run_dir, probe: str, *, options: Mapping | None = None, device="cpu") -> dict:
    """Load a training run and run one probe of :data:`PROBES` on its checkpoint.

    Options the caller leaves out default from the run where that is the natural
    choice (the spec's ``run_defaults``): ``norms`` takes ``coef`` = the run's
    ``norm_decay`` (else ``weight_decay``); ``bn-finetune`` takes ``batch_size`` = the
    run's batch size.

    Parameters
    ----------
    run_dir : str or Path
        Folder written by ``train.train``.
    probe : str
        A :data:`PROBES` name.
    options : mapping, optional
        Keyword options of the probe.
    device : str or torch.device
        Where to compute.

    Returns
    -------
    dict
        ``probe, run_dir, epoch, config, options, result`` (JSON-ready).
    """
    spec = PROBES[check_choice("probe", probe, PROBES)]
    options = spec.check_options(options)
    model, bundle, config, epoch = load_run(run_dir, device)
    if spec.run_defaults is not None:
        defaults = spec.run_defaults(config)
        options.update({k: v for k, v in defaults.items() if k not in options})
    with _rng_guard(torch.device(device)):
        result = spec(model, bundle, **options)
    return _plain({"probe": probe, "run_dir": str(run_dir), "epoch": epoch,
                   "config": config.to_dict(), "options": options, "result": result})
