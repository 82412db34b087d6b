"""`brokkrctl rollout status`: watch a stack's newest deployment object reach every targeted agent.

The broker already knows, per agent, which deployment object it acknowledged and how healthy it
reports it (ListDeploymentStatuses), and which ACTIVE agents the stack reaches (ListStackAgents);
this command polls both and decides. An agent is

* done when it acknowledged the stack's newest deployment object and reports it HEALTHY,
* failed when it nacked the newest deployment object, or acknowledged it and reports it FAILING,
* waiting otherwise (not connected, update in flight, PROGRESSING, DEGRADED, no report yet).

The rollout succeeds when every targeted agent is done (exit 0), fails as soon as one has failed
(exit 1), and times out otherwise (exit 4). On a terminal it redraws a table in place; elsewhere
(CI logs) it prints a line whenever an agent's row changes, and the verdict at the end.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import click
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from brokkr_common.ctl.applying import find_stack
from brokkr_common.ctl.context import (
    EXIT_API_ERROR,
    EXIT_OK,
    EXIT_TIMEOUT,
    Context,
    fail,
    pass_ctx,
)
from brokkr_common.pb.brokkr.v1 import agent_pb2, agent_session_pb2, deployment_status_pb2, stack_pb2
from brokkr_common.pb.brokkr.v1 import deployment_status_service_pb2 as status_api
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?")

Progress = Literal["done", "failed", "waiting"]


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `5m`, `1h30m`, `1m30s`."""
    found = _DURATION.fullmatch(text.strip())
    if not text.strip() or found is None:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 5m or 1h30m")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class AgentRow:
    """One targeted agent's line in the view."""

    agent: str
    cluster: str
    connection: str
    applied: str
    state: str
    health: str
    progress: Progress
    message: str

    def plain(self) -> str:
        detail = f"  {self.message}" if self.message else ""
        return (
            f"{self.agent} ({self.cluster}): {self.progress}, applied {self.applied}, "
            f"state {self.state}, health {self.health}, {self.connection}{detail}"
        )


def _name(enum_value: str, prefix: str) -> str:
    return enum_value.removeprefix(prefix)


def classify(
    status: deployment_status_pb2.DeploymentStatus | None, desired: stack_pb2.DeploymentObjectRef
) -> tuple[Progress, str]:
    """Where one agent stands with the newest deployment object, and why, in a few words."""
    if status is None:
        return "waiting", "no report yet"
    applied_newest = (
        status.state == deployment_status_pb2.DEPLOYMENT_STATE_APPLIED
        and status.applied_deployment_object.id == desired.id
    )
    if status.state == deployment_status_pb2.DEPLOYMENT_STATE_FAILED and (
        status.failed_deployment_object.id in ("", desired.id)
    ):
        return "failed", status.last_error.message or "the agent nacked it"
    if not applied_newest:
        return "waiting", status.last_error.message
    worst = next(
        (f"{r.key.kind} {r.key.name}: {r.reason or r.message}" for r in status.resource_health if r.reason),
        "",
    )
    if status.health == agent_session_pb2.HEALTH_STATUS_FAILING:
        return "failed", worst or "FAILING"
    if status.health == agent_session_pb2.HEALTH_STATUS_HEALTHY:
        return "done", ""
    return "waiting", worst


def snapshot(ctx: Context, stack_id: str) -> tuple[stack_pb2.Stack, list[AgentRow]]:
    """The stack and one row per targeted agent, read now."""
    stack = ctx.call(ctx.client.stacks.GetStack, stack_api.GetStackRequest(id=stack_id)).stack
    reached = ctx.call(ctx.client.stacks.ListStackAgents, stack_api.ListStackAgentsRequest(id=stack_id))
    statuses = {
        s.agent_id: s
        for s in ctx.all_pages(
            ctx.client.deployment_statuses.ListDeploymentStatuses,
            status_api.ListDeploymentStatusesRequest(stack_id=stack_id),
            "deployment_statuses",
        )
    }
    desired = stack.desired_deployment_object
    rows = []
    for agent in reached.agents:
        status = statuses.get(agent.id)
        progress, message = classify(status, desired)
        applied = status.applied_deployment_object.sequence_id if status is not None else 0
        rows.append(
            AgentRow(
                agent=agent.name,
                cluster=agent.cluster_name,
                connection=_name(agent_pb2.ConnectionState.Name(agent.connection_state), "CONNECTION_STATE_"),
                applied=f"{applied or '-'}/{desired.sequence_id}",
                state=_name(deployment_status_pb2.DeploymentState.Name(status.state), "DEPLOYMENT_STATE_")
                if status is not None
                else "-",
                health=_name(agent_session_pb2.HealthStatus.Name(status.health), "HEALTH_STATUS_")
                if status is not None
                else "-",
                progress=progress,
                message=message,
            )
        )
    return stack, rows


def _table(stack: stack_pb2.Stack, rows: list[AgentRow], remaining: float) -> Table:
    done = sum(row.progress == "done" for row in rows)
    table = Table(
        title=f"stack/{stack.name} deployment object {stack.desired_deployment_object.sequence_id}: "
        f"{done}/{len(rows)} agents done, {max(remaining, 0):.0f}s left",
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for header in ("AGENT", "CLUSTER", "CONNECTION", "APPLIED", "STATE", "HEALTH", "MESSAGE"):
        table.add_column(header, overflow="fold")
    styles = {"done": "green", "failed": "red", "waiting": "yellow"}
    for row in rows:
        table.add_row(
            row.agent,
            row.cluster,
            row.connection,
            row.applied,
            row.state,
            f"[{styles[row.progress]}]{row.health}[/]",
            row.message,
        )
    return table


def verdict(rows: list[AgentRow]) -> Progress:
    if any(row.progress == "failed" for row in rows):
        return "failed"
    return "done" if all(row.progress == "done" for row in rows) else "waiting"


@click.group("rollout")
def rollout() -> None:
    """Follow stacks reaching their agents."""


@rollout.command("status")
@click.argument("stack")
@click.option(
    "--timeout",
    "timeout_text",
    default="5m",
    show_default=True,
    help="Give up after this long (90s, 5m, 1h30m); exit 4.",
)
@click.option(
    "--interval",
    "interval_text",
    default="2s",
    show_default=True,
    help="How often to ask the broker.",
)
@pass_ctx
def status(ctx: Context, stack: str, timeout_text: str, interval_text: str) -> None:
    """Wait until every agent STACK (a name or id) targets has applied its newest deployment object
    and reports it healthy (exit 0), one failed (exit 1), or the timeout passed (exit 4)."""
    timeout, interval = parse_duration(timeout_text), parse_duration(interval_text)
    if _UUID.fullmatch(stack):
        stack_id = stack
    else:
        found = find_stack(ctx, stack)
        if found is None:
            fail(f"STACK_NOT_FOUND: no stack named {stack!r}", EXIT_API_ERROR)
        stack_id = found.id
    deadline = time.monotonic() + timeout
    console = Console()
    live_view = ctx.fmt == "table" and console.is_terminal
    printed: dict[str, AgentRow] = {}

    def plain(current: stack_pb2.Stack, rows: list[AgentRow]) -> None:
        for row in rows:
            if printed.get(row.agent) != row:
                printed[row.agent] = row
                click.echo(row.plain())

    def watch(
        show: Callable[[stack_pb2.Stack, list[AgentRow]], None],
    ) -> tuple[stack_pb2.Stack, list[AgentRow], Progress]:
        while True:
            current, rows = snapshot(ctx, stack_id)
            if not current.desired_deployment_object.id:
                fail(
                    f"NO_DEPLOYMENT_OBJECT: stack/{current.name} has no deployment object yet", EXIT_API_ERROR
                )
            show(current, rows)
            outcome = verdict(rows)
            now = time.monotonic()
            if outcome != "waiting" or now >= deadline:
                return current, rows, outcome
            time.sleep(min(interval, deadline - now))

    if live_view:
        with Live(console=console, auto_refresh=False) as live:
            current, rows, outcome = watch(
                lambda s, r: live.update(_table(s, r, deadline - time.monotonic()), refresh=True)
            )
    elif ctx.fmt == "table":
        current, rows, outcome = watch(plain)
    else:
        current, rows, outcome = watch(lambda s, r: None)
        data = [asdict(row) for row in rows]
        click.echo(
            json.dumps(data, indent=2) if ctx.fmt == "json" else yaml.safe_dump(data), nl=ctx.fmt == "json"
        )
    sequence = current.desired_deployment_object.sequence_id
    done = sum(row.progress == "done" for row in rows)
    subject = f"stack/{current.name} deployment object {sequence}"
    if outcome == "done":
        if not rows:
            click.echo(f"{subject}: no ACTIVE agent is targeted; nothing to wait for", err=True)
        else:
            click.echo(f"{subject}: all {len(rows)} agents applied it and report it healthy", err=True)
        sys.exit(EXIT_OK)
    if outcome == "failed":
        failed = ", ".join(row.agent for row in rows if row.progress == "failed")
        fail(f"ROLLOUT_FAILED: {subject} failed on {failed}", EXIT_API_ERROR)
    fail(f"ROLLOUT_TIMEOUT: {subject}: {done}/{len(rows)} agents done after {timeout_text}", EXIT_TIMEOUT)
