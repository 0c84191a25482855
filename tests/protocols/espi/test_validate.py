"""The schema check: it finds violations in the Atom envelope and inside ``content``, refuses
what is not XML (entities included), reads the schema from a given path, and never touches
the network."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import NoReturn

import pytest

from openami.errors import ConfigError, SchemaError
from openami.protocols.espi import schema as schema_module
from openami.protocols.espi import validate
from openami.protocols.espi.schema import _compiled, load_schema
from tests.protocols.espi.support import SCHEMA, requires_schema
from tests.protocols.espi.test_render import render

pytestmark = requires_schema


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((b"<kind>0</kind>", b"<kind>electric</kind>"), "invalid value"),
        ((b"<dstOffset>0</dstOffset>", b""), "dstOffset"),
        ((b"<tzOffset>32400</tzOffset>", b"<tzOffset>32400</tzOffset><tz>9</tz>"), "tz"),
        (
            (
                b'<MeterReading xmlns="http://naesb.org/espi" />',
                b'<Meter xmlns="http://naesb.org/espi" />',
            ),
            "Meter",
        ),
        ((b' type="espi-feed/UsagePoint"', b""), "type"),
        ((b"<value>150</value>", b"<value>150.5</value>"), "150.5"),
        ((b"<value>150</value>", b"<value>140737488355329</value>"), "140737488355329"),
        ((b"<uom>72</uom>", b"<uom>65536</uom>"), "uom, found '65536'"),
        (
            (b"<updated>2025-04-05T17:30:15Z</updated>", b"<updated>yesterday</updated>"),
            "yesterday",
        ),
    ],
)
def test_violations_are_reported_with_where_they_are(
    change: tuple[bytes, bytes], message: str
) -> None:
    document = render()
    assert change[0] in document
    with pytest.raises(SchemaError, match=message):
        validate(document.replace(*change, 1))


def test_what_is_not_xml_is_refused() -> None:
    with pytest.raises(SchemaError, match="not well-formed"):
        validate(b"<feed")
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaa">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom">&a;</feed>'
    )
    with pytest.raises(SchemaError, match="not well-formed"):
        validate(bomb)


def test_a_document_that_is_not_atom_or_espi_is_refused() -> None:
    with pytest.raises(SchemaError):
        validate(b'<html xmlns="http://www.w3.org/1999/xhtml"/>')


def test_an_explicit_schema_path_is_used(tmp_path: Path) -> None:
    validate(render(), schema_path=str(SCHEMA))
    validate(render(), schema_path=SCHEMA)
    with pytest.raises(ConfigError, match="does not exist"):
        validate(render(), schema_path=tmp_path / "espi.xsd")


def test_the_default_path_is_beside_the_repository() -> None:
    repository = Path(schema_module.__file__).resolve().parents[4]
    assert (repository / "pyproject.toml").is_file()
    assert schema_module.default_schema_path() == (
        repository.parent / "shared" / "peers" / "greenbutton" / "espi-usage-3.3.xsd"
    )


def test_no_network_is_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError("the schema check tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    _compiled.cache_clear()  # compile again, under the block (atom.xsd imports xml.xsd by URL)
    try:
        schema = load_schema()
        assert "http://www.w3.org/XML/1998/namespace" in schema.maps.namespaces
        # a document naming remote schema locations is still checked only against ours
        hinted = render().replace(
            b'<feed xmlns="http://www.w3.org/2005/Atom">',
            b'<feed xmlns="http://www.w3.org/2005/Atom" '
            b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xsi:schemaLocation="http://www.w3.org/2005/Atom https://schemas.invalid/atom.xsd">',
            1,
        )
        validate(hinted)
    finally:
        _compiled.cache_clear()
