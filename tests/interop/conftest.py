"""Registers the ``interop`` marker for the tests of this folder (pytest runs --strict-markers)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "interop: independent peers: DLMS (Gurux, GPL, as separate processes) and "
        "ECHONET Lite (pychonet)",
    )
