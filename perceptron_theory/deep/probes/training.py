"""Probes that train networks: at step resolution through a run (``probe_over_training``,
``propagation_over_training``) and across training batch sizes (``gamma_vs_batch_size``).
Every SGD step is ``train.train``'s."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..._checks import check_choice, check_int
from ..runs import TrainConfig, load_run, run_dataset
from ..train import train
from ._common import _data, _norm_named, _plain, _rng_guard, probe_copy
from .registry import PROBES


def gamma_vs_batch_size(base_config: TrainConfig, batch_sizes: Sequence[int], *,
                        layer: int | str | None = None, out_dir=None, device="cpu") -> dict:
    r""":math:`\overline{\gamma^2}` per norm layer after training at each batch size (L-F2ef).

    Luo et al. (2019), Sec. 5 "Batch size" and Fig. 2e,f: :math:`\gamma^2` grows with
    the batch size :math:`M` (the regularization :math:`\zeta \propto 1/M` weakens) and
    so does the validation loss. One ``train.train`` run per :math:`M` (everything else
    from ``base_config``; the learning rate scales with :math:`M` by the package's
    convention, as Luo et al. do). For Luo's "BN at one layer at a time" build
    ``base_config`` with a model that has a single norm layer (e.g.
    ``model_options={"single_bn_at_embedding": True}``).

    Parameters
    ----------
    base_config : TrainConfig
        The run, ``batch_size`` replaced.
    batch_sizes : sequence of int
        :math:`M` values (>= 2).
    layer : int or str, optional
        Report this norm layer only (index into the norm layers, or module name).
    out_dir : str or Path, optional
        Folder for the runs (``batch_<M>`` subfolders); a temporary folder when None.
    device : str
        Where to load the trained models.

    Returns
    -------
    dict
        ``batch_sizes, layers, gamma_sq`` (per batch size: a list over layers, or a
        number with ``layer``), ``train_loss, val_loss, val_acc`` (final epoch).
    """
    if not isinstance(base_config, TrainConfig):
        raise ValueError(f"base_config must be a TrainConfig, got "
                         f"{type(base_config).__name__}")
    sizes = [check_int("batch_sizes entry", b, 2) for b in batch_sizes]
    if not sizes:
        raise ValueError("batch_sizes must hold at least one batch size")
    out = {"batch_sizes": sizes, "layers": None, "gamma_sq": [], "train_loss": [],
           "val_loss": [], "val_acc": []}
    with contextlib.ExitStack() as stack:
        root = Path(out_dir) if out_dir is not None else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="gamma_vs_m_")))
        for m in sizes:
            cfg = dataclasses.replace(base_config, batch_size=m)
            res = train(cfg, root / f"batch_{m}", progress=False)
            model, *_ = load_run(root / f"batch_{m}", device)
            named = [(nm, ly) for nm, ly in _norm_named(model)
                     if isinstance(getattr(ly, "weight", None), torch.Tensor)]
            names = [nm for nm, _ in named]
            g2 = [float(ly.weight.detach().double().square().mean()) for _, ly in named]
            if layer is not None:
                if isinstance(layer, str):
                    if layer not in names:
                        raise ValueError(f"layer must be one of {names}, got {layer!r}")
                    i = names.index(layer)
                else:
                    i = check_int("layer", layer, -len(names), len(names) - 1)
                names, g2 = [names[i]], g2[i]
            out["layers"] = names
            out["gamma_sq"].append(g2)
            for key in ("train_loss", "val_loss", "val_acc"):
                out[key].append(res.final.get(key))
    return _plain(out)


def probe_over_training(config: TrainConfig, steps: int, every: int,
                        probes: Mapping[str, Mapping], *, n_eval: int = 1000,
                        device="cpu") -> dict:
    """Train ``config`` for ``steps`` SGD steps, running ``probes`` every ``every`` steps.

    The run is ``train.train``'s, without files, stopped after ``steps`` steps (R-F3: the
    first 2000 steps; R-F6: :math:`\\lambda_1` through training): same data, initialization,
    batch order, augmentation, population-statistics refreshes, parameter groups,
    learning-rate schedule (``config.epochs`` sets its length; batches continue over
    epochs) and penalties. At steps ``0, every, 2 every, ...`` (and ``steps``) a step
    callback records the validation accuracy (eval mode, ``n_eval`` samples) and each
    probe's output. The global RNG states are restored afterwards. A non-finite loss stops
    the run (``train``'s rule, checked every ``train.CHECK_EVERY`` steps): ``diverged``.

    Parameters
    ----------
    config : TrainConfig
        The run (``epochs`` only sets the schedule's length).
    steps : int
        SGD steps (>= 0).
    every : int
        Recording interval (>= 1).
    probes : mapping
        ``{name in PROBES: options}``.
    n_eval : int
        Validation samples for the accuracy.
    device : str
        Where to train.

    Returns
    -------
    dict
        ``step, lr, batch_loss, val_acc`` (``lr`` and ``batch_loss``: the rate and the
        batch cross entropy of the step just taken; the first step's rate and None at
        step 0), one list per probe name, and ``diverged``.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    steps = check_int("steps", steps, 0)
    every = check_int("every", every, 1)
    specs = {name: PROBES[check_choice("probe", name, PROBES)] for name in probes}
    options = {name: specs[name].check_options(opts) for name, opts in probes.items()}
    device = torch.device(device)
    bundle = run_dataset(config, device)
    rec = {"step": [], "lr": [], "batch_loss": [], "val_acc": [], **{p: [] for p in probes}}
    vx, vy = _data(bundle, "val", n_eval, 7, device) if len(bundle.val_y) else (None, None)

    def record(model, step, info):
        if step % every and step != steps:
            return
        rec["step"].append(step)
        rec["lr"].append(info["lr"])
        loss = info["batch_loss"]
        rec["batch_loss"].append(None if loss is None else float(loss))
        acc = None
        if vx is not None:
            with torch.no_grad():
                acc = float((probe_copy(model, "eval")(vx).argmax(1) == vy).double().mean())
        rec["val_acc"].append(acc)
        with _rng_guard(device):
            for name, spec in specs.items():
                rec[name].append(spec(model, bundle, **options[name]))

    res = train(config, data=bundle, device=device, max_steps=steps, step_callbacks=[record],
                eval_splits=(), progress=False)
    return _plain({**rec, "diverged": res.diverged})


def propagation_over_training(config: TrainConfig, steps: int, every: int, *,
                              device="cpu", **options) -> dict:
    """:func:`probe_over_training` with the propagation probe only (R-F3).

    Parameters
    ----------
    config : TrainConfig
        The run.
    steps : int
        SGD steps.
    every : int
        Recording interval.
    device : str
        Where to train.
    **options
        Options of :func:`propagation_probe`.

    Returns
    -------
    dict
    """
    return probe_over_training(config, steps, every, {"propagation": options}, device=device)
