"""`brokkrctl events`: read the event log, or follow it live over WatchEvents.

`events list` pages through stored events, oldest first. `events watch` (and its short form
`events --follow`) prints every event as it is committed: one line per event in table mode, one JSON
object per line (NDJSON) with `-o json`, one YAML document per event with `-o yaml`.

Following is meant to run for hours, so a broken stream is not the end of it. When the stream ends
(the broker shut down: the stream closes with OK) or breaks (UNAVAILABLE, CANCELLED,
DEADLINE_EXCEEDED), brokkrctl says so on stderr, waits (backoff from 0.5 s doubling to 5 s), checks
the broker answers, and opens a new watch after the last event it printed, so nothing is lost or
printed twice. If the broker stays unreachable longer than `--reconnect-for` (0: do not reconnect)
it gives up with exit code 3. Any other error (bad key, not an admin) exits 1 at once. Ctrl-C stops
following and exits 0.

One gap remains: before the first event arrives, a watch started "from now" has no position to
resume from; events committed while such a stream was down are not shown. `--after ID` (or `0`
for the whole log) gives it one.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import click
import yaml
from google.rpc import code_pb2

from brokkr_common.ctl import output
from brokkr_common.ctl.arguments import limit_option, parse_time, stack_id
from brokkr_common.ctl.context import EXIT_OK, EXIT_UNREACHABLE, Context, fail, pass_ctx
from brokkr_common.ctl.rollout import parse_duration
from brokkr_common.errors import BrokkrError
from brokkr_common.pb.brokkr.v1 import auth_service_pb2 as auth_api
from brokkr_common.pb.brokkr.v1 import event_pb2
from brokkr_common.pb.brokkr.v1 import event_service_pb2 as event_api

#: Codes that mean "the stream broke", not "the broker refused": reconnect.
BROKEN = frozenset({code_pb2.UNAVAILABLE, code_pb2.CANCELLED, code_pb2.DEADLINE_EXCEEDED})
FIRST_DELAY = 0.5
MAX_DELAY = 5.0


def _whole(value: Any) -> Any:
    """Struct numbers are doubles; a sequence id reads better as 7 than as 7.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


def event_line(event: event_pb2.Event) -> str:
    """One event on one line: id, time, type, what it is about, who did it, its details."""
    when = event.time.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
    about = [
        f"{kind}/{value}"
        for kind, value in (
            ("stack", event.stack_id),
            ("agent", event.agent_id),
            ("deployment-object", event.deployment_object_id),
            ("template", event.template_id),
        )
        if value
    ]
    actor = f"{event.actor_role}/{event.actor_id}" if event.actor_id else event.actor_role
    payload = output.to_dict(event.payload) if event.payload.fields else {}
    details = " ".join(f"{key}={json.dumps(_whole(value))}" for key, value in sorted(payload.items()))
    return "  ".join(
        part for part in (event.id, when, event.type, ",".join(about) or "-", f"by {actor}", details) if part
    )


def printer(fmt: output.OutputFormat) -> Callable[[event_pb2.Event], None]:
    if fmt == "json":
        return lambda event: click.echo(json.dumps(output.to_dict(event), separators=(",", ":")))
    if fmt == "yaml":
        return lambda event: click.echo(
            "---\n" + yaml.safe_dump(output.to_dict(event), sort_keys=False), nl=False
        )
    return lambda event: click.echo(event_line(event))


@click.group("events", invoke_without_command=True)
@click.option("-f", "--follow", is_flag=True, help="Follow new events of every type (see `events watch`).")
@click.pass_context
def events(click_ctx: click.Context, follow: bool) -> None:
    """The event log. Alone, `events` is `events list`; `events --follow` is `events watch`."""
    if click_ctx.invoked_subcommand is not None:
        if follow:
            raise click.UsageError("--follow takes no subcommand; use `events watch` to filter")
        return
    click_ctx.invoke(events_watch if follow else events_list)


@events.command("list")
@click.option(
    "--type", "types", multiple=True, metavar="PATTERN", help="deployment.*, stack.created or *; repeatable."
)
@click.option(
    "--stack",
    default="",
    metavar="STACK",
    help="Only events about this stack (an id or a live stack's name).",
)
@click.option("--agent", "agent_id", default="", metavar="ID", help="Only events about this agent (id).")
@click.option(
    "--since",
    metavar="WHEN",
    help="Only events from this long ago (10m, 2h) or this time (2026-05-01T12:00:00Z).",
)
@click.option("--until", metavar="WHEN", help="Only events before this long ago or this time.")
@limit_option
@pass_ctx
def events_list(
    ctx: Context,
    types: tuple[str, ...] = (),
    stack: str = "",
    agent_id: str = "",
    since: str | None = None,
    until: str | None = None,
    limit: int = 0,
) -> None:
    """Stored events, oldest first."""
    request = event_api.ListEventsRequest(
        types=types, stack_id=stack_id(ctx, stack) if stack else "", agent_id=agent_id
    )
    if since:
        request.start_time.CopyFrom(parse_time(since, "--since"))
    if until:
        request.end_time.CopyFrom(parse_time(until, "--until"))
    ctx.show(*ctx.all_pages(ctx.client.events.ListEvents, request, "events", limit))


@events.command("watch")
@click.option(
    "--type", "types", multiple=True, metavar="PATTERN", help="deployment.*, stack.created or *; repeatable."
)
@click.option(
    "--after",
    default="",
    metavar="EVENT_ID",
    help="First print the stored events after this one (0: all of them), then follow.",
)
@click.option("--stack", "stack_filter", default="", metavar="ID", help="Only events about this stack (id).")
@click.option("--agent", "agent_filter", default="", metavar="ID", help="Only events about this agent (id).")
@click.option(
    "--reconnect-for",
    "reconnect_text",
    default="1m",
    metavar="DURATION",
    show_default=True,
    help="When the stream breaks, keep trying this long (0: not at all), then exit 3.",
)
@pass_ctx
def events_watch(
    ctx: Context,
    types: tuple[str, ...] = (),
    after: str = "",
    stack_filter: str = "",
    agent_filter: str = "",
    reconnect_text: str = "1m",
) -> None:
    """Print events as they happen, until Ctrl-C (exit 0).

    One line per event in table mode (id, time, type, subjects, actor, details), one JSON object
    per line with -o json, one YAML document per event with -o yaml. Without --after only events
    committed from now on are printed.

    When the stream ends or breaks (broker restart, network), a note goes to stderr and the watch
    reconnects after the last event it received, so nothing is missed or printed twice; after
    --reconnect-for without reaching the broker it exits 3. Any other error exits 1. Before the
    first event arrives there is no position to resume from: events committed while such a watch
    reconnects are not shown (use --after to have one)."""
    reconnect_for = parse_duration(reconnect_text)
    show = printer(ctx.fmt)
    # Fails fast, with the usual one-line error and exit code, on a wrong address or key.
    ctx.call(ctx.client.auth.WhoAmI, auth_api.WhoAmIRequest())
    last = after
    try:
        while True:
            request = event_api.WatchEventsRequest(types=types, after_event_id=last)
            try:
                for reply in ctx.client.stream(ctx.client.events.WatchEvents, request):
                    last = reply.event.id
                    if stack_filter and reply.event.stack_id != stack_filter:
                        continue
                    if agent_filter and reply.event.agent_id != agent_filter:
                        continue
                    show(reply.event)
                why = "the broker closed the stream"
            except BrokkrError as error:
                if error.code not in BROKEN:
                    ctx.fail_api(error)
                why = f"{code_pb2.Code.Name(error.code)}: {error.message}"
            _reconnect(ctx, why, last, reconnect_for)
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)


def _reconnect(ctx: Context, why: str, last: str, reconnect_for: float) -> None:
    """Wait until the broker answers again; exit 3 when it has not within `reconnect_for`."""
    if reconnect_for <= 0:
        fail(f"{why}; not reconnecting (--reconnect-for 0)", EXIT_UNREACHABLE)
    position = f"after event {last}" if last else "from now"
    click.echo(f"watch interrupted ({why}); reconnecting {position}", err=True)
    give_up = time.monotonic() + reconnect_for
    delay = FIRST_DELAY
    while True:
        time.sleep(min(delay, max(give_up - time.monotonic(), 0)))
        try:
            ctx.client.call(ctx.client.auth.WhoAmI, auth_api.WhoAmIRequest())
            return
        except BrokkrError as error:
            if error.code not in BROKEN:
                ctx.fail_api(error)
            if time.monotonic() >= give_up:
                fail(
                    f"{code_pb2.Code.Name(error.code)}: {error.message}; gave up reconnecting after "
                    f"{reconnect_for:g}s",
                    EXIT_UNREACHABLE,
                )
        delay = min(delay * 2, MAX_DELAY)
