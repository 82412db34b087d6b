"""brokkrctl's command tree.

Exit codes: 0 success; 1 the API refused or failed the call (the one-line error names the reason);
2 bad command-line usage; 3 the broker could not be reached.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from google.protobuf import field_mask_pb2

from brokkr_common.client import BrokkrClient, TlsConfig
from brokkr_common.ctl import output
from brokkr_common.errors import BrokkrError, Unavailable
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

EXIT_API_ERROR, EXIT_UNREACHABLE = 1, 3


class Context:
    def __init__(self, client: BrokkrClient, fmt: output.OutputFormat) -> None:
        self.client = client
        self.fmt = fmt

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return self.client.call(method, request)
        except Unavailable as error:
            fail(f"{error.reason}: {error.message}", EXIT_UNREACHABLE)
        except BrokkrError as error:
            details = "".join(f"\n  {v.field}: {v.description}" for v in error.field_violations)
            fail(f"{error.reason}: {error.message}{details}", EXIT_API_ERROR)

    def show(self, *messages: Any, single: bool = False) -> None:
        output.render(list(messages), self.fmt, single=single)


def fail(message: str, code: int) -> NoReturn:
    output.error(message)
    sys.exit(code)


pass_ctx = click.make_pass_decorator(Context)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key] = val
    return pairs


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--server",
    envvar="BROKKR_SERVER",
    default="localhost:50051",
    show_default=True,
    help="Broker gRPC address (env: BROKKR_SERVER).",
)
@click.option("--key", envvar="BROKKR_KEY", help="Bearer key (env: BROKKR_KEY).")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="BROKKR_KEY_FILE",
    help="File holding the key (env: BROKKR_KEY_FILE).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trust this CA and use TLS.",
)
@click.option(
    "--client-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Client certificate for mutual TLS.",
)
@click.option(
    "--client-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Client private key for mutual TLS.",
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
    server: str,
    key: str | None,
    key_file: Path | None,
    ca_file: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    fmt: output.OutputFormat,
    timeout: float,
) -> None:
    """Drive a Brokkr broker: agents, generators, stacks, deployment objects and targets."""
    if key_file is not None:
        key = key_file.read_text().strip()
    tls = (
        TlsConfig(ca_file=ca_file, cert_file=client_cert, key_file=client_key)
        if ca_file or client_cert
        else None
    )
    client = BrokkrClient(server, key, tls=tls, timeout=timeout)
    ctx.call_on_close(client.close)
    ctx.obj = Context(client, fmt)


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
        *_all_pages(
            ctx,
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
        *_all_pages(
            ctx, ctx.client.generators.ListGenerators, generator_api.ListGeneratorsRequest(), "generators"
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
    ctx.show(*_all_pages(ctx, ctx.client.stacks.ListStacks, request, "stacks"))


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
        *_all_pages(
            ctx,
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
        *_all_pages(
            ctx,
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
    ctx.show(*_all_pages(ctx, ctx.client.targets.ListRegistrations, request, "registrations"))


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


def _all_pages(ctx: Context, method: Callable[..., Any], request: Any, field: str) -> list[Any]:
    items: list[Any] = []
    while True:
        reply = ctx.call(method, request)
        items.extend(getattr(reply, field))
        if not reply.next_page_token:
            return items
        request.page_token = reply.next_page_token
