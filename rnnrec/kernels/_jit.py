"""Compile flags and the one BLAS that every matrix product uses.

Every kernel of the package is compiled by `jit`, defined here once:

- ``cache=True``: compiled code is stored next to the sources (or in
  ``NUMBA_CACHE_DIR``), so a second process does not compile again (not in the
  fallback without a BLAS, see below);
- ``error_model="numpy"``: a division by zero gives inf or NaN as in NumPy instead
  of a Python exception; without it the check inside every division stops the
  loops from vectorising;
- no ``fastmath``: kernels whose gradients are checked must round as written
  (two kinds of row kernel relax this, see `jit_rows`);
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

Threads come from one pool, Numba's (`set_threads`): row kernels compiled by
`jit_rows` share their rows out among them, and `matmul` and `gemm_split` share
out the column blocks of a product, each block one call of the BLAS on one
thread. The BLAS's own threads would spin against Numba's for the same cores.
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


def jit_rows(func=None, *, reassoc=False, contract=False):
    """Compile a row kernel twice: on one thread, and with its rows on threads.

    ``func``'s loops over independent rows are written with ``numba.prange``.
    Compiled by `jit`, ``prange`` is ``range``; compiled with ``parallel=True``,
    its rows are shared out among ``numba.get_num_threads()`` threads. Each row is
    still computed by one thread in the order written, and no ``prange`` loop
    adds across rows, so both give the same numbers whatever the thread count.
    Starting the threads costs microseconds, more than a small loop takes, so
    the returned function takes the loop's size as a keyword, ``work`` (entries
    per pass over the rows), and runs on threads only when `set_threads` has
    given the row loops two or more and ``work >= ROW_WORK``. One thread is the
    default: beside a BLAS on threads, or on a machine whose other cores are
    busy, threads that wait for each other at every step cost far more than
    they save (see `set_threads`).

    Parameters
    ----------
    func : function
        The kernel. ``@jit_rows(reassoc=True)`` passes the flag below.
    reassoc : bool, default False
        Let LLVM reorder floating-point sums (``fastmath={"reassoc"}``), which
        a sum along a row needs to vectorise. Only for kernels that report a
        sum, never for those whose gradients are checked; the order is fixed
        by the compiled code, so results still do not depend on the threads.
    contract : bool, default False
        Let LLVM fuse a multiply and the add after it into one fused
        multiply-add (``fastmath={"contract"}``), which rounds once where the
        two round twice: the polynomials of `rnnrec.kernels.gatemath` take half
        the instructions and come out at least as accurate. Only for kernels
        that compute in float64 and round their results to the arrays' dtype
        at the end (the losses); the GRU's kernels round as written, so that
        they compute the NumPy backend's numbers.

    Returns
    -------
    function
        ``run(*args, work)``; its ``serial`` and ``threaded`` attributes are the
        two compiled kernels.
    """
    if func is None:
        return functools.partial(jit_rows, reassoc=reassoc, contract=contract)
    flags = dict(cache=HAVE_BLAS, nogil=True, error_model="numpy")
    fastmath = {"reassoc"} if reassoc else set()
    fastmath |= {"contract"} if contract else set()
    if fastmath:
        flags["fastmath"] = fastmath

    # Numba's cache names its files after the function, so the threaded twin is
    # the same code under its own name.
    twin = FunctionType(
        func.__code__, func.__globals__, func.__name__ + "_threaded",
        func.__defaults__, func.__closure__,
    )  # fmt: skip
    twin.__qualname__ = func.__qualname__ + "_threaded"
    serial = numba.njit(**flags)(func)
    threaded = numba.njit(parallel=True, **flags)(twin)

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
    """Run the kernels on ``n`` threads of one pool, Numba's.

    With ``n >= 2`` the row loops (`jit_rows`) and the large matrix products
    (`matmul` and `gemm_split`) share their work out among Numba's threads, and
    the BLAS runs on one thread inside each share. One pool, not two:
    OpenBLAS's threads and Numba's both wait for work by spinning, so when the
    BLAS has threads of its own and the row loops run on Numba's, the two pools
    fight for the same cores at every step (measured below). NumPy's own ``@``
    elsewhere then runs on one thread; `set_blas_threads` gives it more.

    `benchmarks/bench_threads.py` times the arrangements side by side; with
    GRU4Rec's yoochoose configuration on two cores it measured, in events per
    second, 3,185 on one thread, 3,908 with the BLAS's own two threads, 4,327
    with one pool of two (this function) and 273 with both pools.

    Parameters
    ----------
    n : int
        Threads, >= 1; capped at Numba's ``NUMBA_NUM_THREADS`` (the machine's
        cores unless set).
    """
    global _row_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"threads must be an integer >= 1, got {n!r}")
    _row_threads = min(int(n), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(_row_threads)
    set_blas_threads(1)


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
    def _blas_gemm(a, trans_a, b, trans_b, c, beta):
        """``c = op(a) @ op(b) + beta * c`` in the BLAS, whatever the size.

        ``a`` is stored ``(k, m)`` if ``trans_a`` else ``(m, k)``, ``b``
        ``(n, k)`` if ``trans_b`` else ``(k, n)``; all three with unit stride
        along their last axis.
        """
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        size = a.itemsize
        lda, ldb, ldc = a.strides[0] // size, b.strides[0] // size, c.strides[0] // size
        ta = _TRANS if trans_a else _NO_TRANS
        tb = _TRANS if trans_b else _NO_TRANS
        if size == 8:
            _dgemm(_ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes, lda,
                   b.ctypes, ldb, beta, c.ctypes, ldc)  # fmt: skip
        else:
            _sgemm(_ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes, lda,
                   b.ctypes, ldb, beta, c.ctypes, ldc)  # fmt: skip

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
        else:
            _blas_gemm(a, False, b, trans_b, c, beta)

else:
    gemm = _gemm_loops


# Inside the time loops, `gemm_split` computes a product in column blocks of
# this width (the last one narrower), each one BLAS call on one thread. Blocks of
# 256 are wide enough for the BLAS to run at full speed. The BLAS rounds a
# block's last few columns, beyond its register tile, with other code than the
# rest, so a split product can differ from the unsplit one in the last bits; the
# blocks do not depend on the thread count, so the recurrence's numbers do not
# either. (`matmul`, outside the loops, splits by the thread count instead.)
SPLIT_WIDTH = 256


@jit_inline
def gemm_split(a, b, c, trans_b, beta):
    """`gemm` in column blocks of ``c``, shared out among Numba's threads.

    Column block ``[lo, hi)`` of ``c`` needs only the rows ``[lo, hi)`` of ``b``
    (columns if not ``trans_b``), so each block is one `gemm` call on one
    thread, and no two blocks write the same entry. Inlined into a kernel
    compiled with ``parallel=True`` (`jit_rows`' threaded twin) the blocks run on
    threads; elsewhere one after another, with the same numbers. (Asking Numba
    for the thread count here would make the kernels uncacheable.) Arguments as
    for `gemm`.
    """
    n = c.shape[1]
    for i in numba.prange(-(-n // SPLIT_WIDTH)):
        lo = i * SPLIT_WIDTH
        hi = min(lo + SPLIT_WIDTH, n)
        if trans_b:
            gemm(a, b[lo:hi], c[:, lo:hi], True, beta)
        else:
            gemm(a, b[:, lo:hi], c[:, lo:hi], False, beta)


@jit_rows
def _product_blocks(a, trans_a, b, trans_b, c, size, by_rows):
    """``c = op(a) @ op(b)`` in blocks of ``size`` rows or columns of ``c``.

    A row block of ``c`` needs the same rows of ``op(a)`` and all of ``op(b)``; a
    column block all of ``op(a)`` and the same columns of ``op(b)``. Each block is
    one BLAS call, on Numba's threads if asked (see `matmul`).
    """
    m, n = c.shape
    extent = m if by_rows else n
    for i in numba.prange(-(-extent // size)):
        lo = i * size
        hi = min(lo + size, extent)
        if by_rows and trans_a:
            _blas_gemm(a[:, lo:hi], True, b, trans_b, c[lo:hi], 0.0)
        elif by_rows:
            _blas_gemm(a[lo:hi], False, b, trans_b, c[lo:hi], 0.0)
        elif trans_b:
            _blas_gemm(a, trans_a, b[lo:hi], True, c[:, lo:hi], 0.0)
        else:
            _blas_gemm(a, trans_a, b[:, lo:hi], False, c[:, lo:hi], 0.0)


# Products of fewer multiply-adds than this are not worth starting threads for.
PARALLEL_PRODUCT = 1 << 20
# A product is split by rows when every thread's share keeps this many rows:
# below it the BLAS runs slowly on each share, and columns are split instead.
ROW_SHARE = 128


def split_plan(m, n, parts):
    """Return ``(size, by_rows)``: how `matmul` splits an ``(m, n)`` result.

    One block per thread, of equal size: ``parts`` row blocks when each keeps
    at least `ROW_SHARE` rows, else ``parts`` column blocks. Measured with
    GRU4Rec's yoochoose shapes on two threads, one block per thread ran 10-20%
    faster than blocks of `SPLIT_WIDTH` columns, and a tall ``(1700, 480)``
    result from ``k = 48`` took 0.36 ms split by rows against 0.61 ms by columns.

    Parameters
    ----------
    m, n : int
        The result's shape.
    parts : int
        Threads.

    Returns
    -------
    size : int
        Rows or columns per block (the last block may be smaller).
    by_rows : bool
        Split the rows (else the columns).
    """
    if m >= parts * ROW_SHARE:
        return -(-m // parts), True
    return -(-n // parts), False


def _blas_operand(x):
    """Return ``(stored, transposed)`` with ``x == stored.T if transposed``.

    ``stored`` has unit stride along its last axis, as the BLAS needs; None if
    ``x`` is laid out in neither way.
    """
    size = x.itemsize
    rows, cols = x.shape
    if x.strides[1] == size and x.strides[0] >= cols * size:
        return x, False
    if x.strides[0] == size and x.strides[1] >= rows * size:
        return x.T, True
    return None, False


def matmul(a, b):
    """Return ``a @ b``, large products in column blocks on the kernels' threads.

    After `set_threads` with two or more threads, a float32 or float64 product
    of 2-D arrays with at least `PARALLEL_PRODUCT` multiply-adds is computed in
    one block of rows or columns per thread (`split_plan`), each one BLAS call
    on one thread; transposed views go to the BLAS as they are, without a copy.
    Anything else is NumPy's ``a @ b``. The blocks depend on the thread count,
    and the BLAS may round a block's edge with other code than its inside, so
    the last bits of a split product can change with the threads.

    Parameters
    ----------
    a : numpy.ndarray
        ``(m, k)``.
    b : numpy.ndarray
        ``(k, n)``.

    Returns
    -------
    numpy.ndarray
        ``(m, n)``, C-contiguous when split.
    """
    if (
        _row_threads > 1
        and HAVE_BLAS
        and a.ndim == b.ndim == 2
        and a.dtype == b.dtype
        and a.dtype in (np.float32, np.float64)
    ):
        madds = a.shape[0] * a.shape[1] * b.shape[1]
        a_stored, trans_a = _blas_operand(a)
        b_stored, trans_b = _blas_operand(b)
        if madds >= PARALLEL_PRODUCT and a_stored is not None and b_stored is not None:
            c = np.empty((a.shape[0], b.shape[1]), a.dtype)  # (m, n)
            size, by_rows = split_plan(*c.shape, _row_threads)
            _product_blocks(
                a_stored, trans_a, b_stored, trans_b, c, size, by_rows, work=madds
            )
            return c
    return a @ b
