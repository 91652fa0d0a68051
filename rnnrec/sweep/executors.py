"""Where trials run: a local process pool, or a Dask cluster.

Both executors have the same interface: ``run(fn, jobs, shared)`` calls
``fn(job, shared)`` on a worker for every job and yields ``(job, outcome)`` as
each one finishes, the outcome being what ``fn`` returned or, if the worker
could not deliver it, a `WorkerLost` exception. A trial's own errors never get
this far: `run_trial` turns them into a record. ``shared`` (data every job
reads) travels to each worker once, not once per job: as an argument of the
pool's process initializer, or scattered to every Dask worker with
``broadcast=True``.

`LocalExecutor` runs ``N`` worker processes (started with ``spawn``, so that no
thread or Numba state is copied from the parent). A worker that dies (killed,
out of memory) breaks the pool; the trials it held are started again in a new
pool, up to ``attempts`` times, then reported lost.

`DaskExecutor` connects a `distributed.Client` to a running scheduler. Dask
does the retrying itself: a task whose worker dies goes to another worker, and
after ``distributed.scheduler.allowed-failures`` deaths (3 by default) it is
reported lost.

Both pin BLAS to one thread per worker (Dask's nanny does it by default; the
pool sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` to 1 for its workers unless they are set), which keeps a
trial's float results independent of where it ran.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
from concurrent.futures.process import BrokenProcessPool

DASK_HINT = (
    "--scheduler needs dask.distributed: pip install rnnrec[dask] "
    '(or pip install "dask[distributed]")'
)
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class WorkerLost(RuntimeError):
    """A trial's worker died (or vanished) before it returned, every time it ran."""


class Executor:
    """The interface of the executors: run jobs, yield outcomes as they finish.

    Use as a context manager, or call `close` when done.
    """

    description = "executor"

    def run(self, fn, jobs, shared=None):
        """Run ``fn(job, shared)`` for every job; yield outcomes as jobs finish.

        Parameters
        ----------
        fn : callable
            A module-level function (it is sent to the workers by reference).
        jobs : list
            Picklable arguments, one per call.
        shared : object, optional
            Passed to every call; sent to each worker once.

        Yields
        ------
        job : object
            One of ``jobs``.
        outcome : object or WorkerLost
            What ``fn(job)`` returned, or why it could not.
        """
        raise NotImplementedError

    def close(self):
        """Release the workers or the connection."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def _one_blas_thread():
    """Set the BLAS thread variables to 1 while workers start, unless set."""
    added = [name for name in THREAD_VARIABLES if name not in os.environ]
    for name in added:
        os.environ[name] = "1"
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


# What a pool's initializer received: the ``shared`` of this worker process.
_SHARED = None


def _keep_shared(shared):
    global _SHARED
    _SHARED = shared


def _with_shared(fn, job):
    return fn(job, _SHARED)


class LocalExecutor(Executor):
    """Run jobs in a pool of local worker processes.

    Parameters
    ----------
    workers : int, optional
        Processes; default the number of CPUs.
    attempts : int, default 3
        Times a job is started before a dying worker makes it `WorkerLost`.
    """

    def __init__(self, workers=None, attempts=3):
        self.workers = workers or os.cpu_count() or 1
        self.attempts = attempts
        self.description = f"local pool of {self.workers} processes"
        self._pool = self._shared = None

    def _new_pool(self, shared):
        with _one_blas_thread():
            return cf.ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_keep_shared,
                initargs=(shared,),
            )

    def run(self, fn, jobs, shared=None):
        """Run ``fn(job, shared)`` for every job in the pool; see `Executor.run`.

        Parameters
        ----------
        fn : callable
            A module-level function.
        jobs : list
            Its arguments.
        shared : object, optional
            Passed to every call; each worker process receives it once, when it
            starts.

        Yields
        ------
        job : object
            One of ``jobs``.
        outcome : object or WorkerLost
            What ``fn(job)`` returned, or why it could not.
        """
        tries = dict.fromkeys(range(len(jobs)), 0)
        waiting = list(range(len(jobs)))
        while waiting:
            if self._pool is None or self._shared is not shared:
                self.close()
                self._pool, self._shared = self._new_pool(shared), shared
            with _one_blas_thread():  # the pool starts processes as jobs arrive
                running = {
                    self._pool.submit(_with_shared, fn, jobs[i]): i for i in waiting
                }
            waiting = []
            for future in cf.as_completed(running):
                i = running[future]
                tries[i] += 1
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    if tries[i] < self.attempts:
                        waiting.append(i)
                        continue
                    outcome = WorkerLost(
                        f"the worker process died {tries[i]} times running it"
                    )
                yield jobs[i], outcome
            if waiting:  # a worker died: the pool is unusable, start another
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def close(self):
        """Shut the pool down."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """Run jobs on a Dask cluster through a `distributed.Client`.

    Parameters
    ----------
    address : str
        The scheduler, ``tcp://host:port``.
    workers : int, optional
        Wait until this many workers have joined before submitting.
    timeout : float, default 30
        Seconds to wait for the scheduler (and the workers).
    """

    def __init__(self, address, workers=None, timeout=30.0):
        try:
            from distributed import Client
        except ImportError:
            raise ImportError(DASK_HINT) from None
        try:
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as err:
            raise OSError(
                f"--scheduler {address}: cannot reach the scheduler ({err})"
            ) from None
        if workers:
            try:
                self.client.wait_for_workers(workers, timeout=timeout)
            except TimeoutError:
                have = len(self.client.scheduler_info()["workers"])
                self.client.close()
                raise OSError(
                    f"--workers {workers}: only {have} workers joined {address} "
                    f"within {timeout:g} s"
                ) from None
        self.description = f"Dask scheduler {address}"

    def run(self, fn, jobs, shared=None):
        """Submit ``fn(job, shared)`` for every job; see `Executor.run`.

        Parameters
        ----------
        fn : callable
            A module-level function, importable on the workers.
        jobs : list
            Its arguments.
        shared : object, optional
            Passed to every call; scattered to every worker once beforehand.

        Yields
        ------
        job : object
            One of ``jobs``.
        outcome : object or WorkerLost
            What ``fn(job)`` returned, or why it could not.
        """
        from distributed import as_completed

        if jobs and shared is not None:
            shared = self.client.scatter(shared, broadcast=True, hash=False)
        futures = {}
        for i, job in enumerate(jobs):
            key = f"rnnrec-trial-{getattr(job, 'trial', i)}-{os.urandom(4).hex()}"
            futures[self.client.submit(fn, job, shared, key=key, pure=False)] = i
        for future in as_completed(list(futures), loop=self.client.loop):
            i = futures.pop(future)
            try:
                outcome = future.result()
            except Exception as err:  # KilledWorker, a lost connection
                outcome = WorkerLost(f"{type(err).__name__}: {err}")
            future.release()
            yield jobs[i], outcome

    def close(self):
        """Close the connection (the cluster keeps running)."""
        self.client.close()


def make_executor(scheduler=None, workers=None):
    """Return the executor the command line asks for.

    Parameters
    ----------
    scheduler : str, optional
        A Dask scheduler's address; without it, the local pool.
    workers : int, optional
        Local processes, or the Dask workers to wait for.

    Returns
    -------
    Executor
        `DaskExecutor` or `LocalExecutor`.
    """
    if scheduler:
        return DaskExecutor(scheduler, workers=workers)
    return LocalExecutor(workers)
