"""``--hidden K --teachers M`` of ``perceptron-theory dynamics`` and ``simulate``: committee
machines (:mod:`perceptron_theory.theory.committee`, :mod:`perceptron_theory.simulate.committee`).

Starts. ``dynamics``: ``Q0 = L_init^2 I`` and ``R0[k, n] = R_init L_init`` for ``k == n``
(each student unit on its own teacher, 0 elsewhere), unless ``--init-N N``: then the
overlaps of the simulation's random start at dimension ``N`` and ``--seed`` (entries of
``w_k`` i.i.d. ``N(0, L_init^2)``; the start that shows the plateau). ``simulate``: that
random start by default; ``--exact-init``: the ``dynamics`` start.
"""

from __future__ import annotations

import numpy as np

__all__ = ["add_args", "wanted", "dynamics", "simulate"]


def add_args(s, *, simulate: bool = False) -> None:
    """The committee options of one subcommand's parser."""
    s.add_argument("--hidden", type=int, metavar="K",
                   help="committee machine: K student hidden units (1..16)")
    s.add_argument("--teachers", type=int, metavar="M",
                   help="committee machine: M teacher hidden units (1..16)")
    s.add_argument("--train-second-layer", action="store_true",
                   help="committee: train the student's second layer too (rate lr/N)")
    if simulate:
        s.add_argument("--exact-init", action="store_true",
                       help="committee: start from the overlaps dynamics uses, not at random")
    else:
        s.add_argument("--init-N", type=int, metavar="N",
                       help="committee: start from a simulation's random overlaps at this N "
                            "(with --seed)")
        s.add_argument("--seed", type=int, default=0, help="committee --init-N: the seed")


def wanted(a) -> bool:
    """Did the command line ask for a committee machine?"""
    return a.hidden is not None or a.teachers is not None or a.train_second_layer


def _sizes(a) -> tuple[int, int]:
    from perceptron_theory._checks import check_int

    return (check_int("hidden", 1 if a.hidden is None else a.hidden, 1, 16),
            check_int("teachers", 1 if a.teachers is None else a.teachers, 1, 16))


def _exact_start(a, K: int, M: int) -> tuple[np.ndarray, np.ndarray]:
    from perceptron_theory._checks import check_real

    L = check_real("L_init", a.L_init, 0.0, lo_open=True)
    r = check_real("R_init", a.R_init, -1.0, 1.0)
    return L * L * np.eye(K), r * L * np.eye(K, M)


def _print_rows(t, cols: dict, title: str) -> None:
    print(title)
    print(f"{'t':>10} " + " ".join(f"{k:>12}" for k in cols))
    step = max(1, len(t) // 20)
    for i in sorted(set(range(0, len(t), step)) | {len(t) - 1}):
        print(f"{t[i]:10.4g} " + " ".join(f"{v[i]:12.6g}" for v in cols.values()))


def _columns(Q, R, gamma, eps) -> dict:
    """Printed columns: eps, the mean diagonal Q, the mean of max_n R_kn, mean gamma."""
    cols = {"eps": eps, "Q_kk": np.mean(np.diagonal(Q, axis1=-2, axis2=-1), axis=-1),
            "max_n R_kn": np.mean(np.max(R, axis=-1), axis=-1)}
    if gamma is not None:
        cols["gamma"] = np.mean(gamma, axis=-1)
    return cols


def dynamics(a) -> int:
    """``dynamics --hidden K --teachers M``."""
    from perceptron_theory.cli import _dump
    from perceptron_theory.theory import committee as CM

    K, M = _sizes(a)
    if a.freeze_L:
        raise ValueError("--freeze-L is not available for committee machines")
    if a.weight_decay:
        raise ValueError("--weight-decay is not available for committee machines")
    if a.init_N is not None:
        from perceptron_theory._checks import check_int, check_real
        from perceptron_theory.simulate import committee as SC

        Q0, R0 = SC.initial_overlaps(K, M, N=check_int("init_N", a.init_N, K + M + 2, 10**7),
                                     seed=check_int("seed", a.seed, 0),
                                     scale=check_real("L_init", a.L_init, 0.0, lo_open=True))
    else:
        Q0, R0 = _exact_start(a, K, M)
    from perceptron_theory import vocabulary as _vocab

    method = _vocab.resolve_method("dynamics", a.method)
    normalized = method != "sgd"
    tr = CM.integrate(method, a.activation, hidden=K, teachers=M, lr=a.lr, zeta=a.zeta,
                      Q0=Q0, R0=R0, gamma0=np.full(K, a.gamma_init) if normalized else None,
                      t_max=a.t_max, n_points=a.n_points, noise=a.noise,
                      teacher=a.teacher,
                      train_second_layer=a.train_second_layer)
    cols = _columns(tr.Q, tr.R, tr.gamma, tr.eps)
    if a.plot:
        from perceptron_theory.plotting import Plot, save, series

        save([Plot(f"committee {method}/{a.activation} K={K} M={M}, lr={a.lr}",
                   "t = steps / N", "value", tuple(series(k, tr.t, v) for k, v in cols.items()))],
             a.plot)
    if a.json:
        print(_dump(tr.to_dict()))
        return 0
    _print_rows(tr.t, cols, f"# committee {method}/{a.activation} K={K} M={M} lr={a.lr} "
                f"zeta={a.zeta} diverged={tr.diverged}")
    return 0


def simulate(a) -> int:
    """``simulate --online --hidden K --teachers M``."""
    from perceptron_theory.cli import _dump
    from perceptron_theory.simulate import committee as SC

    K, M = _sizes(a)
    if not a.online or a.t_max is None:
        raise ValueError("committee machines are simulated online: give --online --t-max T")
    if a.weight_decay:
        raise ValueError("--weight-decay is not available for committee machines")
    if a.method not in SC.METHODS:
        raise ValueError(f"method must be one of {', '.join(SC.METHODS)} for committee "
                         f"machines; got {a.method!r}")
    start = (dict(zip(("Q0", "R0"), _exact_start(a, K, M), strict=True)) if a.exact_init
             else {"init_scale": a.L_init})
    res = SC.run(a.method, a.activation, hidden=K, teachers=M, N=a.N, lr=a.lr, t_max=a.t_max,
                 zeta=a.zeta, noise=a.noise, teacher=a.teacher, batch_size=a.batch_size,
                 gamma_init=a.gamma_init, n_points=a.n_points, seeds=a.seeds, seed=a.seed,
                 train_second_layer=a.train_second_layer, **start)
    with np.errstate(all="ignore"):
        cols = {k: np.nanmean(v, axis=0) for k, v in
                _columns(res.Q, res.R, None if a.method == "sgd" else res.gamma,
                         res.eps).items()}
    if a.plot:
        from perceptron_theory.plotting import Plot, save, series

        save([Plot(f"committee {a.method}/{a.activation} K={K} M={M} N={a.N}",
                   "t = steps / N", "seed mean", tuple(series(k, res.t, v)
                                                       for k, v in cols.items()))], a.plot)
    if a.json:
        print(_dump(res.to_dict()))
        return 0
    _print_rows(res.t, cols, f"# committee {a.method}/{a.activation} K={K} M={M} N={a.N} "
                f"B={a.batch_size} lr={a.lr}: {res.seeds.size} seeds, "
                f"{int(res.diverged.sum())} diverged")
    return 0
