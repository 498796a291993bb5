"""Exact and symbolic theory: no randomness, no imports from simulate/ or deep/."""
