"""Deep networks: normalizers, models, penalties, data and training (needs torch)."""
