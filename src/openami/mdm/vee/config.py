"""The VEE rule table: shipped defaults (``rules.toml``) overlaid with a utility's own file.

Thresholds are data, not code (DESIGN principle 2): a utility turns a rule off, changes what
counts as a spike or decides which failures are replaced by estimates by editing a TOML
file, without a release. The defaults travel inside the package and are read with
``importlib.resources`` so an installed wheel finds them. An override may only name keys the
defaults have, with values of the same kind: a misspelt key must fail loudly (a silently
ignored ``peak_facotr`` would leave a utility believing it had tuned a rule).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from openami.errors import ConfigError
from openami.mdm.vee.gap_policy import GapPolicy

__all__ = ["EstimationConfig", "RuleConfig", "VeeConfig", "default_config", "load_config"]


@dataclass(frozen=True)
class RuleConfig:
    enabled: bool
    estimate: bool
    params: Mapping[str, float]

    def __getitem__(self, key: str) -> float:
        return float(self.params[key])


@dataclass(frozen=True)
class EstimationConfig:
    max_linear_intervals: int
    profile_weeks: int
    scale_min: float
    scale_max: float
    min_known_intervals: int


@dataclass(frozen=True)
class VeeConfig:
    rules: Mapping[str, RuleConfig]
    grid_s: int
    future_tolerance_s: int
    estimation: EstimationConfig
    policy: GapPolicy
    history_days: int

    def enabled(self, rule: str) -> bool:
        return self.rules[rule].enabled


def _defaults() -> dict[str, Any]:
    text = resources.files("openami.mdm.vee").joinpath("rules.toml").read_text("utf-8")
    return tomllib.loads(text)


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str, origin: str) -> None:
    for key, value in over.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            raise ConfigError(f"{path}: no such setting (in {origin})")
        old = base[key]
        if isinstance(old, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{path}: expected a table (in {origin})")
            _merge(old, value, path, origin)
        elif isinstance(old, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: expected true or false, got {value!r} (in {origin})")
            base[key] = value
        elif isinstance(old, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{path}: expected a number, got {value!r} (in {origin})")
            if value < 0:
                raise ConfigError(f"{path}: must not be negative, got {value!r} (in {origin})")
            base[key] = value
        else:  # pragma: no cover - the defaults hold only tables, booleans and numbers
            base[key] = value


def _build(doc: dict[str, Any]) -> VeeConfig:
    rules = {}
    for name, table in doc["rules"].items():
        params = {k: float(v) for k, v in table.items() if k not in ("enabled", "estimate")}
        rules[name] = RuleConfig(bool(table["enabled"]), bool(table["estimate"]), params)
    est = doc["estimation"]
    rec = doc["recollection"]
    return VeeConfig(
        rules=rules,
        grid_s=int(doc["clock"]["grid_s"]),
        future_tolerance_s=int(doc["clock"]["future_tolerance_s"]),
        estimation=EstimationConfig(
            max_linear_intervals=int(est["max_linear_intervals"]),
            profile_weeks=int(est["profile_weeks"]),
            scale_min=float(est["scale_min"]),
            scale_max=float(est["scale_max"]),
            min_known_intervals=int(est["min_known_intervals"]),
        ),
        policy=GapPolicy(
            grace_s=int(rec["grace_s"]),
            wait_s=int(rec["wait_s"]),
            retry_s=int(rec["retry_s"]),
            max_asks=int(rec["max_asks"]),
            buffer_s=int(rec["buffer_days"] * 86_400),
        ),
        history_days=int(doc["history"]["days"]),
    )


def default_config() -> VeeConfig:
    """The shipped rule table."""
    return _build(_defaults())


def load_config(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> VeeConfig:
    """The defaults, overlaid with the TOML file at ``path`` and then with ``overrides``
    (a nested mapping shaped like the file, for tests and command-line flags)."""
    doc = _defaults()
    if path is not None:
        try:
            with open(path, "rb") as handle:
                own = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read VEE rules {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"VEE rules {path}: {exc}") from None
        _merge(doc, own, "", str(path))
    if overrides:
        _merge(doc, overrides, "", "overrides")
    if doc["clock"]["grid_s"] <= 0:
        raise ConfigError("clock.grid_s: must be positive")
    return _build(doc)
