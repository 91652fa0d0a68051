"""Click data: reading, preprocessing, splitting and session-parallel batches.

- `Sessions`: the compressed (offsets) representation everything uses.
- Readers: `read_session_lines`, `read_events`, `read_diginetica`.
- Preprocessing: `sessions_from_events`, `remove_consecutive_repeats`,
  `filter_sessions`, `split_by_time`, `index_test_like_train`, `preprocess`,
  `session_stats`.
- Batches: `session_parallel_batches`, `Batch`, `n_pairs`.
- The built-in synthetic data set: `make_synthetic`.
"""

from rnnrec.data.batches import Batch, n_pairs, session_parallel_batches
from rnnrec.data.loading import read_diginetica, read_events, read_session_lines
from rnnrec.data.preprocess import (
    SessionStats,
    TrainTest,
    filter_sessions,
    index_test_like_train,
    preprocess,
    remove_consecutive_repeats,
    session_stats,
    sessions_from_events,
    split_by_time,
)
from rnnrec.data.sessions import Sessions
from rnnrec.data.synthetic import make_synthetic

__all__ = [
    "Batch",
    "SessionStats",
    "Sessions",
    "TrainTest",
    "filter_sessions",
    "index_test_like_train",
    "make_synthetic",
    "n_pairs",
    "preprocess",
    "read_diginetica",
    "read_events",
    "read_session_lines",
    "remove_consecutive_repeats",
    "session_parallel_batches",
    "session_stats",
    "sessions_from_events",
    "split_by_time",
]
