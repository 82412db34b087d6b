"""Database failures as Brokkr errors, so nothing above `broker.db` sees a driver exception.

* The database is down, unreachable, busy past its timeout, or the pool is exhausted: UNAVAILABLE
  with a retry hint. Clients retry these; nothing was committed. The driver's words (host names,
  ports) are logged, never sent to clients.
* PostgreSQL aborted the transaction for a deadlock or a serialization conflict: ABORTED, retry.
* A unique rule was broken: ALREADY_EXISTS, naming the rule. The rules are the schema's unique
  indexes and keys; PostgreSQL reports the index name, SQLite only the table and columns, so both
  are looked up in `tables.metadata`.

Anything else (a foreign key or NOT NULL violation, a syntax error) is a bug and is left alone, so
the edge answers INTERNAL and logs it.
"""

from __future__ import annotations

import re
from typing import NoReturn

import structlog
from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint, exc

from broker.db.tables import metadata
from brokkr_common.errors import Aborted, AlreadyExists, BrokkrError, Unavailable

log = structlog.get_logger("brokkr.db")

#: How long clients should wait before retrying when the database is unavailable.
RETRY_AFTER_SECONDS = 1.0

#: Unique rule -> (error class, reason, message).
_UNIQUE_RULES: dict[str, tuple[type[BrokkrError], str, str]] = {
    "ux_generators_live_name": (
        AlreadyExists,
        "GENERATOR_ALREADY_EXISTS",
        "a generator with this name already exists",
    ),
    "ux_agents_live_name_cluster": (
        AlreadyExists,
        "AGENT_ALREADY_EXISTS",
        "an agent with this name already exists in this cluster",
    ),
    "ux_stacks_live_name": (AlreadyExists, "STACK_ALREADY_EXISTS", "a stack with this name already exists"),
    "ux_targets_live": (
        AlreadyExists,
        "TARGET_ALREADY_EXISTS",
        "the stack is already targeted at this agent",
    ),
    "ux_registrations_live": (
        AlreadyExists,
        "REGISTRATION_ALREADY_EXISTS",
        "the agent is already registered with this generator",
    ),
    "pk_idempotency_records": (
        AlreadyExists,
        "REQUEST_ID_CONFLICT",
        "another request with this request_id was processed at the same time",
    ),
    "ux_api_keys_active_admin": (
        AlreadyExists,
        "KEY_CONFLICT",
        "another admin key was installed at the same time",
    ),
    "ux_api_keys_active_principal": (
        AlreadyExists,
        "KEY_CONFLICT",
        "another key was issued at the same time",
    ),
    "pk_api_keys": (AlreadyExists, "KEY_CONFLICT", "a key with this short token exists"),
    "ux_templates_live_owner_name": (
        AlreadyExists,
        "TEMPLATE_ALREADY_EXISTS",
        "the generator already has a template with this name",
    ),
    "ux_templates_live_system_name": (
        AlreadyExists,
        "TEMPLATE_ALREADY_EXISTS",
        "a system template with this name already exists",
    ),
    "ux_deployment_objects_stack_sequence": (
        Aborted,
        "CONCURRENT_CHANGE",
        "a concurrent change took this sequence id; retry",
    ),
}

_PG_UNIQUE_VIOLATION = "23505"
_PG_RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")


def _unique_rules_by_columns() -> dict[tuple[str, tuple[str, ...]], str]:
    """(table, columns) -> rule name, for SQLite, which names columns instead of indexes."""
    found: dict[tuple[str, tuple[str, ...]], str] = {}
    for table in metadata.tables.values():
        rules = [index for index in table.indexes if index.unique]
        rules += [c for c in table.constraints if isinstance(c, PrimaryKeyConstraint | UniqueConstraint)]
        for rule in rules:
            if isinstance(rule.name, str):
                found[(table.name, tuple(column.name for column in rule.columns))] = rule.name
    return found


_BY_COLUMNS = _unique_rules_by_columns()


def translate(error: BaseException) -> BrokkrError | None:
    """The Brokkr error for a database failure, or None when it is not one callers should see."""
    if isinstance(error, exc.TimeoutError):
        return _unavailable("timed out waiting for a database connection; retry later")
    if not isinstance(error, exc.DBAPIError):
        return None
    if isinstance(error, exc.IntegrityError):
        return _unique_violation(error)
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _PG_RETRYABLE:
        return Aborted("the transaction conflicted with a concurrent one; retry", reason="CONCURRENT_CHANGE")
    if error.connection_invalidated or isinstance(error, exc.OperationalError | exc.InterfaceError):
        log.warning("database unavailable", error=_first_line(error.orig))
        return _unavailable("the database is unavailable; retry later")
    return None


def reraise(error: Exception) -> NoReturn:
    """Raise the Brokkr error for `error` (chained to it), or `error` itself when there is none."""
    translated = translate(error)
    if translated is None:
        raise error
    raise translated from error


def _unavailable(message: str) -> Unavailable:
    return Unavailable(message, reason="DATABASE_UNAVAILABLE", retry_after_seconds=RETRY_AFTER_SECONDS)


def _unique_violation(error: exc.IntegrityError) -> BrokkrError | None:
    rule = _violated_rule(error)
    if rule is None or rule not in _UNIQUE_RULES:
        return None
    error_class, reason, message = _UNIQUE_RULES[rule]
    return error_class(message, reason=reason, metadata={"rule": rule})


def _violated_rule(error: exc.IntegrityError) -> str | None:
    original = error.orig
    if getattr(original, "sqlstate", None) == _PG_UNIQUE_VIOLATION:
        return getattr(getattr(original, "diag", None), "constraint_name", None)
    found = _SQLITE_UNIQUE.search(str(original))
    if found is None:
        return None
    qualified = [column.strip().split(".", 1) for column in found.group(1).split(",")]
    table = qualified[0][0]
    return _BY_COLUMNS.get((table, tuple(column for _, column in qualified)))


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "no details"
