"""The storage the use cases need, as interfaces: repositories and the unit of work that holds them.

Services depend only on these protocols and the domain model, so their unit tests can use
in-memory fakes while `broker.db` implements them with SQL. Repositories have small surfaces that
say what the use cases ask, not what SQL can do; each returns domain objects, never rows.

A unit of work is one transaction:

    async with uow:
        stack = await uow.stacks.get(stack_id)
        ...
        uow.record(StackChanged(stack.id))
        await uow.commit()

Leaving the block without `commit()` rolls everything back. Database failures leave the block as
`BrokkrError`s (UNAVAILABLE, ABORTED, ALREADY_EXISTS for a unique rule), never driver exceptions.

Lists use keyset pagination: `list_page(after=position, limit=n)` returns up to `n` rows that sort
after `position` (the sort key of the last row of the previous page; `()` for the first page). Each
repository documents its order and the position it takes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from broker.domain.audit import AuditEntry
from broker.domain.changes import Change
from broker.domain.deployments import (
    ApplyReport,
    DeploymentRecord,
    HealthReport,
    Heartbeat,
    Hello,
    SessionOpened,
)
from broker.domain.diagnostics import Diagnostics, DiagnosticsError, DiagnosticsState
from broker.domain.events import Event
from broker.domain.model import (
    Agent,
    DeploymentObject,
    Generator,
    Registration,
    Role,
    Stack,
    Target,
)
from broker.domain.templates import Template
from broker.domain.webhooks_records import (
    Claim,
    DeliveryAttempt,
    DeliveryState,
    WebhookDelivery,
    WebhookSubscription,
)

#: The sort key of the last row of the previous page; () for the first page.
Position = tuple[str | int, ...]

#: Called with the changes of each committed transaction that recorded any.
OnCommit = Callable[[tuple[Change, ...]], Awaitable[None]]


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored key: its public short token, the SHA-256 of its secret part, and whose it is."""

    short_token: str
    long_hash: str
    role: Role
    principal_id: str | None
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class KeyOwner:
    """The agent or generator a key belongs to, as authentication needs it."""

    name: str
    deleted: bool


@dataclass(frozen=True)
class IdempotencyRecord:
    """A create that carried a request_id (AIP-155): who asked, what, and what it created."""

    principal: str
    method: str
    request_id: str
    request_fingerprint: str
    resource_id: str
    created_at: datetime


@dataclass(frozen=True)
class AgentCandidate:
    """An agent a stack may reach, with what the targeting rule needs to decide."""

    agent: Agent
    explicit: bool
    generator_ids: frozenset[str]


@dataclass(frozen=True)
class StackCandidate:
    """A stack that may reach an agent; `explicit` when a target joins them."""

    stack: Stack
    explicit: bool


@dataclass(frozen=True)
class AgentStackCandidates:
    """An agent (deleted or INACTIVE ones too), its registrations, and the live stacks that may
    reach it, by name: what the targeting rule needs to decide for that agent."""

    agent: Agent
    generator_ids: frozenset[str]
    stacks: list[StackCandidate]


class GeneratorRepository(Protocol):
    """Generators, ordered by (name, id)."""

    async def add(self, generator: Generator) -> None: ...

    async def get(self, generator_id: str) -> Generator | None:
        """The generator, deleted or not."""
        ...

    async def update(self, generator: Generator) -> None:
        """Store name, description, updated_at and deleted_at."""
        ...

    async def list_page(
        self, *, after: Position, limit: int, show_deleted: bool, only_id: str | None = None
    ) -> list[Generator]: ...


class AgentRepository(Protocol):
    """Agents with their labels and annotations, ordered by (name, cluster_name, id)."""

    async def add(self, agent: Agent) -> None: ...

    async def get(self, agent_id: str) -> Agent | None:
        """The agent, deleted or not."""
        ...

    async def labels_of(self, agent_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Agent id -> its labels, for each id asked for (empty for unknown ones)."""
        ...

    async def update(self, agent: Agent) -> None:
        """Store every mutable field, labels and annotations included."""
        ...

    async def list_page(
        self,
        *,
        after: Position,
        limit: int,
        show_deleted: bool,
        labels: Mapping[str, str],
        registered_with: str | None = None,
    ) -> list[Agent]:
        """Agents carrying all of `labels`; only those registered with a generator if given."""
        ...


class StackRepository(Protocol):
    """Stacks with labels, annotations and desired deployment object, ordered by (name, id)."""

    async def add(self, stack: Stack) -> None: ...

    async def get(self, stack_id: str) -> Stack | None:
        """The stack, deleted or not."""
        ...

    async def labels_of(self, stack_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Stack id -> its labels, for each id asked for (empty for unknown ones)."""
        ...

    async def update(self, stack: Stack) -> None:
        """Store name, description, labels, annotations, updated_at and deleted_at."""
        ...

    async def list_page(
        self,
        *,
        after: Position,
        limit: int,
        show_deleted: bool,
        labels: Mapping[str, str],
        generator_id: str | None = None,
    ) -> list[Stack]:
        """Stacks carrying all of `labels`; only one generator's if given."""
        ...

    async def allocate_sequence_id(self, stack_id: str) -> int | None:
        """Reserve the next deployment object sequence id of a live stack (None if deleted).

        Holds the stack's row lock until the transaction ends, so concurrent writers of one stack
        take turns and never share a number.
        """
        ...

    async def generator_has_live_stacks(self, generator_id: str) -> bool: ...


class DeploymentObjectRepository(Protocol):
    """Deployment objects of a stack, newest first: position (sequence_id,)."""

    async def add(self, deployment_object: DeploymentObject) -> None:
        """Store it with its resources. There is no update: deployment objects are immutable."""
        ...

    async def get(self, deployment_object_id: str) -> DeploymentObject | None:
        """With YAML content and resources."""
        ...

    async def get_many(self, deployment_object_ids: Sequence[str]) -> dict[str, DeploymentObject]:
        """Those that exist, by id, with YAML content and resources; a few queries for any number."""
        ...

    async def list_page(
        self, stack_id: str, *, after: Position, limit: int, include_content: bool
    ) -> list[DeploymentObject]:
        """Without `include_content`, yaml_content is "" and resources are empty."""
        ...


class TargetRepository(Protocol):
    """Live explicit targets, ordered by (agent_id, stack_id)."""

    async def add(self, target: Target) -> None: ...

    async def exists(self, agent_id: str, stack_id: str) -> bool: ...

    async def remove(self, agent_id: str, stack_id: str, at: datetime) -> bool:
        """Soft-delete the live target; False if there was none."""
        ...

    async def list_page(
        self,
        *,
        after: Position,
        limit: int,
        agent_id: str | None = None,
        stack_id: str | None = None,
        stack_owner: str | None = None,
    ) -> list[Target]:
        """Targets matching every filter given; `stack_owner` keeps one generator's stacks."""
        ...


class RegistrationRepository(Protocol):
    """Live registrations, ordered by (agent_id, generator_id)."""

    async def add(self, registration: Registration) -> None: ...

    async def exists(self, agent_id: str, generator_id: str) -> bool: ...

    async def remove(self, agent_id: str, generator_id: str, at: datetime) -> bool:
        """Soft-delete the live registration; False if there was none."""
        ...

    async def generator_ids(self, agent_id: str) -> frozenset[str]:
        """The generators the agent is registered with."""
        ...

    async def list_page(
        self, *, after: Position, limit: int, agent_id: str | None = None, generator_id: str | None = None
    ) -> list[Registration]: ...


class TargetingQueries(Protocol):
    """The SQL half of targeting: candidates narrowed by indexes, for `targeting.match` to decide.

    Candidates are live, the agents ACTIVE, and each joined by an explicit target or by a shared
    label or annotation with registration to the stack's generator (or a generator-less stack).
    """

    async def agent_candidates(self, stack: Stack) -> list[AgentCandidate]: ...

    async def stack_candidates(self, agent: Agent) -> list[StackCandidate]: ...

    async def stack_candidates_of(self, agent_ids: Sequence[str]) -> dict[str, AgentStackCandidates]:
        """`stack_candidates` for many agents at once, by agent id; unknown ids are left out."""
        ...


class AgentConnectionRepository(Protocol):
    """Each agent's connection, kept on its row and written only by agent sessions.

    A session is identified by (agent id, session id); only the agent's newest session may change
    its connection, so a stream ending on one replica cannot mark disconnected an agent that has
    meanwhile reconnected to another.
    """

    async def connect(self, sessions: Sequence[SessionOpened]) -> list[SessionOpened]:
        """Make each session the agent's current one, CONNECTED, unless the agent is deleted or its
        current session was opened later (or is this one already); of several sessions of one agent
        only the newest counts. Return the sessions that became current."""
        ...

    async def record_hellos(self, hellos: Sequence[Hello]) -> list[Hello]:
        """Store the version each agent reports (at most one Hello per agent) if the Hello's session
        is the agent's current one; return the Hellos stored."""
        ...

    async def disconnect(self, sessions: Sequence[tuple[str, str]]) -> list[str]:
        """Mark DISCONNECTED each agent whose current session is the one named, (agent id, session id);
        return the ids of the agents that were CONNECTED through it."""
        ...

    async def sessions_on(self, replica: str) -> dict[str, str]:
        """Agent id -> session id of the agents recorded CONNECTED to `replica`."""
        ...

    async def disconnect_silent(self, before: datetime, *, except_replica: str) -> list[str]:
        """Mark DISCONNECTED every CONNECTED agent last heard of (connect or heartbeat) before `before`,
        except those recorded connected to `except_replica`; return their ids."""
        ...

    async def record_heartbeats(self, heartbeats: Sequence[Heartbeat]) -> None:
        """Store each agent's heartbeat time and Kubernetes reachability unless a newer one is stored.

        At most one heartbeat per agent.
        """
        ...


class DeploymentStatusRepository(Protocol):
    """What each agent last reported about each stack: one `DeploymentRecord` per agent x stack.

    Writes are bulk upserts that keep the newest report: one older than the stored one (by its
    `at`) changes nothing, so reports flushed late by another replica cannot undo newer ones. Reports
    about agents or stacks that do not exist are dropped. Each batch holds at most one apply report
    and one health report per agent x stack.
    """

    async def record_applies(self, reports: Sequence[ApplyReport]) -> list[ApplyReport]:
        """Acks set the outcome (APPLIED or REMOVED) and the applied version and clear any error; nacks
        set FAILED, the failed version and the error, and leave the applied version as it was.
        Return the reports about existing agents and stacks."""
        ...

    async def record_health(self, reports: Sequence[HealthReport]) -> list[tuple[HealthReport, str | None]]:
        """Store the health reports; return those that change the stored health state, each with
        the state before (None when there was none)."""
        ...

    async def record_held(self, hellos: Sequence[Hello]) -> None:
        """What each agent says in its Hello it holds (stack id -> deployment object id, None for an
        unknown version) replaces what was recorded as applied, unless a newer report is stored:
        held stacks are APPLIED (a version that is not one of the stack's counts as unknown), stacks
        it no longer holds are REMOVED. FAILED outcomes stay, so a parked version stays parked
        across reconnects. At most one Hello per agent; Hellos of unknown agents change nothing."""
        ...

    async def parked(self, agent_id: str) -> dict[str, str]:
        """Stack id -> the deployment object the agent nacked, for its FAILED stacks."""
        ...

    async def agent_ids(self, stack_id: str, *, registered_with: str | None = None) -> list[str]:
        """The live agents with a record for the stack; only those registered with a generator if given."""
        ...

    async def stack_ids(self, agent_id: str, *, stack_owner: str | None = None) -> list[str]:
        """The stacks the agent has a record for; only one generator's if given."""
        ...

    async def for_stack(self, stack_id: str, agent_ids: Sequence[str]) -> dict[str, DeploymentRecord]:
        """The records of these agents for the stack, by agent id."""
        ...

    async def for_agent(self, agent_id: str, stack_ids: Sequence[str]) -> dict[str, DeploymentRecord]:
        """The records of the agent for these stacks, by stack id."""
        ...


class KeyRepository(Protocol):
    """API keys, looked up by their short token on every call."""

    async def add(self, key: ApiKeyRecord) -> None: ...

    async def find(self, short_token: str) -> ApiKeyRecord | None:
        """The key with this short token, revoked or not."""
        ...

    async def find_with_owner(self, short_token: str) -> tuple[ApiKeyRecord, KeyOwner | None] | None:
        """`find`, with the key's agent or generator read in the same query (None for admin keys
        and for keys whose owner is gone): what authenticating a call needs, in one round trip."""
        ...

    async def active_admin_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke(self, role: Role, principal_id: str | None, at: datetime) -> None:
        """Revoke every active key of the principal (all admin keys when role is admin)."""
        ...

    async def reinstate(self, key: ApiKeyRecord) -> None:
        """Make a stored key (found by short token) active again with this hash and owner."""
        ...


class IdempotencyRepository(Protocol):
    async def find(self, principal: str, method: str, request_id: str) -> IdempotencyRecord | None: ...

    async def add(self, record: IdempotencyRecord) -> None: ...


class EventRepository(Protocol):
    """The append-only event log, ordered by id, which ascends in commit order."""

    async def append_many(self, events: Sequence[Event]) -> list[Event]:
        """`append` for several events at once, in order, in one round trip."""
        ...

    async def append(self, event: Event) -> Event:
        """Store the event (its `id` is ignored) and return it with its id. Call it as the last
        write before committing: on PostgreSQL it serialises event-writing transactions until they end."""
        ...

    async def list_page(
        self,
        *,
        after: int,
        limit: int,
        types: Collection[str] | None = None,
        stack_id: str | None = None,
        agent_id: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> list[Event]:
        """Events with an id above `after` matching every filter given (`types`: exact types)."""
        ...

    async def last_id(self) -> int:
        """The newest event's id; 0 when there is none."""
        ...


class AuditLogRepository(Protocol):
    """Audited calls, listed newest first (by id)."""

    async def add_many(self, entries: Sequence[AuditEntry]) -> None: ...

    async def list_page(
        self,
        *,
        before: int | None,
        limit: int,
        actor_role: str | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        outcome: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> list[AuditEntry]:
        """Entries with an id below `before` (all for None) matching every filter given."""
        ...

    async def purge(self, before: datetime) -> int:
        """Erase entries older than `before`; returns how many."""
        ...


class WebhookRepository(Protocol):
    """Webhook subscriptions, ordered by id, and their deliveries (the outbox), newest first.

    Deliveries are claimed in due order (`next_attempt_at`) by the workers of every replica: a
    claim marks them IN_FLIGHT until `lease_until`, after which another worker may claim them again
    (its worker is presumed dead). On PostgreSQL concurrent claims skip each other's rows (`FOR
    UPDATE SKIP LOCKED`), so no row is claimed twice at once.
    """

    async def add(self, subscription: WebhookSubscription) -> None: ...

    async def get(self, subscription_id: str) -> WebhookSubscription | None:
        """The subscription, deleted or not."""
        ...

    async def update(self, subscription: WebhookSubscription) -> None:
        """Store every mutable field, sealed ones included."""
        ...

    async def list_page(self, *, after: Position, limit: int) -> list[WebhookSubscription]:
        """Live subscriptions; position (id,)."""
        ...

    async def any_live(self) -> bool:
        """Whether any live subscription exists (they hold sealed secrets)."""
        ...

    async def live_enabled(self) -> list[WebhookSubscription]:
        """Every live, enabled subscription: the candidates for a new event."""
        ...

    async def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None: ...

    async def claim(
        self, *, now: datetime, lease_until: datetime, limit: int, claimed_by: str, token: str
    ) -> Claim:
        """Up to `limit` due deliveries (PENDING or IN_FLIGHT with `next_attempt_at <= now`), made
        IN_FLIGHT under `token` with one more attempt counted."""
        ...

    async def finish(
        self,
        delivery_id: str,
        token: str,
        attempt: DeliveryAttempt,
        *,
        state: DeliveryState,
        next_attempt_at: datetime,
        at: datetime,
    ) -> bool:
        """Record an attempt and the delivery's new state; False (nothing written) if the claim
        `token` no longer holds it."""
        ...

    async def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        """With its attempt log."""
        ...

    async def list_deliveries(
        self, subscription_id: str, *, after: Position, limit: int
    ) -> list[WebhookDelivery]:
        """Newest first, each with its attempt log; position (created_at in microseconds, id)."""
        ...


class TemplateRepository(Protocol):
    """Templates at one version each; lists ordered by (name, id), versions newest first."""

    async def add(self, template: Template) -> None:
        """Store a new template with its first version (`template.version`)."""
        ...

    async def allocate_version(self, template_id: str) -> int | None:
        """Reserve the next version number of a live template (None if deleted).

        Holds the template's row lock until the transaction ends, like
        `StackRepository.allocate_sequence_id`.
        """
        ...

    async def add_version(self, template: Template) -> None:
        """Store `template.version` (reserved by `allocate_version`) as a new, immutable version."""
        ...

    async def get(self, template_id: str, version: int | None = None) -> Template | None:
        """The template at `version` (the newest when None), deleted or not; None if either is missing."""
        ...

    async def mark_deleted(self, template_id: str, at: datetime) -> None: ...

    async def list_page(
        self,
        *,
        after: Position,
        limit: int,
        show_deleted: bool,
        name: str | None = None,
        generator_id: str | None = None,
        readable_by: str | None = None,
    ) -> list[Template]:
        """Templates at their newest version matching every filter given; `readable_by` keeps one
        generator's templates and the system's."""
        ...

    async def list_versions(self, template_id: str, *, after: Position, limit: int) -> list[Template]:
        """The template's versions, newest first: position (version,)."""
        ...


class DiagnosticsRepository(Protocol):
    """Diagnostics requests, listed newest first: position (requested_at in microseconds, id).

    State changes apply only to open (PENDING or SENT) requests and say whether they applied, so
    racing writers (a result arriving as the request expires) settle on one outcome.
    """

    async def add(self, request: Diagnostics) -> None: ...

    async def get(self, diagnostics_id: str) -> Diagnostics | None:
        """With its report."""
        ...

    async def list_page(
        self, *, after: Position, limit: int, agent_id: str | None = None, stack_id: str | None = None
    ) -> list[Diagnostics]:
        """Without reports."""
        ...

    async def open_for_agent(self, agent_id: str | None, now: datetime) -> list[Diagnostics]:
        """The agent's PENDING and SENT requests not yet overdue, oldest first; every agent's for
        None (they are few: requests are rare and expire within minutes)."""
        ...

    async def mark_sent(self, diagnostics_id: str, at: datetime) -> bool: ...

    async def finish(
        self,
        diagnostics_id: str,
        *,
        agent_id: str,
        state: DiagnosticsState,
        at: datetime,
        expires_at: datetime,
        error: DiagnosticsError | None = None,
        report: dict[str, Any] | None = None,
        answered: bool = False,
    ) -> bool:
        """Finish an open request of `agent_id`; False (nothing written) if there is none.
        `answered`: the agent answered it, so it was sent (sets `sent_at` if unset)."""
        ...

    async def expire_overdue(
        self, now: datetime, *, expires_at: datetime, error: DiagnosticsError
    ) -> list[str]:
        """Make EXPIRED every open request overdue at `now`; return their ids."""
        ...

    async def purge(self, now: datetime) -> int:
        """Erase finished requests whose `expires_at` has passed; returns how many."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository; see the module docstring."""

    generators: GeneratorRepository
    agents: AgentRepository
    stacks: StackRepository
    deployment_objects: DeploymentObjectRepository
    targets: TargetRepository
    registrations: RegistrationRepository
    targeting: TargetingQueries
    keys: KeyRepository
    idempotency: IdempotencyRepository
    agent_connections: AgentConnectionRepository
    deployment_statuses: DeploymentStatusRepository
    events: EventRepository
    audit_logs: AuditLogRepository
    webhooks: WebhookRepository
    templates: TemplateRepository
    diagnostics: DiagnosticsRepository

    @property
    def committed_changes(self) -> tuple[Change, ...]:
        """The changes of the last committed transaction."""
        ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    def record(self, change: Change) -> None:
        """Note a change, handed on only if the transaction commits."""
        ...


#: Makes a fresh unit of work; services are given one per call.
UnitOfWorkFactory = Callable[[], UnitOfWork]
