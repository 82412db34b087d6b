"""`Cluster`: everything the agent's runtime does to its Kubernetes cluster, behind one object.

The runtime (`agent.runner` and the session loop) calls only this facade: apply a stack update,
remove a stack, read back what the cluster records after a restart, assess a stack's health, and
probe the API for heartbeats. Each method reads what it needs from the cluster, lets
`agent.reconcile` decide, and has `Applier` and friends carry the decision out; all requests go
through one `KubeClient`, so none blocks the event loop.

Errors are `agent.reconcile.errors.ClusterError`s: a `PermanentError` (nack now; `errors` names
the objects at fault) or a `TemporaryError` (the agent already retried; nack and try again later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from agent.config import KubernetesSettings
from agent.kube.applying import Applier, existing_namespaces
from agent.kube.assessing import read_health
from agent.kube.client import KubeClient
from agent.kube.discovery import Discovery
from agent.kube.recording import Records
from agent.kube.retrying import RetryPolicy
from agent.reconcile.applyset import DEFAULT_PARENT_NAMESPACE, RecordedState
from agent.reconcile.errors import ClusterError
from agent.reconcile.kinds import GroupKind
from agent.reconcile.plan import ClusterFacts, plan_apply, plan_removal
from brokkr_common.session.agent_session import Apply
from brokkr_common.session.reports import ResourceResult, StackHealth
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef, HeldStack


class Cluster:
    """The agent's cluster.

    `parent_namespace` is where the stacks' ApplySet parents live (the agent's own namespace);
    `establish_timeout_seconds` bounds the wait for a stack's CRDs to be Established;
    `max_concurrency` is how many requests may be in flight at once. `api` replaces the client
    built from `settings` (to count requests, say); `retry` its retry policy.
    """

    def __init__(
        self,
        settings: KubernetesSettings,
        *,
        parent_namespace: str = DEFAULT_PARENT_NAMESPACE,
        establish_timeout_seconds: float = 60.0,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        api: KubeClient | None = None,
    ) -> None:
        self._api = api or KubeClient.from_settings(settings, retry=retry, max_concurrency=max_concurrency)
        self._parent_namespace = parent_namespace
        self._discovery = Discovery(self._api)
        self._records = Records(self._api, namespace=parent_namespace, field_manager=settings.field_manager)
        self._applier = Applier(
            self._api,
            self._discovery,
            self._records,
            field_manager=settings.field_manager,
            establish_timeout=establish_timeout_seconds,
        )

    async def apply(
        self, update: Apply, held: HeldStack, *, force: bool = False
    ) -> tuple[ResourceResult, ...]:
        """Apply `update` to the stack, of which the session says the agent holds `held`; `force`
        takes fields other managers own. The outcome of each object applied, then of each pruned."""
        parent = await self._records.read(update.stack_id)
        await self._discovery.know(GroupKind.of(resource.key) for resource in update.apply)
        facts = ClusterFacts(
            self._discovery.namespaced,
            await existing_namespaces(self._api, update.apply),
            self._parent_namespace,
        )
        plan = plan_apply(update, held, parent, facts)
        return await self._applier.apply(plan, parent, force=force)

    async def remove(self, stack_id: str, held: HeldStack) -> tuple[ResourceResult, ...]:
        """Delete every object of the stack and its record; the outcome of each object pruned."""
        parent = await self._records.read(stack_id)
        plan = plan_removal(stack_id, held, parent, parent_namespace=self._parent_namespace)
        return await self._applier.remove(plan)

    async def recorded(self) -> dict[str, HeldStack]:
        """What the agent holds of each stack by stack id, as recorded in the cluster: its Hello."""
        return await self._records.held()

    async def health(
        self, stack_id: str, deployment_object: DeploymentObjectRef | None, keys: Iterable[ResourceKey]
    ) -> StackHealth:
        """The health of the stack's objects `keys`, and so of the stack."""
        return await read_health(
            self._api,
            self._discovery,
            applyset_id=RecordedState(stack_id, self._parent_namespace).applyset_id,
            stack_id=stack_id,
            deployment_object=deployment_object,
            keys=keys,
        )

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
