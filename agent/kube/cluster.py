"""`Cluster`: everything the agent's runtime does to its Kubernetes cluster, behind one object.

The runtime (`agent.runner` and the session loop) calls only this facade: apply a stack update,
remove a stack, read back what the cluster records after a restart, assess a stack's health,
collect a stack's diagnostics, and probe the API for heartbeats. Each method reads what it needs
from the cluster, lets `agent.reconcile` decide, and has `Applier` and friends carry the decision
out; all requests go through one `KubeClient`, so none blocks the event loop.

With `kubernetes.namespace` set, the agent is confined to that namespace, as an agent with a Role
instead of a ClusterRole must be: its stacks' ApplySet parents live there, planning refuses
everything outside it (`agent.reconcile.plan`), and listings for pruning and health read only
there, never cluster-wide. Objects the plan placed in the namespace are reported under the keys
the broker sent.

Errors are `agent.reconcile.errors.ClusterError`s: a `PermanentError` (nack now; `errors` names
the objects at fault) or a `TemporaryError` (the agent already retried; nack and try again later).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping
from typing import TypeVar

from agent.config import KubernetesSettings
from agent.kube.applying import Applier, existing_namespaces
from agent.kube.assessing import read_health
from agent.kube.client import KubeClient
from agent.kube.diagnosing import collect
from agent.kube.discovery import Discovery
from agent.kube.recording import Records
from agent.kube.retrying import RetryPolicy
from agent.kube.watching import Watches
from agent.reconcile.applyset import DEFAULT_PARENT_NAMESPACE, PART_OF_LABEL, RecordedState, parse_parent
from agent.reconcile.errors import ClusterError, PermanentError
from agent.reconcile.kinds import GroupKind, KindScopes
from agent.reconcile.plan import ClusterFacts, place, plan_apply, plan_removal
from brokkr_common.pb.brokkr.v1 import diagnostics_pb2
from brokkr_common.session.agent_session import Apply
from brokkr_common.session.reports import ResourceHealth, ResourceResult, StackHealth
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef, HeldStack

T = TypeVar("T", ResourceResult, ResourceHealth)


class Cluster:
    """The agent's cluster.

    `parent_namespace` is where the stacks' ApplySet parents live (the agent's own namespace; for
    an agent confined to `settings.namespace`, that namespace, and nothing else may be given);
    `establish_timeout_seconds` bounds the wait for a stack's CRDs to be Established;
    `max_concurrency` is how many requests may be in flight at once. `api` replaces the client
    built from `settings` (to count requests, say); `retry` its retry policy.
    """

    def __init__(
        self,
        settings: KubernetesSettings,
        *,
        parent_namespace: str | None = None,
        establish_timeout_seconds: float = 60.0,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        api: KubeClient | None = None,
    ) -> None:
        scope = settings.namespace
        if scope is not None and parent_namespace not in (None, scope):
            raise ValueError(f"an agent confined to namespace {scope!r} keeps its records there")
        self._api = api or KubeClient.from_settings(settings, retry=retry, max_concurrency=max_concurrency)
        self._scope = scope
        self._parent_namespace = parent_namespace = scope or parent_namespace or DEFAULT_PARENT_NAMESPACE
        self._discovery = Discovery(self._api)
        self._records = Records(self._api, namespace=parent_namespace, field_manager=settings.field_manager)
        self._applier = Applier(
            self._api,
            self._discovery,
            self._records,
            field_manager=settings.field_manager,
            establish_timeout=establish_timeout_seconds,
            scope=scope,
        )
        #: Set when a watched object of a held stack changed (`watch_health`); the runtime clears it.
        self.changes = asyncio.Event()
        self._watches = Watches(self._api, self.changes.set)

    @property
    def scope(self) -> str | None:
        """The namespace the agent is confined to; None: the whole cluster."""
        return self._scope

    async def apply(self, update: Apply, held: HeldStack) -> tuple[ResourceResult, ...]:
        """Apply `update` to the stack, of which the session says the agent holds `held`, taking
        fields other managers own only if the stack asks (`update.force_conflicts`). The outcome
        of each object applied, then of each pruned."""
        parent = await self._records.read(update.stack_id)
        await self._discovery.know(GroupKind.of(resource.key) for resource in update.apply)
        facts = ClusterFacts(
            self._discovery.namespaced,
            # A confined agent may not read Namespaces, and its stacks may not hold any.
            frozenset({self._scope}) if self._scope else await existing_namespaces(self._api, update.apply),
            self._parent_namespace,
            self._scope,
        )
        plan = plan_apply(update, held, parent, facts)
        try:
            results = await self._applier.apply(plan, parent, force=update.force_conflicts)
        except PermanentError as error:
            if not plan.placed:
                raise
            errors = [dataclasses.replace(e, key=plan.placed.get(e.key, e.key)) for e in error.errors]
            raise PermanentError(error.message, reason=error.reason, errors=errors) from error
        return tuple(_as_sent(results, plan.placed))

    async def remove(self, stack_id: str, held: HeldStack) -> tuple[ResourceResult, ...]:
        """Delete every object of the stack and its record; the outcome of each object pruned."""
        parent = await self._records.read(stack_id)
        plan = plan_removal(stack_id, held, parent, parent_namespace=self._parent_namespace)
        pruned = await self._applier.remove(plan)
        if self._scope is None:
            return pruned
        placed = {where: key for where, key in (await self._in_cluster(tuple(held.resources))).items()}
        return tuple(_as_sent(pruned, placed))

    async def recorded(self) -> dict[str, HeldStack]:
        """What the agent holds of each stack by stack id, as recorded in the cluster: its Hello.

        A cluster-wide agent creates its records' namespace first if it is missing; a confined
        agent's namespace is the operator's to create (it may not have the right to)."""
        if self._scope is None:
            await self._records.ensure_namespace()
        return await self._records.held()

    async def health(
        self, stack_id: str, deployment_object: DeploymentObjectRef | None, keys: Iterable[ResourceKey]
    ) -> StackHealth:
        """The health of the stack's objects `keys`, and so of the stack."""
        keys = tuple(keys)
        placed: dict[ResourceKey, ResourceKey] = {}
        if self._scope is not None:
            placed = {where: key for where, key in (await self._in_cluster(keys)).items() if where != key}
            keys = tuple({v: k for k, v in placed.items()}.get(key, key) for key in keys)
        health = await read_health(
            self._api,
            self._discovery,
            applyset_id=RecordedState(stack_id, self._parent_namespace).applyset_id,
            stack_id=stack_id,
            deployment_object=deployment_object,
            keys=keys,
            scope=self._scope,
        )
        if not placed:
            return health
        resources = tuple(_as_sent(health.resources, placed))
        return dataclasses.replace(health, resources=resources)

    async def diagnose(
        self, stack_id: str, keys: Iterable[ResourceKey], options: diagnostics_pb2.DiagnosticsOptions
    ) -> diagnostics_pb2.DiagnosticsReport:
        """Pod statuses, recent events and log tails of the stack, whose objects the session says
        are `keys` (see `agent.kube.diagnosing`)."""
        parent = await self._records.read(stack_id)
        recorded = parse_parent(parent) if parent is not None else None
        placed = await self._in_cluster(tuple(keys)) if keys else {}
        return await collect(
            self._api,
            self._discovery,
            applyset_id=RecordedState(stack_id, self._parent_namespace).applyset_id,
            recorded=recorded,
            keys=tuple(placed),
            options=options,
            scope=self._scope,
        )

    async def watch_health(self, stacks: Mapping[str, Iterable[ResourceKey]]) -> None:
        """Keep watches open on the kinds of the objects of `stacks` (keys by stack id), so that a
        change of any of them sets `changes`; stacks no longer given are no longer watched."""
        keys = {stack_id: await self._in_cluster(tuple(objects)) for stack_id, objects in stacks.items()}
        members: dict[str, set[str]] = {}
        for stack_id, placed in keys.items():
            applyset = RecordedState(stack_id, self._parent_namespace).applyset_id
            for key in placed:
                resource = self._discovery.cached(GroupKind.of(key))
                if resource is None or (self._scope is not None and not resource.namespaced):
                    continue
                members.setdefault(resource.path(self._scope or ""), set()).add(applyset)
        self._watches.track(
            {path: f"{PART_OF_LABEL} in ({','.join(sorted(ids))})" for path, ids in members.items()}
        )

    @property
    def watched(self) -> dict[str, str]:
        """The label selector of each collection path watched now."""
        return self._watches.targets

    async def stop_watching(self) -> None:
        """Close every watch."""
        await self._watches.close()

    async def _in_cluster(self, keys: tuple[ResourceKey, ...]) -> dict[ResourceKey, ResourceKey]:
        """Where each of `keys` is in the cluster (see `plan.place`), by the key as sent."""
        await self._discovery.know(GroupKind.of(key) for key in keys)
        scopes = KindScopes(self._discovery.namespaced)
        return {place(key, scopes, self._scope): key for key in keys}

    async def probe(self) -> tuple[bool, int]:
        """Whether the API server answers (`GET /version`, not retried) and in how many ms; (False, 0)
        if it does not."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self._api.request_once("GET", "/version")
        except ClusterError:
            return False, 0
        return True, round((loop.time() - started) * 1000)

    def close(self) -> None:
        """Release the client's connections and threads."""
        self._api.close()


def _as_sent(reports: Iterable[T], placed: Mapping[ResourceKey, ResourceKey]) -> Iterable[T]:
    """`reports` (results, healths) under the keys the broker sent, for objects the plan placed."""
    for report in reports:
        sent = placed.get(report.key)
        yield dataclasses.replace(report, key=sent) if sent is not None else report
