"""The Numba recurrent core, one module per cell, mirroring `rnnrec.cells`.

``BLAS`` names the library the compiled time loops call for their matrix
products; `set_blas_threads` sets its thread count, `set_threads` that and the
threads of the compiled row loops.
"""

from rnnrec.kernels._jit import BLAS, HAVE_BLAS, set_blas_threads, set_threads

__all__ = ["BLAS", "HAVE_BLAS", "set_blas_threads", "set_threads"]
