"""Typed configuration: defaults, then a TOML file, then ``OPENAMI_*`` environment variables.

The file is the one given with ``--config``, else ``$OPENAMI_CONFIG``, else ``./openami.toml``
when it exists. Environment variables name a field by its path in upper case:
``OPENAMI_DATA_DIR``, ``OPENAMI_LOG_LEVEL``, ``OPENAMI_DEMO_METERS``, ... Every layer is
validated on its own so that an error names the file or the variable that holds the bad value.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from openami.errors import ConfigError

__all__ = ["Config", "DemoConfig", "LogConfig", "load_config", "read_toml"]

ENV_PREFIX = "OPENAMI_"
DEFAULT_FILE = Path("openami.toml")


class LogConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    format: Literal["console", "json"] = "console"


class DemoConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    meters: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1000
    days: Annotated[int, msgspec.Meta(ge=1, le=45)] = 2
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] = 1
    loss: Annotated[float, msgspec.Meta(ge=0.0, le=0.5)] = 0.02
    # First simulated day (Japan time). A fixed default keeps runs reproducible.
    start: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] = "2026-08-03"


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    data_dir: str = "openami-data"
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    demo: DemoConfig = msgspec.field(default_factory=DemoConfig)


def _section_fields() -> dict[str, type[msgspec.Struct]]:
    return {"log": LogConfig, "demo": DemoConfig}


def _env_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn OPENAMI_* variables into a nested dict; also return field path -> variable name."""
    layer: dict[str, Any] = {}
    origin: dict[str, str] = {}
    sections = _section_fields()
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "OPENAMI_CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is not None:
            field = rest[len(section) + 1 :]
            if field not in sections[section].__struct_fields__:
                raise ConfigError(f"unknown setting in environment variable {name}")
            layer.setdefault(section, {})[field] = value
            origin[f"$.{section}.{field}"] = name
        elif rest in Config.__struct_fields__ and rest not in sections:
            layer[rest] = value
            origin[f"$.{rest}"] = name
        else:
            raise ConfigError(f"unknown setting in environment variable {name}")
    return layer, origin


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _convert(raw: Mapping[str, Any], where: str, strict: bool) -> Config:
    try:
        return msgspec.convert(raw, Config, strict=strict)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration {where}: {exc}") from None


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate the configuration; raise ``ConfigError`` with one clear line."""
    env = os.environ if environ is None else environ
    file_layer: dict[str, Any] = {}
    chosen = path or (Path(env["OPENAMI_CONFIG"]) if env.get("OPENAMI_CONFIG") else None)
    if chosen is None and DEFAULT_FILE.is_file():
        chosen = DEFAULT_FILE
    if chosen is not None:
        try:
            file_layer = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {chosen}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file {chosen} is not valid TOML: {exc}") from None
        _convert(file_layer, f"in {chosen}", strict=True)
    env_layer, origin = _env_layer(env)
    merged = _merge(file_layer, env_layer)
    try:
        return msgspec.convert(merged, Config, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        culprit = next((var for p, var in origin.items() if text.endswith(f"`{p}`")), None)
        where = f"from environment variable {culprit}" if culprit else "from the environment"
        raise ConfigError(f"invalid configuration {where}: {text}") from None


def read_toml(path: Path | None, package: str, name: str, what: str) -> tuple[dict[str, Any], str]:
    """A TOML table file: ``path``, or the file ``name`` shipped in ``package`` when no path
    is given. Returns the data and where it came from (for error messages); a file that
    cannot be read or is not TOML is a ``ConfigError`` naming it and ``what`` it holds."""
    if path is None:
        source = f"{package}/{name}"
        text = resources.files(package).joinpath(name).read_text("utf-8")
    else:
        source = str(path)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read the {what}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: the {what} is not UTF-8 text: {exc}") from None
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
