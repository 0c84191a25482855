"""Checking Green Button documents against the ESPI 3.3 schema, with no network access.

The schema is ``espi-usage-3.3.xsd`` of the Green Button Alliance; it imports ``atom.xsd``
from beside it, so one schema set covers both the Atom envelope and the ESPI resources:
Atom's ``content`` (and its feed and entry extension points) accept any element of another
namespace with strict processing, which makes the validator check every ESPI element
against its global declaration.

``atom.xsd`` imports the W3C ``xml.xsd`` by an https URL. xmlschema carries that namespace in
its own meta-schema and never fetches it; the schema is still loaded in ``sandbox`` mode
(files under the schema's own folder only) and documents with no resource access at all,
so a fetch could not happen even if a schema or a document asked for one. Documents are
parsed with xmlschema's defused parser (no DTDs or entity expansion): a peer's document may
be validated as well as our own.

The schema is not part of openami: by default it is read from the peers folder beside the
repository (``../shared/peers/greenbutton/``); pass ``schema_path`` to use another copy.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from xml.etree.ElementTree import ParseError

import xmlschema

from openami.errors import ConfigError, SchemaError

__all__ = ["SCHEMA_NAME", "default_schema_path", "load_schema", "validate"]

SCHEMA_NAME = "espi-usage-3.3.xsd"


def default_schema_path() -> Path:
    """``../shared/peers/greenbutton/espi-usage-3.3.xsd`` from the repository root (this file
    is ``src/openami/protocols/espi/schema.py`` under it)."""
    repository = Path(__file__).resolve().parents[4]
    return repository.parent / "shared" / "peers" / "greenbutton" / SCHEMA_NAME


@functools.cache
def _compiled(path: Path) -> xmlschema.XMLSchema:
    # Compiling the schema set takes a few tenths of a second: once per path per process.
    return xmlschema.XMLSchema(str(path), allow="sandbox")


def load_schema(schema_path: Path | str | None = None) -> xmlschema.XMLSchema:
    """The compiled ESPI schema set (ESPI and Atom); ``ConfigError`` when the file is not
    there."""
    path = Path(schema_path) if schema_path is not None else default_schema_path()
    if not path.is_file():
        raise ConfigError(
            f"the ESPI schema {path} does not exist: put the Green Button schemas there or "
            "pass schema_path"
        )
    return _compiled(path.resolve())


def validate(document: bytes, *, schema_path: Path | str | None = None) -> None:
    """Check an Atom feed or entry document (or a bare ESPI element) against the schema.
    Raises ``SchemaError`` naming the first violation and its path, or telling why the bytes
    are not XML; ``ConfigError`` when the schema cannot be found."""
    schema = load_schema(schema_path)
    try:
        resource = xmlschema.XMLResource(io.BytesIO(document), allow="none", defuse="always")
    except (ParseError, xmlschema.XMLResourceError) as exc:
        raise SchemaError(f"the document is not well-formed XML: {exc}") from None
    error = next(schema.iter_errors(resource, use_location_hints=False), None)
    if error is not None:
        element = error.elem
        found = ""
        if element is not None and len(element) == 0 and element.text:
            found = f", found {element.text[:80]!r}"
        raise SchemaError(f"{error.reason} (at {error.path}{found})")
