"""Rendering API responses as tables (for people), JSON or YAML (for scripts).

Messages are converted with the proto JSON mapping, so `-o json` prints exactly what the REST shim
returns. Tables pick a few columns per kind; colour only when stdout is a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

import yaml
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.markup import escape
from rich.table import Table

OutputFormat = Literal["table", "json", "yaml"]

#: kind -> [(header, JSON field path)]
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "Agent": [
        ("ID", "id"),
        ("NAME", "name"),
        ("CLUSTER", "clusterName"),
        ("STATUS", "status"),
        ("CONNECTION", "connectionState"),
        ("LABELS", "labels"),
    ],
    "Generator": [("ID", "id"), ("NAME", "name"), ("DESCRIPTION", "description")],
    "Stack": [
        ("ID", "id"),
        ("NAME", "name"),
        ("GENERATOR", "generatorId"),
        ("LABELS", "labels"),
        ("VERSION", "desiredDeploymentObject.sequenceId"),
    ],
    "DeploymentObject": [
        ("ID", "id"),
        ("SEQ", "sequenceId"),
        ("CHECKSUM", "checksum"),
        ("DELETION", "isDeletionMarker"),
        ("CREATED", "createTime"),
    ],
    "Target": [("AGENT", "agentId"), ("STACK", "stackId"), ("CREATED", "createTime")],
    "Registration": [("AGENT", "agentId"), ("GENERATOR", "generatorId"), ("CREATED", "createTime")],
    "TargetMatch": [
        ("AGENT", "agentId"),
        ("STACK", "stackId"),
        ("EXPLICIT", "explicit"),
        ("LABELS", "sharedLabels"),
        ("ANNOTATIONS", "sharedAnnotations"),
    ],
    "Template": [
        ("ID", "id"),
        ("NAME", "name"),
        ("VERSION", "version"),
        ("LABELS", "labels"),
        ("UPDATED", "updateTime"),
    ],
    "Event": [
        ("ID", "id"),
        ("TIME", "time"),
        ("TYPE", "type"),
        ("ACTOR", "actorRole"),
        ("STACK", "stackId"),
        ("AGENT", "agentId"),
    ],
    "AuditLog": [
        ("TIME", "time"),
        ("ACTOR", "actorRole"),
        ("ACTOR ID", "actorId"),
        ("ACTION", "action"),
        ("RESOURCE", "resource"),
        ("OUTCOME", "outcome"),
    ],
    "Diagnostics": [
        ("ID", "id"),
        ("AGENT", "agentId"),
        ("STACK", "stackId"),
        ("STATE", "state"),
        ("REQUESTED", "requestTime"),
    ],
    "Webhook": [
        ("ID", "id"),
        ("URL", "redactedUrl"),
        ("EVENTS", "eventTypes"),
        ("ENABLED", "enabled"),
        ("AUTH", "hasAuthHeader"),
        ("SELECTOR", "labelSelector"),
    ],
    "WebhookDelivery": [
        ("ID", "id"),
        ("EVENT", "eventId"),
        ("TYPE", "eventType"),
        ("STATE", "state"),
        ("ATTEMPTS", "attemptCount"),
        ("HTTP", "lastStatusCode"),
        ("ERROR", "lastError"),
    ],
}


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def to_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, always_print_fields_with_no_presence=True)


def _lookup(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
        return value[:19] + "Z"  # whole seconds are enough to read; -o json has the rest
    if isinstance(value, str):
        for prefix in ("AGENT_STATUS_", "CONNECTION_STATE_", "ROLE_", "WEBHOOK_DELIVERY_STATE_"):
            value = value.removeprefix(prefix)
        return value
    return str(value).lower() if isinstance(value, bool) else str(value)


def render(messages: Sequence[Message], fmt: OutputFormat, *, single: bool = False) -> None:
    data = [to_dict(m) for m in messages]
    if fmt == "json":
        print(json.dumps(data[0] if single else data, indent=2))
        return
    if fmt == "yaml":
        print(yaml.safe_dump(data[0] if single else data, sort_keys=False), end="")
        return
    kind = messages[0].DESCRIPTOR.name if messages else ""
    columns = COLUMNS.get(kind)
    console = Console(soft_wrap=True)
    if columns is None:
        for item in data:
            console.print_json(json.dumps(item))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header, _ in columns:
        # Ids are copied and pasted whole; other columns fold to fit the terminal.
        table.add_column(header, overflow="fold", no_wrap=header == "ID", min_width=len(header))
    for item in data:
        table.add_row(*(_cell(_lookup(item, path)) for _, path in columns))
    console.print(table)


def error(message: str) -> None:
    """One line on stderr (never wrapped, so scripts can grep it), red only on a terminal."""
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(message)}", highlight=False)
