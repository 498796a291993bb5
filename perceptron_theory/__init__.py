"""perceptron_theory: why batch normalization regularizes, as software.

Three ways of computing the same quantities, kept apart and compared in
:mod:`validation`:

* :mod:`perceptron_theory.theory` -- exact and symbolic results (no randomness);
* :mod:`perceptron_theory.simulate` -- finite-N SGD of teacher-student models;
* :mod:`perceptron_theory.deep` -- real CNNs in torch (imported lazily).

``import perceptron_theory`` imports neither sympy-heavy derivations nor torch;
submodules load on first use.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
