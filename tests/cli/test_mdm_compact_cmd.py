"""``openami mdm compact`` on a lake of small files: what it prints, and its errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openami.cli.main import main
from openami.store.lake import SHARD_METERS, IntervalLake
from openami.store.shard_files import stamp_of

from ..store.test_compaction import DAY, _small_appends


def _lake(tmp_path: Path) -> IntervalLake:
    lake = IntervalLake(tmp_path / "lake")
    _small_appends(lake)
    return lake


def test_compact_prints_a_line_per_day_and_leaves_one_file_per_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = _lake(tmp_path)
    code = main(["mdm", "compact", "--data-dir", str(tmp_path), "--grace-minutes", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"{DAY}: 2 of 2 shard folders compacted, 25 files -> 2, ")
    assert "25 replaced files removed" in out
    assert len(lake.day_files(DAY)) == 2


def test_compact_json_and_the_grace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _lake(tmp_path)
    code = main(["mdm", "compact", "--data-dir", str(tmp_path), "--day", str(DAY), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["day"], report["compacted"], report["files_before"]) == (str(DAY), 2, 25)
    assert report["removed"] == 0  # within the default grace the replaced files stay
    assert report["rows"] == 2 * 12 * 4 + 1 and report["failed"] == []


def test_an_unreadable_file_is_named_and_the_exit_code_is_not_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = _lake(tmp_path)
    folder = lake.shard_folders(DAY)[0]
    (folder / f"part-{stamp_of(datetime.now(UTC))}-0badf11e.parquet").write_bytes(b"PAR1")
    code = main(["mdm", "compact", "--data-dir", str(tmp_path), "--grace-minutes", "0"])
    captured = capsys.readouterr()
    assert code != 0
    assert "not compacted (left as it was)" in captured.err
    assert captured.err.strip().splitlines()[-1] == (
        "error: 1 shard folder(s) could not be compacted"
    )
    assert "1 of 2 shard folders compacted" in captured.out  # the other one was
    assert len(lake.day_files(DAY, (SHARD_METERS, 2 * SHARD_METERS - 1))) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--day", "2026-13-01"], "--day '2026-13-01' is not a date"),
        (["--grace-minutes", "-1"], "--grace-minutes"),
    ],
)
def test_bad_options_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    _lake(tmp_path)
    code = main(["mdm", "compact", "--data-dir", str(tmp_path), *args])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and message in err


def test_a_data_dir_without_a_lake_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["mdm", "compact", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "holds no interval lake" in err and len(err.splitlines()) == 1
