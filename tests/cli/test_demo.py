from __future__ import annotations

import json
from pathlib import Path

import pytest

from openami.cli.main import main

REQUIRED_KEYS = {
    "meters",
    "days",
    "reads_expected",
    "reads_received",
    "reads_recollected",
    "reads_stored",
    "reads_missing",
    "energy_import_kwh",
    "energy_export_kwh",
    "elapsed_s",
}


def _demo(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = main(["demo", "--json", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    summary: dict[str, object] = json.loads(out)
    return summary


def test_demo_stores_every_read_and_reconciles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = _demo(capsys, "--meters", "30", "--days", "2", "--loss", "0.1", "--data-dir", str(tmp_path))
    assert s.keys() >= REQUIRED_KEYS
    assert s["reads_expected"] == 30 * 96
    assert s["reads_missing"] == 0
    assert s["reads_stored"] == s["reads_expected"]
    assert s["reconciled"] is True
    # a tenth of the pushes was lost and had to be collected again
    assert isinstance(s["reads_recollected"], int) and s["reads_recollected"] > 0
    assert int(s["reads_received"]) + int(s["reads_recollected"]) == s["reads_expected"]  # type: ignore[call-overload]
    assert (tmp_path / "load-curve.png").stat().st_size > 10_000
    assert float(s["energy_import_kwh"]) > 0  # type: ignore[arg-type]
    # the MDMS stage: every interval passed VEE and every contract is bill-ready, with the
    # time-of-use energies adding up to what was imported
    assert s["vee_valid"] == 30 * 96 and s["vee_failed"] == 0
    assert s["bill_ready"] == s["contracts"] == 30
    periods = s["billed_kwh_by_period"]
    assert isinstance(periods, dict) and set(periods) == {"day", "night"}
    assert abs(sum(periods.values()) - float(s["energy_import_kwh"])) < 0.01  # type: ignore[arg-type]


def test_running_twice_on_one_data_dir_adds_no_duplicates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--meters", "20", "--days", "1", "--data-dir", str(tmp_path), "--no-plot")
    first = _demo(capsys, *args)
    files_after_first = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    second = _demo(capsys, *args)
    assert first["reads_new"] == 20 * 48
    assert second["reads_new"] == 0
    assert second["reads_duplicate"] == second["reads_received"]
    assert second["reads_stored"] == first["reads_stored"]
    assert second["energy_import_kwh"] == first["energy_import_kwh"]
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == files_after_first


def test_without_wan_loss_only_what_the_field_networks_lost_is_recollected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = _demo(
        capsys,
        "--meters",
        "10",
        "--days",
        "1",
        "--loss",
        "0",
        "--data-dir",
        str(tmp_path),
        "--no-plot",
    )
    # every push the field networks delivered arrived; only their losses were collected again
    received, recollected = int(str(s["reads_received"])), int(str(s["reads_recollected"]))
    expected = int(str(s["reads_expected"]))
    assert received + recollected == expected
    assert recollected <= expected * 0.05


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--meters", "0"], "--meters"),
        (["--days", "-1"], "--days"),
        (["--loss", "2"], "--loss"),
        (["--start", "2026-02-30"], "--start"),
        (["--meters", "many"], "--meters"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", *args, "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err


def test_unwritable_data_dir_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--data-dir", "/proc/openami-cannot-be-here"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--data-dir /proc/openami-cannot-be-here" in err


def test_a_data_dir_of_another_fleet_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _demo(capsys, "--meters", "5", "--days", "1", "--data-dir", str(tmp_path), "--no-plot")
    code = main(["demo", "--meters", "6", "--days", "1", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "another fleet" in err and err.count("\n") == 1


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("openami ")
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--meters" in text and "Example:" in text


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "frobnicate" in err
