from __future__ import annotations

from pathlib import Path

import pytest

from openami.errors import ConfigError
from openami.mdm.vee.config import default_config, load_config
from openami.mdm.vee.rules import RULES


def test_the_shipped_table_names_every_rule() -> None:
    cfg = default_config()
    assert set(cfg.rules) == {r.name for r in RULES}
    assert all(rule.enabled for rule in cfg.rules.values())
    assert cfg.rules["missing"].estimate and cfg.rules["spike"].estimate
    assert not cfg.rules["reverse_flow"].estimate
    assert cfg.rules["spike"]["peak_factor"] == 3.0
    assert cfg.policy.max_asks == 3
    assert cfg.policy.buffer_s == 45 * 86_400


def test_a_utility_file_overrides_some_keys(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        "[rules.spike]\npeak_factor = 4.5\n"
        "[rules.zero_use]\nenabled = false\n"
        "[recollection]\nwait_s = 600\n"
    )
    cfg = load_config(path)
    assert cfg.rules["spike"]["peak_factor"] == 4.5
    assert cfg.rules["spike"]["robust_z"] == 10.0  # untouched
    assert not cfg.rules["zero_use"].enabled
    assert cfg.policy.wait_s == 600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rules.spike]\npeak_facotr = 4\n", r"rules\.spike\.peak_facotr: no such setting"),
        ("[rules.no_such_rule]\nenabled = true\n", r"rules\.no_such_rule: no such"),
        ("[rules.spike]\nenabled = 1\n", r"rules\.spike\.enabled: expected true or false"),
        ("[rules.spike]\npeak_factor = 'high'\n", r"expected a number"),
        ("[rules.spike]\npeak_factor = -1\n", r"must not be negative"),
        ("[rules]\nspike = 3\n", r"rules\.spike: expected a table"),
        ("[recollection]\nmax_asks = 0\n", r"max_asks"),
        ("[clock]\ngrid_s = 0\n", r"grid_s"),
        ("[rules.spike\n", r"VEE rules"),
    ],
)
def test_bad_files_fail_loudly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")
