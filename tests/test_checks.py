"""Argument checks: ValueError naming parameter, value and range."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perceptron_theory._checks import check_array, check_choice, check_int, check_real


@given(st.floats())
def test_check_real_accepts_exactly_the_interval(x):
    inside = math.isfinite(x) and 0.0 < x <= 2.0
    if inside:
        assert check_real("zeta", x, 0.0, 2.0, lo_open=True) == x
    else:
        with pytest.raises(ValueError, match=r"zeta must .*\(0, 2\]"):
            check_real("zeta", x, 0.0, 2.0, lo_open=True)


def test_messages_name_parameter_and_value():
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[2, inf\), got 1"):
        check_int("batch_size", 1, lo=2)
    with pytest.raises(ValueError, match="activation must be one of relu, erf; got 'tanh'"):
        check_choice("activation", "tanh", ("relu", "erf"))
    with pytest.raises(ValueError, match=r"R must be in \[-1, 1\]; found 1.5"):
        check_array("R", [0.0, 1.5], -1.0, 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        check_array("Q", [1.0, np.inf], 0.0)
    with pytest.raises(ValueError, match="integer"):
        check_int("M", True)
    assert check_int("M", 4.0) == 4
