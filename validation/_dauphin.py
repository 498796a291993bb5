"""Shared arms, probes callback and run cache of the Dauphin & Cubuk (2021) checks.

The five Dauphin checks (D-T1/T2, D-T3, D-F2/F3, D-eq1, D-single) read different probes
of a few shared arms, named by role (:data:`ARMS`): no BN, BN, no BN + a final-layer
penalty, single BN at the embedding. Each role is built on one of two families:

``cnn`` (sizes tiny, quick, cpu)
    The shared run of :func:`validation._deep.base` (Luo's 4conv+2fc CNN narrowed to
    4/4/8/8 channels and fc 32, He init; 25 000 Fashion-MNIST training images, 4
    epochs of SGD). The paper's nets (WRN-28-10 on CIFAR-10, ResNet-50 on ImageNet) are
    beyond two CPU cores, and no residual net of the model zoo fits the budget: in
    pilots (1 seed, the base SGD, 4 epochs) a Fixup WRN-10 of widths 4/8/16 reached val
    accuracy 0.804 (1.2 base runs of time) and one of widths 8/16/32 0.817 (2 base
    runs), both under the 0.85 floor. So below ``full`` the residual-free CNN stands in:
    its "no BN" arm is the He-initialized CNN, in the place of the paper's
    "no BN + Fixup" baseline -- Fixup (zero-initialized residual branches) does not
    apply to a net without residual branches, and what it is for, an embedding that
    does not explode at initialization, a 4-layer He-initialized CNN already has.
``wrn`` (size full)
    The paper's family: a pre-activation WideResNet (:data:`WRN_OPTIONS`: WRN-16-4)
    with the same SGD, where "no BN" is Fixup-initialized (``fixup=True``), and the
    single-BN arm exists with and without Fixup.

Every arm trains with the one callback :func:`probes_callback` (the run store keys runs
on it, so a run serves every check that reads it), and :func:`grid` keeps the runs of a
process, so an arm shared by two checks is trained once even without a run store.

Coefficients are Dauphin & Cubuk's Table 1 (CIFAR-10): standardization 1e-7, functional
L2 1.0, embedding L2 0.5; test-time dropout p = 0.5 (Table 3).
"""

from __future__ import annotations

from collections.abc import Sequence

from validation import _deep

__all__ = ["EL2_COEF", "EL2_SMALL", "FL2_COEF", "STD_COEF", "P_DROP", "MASKS", "N_PROBE", "N_EQ1",
           "WRN_OPTIONS", "NO_BN", "BN", "STD", "FL2", "EL2", "EL2_SMALL_LABEL", "SINGLE",
           "SINGLE_NO_FIXUP", "ARMS", "FAMILIES", "family", "arm", "probes_callback",
           "CALLBACK", "grid", "describe_family"]

EL2_COEF = 0.5  # Table 1 (CIFAR-10)
EL2_SMALL = 0.05  # the lower point of the D-F2/F3 sweep
FL2_COEF = 1.0  # Table 1
STD_COEF = 1e-7  # Table 1
P_DROP = 0.5  # Table 3
MASKS = 10  # dropout masks of the D-T3 probe
N_PROBE = 1000  # validation samples of the per-epoch norms probe (one seeded subset)
N_EQ1 = 2000  # validation samples of the eq. 1 probe, as one batch (seeded subset)

#: the WideResNet of the ``wrn`` family (``model_options`` of ``models.WideResNet``): full
#: WRN-16-4; tiny WRN-10 of widths 2/2/4 (tests of the full-size path)
WRN_OPTIONS = {
    "tiny": {"depth": 10, "width": 1, "base_width": 2},
    "full": {"depth": 16, "width": 4},
}

# arm labels (roles; one name per arm across the five checks)
NO_BN, BN = "no BN", "BN"
STD, FL2 = "no BN + standardization", "no BN + functional L2"
EL2, EL2_SMALL_LABEL = f"no BN + EL2 {EL2_COEF:g}", f"no BN + EL2 {EL2_SMALL:g}"
SINGLE, SINGLE_NO_FIXUP = "single BN at Emb", "single BN at Emb, no Fixup"

#: role -> (overrides of the cnn family, overrides of the wrn family; None: not built)
ARMS = {
    NO_BN: (dict(norm="none"), dict(norm="none", fixup=True)),
    BN: (dict(norm="bn"), dict(norm="bn")),
    STD: (dict(norm="none", penalties={"standardization": STD_COEF}),
          dict(norm="none", fixup=True, penalties={"standardization": STD_COEF})),
    FL2: (dict(norm="none", penalties={"functional-l2": FL2_COEF}),
          dict(norm="none", fixup=True, penalties={"functional-l2": FL2_COEF})),
    EL2: (dict(norm="none", penalties={"embedding-l2": EL2_COEF}),
          dict(norm="none", fixup=True, penalties={"embedding-l2": EL2_COEF})),
    EL2_SMALL_LABEL: (dict(norm="none", penalties={"embedding-l2": EL2_SMALL}),
                      dict(norm="none", fixup=True, penalties={"embedding-l2": EL2_SMALL})),
    SINGLE: (dict(norm="bn", single_bn_at_embedding=True),
             dict(norm="bn", fixup=True, single_bn_at_embedding=True)),
    SINGLE_NO_FIXUP: (None, dict(norm="bn", single_bn_at_embedding=True)),
}
FAMILIES = ("cnn", "wrn")


def family(size: str) -> str:
    """The family of the arms at ``size``: ``wrn`` at full, else ``cnn`` (module doc)."""
    return "wrn" if size == "full" else "cnn"


#: the callback every Dauphin arm trains with (part of the run-store key)
CALLBACK = "validation._dauphin:probes_callback"


def arm(label: str, size: str, fam: str | None = None) -> dict:
    """Overrides of :func:`validation._deep.base` (``size``) that make arm ``label`` of
    family ``fam`` (default :func:`family` of ``size``)."""
    fam = fam or family(size)
    over = ARMS[label][FAMILIES.index(fam)]
    if over is None:
        raise ValueError(f"arm {label!r} has no {fam} version")
    over = dict(over)
    model_flags = {k: over.pop(k) for k in ("fixup", "single_bn_at_embedding") if k in over}
    if fam == "cnn":
        base = _deep.base(size)
        return dict(model_options={**base["model_options"], **model_flags}, **over)
    return dict(model="wrn", model_options={**WRN_OPTIONS[size], **model_flags}, **over)


def norms_and_dropout(model, bundle, last: bool, n_probe: int) -> dict:
    """The ``norms`` probe on ``n_probe`` validation samples (``embedding_sq``,
    ``output_sq``, ``gamma_sq_mean``) and, when ``last``, the ``dropout`` probe
    (``dropout_drop``, ``dropout_acc``, ``clean_acc``): one epoch's entries of the
    Dauphin callbacks."""
    from perceptron_theory.deep.probes import dropout_probe, norms_probe

    nb = norms_probe(model, bundle, split="val", n=n_probe)
    g2 = [g for g in (nb["gamma_sq"] or []) if g is not None]
    out = {"embedding_sq": nb["embedding_sq"], "output_sq": nb["output_sq"],
           "gamma_sq_mean": sum(g2) / len(g2) if g2 else None}
    if last:
        dp = dropout_probe(model, bundle, p=P_DROP, masks=MASKS, split="val")
        out.update(dropout_drop=dp["drop"], dropout_acc=dp["acc_dropout"],
                   clean_acc=dp["acc"])
    return out


def probes_callback(config: dict) -> list:
    r"""Callback factory of every Dauphin arm, on the run's validation split.

    After every epoch, the ``norms`` probe on :data:`N_PROBE` validation samples (eval
    mode): ``embedding_sq`` :math:`= E\lVert\mathrm{Emb}\rVert^2`, ``output_sq``
    :math:`= E\lVert NN(x)\rVert^2`, ``gamma_sq_mean``. After the last epoch also the
    ``dropout`` probe (p = :data:`P_DROP`, :data:`MASKS` masks, all validation images):
    ``dropout_drop``, ``dropout_acc``, ``clean_acc``; and, for the CNN (where
    :math:`\mathrm{Emb} = \mathrm{ReLU}(\mathrm{BN}(\cdot))` can hold: not after the
    WRN's average pooling), the ``norms`` probe on :data:`N_EQ1` validation images as
    one batch, whose ``dauphin_eq1`` entries are recorded as ``eq1_<key>`` (D-eq1;
    absent for nets without a norm layer).
    """
    from perceptron_theory.deep.probes import norms_probe
    from perceptron_theory.deep.runs import run_dataset

    bundle = run_dataset(config)

    def cb(model, epoch, metrics):
        out = norms_and_dropout(model, bundle, epoch == config["epochs"], N_PROBE)
        if epoch == config["epochs"]:
            eq1 = (norms_probe(model, bundle, split="val", n=N_EQ1,
                               coef=float(config["weight_decay"]))["dauphin_eq1"]
                   if config["model"] == "cnn" else None)
            for key, value in (eq1 or {}).items():
                if key != "layer":
                    out[f"eq1_{key}"] = float(value)
        return out

    return [cb]


# ----------------------------------------------------------------------------- runs
_RUNS: dict = {}  # (label, family, size, seed, dataset) -> (history, diverged, seconds)


def grid(labels: Sequence[str], size: str, seed: int = 0, n_seeds: int | None = None,
         fam: str | None = None) -> _deep.Runs:
    """The runs of arms ``labels`` (family ``fam``, default :func:`family` of ``size``) at
    ``size`` over seeds ``seed, seed + 1, ...`` (``n_seeds``, default the size's), held
    to the data set's floor (:data:`validation._deep.FLOORS`; none at tiny).

    Arms already trained in this process are reused; the others are trained together
    in one :func:`validation._deep.run_grid` (through the run store, if any).
    """
    fam = fam or family(size)
    scale = _deep.SCALES[size]
    seeds = scale.seeds(seed, n_seeds)
    dataset = _deep.dataset_args(scale)["dataset"]

    def key(lab, s):
        return (lab, fam, size, s, dataset)

    todo = [lab for lab in labels if any(key(lab, s) not in _RUNS for s in seeds)]
    elapsed, stored = 0.0, 0
    if todo:
        new = _deep.run_grid(_deep.base(size), {lab: arm(lab, size, fam) for lab in todo},
                             scale, seed, n_seeds=n_seeds, callback_factory=CALLBACK)
        for (lab, s), hist in new.histories.items():
            _RUNS[key(lab, s)] = (hist, new.diverged[(lab, s)], new.run_times.get((lab, s), 0.0))
        elapsed, stored = new.elapsed, new.stored
    got = {(lab, s): _RUNS[key(lab, s)] for lab in labels for s in seeds}
    return _deep.Runs(labels=tuple(labels), seeds=seeds,
                      histories={k: v[0] for k, v in got.items()},
                      diverged={k: v[1] for k, v in got.items()}, scale=scale,
                      dataset=dataset, elapsed=elapsed,
                      run_times={k: v[2] for k, v in got.items()},
                      floor=_deep.FLOORS.get(dataset) if scale.floor else None,
                      floor_reason="" if scale.floor else "tiny size: structure only",
                      stored=stored)


def describe_family(size: str, fam: str | None = None) -> str:
    """One sentence: the net the arms of ``size`` (family ``fam``) are built on."""
    base = _deep.base(size)
    if (fam or family(size)) == "cnn":
        return (f"the shared CNN run of _deep.base({size!r}) ({base['model_options']}), "
                f"no Fixup (no residual branches), batch {base['batch_size']}, lr "
                f"{base['lr']:g} {base['schedule']}, weight decay {base['weight_decay']:g}, "
                f"{base['epochs']} epochs")
    return (f"WRN {WRN_OPTIONS[size]} with Fixup in the no-BN arms, the SGD of "
            f"_deep.base({size!r}) (batch {base['batch_size']}, lr {base['lr']:g} "
            f"{base['schedule']}, {base['epochs']} epochs)")
