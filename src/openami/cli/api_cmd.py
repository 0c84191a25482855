"""``openami api``: the Route C service and what an operator does by hand for it.

Every command takes ``--data-dir`` (what ``openami demo --data-dir`` or a running MDMS left
there) and optionally ``--db`` (the database of the registry and of the API's own tables;
default: DATA_DIR/registry.db).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.console import Console

from openami.cli.mdm_shared import _reflowed

if TYPE_CHECKING:
    from openami.api.state import ApiState

__all__ = ["app"]

app = typer.Typer(
    help="Route C: open interfaces for customers, retailers and service providers.\n\n"
    "Start with:  openami demo --data-dir /tmp/ami  then  "
    "openami api serve --data-dir /tmp/ami",
    no_args_is_help=True,
)
client_app = typer.Typer(help="Third parties (retailers, service providers).", no_args_is_help=True)
key_app = typer.Typer(help="Operators' API keys.", no_args_is_help=True)
customer_app = typer.Typer(help="Customers' logins for the consent page.", no_args_is_help=True)
app.add_typer(client_app, name="client")
app.add_typer(key_app, name="key")
app.add_typer(customer_app, name="customer")

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="The data dir (lake, stores and by default registry.db)."),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL of the registry and API tables, e.g. "
        "postgresql+psycopg://user@127.0.0.1:5432/db (default: DATA_DIR/registry.db).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON document.")]


def _open(data_dir: Path, db: str | None) -> ApiState:
    from openami.api.state import ApiState
    from openami.errors import ConfigError

    if db is None and not (data_dir / "registry.db").is_file():
        raise ConfigError(
            f"--data-dir {data_dir} holds no registry.db; make one with "
            f"`openami demo --data-dir {data_dir}`, or give --db"
        )
    return ApiState.open(data_dir, db)


def _emit(document: object) -> None:
    sys.stdout.write(msgspec.json.encode(document).decode() + "\n")


@app.command()
@_reflowed
def serve(
    data_dir: DataDir,
    db: Db = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8080,
    bus: Annotated[
        str | None,
        typer.Option(
            help="The head-end's bus (nats://HOST:PORT) for service orders to meters; "
            "without it, service orders answer 503."
        ),
    ] = None,
    webhooks_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds between two scans of the stores for new reads and events, each "
            "followed by the due webhook deliveries; 0: no webhooks from this process.",
        ),
    ] = 5.0,
) -> None:
    """Serve the API: JSON REST under /api/v1, Green Button under /espi/1_1/resource,
    OAuth2 consent under /oauth, interactive docs at /docs, OpenAPI at /openapi.json.

    Example: openami api serve --data-dir /tmp/ami --port 8080
    """
    import uvicorn

    from openami.api.app import create_app
    from openami.api.state import ApiState
    from openami.bus.factory import bus_from_url

    _open(data_dir, db).close()  # checks the data dir and database, with a one-line error
    state = ApiState.open(data_dir, db, bus=bus_from_url(bus) if bus else None)
    Console(stderr=True).print(f"openami API on http://{host}:{port} (docs: /docs)")
    worker = None
    if webhooks_every > 0:
        from openami.api.webhooks import Dispatcher, WebhookWorker

        dispatcher = Dispatcher(state.webhooks, audit=state.store.record)
        worker = WebhookWorker(
            state.webhooks,
            dispatcher,
            state.data.validated.reads_dir,
            state.data.events.events_dir,
            every=webhooks_every,
        )
        worker.start()
    try:
        uvicorn.run(create_app(state), host=host, port=port, log_level="warning")
    finally:
        if worker is not None:
            worker.stop()


@app.command()
@_reflowed
def customers(data_dir: DataDir, db: Db = None, as_json: AsJson = False) -> None:
    """The customers, with their usage points and meters.

    Example: openami api customers --data-dir /tmp/ami --json
    """
    state = _open(data_dir, db)
    try:
        rows = state.data.customers(datetime.now(UTC))
    finally:
        state.close()
    if as_json:
        _emit(
            [
                {
                    "customer": c.customer,
                    "name": c.name,
                    "kind": c.kind,
                    "usage_points": list(c.usage_points),
                    "meters": list(c.meters),
                }
                for c in rows
            ]
        )
        return
    for c in rows:
        print(f"{c.customer}\t{c.name}\tmeters {','.join(map(str, c.meters)) or '-'}")


@client_app.command("register")
@_reflowed
def client_register(
    data_dir: DataDir,
    name: Annotated[str, typer.Option(help="The third party's name, shown to customers.")],
    redirect_uri: Annotated[
        str, typer.Option(help="Where the consent page sends the customer back (https://).")
    ],
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Register a third party: prints its client_id and client_secret (shown once).

    Example: openami api client register --data-dir /tmp/ami --name "Solar Co"
    --redirect-uri https://solar.example/cb --json
    """
    state = _open(data_dir, db)
    try:
        client, secret = state.store.register_client(name, redirect_uri)
    finally:
        state.close()
    document = {"client_id": client.client_id, "client_secret": secret, "name": name}
    if as_json:
        _emit({**document, "redirect_uri": redirect_uri})
    else:
        print(f"client_id {client.client_id}\nclient_secret {secret}")


@key_app.command("create")
@_reflowed
def key_create(
    data_dir: DataDir,
    role: Annotated[str, typer.Option(help="read-only, operator or administrator.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    db: Db = None,
) -> None:
    """Create an operator's API key (printed once; send it as X-API-Key).

    Example: openami api key create --data-dir /tmp/ami --role operator --name control-room
    """
    from openami.api.store import Role
    from openami.errors import ConfigError

    try:
        chosen = Role(role)
    except ValueError:
        raise ConfigError(
            f"--role {role!r} is not one of {', '.join(r.value for r in Role)}"
        ) from None
    state = _open(data_dir, db)
    try:
        print(state.store.create_key(name, chosen))
    finally:
        state.close()


@customer_app.command("credentials")
@_reflowed
def customer_credentials(
    data_dir: DataDir,
    customer: Annotated[str, typer.Option(help="The customer's id (see `openami api customers`).")],
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Give a customer a (new) login for the consent page and Download My Data.

    Example: openami api customer credentials --data-dir /tmp/ami --customer c-0000000001 --json
    """
    from openami.errors import ConfigError

    state = _open(data_dir, db)
    try:
        if state.data.customer(customer, datetime.now(UTC)) is None:
            raise ConfigError(f"--customer {customer!r} is not in the registry")
        password = state.store.set_login(customer)
    finally:
        state.close()
    if as_json:
        _emit({"customer": customer, "username": customer, "password": password})
    else:
        print(f"username {customer}\npassword {password}")
