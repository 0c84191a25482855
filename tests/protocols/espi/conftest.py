"""Fixtures of the Green Button tests: the xsdata classes are generated once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.protocols.espi.support import SCHEMA, XsdataReader


@pytest.fixture(scope="session")
def xsdata_reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XsdataReader]:
    if not SCHEMA.is_file():
        pytest.skip(
            f"the Green Button schemas (test data, not part of openami) are not at {SCHEMA}"
        )
    reader = XsdataReader(tmp_path_factory.mktemp("xsdata"))
    yield reader
    reader.close()
