from __future__ import annotations

from pathlib import Path

import pytest

from openami.config import load_config
from openami.errors import ConfigError


def test_defaults_without_file_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(environ={})
    assert cfg.demo.meters == 1000 and cfg.demo.days == 2 and cfg.demo.loss == 0.02
    assert cfg.log.level == "WARNING"


def test_file_then_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "openami.toml"
    path.write_text('data_dir = "/srv/ami"\n[demo]\nmeters = 50\nloss = 0.1\n', encoding="utf-8")
    cfg = load_config(path, environ={"OPENAMI_DEMO_METERS": "70", "OPENAMI_LOG_FORMAT": "json"})
    assert cfg.data_dir == "/srv/ami"
    assert cfg.demo.meters == 70  # the environment wins over the file
    assert cfg.demo.loss == 0.1
    assert cfg.log.format == "json"


def test_openami_config_variable_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[demo]\ndays = 3\n", encoding="utf-8")
    assert load_config(environ={"OPENAMI_CONFIG": str(path)}).demo.days == 3


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[demo]\nmeters = 0\n", "$.demo.meters"),
        ("[demo]\nloss = 0.9\n", "$.demo.loss"),
        ('[demo]\nmeters = "many"\n', "$.demo.meters"),
        ("[demo]\ncolour = 1\n", "colour"),
        ('[log]\nlevel = "LOUD"\n', "$.log.level"),
        ("this is = not = toml", "not valid TOML"),
    ],
)
def test_bad_file_values_name_the_file_and_the_field(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(path) in str(info.value) and needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"OPENAMI_DEMO_METERS": "-3"}, "OPENAMI_DEMO_METERS"),
        ({"OPENAMI_DEMO_LOSS": "lots"}, "OPENAMI_DEMO_LOSS"),
        ({"OPENAMI_DEMO_COLOUR": "1"}, "OPENAMI_DEMO_COLOUR"),
        ({"OPENAMI_NOPE": "1"}, "OPENAMI_NOPE"),
    ],
)
def test_bad_environment_values_name_the_variable(
    environ: dict[str, str], needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=needle):
        load_config(environ=environ)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml", environ={})
