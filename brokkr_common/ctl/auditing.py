"""`brokkrctl audit-logs`: who changed what, from where, and how it ended.

`--actor` takes a role (`admin`, `generator`, `agent`, `unauthenticated`) or a generator's or
agent's id; `--action` takes the full gRPC method or its short form `StackService/DeleteStack`.
"""

from __future__ import annotations

import click

from brokkr_common.ctl.arguments import limit_option, parse_time
from brokkr_common.ctl.context import Context, pass_ctx
from brokkr_common.pb.brokkr.v1 import audit_log_service_pb2 as audit_api

ROLES = ("admin", "generator", "agent", "unauthenticated")
PACKAGE = "/brokkr.v1."


def full_action(action: str) -> str:
    """`StackService/DeleteStack` -> `/brokkr.v1.StackService/DeleteStack`; full names unchanged."""
    if not action or action.startswith("/") or "/" not in action:
        return action
    return PACKAGE + action.removeprefix("brokkr.v1.")


@click.group("audit-logs")
def audit_logs() -> None:
    """The audit log of state-changing calls and failed authentications."""


@audit_logs.command("list")
@click.option("--actor", default="", help=f"A role ({', '.join(ROLES)}) or a generator's or agent's id.")
@click.option(
    "--action", default="", help="A method: /brokkr.v1.StackService/DeleteStack or StackService/DeleteStack."
)
@click.option("--resource", default="", help="A resource the call named, e.g. stacks/<id>.")
@click.option("--outcome", default="", help="OK or a gRPC status code name, e.g. PERMISSION_DENIED.")
@click.option(
    "--since", help="Only entries from this long ago (10m, 2h) or this time (2026-05-01T12:00:00Z)."
)
@click.option("--until", metavar="WHEN", help="Only entries before this long ago or this time.")
@limit_option
@pass_ctx
def audit_logs_list(
    ctx: Context,
    actor: str,
    action: str,
    resource: str,
    outcome: str,
    since: str | None,
    until: str | None,
    limit: int,
) -> None:
    """Audit log entries, newest first."""
    request = audit_api.ListAuditLogsRequest(
        actor_role=actor if actor in ROLES else "",
        actor_id="" if actor in ROLES else actor,
        action=full_action(action),
        resource=resource,
        outcome=outcome.upper(),
    )
    if since:
        request.start_time.CopyFrom(parse_time(since, "--since"))
    if until:
        request.end_time.CopyFrom(parse_time(until, "--until"))
    ctx.show(*ctx.all_pages(ctx.client.audit_logs.ListAuditLogs, request, "audit_logs", limit))
