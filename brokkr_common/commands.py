"""What the broker's and the agent's command lines share: the `--config` option, loading settings
with a readable error instead of a traceback, and the `config` command that shows them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from pydantic import ValidationError

from brokkr_common.log import configure_logging

S = TypeVar("S")

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BROKKR_CONFIG",
    help="YAML settings file (env: BROKKR_CONFIG). Environment variables BROKKR_* override it.",
)


def load(loader: Callable[..., S], config_file: Path | None, **overrides: Any) -> S:
    """Settings from `loader` (file, environment, the overrides that are set), with logging
    configured from them; a click error listing every invalid setting otherwise."""
    try:
        settings = loader(config_file, **{k: v for k, v in overrides.items() if v})
    except (ValidationError, FileNotFoundError) as error:
        raise click.ClickException(f"invalid settings:\n{error}") from error
    log = settings.log  # type: ignore[attr-defined]
    configure_logging(log.level, log.format)
    return settings


def config_command(loader: Callable[..., Any], reference: Callable[[], str]) -> click.Command:
    """`config [--reference]`: the effective settings as YAML (secrets masked), or the reference."""

    @click.command("config")
    @config_option
    @click.option(
        "--reference",
        "reference_only",
        is_flag=True,
        help="Print the Markdown reference of every setting instead.",
    )
    def show_config(config_file: Path | None, reference_only: bool) -> None:
        """Print the effective settings as YAML, secrets masked."""
        if reference_only:
            click.echo(reference(), nl=False)
            return
        settings = load(loader, config_file)
        click.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), nl=False)

    return show_config
