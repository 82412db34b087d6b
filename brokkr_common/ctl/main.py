"""brokkrctl's command tree: the global options and one command group per API resource.

Workflow commands live in their own modules (`configuring`, `applying`, `rollout`) and are attached
at the bottom; exit codes and error handling are in `brokkr_common.ctl.context`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.shell_completion import get_completion_class
from google.protobuf import field_mask_pb2

from brokkr_common.ctl import (
    applying,
    auditing,
    configuring,
    diagnosing,
    eventing,
    output,
    rollout,
    templating,
    webhooking,
)
from brokkr_common.ctl.config import DEFAULT_SERVER, BrokerContext, default_path
from brokkr_common.ctl.context import EXIT_CODES, Context, Settings, pass_ctx
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    deployment_object_pb2,
    generator_pb2,
    stack_pb2,
)
from brokkr_common.pb.brokkr.v1 import (
    agent_service_pb2 as agent_api,
)
from brokkr_common.pb.brokkr.v1 import (
    auth_service_pb2 as auth_api,
)
from brokkr_common.pb.brokkr.v1 import (
    deployment_object_service_pb2 as do_api,
)
from brokkr_common.pb.brokkr.v1 import (
    generator_service_pb2 as generator_api,
)
from brokkr_common.pb.brokkr.v1 import (
    stack_service_pb2 as stack_api,
)
from brokkr_common.pb.brokkr.v1 import (
    target_service_pb2 as target_api,
)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key] = val
    return pairs


_EPILOG = """\b
Connection settings, first hit wins: command-line flag, BROKKR_* environment variable, the
selected context (--context, BROKKR_CONTEXT, else the config file's current context), default.
The config file is --config, BROKKR_CONFIG, or $XDG_CONFIG_HOME/brokkr/config.yaml
(~/.config/brokkr/config.yaml); manage it with `brokkrctl config`.

\b
Exit codes (docs/reference/cli.md has the details):
""" + "\n".join(f"  {code}  {summary}" for code, summary, _ in EXIT_CODES)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_EPILOG,
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BROKKR_CONFIG",
    help="Config file with contexts (env: BROKKR_CONFIG).",
)
@click.option(
    "--context", "context_name", envvar="BROKKR_CONTEXT", help="Context to use (env: BROKKR_CONTEXT)."
)
@click.option(
    "--server",
    envvar="BROKKR_SERVER",
    help=f"Broker gRPC address (env: BROKKR_SERVER) [default: {DEFAULT_SERVER}].",
)
@click.option("--key", envvar="BROKKR_KEY", help="Bearer key (env: BROKKR_KEY).")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False),
    envvar="BROKKR_KEY_FILE",
    help="File holding the key (env: BROKKR_KEY_FILE).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    envvar="BROKKR_CA_FILE",
    help="Trust this CA and use TLS (env: BROKKR_CA_FILE).",
)
@click.option(
    "--client-cert",
    type=click.Path(exists=True, dir_okay=False),
    envvar="BROKKR_CLIENT_CERT",
    help="Client certificate for mutual TLS (env: BROKKR_CLIENT_CERT).",
)
@click.option(
    "--client-key",
    type=click.Path(exists=True, dir_okay=False),
    envvar="BROKKR_CLIENT_KEY",
    help="Client private key for mutual TLS (env: BROKKR_CLIENT_KEY).",
)
@click.option(
    "--server-name",
    envvar="BROKKR_SERVER_NAME",
    help="Expect this name in the broker's certificate (env: BROKKR_SERVER_NAME).",
)
@click.option(
    "--insecure/--tls",
    "insecure",
    default=None,
    envvar="BROKKR_INSECURE",
    help="Plaintext gRPC, or TLS with the system's trust roots (env: BROKKR_INSECURE=true|false) "
    "[default: TLS when a CA file or client certificate is set].",
)
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(["table", "json", "yaml"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per call.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    context_name: str | None,
    server: str | None,
    key: str | None,
    key_file: str | None,
    ca_file: str | None,
    client_cert: str | None,
    client_key: str | None,
    server_name: str | None,
    insecure: bool | None,
    fmt: output.OutputFormat,
    timeout: float,
) -> None:
    """Drive a Brokkr broker: agents, generators, stacks, deployment objects, targets, rollouts,
    templates, events, the audit log and webhooks."""
    given = BrokerContext(
        server=server,
        key=key,
        key_file=key_file,
        ca_file=ca_file,
        client_cert=client_cert,
        client_key=client_key,
        server_name=server_name,
        insecure=insecure,
    )
    settings = Settings(
        config_path=config_path or default_path(),
        context_name=context_name,
        given=given,
        fmt=fmt,
        timeout=timeout,
    )
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@pass_ctx
def whoami(ctx: Context) -> None:
    """Show who the key belongs to."""
    ctx.show(ctx.call(ctx.client.auth.WhoAmI, auth_api.WhoAmIRequest()), single=True)


# -- agents ---------------------------------------------------------------------------------------


@cli.group()
def agents() -> None:
    """Clusters' agents."""


@agents.command("list")
@click.option("-l", "--selector", default="", help="Label selector, e.g. env=prod,tier in (web).")
@click.option("--show-deleted", is_flag=True)
@pass_ctx
def agents_list(ctx: Context, selector: str, show_deleted: bool) -> None:
    ctx.show(
        *ctx.all_pages(
            ctx.client.agents.ListAgents,
            agent_api.ListAgentsRequest(label_selector=selector, show_deleted=show_deleted),
            "agents",
        )
    )


@agents.command("get")
@click.argument("agent_id")
@pass_ctx
def agents_get(ctx: Context, agent_id: str) -> None:
    ctx.show(ctx.call(ctx.client.agents.GetAgent, agent_api.GetAgentRequest(id=agent_id)).agent, single=True)


@agents.command("create")
@click.option("--name", required=True)
@click.option("--cluster-name", required=True)
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE")
@click.option("--active", is_flag=True, help="Start ACTIVE instead of INACTIVE.")
@pass_ctx
def agents_create(
    ctx: Context,
    name: str,
    cluster_name: str,
    labels: tuple[str, ...],
    annotations: tuple[str, ...],
    active: bool,
) -> None:
    """Create an agent; its key is printed once, on stderr."""
    agent = agent_pb2.Agent(
        name=name,
        cluster_name=cluster_name,
        labels=_pairs(labels, "--label"),
        annotations=_pairs(annotations, "--annotation"),
        status=agent_pb2.AGENT_STATUS_ACTIVE if active else agent_pb2.AGENT_STATUS_INACTIVE,
    )
    created = ctx.call(ctx.client.agents.CreateAgent, agent_api.CreateAgentRequest(agent=agent))
    ctx.show(created.agent, single=True)
    click.echo(f"key (shown once): {created.key}", err=True)


def _set_agent_status(ctx: Context, agent_id: str, status: int) -> None:
    request = agent_api.UpdateAgentRequest(
        agent=agent_pb2.Agent(id=agent_id, status=status),
        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
    )
    ctx.show(ctx.call(ctx.client.agents.UpdateAgent, request).agent, single=True)


@agents.command("activate")
@click.argument("agent_id")
@pass_ctx
def agents_activate(ctx: Context, agent_id: str) -> None:
    """Let the agent receive its stacks."""
    _set_agent_status(ctx, agent_id, agent_pb2.AGENT_STATUS_ACTIVE)


@agents.command("deactivate")
@click.argument("agent_id")
@pass_ctx
def agents_deactivate(ctx: Context, agent_id: str) -> None:
    """Stop delivering to the agent; it removes what it holds."""
    _set_agent_status(ctx, agent_id, agent_pb2.AGENT_STATUS_INACTIVE)


@agents.command("label")
@click.argument("agent_id")
@click.argument("labels", nargs=-1, required=True, metavar="KEY=VALUE...")
@pass_ctx
def agents_label(ctx: Context, agent_id: str, labels: tuple[str, ...]) -> None:
    """Replace the agent's labels."""
    request = agent_api.UpdateAgentRequest(
        agent=agent_pb2.Agent(id=agent_id, labels=_pairs(labels, "LABELS")),
        update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
    )
    ctx.show(ctx.call(ctx.client.agents.UpdateAgent, request).agent, single=True)


@agents.command("delete")
@click.argument("agent_id")
@pass_ctx
def agents_delete(ctx: Context, agent_id: str) -> None:
    ctx.show(
        ctx.call(ctx.client.agents.DeleteAgent, agent_api.DeleteAgentRequest(id=agent_id)).agent, single=True
    )


@agents.command("rotate-key")
@click.argument("agent_id")
@pass_ctx
def agents_rotate_key(ctx: Context, agent_id: str) -> None:
    """Issue a new key; the old one stops working at once."""
    click.echo(ctx.call(ctx.client.agents.RotateAgentKey, agent_api.RotateAgentKeyRequest(id=agent_id)).key)


@agents.command("stacks")
@click.argument("agent_id")
@pass_ctx
def agents_stacks(ctx: Context, agent_id: str) -> None:
    """Which stacks reach the agent, and why."""
    reply = ctx.call(ctx.client.agents.ListAgentStacks, agent_api.ListAgentStacksRequest(id=agent_id))
    ctx.show(*reply.matches)


# -- generators -----------------------------------------------------------------------------------


@cli.group()
def generators() -> None:
    """CI/CD pipelines and tenants."""


@generators.command("list")
@pass_ctx
def generators_list(ctx: Context) -> None:
    ctx.show(
        *ctx.all_pages(
            ctx.client.generators.ListGenerators, generator_api.ListGeneratorsRequest(), "generators"
        )
    )


@generators.command("create")
@click.option("--name", required=True)
@click.option("--description", default="")
@pass_ctx
def generators_create(ctx: Context, name: str, description: str) -> None:
    """Create a generator; its key is printed once, on stderr."""
    created = ctx.call(
        ctx.client.generators.CreateGenerator,
        generator_api.CreateGeneratorRequest(
            generator=generator_pb2.Generator(name=name, description=description)
        ),
    )
    ctx.show(created.generator, single=True)
    click.echo(f"key (shown once): {created.key}", err=True)


@generators.command("delete")
@click.argument("generator_id")
@pass_ctx
def generators_delete(ctx: Context, generator_id: str) -> None:
    ctx.show(
        ctx.call(
            ctx.client.generators.DeleteGenerator, generator_api.DeleteGeneratorRequest(id=generator_id)
        ).generator,
        single=True,
    )


@generators.command("rotate-key")
@click.argument("generator_id")
@pass_ctx
def generators_rotate_key(ctx: Context, generator_id: str) -> None:
    click.echo(
        ctx.call(
            ctx.client.generators.RotateGeneratorKey, generator_api.RotateGeneratorKeyRequest(id=generator_id)
        ).key
    )


# -- stacks ---------------------------------------------------------------------------------------


@cli.group()
def stacks() -> None:
    """Stacks of Kubernetes resources."""


@stacks.command("list")
@click.option("-l", "--selector", default="")
@click.option("--generator", "generator_id", default="")
@click.option("--show-deleted", is_flag=True)
@pass_ctx
def stacks_list(ctx: Context, selector: str, generator_id: str, show_deleted: bool) -> None:
    request = stack_api.ListStacksRequest(
        label_selector=selector, generator_id=generator_id, show_deleted=show_deleted
    )
    ctx.show(*ctx.all_pages(ctx.client.stacks.ListStacks, request, "stacks"))


@stacks.command("get")
@click.argument("stack_id")
@pass_ctx
def stacks_get(ctx: Context, stack_id: str) -> None:
    ctx.show(ctx.call(ctx.client.stacks.GetStack, stack_api.GetStackRequest(id=stack_id)).stack, single=True)


@stacks.command("create")
@click.option("--name", required=True)
@click.option("--description", default="")
@click.option("--generator", "generator_id", default="", help="Owning generator (admins only).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE")
@pass_ctx
def stacks_create(
    ctx: Context,
    name: str,
    description: str,
    generator_id: str,
    labels: tuple[str, ...],
    annotations: tuple[str, ...],
) -> None:
    stack = stack_pb2.Stack(
        name=name,
        description=description,
        generator_id=generator_id,
        labels=_pairs(labels, "--label"),
        annotations=_pairs(annotations, "--annotation"),
    )
    ctx.show(
        ctx.call(ctx.client.stacks.CreateStack, stack_api.CreateStackRequest(stack=stack)).stack, single=True
    )


@stacks.command("delete")
@click.argument("stack_id")
@pass_ctx
def stacks_delete(ctx: Context, stack_id: str) -> None:
    """Delete a stack; agents prune what they applied for it."""
    ctx.show(
        ctx.call(ctx.client.stacks.DeleteStack, stack_api.DeleteStackRequest(id=stack_id)).stack, single=True
    )


@stacks.command("agents")
@click.argument("stack_id")
@pass_ctx
def stacks_agents(ctx: Context, stack_id: str) -> None:
    """Which agents the stack reaches, and why."""
    ctx.show(
        *ctx.call(ctx.client.stacks.ListStackAgents, stack_api.ListStackAgentsRequest(id=stack_id)).matches
    )


# -- deployment objects ---------------------------------------------------------------------------


@cli.group("deployment-objects")
def deployment_objects() -> None:
    """Immutable versions of a stack's content."""


@deployment_objects.command("list")
@click.argument("stack_id")
@pass_ctx
def deployment_objects_list(ctx: Context, stack_id: str) -> None:
    ctx.show(
        *ctx.all_pages(
            ctx.client.deployment_objects.ListDeploymentObjects,
            do_api.ListDeploymentObjectsRequest(stack_id=stack_id),
            "deployment_objects",
        )
    )


@deployment_objects.command("get")
@click.argument("deployment_object_id")
@pass_ctx
def deployment_objects_get(ctx: Context, deployment_object_id: str) -> None:
    reply = ctx.call(
        ctx.client.deployment_objects.GetDeploymentObject,
        do_api.GetDeploymentObjectRequest(id=deployment_object_id),
    )
    if ctx.fmt == "table":
        click.echo(reply.deployment_object.yaml_content, nl=False)
    else:
        ctx.show(reply.deployment_object, single=True)


@deployment_objects.command("create")
@click.argument("stack_id")
@click.option("-f", "--filename", type=click.File("r"), required=True, help="YAML file, or - for stdin.")
@pass_ctx
def deployment_objects_create(ctx: Context, stack_id: str, filename: Any) -> None:
    """Submit a new version of the stack's content."""
    request = do_api.CreateDeploymentObjectRequest(
        stack_id=stack_id,
        deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=filename.read()),
    )
    ctx.show(
        ctx.call(ctx.client.deployment_objects.CreateDeploymentObject, request).deployment_object, single=True
    )


# -- targets and registrations --------------------------------------------------------------------


@cli.group()
def targets() -> None:
    """Explicit stack -> agent targets."""


@targets.command("list")
@click.option("--agent", "agent_id", default="")
@click.option("--stack", "stack_id", default="")
@pass_ctx
def targets_list(ctx: Context, agent_id: str, stack_id: str) -> None:
    ctx.show(
        *ctx.all_pages(
            ctx.client.targets.ListTargets,
            target_api.ListTargetsRequest(agent_id=agent_id, stack_id=stack_id),
            "targets",
        )
    )


@targets.command("add")
@click.argument("agent_id")
@click.argument("stack_id")
@pass_ctx
def targets_add(ctx: Context, agent_id: str, stack_id: str) -> None:
    ctx.show(
        ctx.call(
            ctx.client.targets.CreateTarget,
            target_api.CreateTargetRequest(agent_id=agent_id, stack_id=stack_id),
        ).target,
        single=True,
    )


@targets.command("remove")
@click.argument("agent_id")
@click.argument("stack_id")
@pass_ctx
def targets_remove(ctx: Context, agent_id: str, stack_id: str) -> None:
    ctx.call(
        ctx.client.targets.DeleteTarget, target_api.DeleteTargetRequest(agent_id=agent_id, stack_id=stack_id)
    )


@cli.group()
def registrations() -> None:
    """Agent <-> generator registrations."""


@registrations.command("list")
@click.option("--agent", "agent_id", default="")
@click.option("--generator", "generator_id", default="")
@pass_ctx
def registrations_list(ctx: Context, agent_id: str, generator_id: str) -> None:
    request = target_api.ListRegistrationsRequest(agent_id=agent_id, generator_id=generator_id)
    ctx.show(*ctx.all_pages(ctx.client.targets.ListRegistrations, request, "registrations"))


@registrations.command("add")
@click.argument("agent_id")
@click.argument("generator_id")
@pass_ctx
def registrations_add(ctx: Context, agent_id: str, generator_id: str) -> None:
    request = target_api.CreateRegistrationRequest(agent_id=agent_id, generator_id=generator_id)
    ctx.show(ctx.call(ctx.client.targets.CreateRegistration, request).registration, single=True)


@registrations.command("remove")
@click.argument("agent_id")
@click.argument("generator_id")
@pass_ctx
def registrations_remove(ctx: Context, agent_id: str, generator_id: str) -> None:
    ctx.call(
        ctx.client.targets.DeleteRegistration,
        target_api.DeleteRegistrationRequest(agent_id=agent_id, generator_id=generator_id),
    )


# -- workflows ------------------------------------------------------------------------------------

cli.add_command(configuring.config_group)
cli.add_command(applying.apply)
cli.add_command(applying.diff)
cli.add_command(rollout.rollout)

# -- templates, events, audit log, webhooks -------------------------------------------------------

cli.add_command(templating.templates)
cli.add_command(eventing.events)
cli.add_command(diagnosing.diagnostics)
cli.add_command(auditing.audit_logs)
cli.add_command(webhooking.webhooks)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  source <(brokkrctl completion bash)
    zsh:   brokkrctl completion zsh > "${fpath[1]}/_brokkrctl"
    fish:  brokkrctl completion fish > ~/.config/fish/completions/brokkrctl.fish
    """
    completer = get_completion_class(shell)
    assert completer is not None  # every choice is a shell click supports
    click.echo(completer(cli, {}, "brokkrctl", "_BROKKRCTL_COMPLETE").source())
