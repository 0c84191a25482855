"""A worker's counters file, read by the supervisor while workers start, count and die.

A supervisor once ended with "error: aborted" (exit 130) because it read a worker's
counters while the restarting worker was rewriting the file in place: ``np.load`` found
it empty and raised EOFError.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from openami.headend.deadlines import mapped_zeros
from openami.headend.worker import Stat, WorkerStats


def test_a_reader_sees_zeros_before_the_worker_starts_and_creates_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "worker-0.npy"
    reader = WorkerStats(path)
    assert reader[Stat.DATAGRAMS] == 0
    assert not path.exists()  # else it could replace the file a worker just mapped


def test_a_reader_sees_what_the_worker_counts(tmp_path: Path) -> None:
    path = tmp_path / "worker-0.npy"
    worker = WorkerStats(path, create=True)
    worker.add(Stat.DATAGRAMS, 7)
    worker.set(Stat.LAST_END, 1_785_000_600)
    reader = WorkerStats(path)
    assert (reader[Stat.DATAGRAMS], reader[Stat.LAST_END]) == (7, 1_785_000_600)
    worker.add(Stat.DATAGRAMS, 1)
    assert reader[Stat.DATAGRAMS] == 8  # the same mapping, not a copy


def test_a_restarted_worker_starts_from_zero_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "worker-0.npy"
    WorkerStats(path, create=True).add(Stat.PUSHES, 3)
    assert WorkerStats(path, create=True)[Stat.PUSHES] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker-0.npy"]


def test_a_kept_table_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "deadlines-0.npy"
    mapped_zeros(path, (4, 3), keep=True)[1, 2] = 5
    assert int(mapped_zeros(path, (4, 3), keep=True)[1, 2]) == 5
    assert int(mapped_zeros(path, (4, 3), keep=False)[1, 2]) == 0


def _restart_again_and_again(path: Path, rounds: int) -> None:
    for n in range(rounds):
        WorkerStats(path, create=True).set(Stat.DATAGRAMS, n + 1)


def test_reading_while_a_worker_restarts_never_fails(tmp_path: Path) -> None:
    path = tmp_path / "worker-0.npy"
    writer = multiprocessing.get_context("spawn").Process(
        target=_restart_again_and_again, args=(path, 2_000)
    )
    writer.start()
    reads = 0
    deadline = time.monotonic() + 30.0  # bounded whatever happens to the writer
    try:
        while writer.is_alive() and time.monotonic() < deadline:
            assert WorkerStats(path)[Stat.DATAGRAMS] >= 0
            reads += 1
    finally:
        writer.join(timeout=30.0)
    assert writer.exitcode == 0
    assert reads > 0
