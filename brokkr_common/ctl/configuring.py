"""`brokkrctl config ...`: manage the contexts in the config file, kubectl-style.

These commands never open a connection; they read and write the file that
`brokkr_common.ctl.config` describes.
"""

from __future__ import annotations

import dataclasses
import json

import click
import yaml
from rich.console import Console
from rich.table import Table

from brokkr_common.ctl import config
from brokkr_common.ctl.context import EXIT_USAGE, Context, fail, pass_ctx


def _load(ctx: Context) -> config.Config:
    try:
        return config.load(ctx.settings.config_path)
    except config.ConfigError as error:
        fail(str(error), EXIT_USAGE)


def _save(ctx: Context, file: config.Config) -> None:
    try:
        config.save(file, ctx.settings.config_path)
    except OSError as error:
        fail(f"cannot write {ctx.settings.config_path}: {error.strerror}", EXIT_USAGE)


@click.group("config")
def config_group() -> None:
    """Contexts: named broker connections in the config file."""


@config_group.command("get-contexts")
@pass_ctx
def get_contexts(ctx: Context) -> None:
    """List the contexts; * marks the current one."""
    file = _load(ctx)
    if ctx.fmt != "table":
        names = [
            {"name": n, "current": n == file.current_context, **c.to_dict(redact=True)}
            for n, c in sorted(file.contexts.items())
        ]
        if ctx.fmt == "json":
            click.echo(json.dumps(names, indent=2))
        else:
            click.echo(yaml.safe_dump(names, sort_keys=False), nl=False)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in ("CURRENT", "NAME", "SERVER", "AUTH", "TLS"):
        table.add_column(header, overflow="fold")
    for name, context in sorted(file.contexts.items()):
        auth = "key" if context.key else f"key-file {context.key_file}" if context.key_file else ""
        if context.insecure is None:
            tls = "yes" if context.ca_file or context.client_cert else "no"
        else:
            tls = "no" if context.insecure else "yes"
        if context.client_cert:
            tls = "mutual"
        table.add_row("*" if name == file.current_context else "", name, context.server or "", auth, tls)
    Console(soft_wrap=True).print(table)


@config_group.command("current-context")
@pass_ctx
def current_context(ctx: Context) -> None:
    """Print the current context's name."""
    file = _load(ctx)
    if file.current_context is None:
        fail("current-context is not set; see `brokkrctl config use-context`", EXIT_USAGE)
    click.echo(file.current_context)


@config_group.command("use-context")
@click.argument("name")
@pass_ctx
def use_context(ctx: Context, name: str) -> None:
    """Make NAME the current context."""
    file = _load(ctx)
    if name not in file.contexts:
        fail(f"no context named {name!r}; see `brokkrctl config get-contexts`", EXIT_USAGE)
    file.current_context = name
    _save(ctx, file)
    click.echo(f'Switched to context "{name}".')


@config_group.command("set-context")
@click.argument("name")
@click.option("--server", help="Broker gRPC address, host:port.")
@click.option("--key", help="Bearer key, stored in the file (mode 0600).")
@click.option("--key-file", help="File holding the key; preferred over --key.")
@click.option("--ca-file", help="CA to trust; implies TLS.")
@click.option("--client-cert", help="Client certificate for mutual TLS.")
@click.option("--client-key", help="Client private key for mutual TLS.")
@click.option("--server-name", help="Name expected in the broker's certificate.")
@click.option("--insecure/--tls", "insecure", default=None, help="Plaintext gRPC, or TLS.")
@click.option("--current", is_flag=True, help="Also make it the current context.")
@pass_ctx
def set_context(ctx: Context, name: str, current: bool, **changes: str | bool | None) -> None:
    """Create context NAME, or change the given fields of it.

    Setting --key drops a key file and the other way round: a context has one credential.
    """
    file = _load(ctx)
    if changes["key"] is not None and changes["key_file"] is not None:
        fail("give --key or --key-file, not both", EXIT_USAGE)
    existed = name in file.contexts
    context = file.contexts.get(name, config.BrokerContext())
    if changes["key"] is not None:
        context = dataclasses.replace(context, key_file=None)
    if changes["key_file"] is not None:
        context = dataclasses.replace(context, key=None)
    file.contexts[name] = context.merged(**changes)
    if current or file.current_context is None:
        file.current_context = name
    _save(ctx, file)
    click.echo(f'Context "{name}" {"modified" if existed else "created"}.')


@config_group.command("delete-context")
@click.argument("name")
@pass_ctx
def delete_context(ctx: Context, name: str) -> None:
    """Delete context NAME (and unset it if it was current)."""
    file = _load(ctx)
    if file.contexts.pop(name, None) is None:
        fail(f"no context named {name!r}", EXIT_USAGE)
    if file.current_context == name:
        file.current_context = None
    _save(ctx, file)
    click.echo(f'Deleted context "{name}".')


@config_group.command("view")
@click.option("--raw", is_flag=True, help="Show keys instead of REDACTED.")
@pass_ctx
def view(ctx: Context, raw: bool) -> None:
    """Print the config file (YAML unless -o json), keys redacted."""
    data = _load(ctx).to_dict(redact=not raw)
    if ctx.fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
