"""`brokkr-broker`: run the broker, migrate its database, and bootstrap keys offline."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from broker import server
from broker.config import BrokerSettings, load_settings, settings_reference
from broker.db import open_database
from broker.domain.model import ADMIN, AgentStatus
from broker.domain.ports import UnitOfWorkFactory
from broker.services import agents, generators
from broker.services import keys as key_service
from brokkr_common import commands, keys
from brokkr_common.commands import config_option
from brokkr_common.errors import BrokkrError

T = TypeVar("T")

database_option = click.option("--database-url", help="Overrides database.url (env: BROKKR_DATABASE__URL).")


def _settings(config_file: Path | None, **overrides: Any) -> BrokerSettings:
    return commands.load(load_settings, config_file, **overrides)


def _offline(settings: BrokerSettings, work: Callable[[UnitOfWorkFactory], Awaitable[T]]) -> T:
    """Run `work` against the configured database, migrating it first."""

    async def run() -> T:
        database = await open_database(settings.database.url, migrate=True)
        try:
            return await work(database.uow_factory())
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except BrokkrError as error:
        raise click.ClickException(f"{error.reason}: {error.message}") from error


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Brokkr broker: keeps the desired state of every stack and holds the agents' sessions."""


@cli.command()
@config_option
@database_option
@click.option("--grpc-port", type=int, help="Overrides grpc.port (default 50051).")
@click.option("--rest-port", type=int, help="Overrides rest.port (default 3000).")
def serve(
    config_file: Path | None, database_url: str | None, grpc_port: int | None, rest_port: int | None
) -> None:
    """Run the broker until SIGTERM or SIGINT, then drain and stop.

    On first start with an empty database it creates the admin key and prints it once.
    """
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database"] = {"url": database_url}
    if grpc_port is not None:
        overrides["grpc"] = {"port": grpc_port}
    if rest_port is not None:
        overrides["rest"] = {"port": rest_port}
    settings = _settings(config_file, **overrides)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await server.serve(settings, stop)

    try:
        asyncio.run(main())
    except BrokkrError as error:
        raise click.ClickException(f"{error.reason}: {error.message}") from error


@cli.command()
@config_option
@database_option
def migrate(config_file: Path | None, database_url: str | None) -> None:
    """Apply pending database migrations and exit."""
    settings = _settings(config_file, database={"url": database_url} if database_url else None)

    async def work(_: UnitOfWorkFactory) -> None:
        return None

    _offline(settings, work)
    click.echo("database is at the latest schema")


cli.add_command(commands.config_command(load_settings, settings_reference))


@cli.command("create-agent")
@config_option
@database_option
@click.option("--name", required=True, help="Agent name (DNS label).")
@click.option("--cluster-name", required=True, help="Cluster name (DNS subdomain).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Label; repeatable.")
@click.option("--active/--inactive", default=False, help="Initial status (default: inactive).")
def create_agent(
    config_file: Path | None,
    database_url: str | None,
    name: str,
    cluster_name: str,
    labels: tuple[str, ...],
    active: bool,
) -> None:
    """Create an agent and print its key (shown once)."""
    settings = _settings(config_file, database={"url": database_url} if database_url else None)
    created = _offline(
        settings,
        lambda uow: agents.create_agent(
            uow(),
            ADMIN,
            name=name,
            cluster_name=cluster_name,
            labels=_pairs(labels),
            annotations={},
            status=AgentStatus.ACTIVE if active else AgentStatus.INACTIVE,
            request_id=None,
        ),
    )
    click.echo(f"agent {created.resource.id} ({name}/{cluster_name})")
    click.echo(created.key)


@cli.command("create-generator")
@config_option
@database_option
@click.option("--name", required=True, help="Generator name (DNS label).")
@click.option("--description", default="", help="Free text.")
def create_generator(config_file: Path | None, database_url: str | None, name: str, description: str) -> None:
    """Create a generator and print its key (shown once)."""
    settings = _settings(config_file, database={"url": database_url} if database_url else None)
    created = _offline(
        settings,
        lambda uow: generators.create_generator(
            uow(),
            ADMIN,
            name=name,
            description=description,
            request_id=None,
        ),
    )
    click.echo(f"generator {created.resource.id} ({name})")
    click.echo(created.key)


@cli.command("rotate-admin-key")
@config_option
@database_option
def rotate_admin_key(config_file: Path | None, database_url: str | None) -> None:
    """Replace the admin key and print the new one; the old one stops working at once."""
    settings = _settings(config_file, database={"url": database_url} if database_url else None)
    click.echo(_offline(settings, lambda uow: key_service.rotate_admin_key(uow(), ADMIN)))


@cli.command("rotate-agent-key")
@config_option
@database_option
@click.argument("agent_id")
def rotate_agent_key(config_file: Path | None, database_url: str | None, agent_id: str) -> None:
    """Replace an agent's key and print the new one."""
    settings = _settings(config_file, database={"url": database_url} if database_url else None)
    click.echo(_offline(settings, lambda uow: agents.rotate_agent_key(uow(), ADMIN, agent_id)))


@cli.command("rotate-generator-key")
@config_option
@database_option
@click.argument("generator_id")
def rotate_generator_key(config_file: Path | None, database_url: str | None, generator_id: str) -> None:
    """Replace a generator's key and print the new one."""
    settings = _settings(config_file, database={"url": database_url} if database_url else None)
    click.echo(_offline(settings, lambda uow: generators.rotate_generator_key(uow(), ADMIN, generator_id)))


@cli.command("hash-key")
@click.option("--generate", is_flag=True, help="Generate a new admin key and print it with its hash.")
@click.argument("key", required=False)
def hash_key(generate: bool, key: str | None) -> None:
    """Print the `<short>:<sha256>` form of KEY (or of stdin) for auth.admin_key_hash.

    With --generate, print a new random key on the first line and its hash on the second; put the
    hash in the broker's settings (e.g. a Helm Secret) and keep the key.
    """
    if generate:
        key = keys.generate().plaintext
        click.echo(key)
    elif key is None:
        key = sys.stdin.readline().strip()
    try:
        click.echo(keys.hash_for_config(key))
    except keys.MalformedKey as error:
        raise click.ClickException(str(error)) from error


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--label")
        pairs[key] = val
    return pairs


def main() -> None:
    cli(prog_name="brokkr-broker")


if __name__ == "__main__":
    main()
