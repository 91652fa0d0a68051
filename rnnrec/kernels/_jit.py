"""Compile flags and the one BLAS that every matrix product uses.

Every kernel of the package is compiled by `jit`, defined here once:

- ``cache=True``: compiled code is stored next to the sources (or in
  ``NUMBA_CACHE_DIR``), so a second process does not compile again (not in the
  fallback without a BLAS, see below);
- ``error_model="numpy"``: a division by zero gives inf or NaN as in NumPy instead
  of a Python exception; without it the check inside every division stops the
  loops from vectorising;
- no ``fastmath``: kernels whose gradients are checked must round as written;
- ``nogil=True``: kernels release the GIL;
- ``inline="always"`` (`jit_inline`) for the scalar functions of the inner
  loops, so that every loop around them can vectorise.

Matrix products inside the time loops call ``cblas_sgemm``/``cblas_dgemm`` of the
OpenBLAS that NumPy itself ships and uses for ``@``, so rnnrec's products run in one
BLAS with one thread pool (Numba's own ``np.dot`` would load SciPy's second copy of
OpenBLAS). The functions are declared to Numba as external symbols, which keeps
the kernels cacheable; with ``NUMBA_DISABLE_JIT=1`` the same calls go through
``ctypes``. Where NumPy's OpenBLAS cannot be found, `gemm` falls back to plain
loops, correct but slow, and `BLAS` says so.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from types import FunctionType

import numba
import numpy as np
from numba import types

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# cblas_?gemm(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
# in NumPy's ILP64 build: enums are C ints, sizes 64-bit integers.
_SYMBOLS = {
    np.float32: "scipy_cblas_sgemm64_",
    np.float64: "scipy_cblas_dgemm64_",
}


def _find_numpy_openblas():
    """Return the path of NumPy's bundled OpenBLAS if it exports the symbols."""
    if os.environ.get("RNNREC_NO_BLAS"):
        return None
    root = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "*openblas64*"))):
        try:
            lib = ctypes.CDLL(path)
            for symbol in _SYMBOLS.values():
                getattr(lib, symbol)
        except (OSError, AttributeError):
            continue
        return path
    return None


def _signature(real):
    i32, i64, ptr = types.int32, types.int64, types.voidptr
    return types.void(
        i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64
    )


def _ctypes_gemm(lib, symbol, real):
    i32, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    proto = ctypes.CFUNCTYPE(
        None, i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64
    )
    return proto((symbol, lib))


BLAS_PATH = _find_numpy_openblas()
if BLAS_PATH is None:
    BLAS = "loops (NumPy's OpenBLAS not found)"
    HAVE_BLAS = False
    _sgemm = _dgemm = None
elif numba.config.DISABLE_JIT:
    BLAS = f"ctypes: {os.path.basename(BLAS_PATH)}"
    HAVE_BLAS = True
    _lib = ctypes.CDLL(BLAS_PATH)
    _sgemm = _ctypes_gemm(_lib, _SYMBOLS[np.float32], ctypes.c_float)
    _dgemm = _ctypes_gemm(_lib, _SYMBOLS[np.float64], ctypes.c_double)
else:
    import llvmlite.binding as llvm

    llvm.load_library_permanently(BLAS_PATH)
    BLAS = os.path.basename(BLAS_PATH)
    HAVE_BLAS = True
    _sgemm = types.ExternalFunction(_SYMBOLS[np.float32], _signature(types.float32))
    _dgemm = types.ExternalFunction(_SYMBOLS[np.float64], _signature(types.float64))


# Compiled code that calls the BLAS refers to its symbols by name; code compiled
# without it must not share that cache, so the fallback is never cached.
jit = numba.njit(cache=HAVE_BLAS, nogil=True, error_model="numpy")

# Kernels whose loops run over independent rows (the batch's rows inside a time
# step, an item matrix's touched rows) are compiled by `jit_rows`.
ROW_WORK = 16384  # entries a row loop must hold before threads share it
_row_threads = 1  # threads the row loops may use; set by `set_threads`


def jit_rows(func):
    """Compile a row kernel twice: on one thread, and with its rows on threads.

    ``func``'s loops over independent rows are written with ``numba.prange``.
    Compiled by `jit`, ``prange`` is ``range``; compiled with ``parallel=True``,
    its rows are shared out among ``numba.get_num_threads()`` threads. Each row is
    still computed by one thread in the order written, and no ``prange`` loop
    adds across rows, so both give the same numbers whatever the thread count.
    Starting the threads costs microseconds, more than a small loop takes, so
    the returned function takes the loop's size as a keyword, ``work`` (entries
    per pass over the rows), and runs on threads only when `set_threads` has
    asked for two or more and ``work >= ROW_WORK``. One thread is the default:
    on a machine whose other cores are busy, threads that wait for each other at
    every step cost far more than they save.

    Parameters
    ----------
    func : function
        The kernel.

    Returns
    -------
    function
        ``run(*args, work)``; its ``serial`` and ``threaded`` attributes are the
        two compiled kernels.
    """
    # Numba's cache names its files after the function, so the threaded twin is
    # the same code under its own name.
    twin = FunctionType(
        func.__code__, func.__globals__, func.__name__ + "_threaded",
        func.__defaults__, func.__closure__,
    )  # fmt: skip
    twin.__qualname__ = func.__qualname__ + "_threaded"
    serial = jit(func)
    threaded = numba.njit(
        cache=HAVE_BLAS, nogil=True, error_model="numpy", parallel=True
    )(twin)

    @functools.wraps(func)
    def run(*args, work):
        if _row_threads > 1 and work >= ROW_WORK:
            return run.threaded(*args)
        return run.serial(*args)

    run.serial, run.threaded = serial, threaded
    return run


# Small scalar functions called from inner loops are inlined by Numba itself:
# left to LLVM, a function with several call sites may stay a call, which stops
# the loop around it from vectorising.
jit_inline = numba.njit(
    cache=HAVE_BLAS, nogil=True, error_model="numpy", inline="always"
)


def set_blas_threads(n):
    """Set the number of threads of NumPy's OpenBLAS (the one the kernels call).

    Parameters
    ----------
    n : int
        Threads, >= 1.
    """
    if BLAS_PATH is not None:
        ctypes.CDLL(BLAS_PATH).scipy_openblas_set_num_threads64_(int(n))


def set_threads(n):
    """Set the threads of the compiled kernels' row loops and of their BLAS.

    Parameters
    ----------
    n : int
        Threads, >= 1; more than Numba's ``NUMBA_NUM_THREADS`` (the machine's
        cores unless set) gives that many to the row loops.
    """
    global _row_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"threads must be an integer >= 1, got {n!r}")
    _row_threads = min(int(n), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(_row_threads)
    set_blas_threads(n)


# Below this many multiply-adds a product is done by the loops below: a BLAS call
# costs about a microsecond before it starts, more than a small product takes.
SMALL_PRODUCT = 16384


@jit
def _gemm_loops(a, b, c, trans_b, beta):
    """``c = a @ op(b) + beta * c`` by loops (small products, or no BLAS at all).

    Row ``i`` of ``c`` is built as ``sum_p a[i, p] * row p of op(b)``, so the inner
    loop runs along contiguous memory when ``op(b)`` is ``b``.
    """
    m, k = a.shape
    n = c.shape[1]
    for i in range(m):
        c_i = c[i]
        if beta == 0.0:
            c_i[:] = 0.0  # as in BLAS, the old c is not read
        else:
            for j in range(n):
                c_i[j] *= beta
        for p in range(k):
            a_ip = a[i, p]
            if trans_b:
                for j in range(n):
                    c_i[j] += a_ip * b[j, p]
            else:
                b_p = b[p]
                for j in range(n):
                    c_i[j] += a_ip * b_p[j]


if HAVE_BLAS:

    @jit
    def gemm(a, b, c, trans_b, beta):
        """Compute ``c = a @ op(b) + beta * c``.

        ``op(b)`` is ``b.T`` if ``trans_b`` else ``b``. Products of at most
        `SMALL_PRODUCT` multiply-adds run in loops, larger ones in NumPy's
        OpenBLAS. The three arrays are 2-D, of one dtype, with unit stride along
        their last axis (row slices of a larger array are fine: the row stride is
        passed as the leading dimension).

        Parameters
        ----------
        a : numpy.ndarray
            ``(m, k)``.
        b : numpy.ndarray
            ``(n, k)`` if ``trans_b`` else ``(k, n)``.
        c : numpy.ndarray
            ``(m, n)``, overwritten.
        trans_b : bool
            Use ``b.T``.
        beta : float
            Scale of the old ``c`` (0 ignores it, even if it holds NaN).
        """
        m, k = a.shape
        n = c.shape[1]
        if m * n * k <= SMALL_PRODUCT:
            _gemm_loops(a, b, c, trans_b, beta)
            return
        size = a.itemsize
        lda, ldb, ldc = a.strides[0] // size, b.strides[0] // size, c.strides[0] // size
        tb = _TRANS if trans_b else _NO_TRANS
        if size == 8:
            _dgemm(_ROW_MAJOR, _NO_TRANS, tb, m, n, k, 1.0, a.ctypes, lda,
                   b.ctypes, ldb, beta, c.ctypes, ldc)  # fmt: skip
        else:
            _sgemm(_ROW_MAJOR, _NO_TRANS, tb, m, n, k, 1.0, a.ctypes, lda,
                   b.ctypes, ldb, beta, c.ctypes, ldc)  # fmt: skip

else:
    gemm = _gemm_loops
