"""``openami greenbutton export``: a customer's Download My Data file, from a data dir."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from openami.cli.mdm_shared import _instant, _reflowed

if TYPE_CHECKING:
    from openami.api.state import ApiState

__all__ = ["app"]

app = typer.Typer(help="Green Button (ESPI 3.3) documents.", no_args_is_help=True)


@app.command()
@_reflowed
def export(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="The data dir (as the demo leaves it).")
    ],
    customer: Annotated[str, typer.Option(help="The customer's id (see `openami api customers`).")],
    from_: Annotated[
        str | None, typer.Option("--from", help="ISO 8601 start (default: 400 days before --to).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="ISO 8601 end (default: now).")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write the file here (default: standard output).")
    ] = None,
    db: Annotated[
        str | None, typer.Option(help="Database URL (default: DATA_DIR/registry.db).")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Validate against the ESPI schema in ../shared/peers first.")
    ] = False,
) -> None:
    """Write a customer's Download My Data file: their meters' validated 30-minute reads
    (import and export) as a Green Button Atom feed, in daily blocks, Japan time.

    Example: openami greenbutton export --data-dir /tmp/ami --customer c-OAM0000000007
    --from 2026-08-03T00:00+09:00 --to 2026-08-05T00:00+09:00 --output usage.xml
    """
    from openami.cli.api_cmd import _open
    from openami.errors import ConfigError

    state = _open(data_dir, db)
    try:
        document = _document(state, customer, from_, to)
    finally:
        state.close()
    if check:
        from openami.protocols.espi import validate

        validate(document)
    if output is None:
        sys.stdout.buffer.write(document)
        return
    try:
        output.write_bytes(document)
    except OSError as exc:
        raise ConfigError(f"--output {output}: {exc.strerror}") from None
    Console(stderr=True).print(f"{output}: {len(document):,} bytes")


def _document(state: ApiState, customer: str, from_: str | None, to: str | None) -> bytes:
    from openami.api.greenbutton import usage_document
    from openami.errors import ConfigError

    end = _instant(to, "--to") if to else datetime.now(UTC)
    start = _instant(from_, "--from") if from_ else end - timedelta(days=400)
    if end <= start:
        raise ConfigError("--to must be after --from")
    found = state.data.customer(customer, datetime.now(UTC))
    if found is None:
        raise ConfigError(f"--customer {customer!r} is not in the registry")
    if not found.meters:
        raise ConfigError(f"customer {customer!r} has no meter under contract now")
    return usage_document(state.data, list(found.meters), start, end, f"dmd-{customer}")
