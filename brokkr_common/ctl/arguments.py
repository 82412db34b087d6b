"""Reading what people type and the files they point at, the same way in every command group.

KEY=VALUE pairs, times given as "how long ago" or as a timestamp, `--limit`, YAML/JSON files (`-`
is standard input), parameter values as YAML scalars, and stacks or templates named by name or id.
A value that cannot be read is a usage error: one line on stderr, exit 2, nothing sent.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from google.protobuf import struct_pb2, timestamp_pb2

from brokkr_common.ctl.context import EXIT_API_ERROR, EXIT_USAGE, Context, fail
from brokkr_common.ctl.rollout import parse_duration
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api

F = TypeVar("F", bound=Callable[..., Any])

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """`("env=prod", "tier=web")` -> `{"env": "prod", "tier": "web"}`."""
    found: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        found[key] = val
    return found


def limit_option(command: F) -> F:
    """`--limit N`: stop after N items instead of reading every page."""
    return click.option(
        "--limit",
        type=click.IntRange(min=0),
        default=0,
        metavar="N",
        help="Show at most this many (0: all; every page is read).",
    )(command)


def parse_time(text: str, option: str) -> timestamp_pb2.Timestamp:
    """`10m`, `1h30m`, `90s` ago, or an ISO 8601 / RFC 3339 time (`2026-05-01T12:00:00Z`; UTC when
    it names no zone)."""
    moment: datetime
    try:
        moment = datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except click.BadParameter:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise click.BadParameter(
                f"{text!r} is neither a duration (10m, 1h30m) nor a time (2026-05-01T12:00:00Z)",
                param_hint=option,
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def read_text(path: str) -> str:
    """A file's text; `-` is standard input."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {getattr(error, 'strerror', None) or error}", EXIT_USAGE)


def read_mapping(path: str, what: str) -> dict[str, Any]:
    """A YAML (or JSON, which is YAML) file holding one mapping."""
    try:
        loaded = yaml.safe_load(read_text(path))
    except yaml.YAMLError as error:
        fail(f"{path}: invalid YAML or JSON in the {what}: {str(error).splitlines()[0]}", EXIT_USAGE)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        fail(f"{path}: the {what} must be a mapping, not a {type(loaded).__name__}", EXIT_USAGE)
    return _json_safe(loaded)


def _json_safe(value: Any) -> Any:
    """YAML's dates and timestamps as the text they were written as; everything else unchanged."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def scalar(text: str) -> Any:
    """A parameter value as YAML reads it: `3` is a number, `true` a boolean, `null` null, `[a, b]`
    a list; anything YAML cannot read, an empty value and dates stay text."""
    if text == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, datetime | date):
        return text
    return _json_safe(value)


def set_parameters(target: dict[str, Any], assignments: tuple[str, ...], option: str) -> dict[str, Any]:
    """Apply `key=value` assignments; a dotted key (`image.tag=v2`) sets a nested value."""
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise click.BadParameter(f"{assignment!r} is not KEY=VALUE", param_hint=option)
        *parents, leaf = key.split(".")
        node = target
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = scalar(text)
    return target


def to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    try:
        struct.update(value)
    except (ValueError, TypeError) as error:
        fail(f"cannot send {json.dumps(value, default=str)[:80]}: {error}", EXIT_USAGE)
    return struct


def stack_id(ctx: Context, stack: str) -> str:
    """The id of STACK given as an id or as the name of a live stack the key can see."""
    if UUID.fullmatch(stack):
        return stack
    listed = ctx.all_pages(ctx.client.stacks.ListStacks, stack_api.ListStacksRequest(), "stacks")
    found = next((str(candidate.id) for candidate in listed if candidate.name == stack), None)
    if found is None:
        fail(f"STACK_NOT_FOUND: no stack named {stack!r}", EXIT_API_ERROR)
    return found
