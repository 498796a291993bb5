"""The probe-based deep checks (D-T3, D-F2/F3, L-F2ef, L-F4, R-F1, R-F3, R-F4/F6) run at
size "tiny" and return well-formed results; outcomes at this size are meaningless and not
asserted."""

import math

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.deep

from validation import d_f2f3, d_t3, l_f2ef, l_f4, r_f1f3, r_f4f6  # noqa: E402
from validation._core import REGISTRY, CheckResult  # noqa: E402

CHECKS = {"D-T3": d_t3.check, "D-F2/F3": d_f2f3.check, "L-F2ef": l_f2ef.check,
          "R-F1": r_f1f3.check_f1, "R-F3": r_f1f3.check_f3, "L-F4": l_f4.check,
          "R-F4/F6": r_f4f6.check}


@pytest.mark.parametrize("claim", sorted(CHECKS))
def test_check_tiny_is_well_formed(claim):
    assert REGISTRY[claim].func is CHECKS[claim]
    res = CHECKS[claim](size="tiny", seed=0)
    assert isinstance(res, CheckResult) and res.claim == claim
    assert res.comparisons and res.summary
    for c in res.comparisons:
        assert c.claim == claim and c.relation in (">=", "<=", "==")
        assert isinstance(c.ok, bool) and c.note
        assert math.isfinite(c.stderr)
    for p in res.plots:
        for s in p.series:
            assert len(s.x) == len(s.y) > 0
    res.to_dict()  # JSON-ready


def test_sizes_are_validated():
    with pytest.raises(ValueError, match="size"):
        d_t3.check(size="huge")
