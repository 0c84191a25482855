"""``openami meter``: lab meters answering DLMS/COSEM on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="Lab meters: simulated meters on real sockets.", no_args_is_help=True)


@app.command()
def serve(
    meters: Annotated[int, typer.Option(min=1, max=250, help="How many meters.")] = 1,
    bind: Annotated[
        str,
        typer.Option(
            help="First address; meter k listens on the k-th address after it (127.0.0.x)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port (each meter's own with --per-port).")
    ] = 4059,
    tcp: Annotated[
        bool, typer.Option("--tcp/--udp", help="Wrapper over TCP (default) or UDP.")
    ] = True,
    per_port: Annotated[
        bool, typer.Option("--per-port", help="All meters on --bind, on consecutive ports.")
    ] = False,
    print_keys: Annotated[
        bool,
        typer.Option(
            "--print-keys",
            help="Print one JSON line per meter: address, port, SAPs, system title and lab keys.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(min=0, help="Seed for keys and consumption.")] = 1,
    days_back: Annotated[
        int, typer.Option(min=0, max=45, help="Days of load profile already recorded at start.")
    ] = 10,
    duration: Annotated[
        float | None,
        typer.Option(min=0.1, help="Stop after this many seconds (default: until Ctrl-C)."),
    ] = None,
) -> None:
    """Run lab meters on the host's clock; they accept HLS-GMAC with suite 0 only.

    Example: openami meter serve --meters 3 --print-keys > meters.jsonl
    then:    openami dlms read 127.0.0.1 1.0.1.8.0.255 --keys @meters.jsonl
    """
    from openami.fleet.lab import start_lab_meters

    async def run() -> None:
        started, servers = await start_lab_meters(
            meters, bind, port, tcp=tcp, seed=seed, days_back=days_back, per_port=per_port
        )
        try:
            for meter in started:
                if print_keys:
                    sys.stdout.write(json.dumps(meter.description()) + "\n")
                else:
                    sys.stdout.write(
                        f"meter {meter.identity.serial} on {meter.host}:{meter.port}\n"
                    )
                sys.stdout.flush()
            if duration is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(duration)
        finally:
            for server in servers:
                server.close()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how an operator stops them
        asyncio.run(run())
