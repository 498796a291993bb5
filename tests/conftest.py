"""Test-session setup.

Single-threaded BLAS before numpy loads: the suite's linear algebra is small
(N <= 800), where multi-threaded OpenBLAS only adds contention on CI's 2 cores and
becomes pathologically slow when the cores are oversubscribed.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# the deep run store defaults to the user cache folder: keep the suite's runs out of it
if "XDG_CACHE_HOME" not in os.environ:
    import tempfile as _tempfile

    os.environ["XDG_CACHE_HOME"] = _tempfile.mkdtemp(prefix="pt-test-cache-")
