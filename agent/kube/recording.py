"""The stacks' records in the cluster: reading, writing and deleting their ApplySet parent Secrets.

What a parent says is `agent.reconcile.applyset`'s business; this module only moves parents to
and from the API server. A parent is written with server-side apply and force, as kubectl writes
its ApplySet parents: the agent's field manager owns every field it records, and a field it
stops recording disappears. After a restart, `held` lists the parents (by `PARENT_SELECTOR`) and
turns each into what the agent reports in its Hello; parents that are damaged, of another tool or
in another namespace are not reported, which makes the broker send those stacks in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.kube.client import KubeClient, Obj, about
from agent.kube.discovery import NAMESPACES, Resource
from agent.reconcile.applyset import PARENT, PARENT_SELECTOR, parent_name, parse_parent
from agent.reconcile.errors import MISSING_NAMESPACE, ClusterError
from brokkr_common.session.stacks import HeldStack

#: Where parents live: the core group's Secrets, which every cluster serves.
PARENTS = Resource(PARENT.group, "v1", PARENT.kind, "secrets", namespaced=True)
#: Parents read per request: one may hold up to a MiB of content hashes.
PARENTS_PER_PAGE = 20


class Records:
    """The parents of the stacks in `namespace`, written by `field_manager`."""

    def __init__(self, api: KubeClient, *, namespace: str, field_manager: str) -> None:
        self._api = api
        self.namespace = namespace
        self._field_manager = field_manager

    async def read(self, stack_id: str) -> Obj | None:
        """The stack's live parent, or None if it has none."""
        try:
            return (await self._api.request("GET", PARENTS.path(self.namespace, parent_name(stack_id)))).body
        except ClusterError as error:
            if error.reason == "NOT_FOUND":
                return None
            raise about(self._subject(parent_name(stack_id)), error) from error

    async def write(self, manifest: Mapping[str, Any]) -> None:
        """Apply the parent `manifest` (built by `agent.reconcile.applyset.parent_manifest`)."""
        name = manifest["metadata"]["name"]
        try:
            await self._api.apply(
                PARENTS.path(self.namespace, name),
                dict(manifest),
                field_manager=self._field_manager,
                force=True,
            )
        except ClusterError as error:
            raise about(self._subject(name), error) from error

    async def delete(self, name: str) -> None:
        """Delete the parent `name`; already gone is fine."""
        try:
            await self._api.delete(PARENTS.path(self.namespace, name))
        except ClusterError as error:
            raise about(self._subject(name), error) from error

    async def ensure_namespace(self) -> bool:
        """Create the records' namespace if it does not exist (a cluster-wide agent's first start);
        True if it was created. The agent never deletes it: it is not a member of any stack."""
        path = NAMESPACES.path(name=self.namespace)
        try:
            await self._api.request("GET", path)
            return False
        except ClusterError as error:
            if error.reason not in (MISSING_NAMESPACE, "NOT_FOUND"):
                raise about(f"Namespace {self.namespace}", error) from error
        manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        try:
            await self._api.apply(path, manifest, field_manager=self._field_manager)
        except ClusterError as error:
            raise about(f"Namespace {self.namespace}", error) from error
        return True

    async def held(self) -> dict[str, HeldStack]:
        """What the agent holds of each stack, by stack id, as the parents in the cluster record it."""
        parents = await self._api.list(
            PARENTS.path(self.namespace), label_selector=PARENT_SELECTOR, page_size=PARENTS_PER_PAGE
        )
        recorded = (parse_parent(parent) for parent in parents)
        return {
            state.stack_id: state.held()
            for state in recorded
            if state is not None and state.parent_namespace == self.namespace
        }

    def _subject(self, name: str) -> str:
        return f"ApplySet parent Secret {self.namespace}/{name}"


def records_same(live: Mapping[str, Any] | None, manifest: Mapping[str, Any]) -> bool:
    """Whether the live parent already records exactly what the parent `manifest` would."""
    if live is None:
        return False
    recorded = parse_parent(live)
    return recorded is not None and recorded == parse_parent(manifest)
