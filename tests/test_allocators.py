"""``openami.allocators``: the settings that make a batch process keep freed memory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from openami.allocators import batch_env, keep_freed_memory


def test_openami_values_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MIMALLOC_PURGE_DELAY", raising=False)
    monkeypatch.setenv("_RJEM_MALLOC_CONF", "dirty_decay_ms:1000")
    settings = batch_env()
    assert settings["MIMALLOC_PURGE_DELAY"] == "-1"
    assert settings["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:1000"  # the operator's
    assert set(settings) == {
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_TOP_PAD_",
        "MIMALLOC_PURGE_DELAY",
        "MIMALLOC_ALLOW_LARGE_OS_PAGES",
        "_RJEM_MALLOC_CONF",
    }


def test_polars_own_jemalloc_defaults_are_not_an_operator_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polars writes its defaults into the variable when imported (this process has)."""
    import polars  # noqa: F401

    monkeypatch.setenv("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:1000")
    assert batch_env()["_RJEM_MALLOC_CONF"] == "thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1"
    monkeypatch.setenv("_RJEM_MALLOC_CONF", "dirty_decay_ms:500,muzzy_decay_ms:1000,narenas:2")
    assert batch_env()["_RJEM_MALLOC_CONF"] == "narenas:2"


def test_keep_freed_memory_sets_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in batch_env():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALLOC_TOP_PAD_", "not a number")  # ignored by mallopt, kept
    settings = keep_freed_memory()
    for name, value in settings.items():
        assert os.environ[name] == value
    assert os.environ["MALLOC_TOP_PAD_"] == "not a number"


def test_the_command_sets_them_before_polars_or_pyarrow_is_loaded() -> None:
    """The allocators inside Polars and PyArrow read their settings once, when loaded: the
    ``openami`` command must set them first, whatever it imports later."""
    names = set(batch_env())
    env = {k: v for k, v in os.environ.items() if k not in names}
    code = (
        "import sys, os\n"
        "import openami.cli\n"
        "assert 'polars' not in sys.modules and 'pyarrow' not in sys.modules\n"
        "import openami.cli.main\n"
        "print(os.environ['_RJEM_MALLOC_CONF'], os.environ['MIMALLOC_PURGE_DELAY'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1", "-1"]
