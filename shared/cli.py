"""The ``phonefleet`` command: one entry point for every process and admin task."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from shared.settings import Plan, get_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="phonefleet: task queue for fleets of Android phones"
)
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys")
app.add_typer(keys_app, name="keys")


def _setup_logging(process: str) -> None:
    from shared.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format, process=process)


def _database_url() -> str:
    from shared.db.engine import database_url

    try:
        return database_url()
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def migrate(
    check: Annotated[bool, typer.Option("--check", help="only check: exit 1 unless the schema is current")] = False,
) -> None:
    """Create or upgrade the database schema (Alembic migrations); safe to run on every deploy."""
    from shared.db.migrate import current, head, upgrade

    url = _database_url()
    before = current(url)
    if check:
        wanted = head(url)
        if before != wanted:
            typer.echo(
                f"database at revision {before or 'empty'}, this version needs {wanted}: run `phonefleet migrate`",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(f"database at revision {before}, current")
        return
    upgrade(url)
    typer.echo(f"database at revision {current(url)} (was {before or 'empty'})")


@app.command()
def ping(
    dispatcher: Annotated[bool, typer.Option("--dispatcher", help="ping this machine's dispatcher")] = False,
    hub: Annotated[str | None, typer.Option(help="ping this machine's worker of hub NAME")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds to wait for the answer")] = 5.0,
) -> None:
    """Health check for containers: exit 0 if the process answers through the broker, else 1."""
    from shared.broker import get_celery
    from shared.queues import dispatcher_node, hub_node

    if dispatcher == (hub is not None):
        typer.echo("error: give --dispatcher or --hub NAME", err=True)
        raise typer.Exit(2)
    node = dispatcher_node() if dispatcher else hub_node(hub or "")
    try:
        replies = get_celery().control.ping(destination=[node], timeout=timeout)
    except Exception as exc:
        typer.echo(f"{node}: broker unreachable: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not any(node in reply for reply in replies or []):
        typer.echo(f"{node}: no answer within {timeout:g}s", err=True)
        raise typer.Exit(1)
    typer.echo(f"{node}: ok")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="interface to listen on [default: PHONEFLEET_API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: PHONEFLEET_API_PORT, 50809]")] = None,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the task API (default 127.0.0.1:50809)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from shared.apiserver import ApiConfig

    _setup_logging("api")
    settings = get_settings()
    _database_url()
    config = ApiConfig(
        "api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="also start simulated phones")] = False,
    phones: Annotated[int, typer.Option(min=1, max=2000, help="simulated phones with --demo")] = 10,
) -> None:
    """Run the whole single-machine stack; embedded PostgreSQL and Redis when no URLs are set."""
    from shared.stack import Stack

    _setup_logging("up")
    raise typer.Exit(Stack(get_settings(), demo=demo, phones=phones).run())


@app.command()
def dispatcher(
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            help="report messages applied at once. 1 (default): one at a time, in the consumer's thread; "
            "hubs batch their reports, and more dispatcher processes use more cores. N > 1: a pool of N threads",
        ),
    ] = 1,
) -> None:
    """Run the dispatcher: applies hub reports, dispatches due tasks, recovers lost attempts."""
    from shared.dispatcher.service import main as run_dispatcher

    _setup_logging("dispatcher")
    _database_url()
    run_dispatcher(concurrency, get_settings().log_level)


@app.command()
def worker(
    hub: Annotated[
        str | None, typer.Option(help="this hub's name [default: PHONEFLEET_HUB_NAME or the host name]")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="threads: at least the number of phones on this hub")] = 256,
) -> None:
    """Run a hub worker: drives the phones of this machine's adb server (broker credentials only)."""
    import socket

    from workers.hub.worker import main as run_worker

    name = hub or get_settings().hub_name or socket.gethostname()
    _setup_logging(f"hub:{name}")
    run_worker(name, concurrency, get_settings().log_level)


@app.command()
def flower(
    address: Annotated[str | None, typer.Option(help="[default: PHONEFLEET_FLOWER_ADDRESS, 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="[default: PHONEFLEET_FLOWER_PORT, 5555]")] = None,
) -> None:
    """Run Flower, the Celery dashboard (workers, queues, tasks). Needs basic auth off loopback."""
    from shared.broker import get_celery

    settings = get_settings()
    address = address or settings.flower_address
    args = ["flower", f"--address={address}", f"--port={port or settings.flower_port}"]
    if settings.flower_basic_auth:
        args.append(f"--basic-auth={settings.flower_basic_auth}")
    elif address not in ("127.0.0.1", "::1", "localhost"):
        typer.echo(
            f"error: Flower on {address} would be open to the network; set PHONEFLEET_FLOWER_BASIC_AUTH=user:password",
            err=True,
        )
        raise typer.Exit(2)
    _setup_logging("flower")
    get_celery().start(args)


@app.command()
def simulate(
    phones: Annotated[int, typer.Option(min=1, max=5000, help="how many simulated phones")] = 10,
    adb_port: Annotated[
        int | None, typer.Option(help="adb server to attach them to [default: PHONEFLEET_ADB_PORT]")
    ] = None,
    control_port: Annotated[int, typer.Option(help="the simulator's JSON control API (0: any free port)")] = 0,
    accounts_per_app: Annotated[int, typer.Option(min=0, help="accounts logged in on each app of each phone")] = 2,
    upload_seconds: Annotated[float, typer.Option(min=0, help="how long a simulated upload takes")] = 1.0,
    ready_file: Annotated[
        Path | None, typer.Option(help="write serials, accounts and control URL here when ready")
    ] = None,
    first_serial: Annotated[
        str | None, typer.Option(help="ro.serialno of the first phone, which is its phonefleet serial")
    ] = None,
) -> None:
    """Start simulated phones (adbd on loopback ports) and attach them to a real adb server."""
    import json

    from workers.adb.server import AdbServer, server_alive
    from workers.simulator.fleet import Fleet, serve_fleet

    _setup_logging("simulator")
    port = adb_port or get_settings().adb_port
    own_server = None if server_alive(port) else AdbServer(port).start()

    def write_ready(fleet: Fleet) -> None:
        if ready_file is None:
            return
        phones_info = [
            {
                "serial": phone.serial,
                "serialno": phone.props["ro.serialno"],
                "accounts": [
                    {"platform": app.platform, "packagename": app.package, "username": username}
                    for app in phone.app_infos()
                    for username in app.accounts
                ],
            }
            for phone in fleet.phones
        ]
        summary = {"adb_port": port, "control_url": fleet.control_url, "phones": phones_info}
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary))
        tmp.replace(ready_file)

    try:
        serve_fleet(
            phones,
            port,
            control_port,
            accounts_per_app=accounts_per_app,
            upload_seconds=upload_seconds,
            first_serialno=first_serial,
            on_ready=write_ready,
        )
    finally:
        if own_server is not None:
            own_server.kill()


@keys_app.command("create")
def keys_create(
    plan: Annotated[Plan, typer.Option(help="the key's plan")] = Plan.PRO,
    name: Annotated[str, typer.Option(help="a label to recognise the key by")] = "default",
) -> None:
    """Make an API key and print it once; only its hash is stored."""
    from api.keys.service import create_key
    from shared.db.engine import get_engine, transaction

    with transaction(get_engine(_database_url())) as session:
        new = create_key(session, name=name, plan=plan)
    typer.echo(new.key)
    typer.echo(f"key {new.id} ({new.name}, plan {new.plan.value}); it will not be shown again", err=True)
    typer.echo(f"webhook signing secret: {new.webhook_secret} (`phonefleet keys webhook {new.id}` shows it)", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves)."""
    from api.keys.service import list_keys
    from shared.db.engine import get_engine, transaction

    with transaction(get_engine(_database_url())) as session:
        for key in list_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            typer.echo(f"{key.id}\t{key.prefix}…\t{key.plan}\t{key.name}\t{state}")


@keys_app.command("webhook")
def keys_webhook(
    key_id: int,
    url: Annotated[str | None, typer.Option(help="push the end of this key's tasks here (http or https)")] = None,
    clear: Annotated[bool, typer.Option(help="stop pushing")] = False,
) -> None:
    """Set where the end of a key's tasks is pushed, and show the secret deliveries are signed with."""
    from api.keys.service import set_webhook
    from shared.db.engine import get_engine, transaction

    if url is not None and not url.startswith(("http://", "https://")):
        typer.echo("error: --url must start with http:// or https://", err=True)
        raise typer.Exit(2)
    with transaction(get_engine(_database_url())) as session:
        secret = set_webhook(session, key_id, None if clear else url)
    if secret is None:
        typer.echo(f"error: no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"key {key_id}: webhook {'off' if clear or url is None else url}")
    typer.echo(f"signing secret: {secret}")


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key; callers using it get 40101 within a few seconds."""
    from api.keys.service import revoke_key
    from shared.db.engine import get_engine, transaction

    with transaction(get_engine(_database_url())) as session:
        if not revoke_key(session, key_id):
            typer.echo(f"error: no active key {key_id}", err=True)
            raise typer.Exit(1)
    typer.echo(f"key {key_id} revoked")


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(app())
