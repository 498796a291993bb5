"""Deep networks: normalizers, models, penalties, data and training (needs torch).

Submodules: :mod:`.norms` (normalizer registry), :mod:`.models`, :mod:`.penalties`,
:mod:`.data`, :mod:`.train`. This package file imports nothing, so
``import perceptron_theory.deep`` does not load torch; importing a submodule does, except
:mod:`.names` (the registries' names, torch-free, for the command line).
"""
