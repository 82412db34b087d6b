"""`brokkr-agent`: run the agent in a cluster."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from agent import runner
from agent.config import AgentSettings, load_settings, settings_reference
from brokkr_common import commands
from brokkr_common.commands import config_option


def _settings(config_file: Path | None) -> AgentSettings:
    return commands.load(load_settings, config_file)


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


cli.add_command(commands.config_command(load_settings, settings_reference))


def main() -> None:
    cli(prog_name="brokkr-agent")


if __name__ == "__main__":
    main()
