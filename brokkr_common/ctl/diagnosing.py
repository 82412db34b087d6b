"""`brokkrctl diagnostics`: ask an agent what a stack looks like in its cluster, without kubectl.

A request is answered asynchronously: the broker stores it, the agent's session carries it, the
agent answers when it can (a disconnected agent when it reconnects). `request --wait` follows it
until it is answered (exit 0), fails or expires (exit 1), or the wait runs out (exit 4); without
`--wait` it prints the PENDING request, to be read later with `get`. Reports hold log tails: `-o
yaml` shows them whole, the table only the request's state.
"""

from __future__ import annotations

import time

import click

from brokkr_common.ctl.arguments import limit_option
from brokkr_common.ctl.context import EXIT_API_ERROR, EXIT_TIMEOUT, Context, fail, pass_ctx
from brokkr_common.ctl.rollout import parse_duration
from brokkr_common.pb.brokkr.v1 import diagnostics_pb2
from brokkr_common.pb.brokkr.v1 import diagnostics_service_pb2 as diagnostics_api

OPEN = (diagnostics_pb2.DIAGNOSTICS_STATE_PENDING, diagnostics_pb2.DIAGNOSTICS_STATE_SENT)


def _state(value: int) -> str:
    return diagnostics_pb2.DiagnosticsState.Name(value).removeprefix("DIAGNOSTICS_STATE_")


@click.group("diagnostics")
def diagnostics() -> None:
    """Pod statuses, events and log tails of a stack on an agent's cluster."""


@diagnostics.command("request")
@click.option("--agent", "agent_id", required=True, metavar="ID", help="The agent whose cluster to examine.")
@click.option("--stack", "stack_id", required=True, metavar="ID", help="The stack to examine.")
@click.option(
    "--tail-lines", type=int, default=0, help="Log lines per container, 1 to 500 [broker default: 50]."
)
@click.option(
    "--max-log-bytes",
    type=int,
    default=0,
    help="Log bytes per container, 1 to 65536 [broker default: 16384].",
)
@click.option("--previous", is_flag=True, help="Also the logs of restarted containers' previous instances.")
@click.option(
    "--wait", is_flag=True, help="Wait for the answer: exit 0 when COMPLETED, 1 when FAILED or EXPIRED."
)
@click.option(
    "--wait-timeout",
    default="3m",
    show_default=True,
    metavar="DURATION",
    help="How long --wait waits (30s, 2m) before exiting 4.",
)
@pass_ctx
def diagnostics_request(
    ctx: Context,
    agent_id: str,
    stack_id: str,
    tail_lines: int,
    max_log_bytes: int,
    previous: bool,
    wait: bool,
    wait_timeout: str,
) -> None:
    """Ask AGENT for diagnostics of STACK; show the request (and, with --wait, the report)."""
    request = diagnostics_api.CreateDiagnosticsRequest(
        diagnostics=diagnostics_pb2.Diagnostics(
            agent_id=agent_id,
            stack_id=stack_id,
            options=diagnostics_pb2.DiagnosticsOptions(
                log_tail_lines=tail_lines, max_log_bytes=max_log_bytes, include_previous_logs=previous
            ),
        )
    )
    found = ctx.call(ctx.client.diagnostics.CreateDiagnostics, request).diagnostics
    if wait:
        deadline = time.monotonic() + parse_duration(wait_timeout)
        while found.state in OPEN and time.monotonic() < deadline:
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
            found = ctx.call(
                ctx.client.diagnostics.GetDiagnostics, diagnostics_api.GetDiagnosticsRequest(id=found.id)
            ).diagnostics
    ctx.show(found, single=True)
    if not wait or found.state == diagnostics_pb2.DIAGNOSTICS_STATE_COMPLETED:
        return
    if found.state in OPEN:
        fail(
            f"DIAGNOSTICS_TIMEOUT: diagnostics {found.id} still {_state(found.state)} after {wait_timeout}",
            EXIT_TIMEOUT,
        )
    fail(f"DIAGNOSTICS_{_state(found.state)}: diagnostics {found.id}: {found.error.message}", EXIT_API_ERROR)


@diagnostics.command("get")
@click.argument("diagnostics_id")
@pass_ctx
def diagnostics_get(ctx: Context, diagnostics_id: str) -> None:
    """One request with its report (-o yaml or -o json to see the report whole)."""
    request = diagnostics_api.GetDiagnosticsRequest(id=diagnostics_id)
    ctx.show(ctx.call(ctx.client.diagnostics.GetDiagnostics, request).diagnostics, single=True)


@diagnostics.command("list")
@click.option("--agent", "agent_id", default="", metavar="ID", help="Only requests for this agent.")
@click.option("--stack", "stack_id", default="", metavar="ID", help="Only requests about this stack.")
@limit_option
@pass_ctx
def diagnostics_list(ctx: Context, agent_id: str, stack_id: str, limit: int) -> None:
    """Requests, newest first, without their reports."""
    request = diagnostics_api.ListDiagnosticsRequest(agent_id=agent_id, stack_id=stack_id)
    ctx.show(*ctx.all_pages(ctx.client.diagnostics.ListDiagnostics, request, "diagnostics", limit))
