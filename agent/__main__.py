"""`brokkr-agent`: run the agent in a cluster."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click
import yaml
from pydantic import ValidationError

from agent import runner
from agent.config import AgentSettings, load_settings, settings_reference
from brokkr_common.log import configure_logging

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BROKKR_CONFIG",
    help="YAML settings file (env: BROKKR_CONFIG). Environment variables BROKKR_* override it.",
)


def _settings(config_file: Path | None) -> AgentSettings:
    try:
        settings = load_settings(config_file)
    except (ValidationError, FileNotFoundError) as error:
        raise click.ClickException(f"invalid settings:\n{error}") from error
    configure_logging(settings.log.level, settings.log.format)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Brokkr agent: dials out to the broker and applies the stacks targeted at this cluster."""


@cli.command()
@config_option
def run(config_file: Path | None) -> None:
    """Run until SIGTERM or SIGINT. Needs broker.address and the agent's key (broker.key_file)."""
    settings = _settings(config_file)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runner.run(settings, stop)

    asyncio.run(main())


@cli.command("config")
@config_option
@click.option("--reference", is_flag=True, help="Print the Markdown reference of every setting instead.")
def show_config(config_file: Path | None, reference: bool) -> None:
    """Print the effective settings as YAML, secrets masked."""
    if reference:
        click.echo(settings_reference(), nl=False)
        return
    settings = _settings(config_file)
    click.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), nl=False)


def main() -> None:
    cli(prog_name="brokkr-agent")


if __name__ == "__main__":
    main()
