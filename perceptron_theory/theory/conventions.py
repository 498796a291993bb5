r"""Decay conventions: the one table that says which loss a gamma decay is added to.

A decay :math:`\zeta` on :math:`\gamma^2` (or on :math:`|w|^2`) is only a number once the
loss it is added to is fixed; the factor-2 trap (:math:`1/(4M)` vs :math:`1/(2M)`) lives
here, once, for :mod:`.batchnorm`, :mod:`.generalization` and :mod:`.replica`.

==========  ==========  ===============================================================
name        per sample  objective the decay is added to
==========  ==========  ===============================================================
theorem1    yes         halved mean loss :math:`+\ \zeta\gamma^2` (Luo et al. Thm. 1, eq. 3)
decay2      yes         unhalved mean loss :math:`+\ \zeta\gamma^2` = halved loss
                        :math:`+\ \frac{\zeta}{2}\gamma^2` (Luo et al. eq. 5 ODEs, Sec. 4,
                        Fig. 1a; :mod:`.dynamics`)
sum         no          :math:`\frac12\sum_p (y_p - g(w\cdot x_p))^2 + \frac{\zeta}{2}|w|^2`
                        (Krogh & Hertz 1992; :mod:`.generalization`, :mod:`.replica`)
==========  ==========  ===============================================================

Per-sample decays convert into each other by ``theorem1_factor`` (a ``decay2`` value is
twice the ``theorem1`` value of the same penalty) and into the sum convention at load
:math:`\alpha = P/N` by ``sum_factor``: :math:`\zeta_{\rm sum} = f\,\alpha\,\zeta` with
:math:`f = 2` (``theorem1``) or 1 (``decay2``), because :math:`\gamma^2 = |w|^2/N`.

>>> from perceptron_theory.theory.conventions import DECAY_CONVENTIONS
>>> DECAY_CONVENTIONS["decay2"].theorem1_factor, DECAY_CONVENTIONS["theorem1"].sum_factor
(2.0, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DecayConvention", "DECAY_CONVENTIONS", "PER_SAMPLE_CONVENTIONS"]


@dataclass(frozen=True)
class DecayConvention:
    """One way of reading a decay (module table).

    ``theorem1_factor``: a per-sample decay in this convention is this factor times the
    ``theorem1`` value of the same penalty (``None`` for the sum convention).
    """

    name: str
    per_sample: bool
    theorem1_factor: float | None
    objective: str

    @property
    def sum_factor(self) -> float | None:
        """``f`` in :math:`\\zeta_{\\rm sum} = f\\,\\alpha\\,\\zeta` (``None``: already a sum)."""
        return None if self.theorem1_factor is None else 2.0 / self.theorem1_factor


#: Every decay convention, keyed by the name the functions' ``convention`` /
#: ``decay_convention`` arguments accept.
DECAY_CONVENTIONS: dict[str, DecayConvention] = {c.name: c for c in (
    DecayConvention("theorem1", True, 1.0, "halved mean loss + zeta gamma^2"),
    DecayConvention("decay2", True, 2.0, "unhalved mean loss + zeta gamma^2"),
    DecayConvention("sum", False, None, "1/2 sum_p (y_p - g(w.x_p))^2 + zeta/2 |w|^2"),
)}
#: The per-sample conventions (those of :mod:`.batchnorm`), in table order.
PER_SAMPLE_CONVENTIONS = tuple(n for n, c in DECAY_CONVENTIONS.items() if c.per_sample)
