"""The Numba recurrent core, one module per cell, mirroring `rnnrec.cells`.

``BLAS`` names the library the compiled time loops call for their matrix
products. `set_threads` runs the kernels on one pool of Numba's threads (row
loops and split products, the BLAS on one thread inside); `set_blas_threads`
sets the BLAS's own thread count, for NumPy's ``@`` elsewhere.
"""

from rnnrec.kernels._jit import BLAS, HAVE_BLAS, set_blas_threads, set_threads

__all__ = ["BLAS", "HAVE_BLAS", "set_blas_threads", "set_threads"]
