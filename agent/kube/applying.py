"""Carrying out the plans of `agent.reconcile.plan` against the cluster: applying and removing a stack.

Applying an `ApplyPlan`, in this order:

1. List the stack's members (`plan.prune`'s kinds and namespaces, by the part-of label).
2. Dry-run every step of `plan.dry_run` (server-side apply with `dryRun=All`, with the same field
   manager and force as the real apply, so field-manager conflicts show here too). Any failure
   ends the attempt with nothing written, naming every failing object, so the previous version
   keeps running untouched. This comes before the parent is written, not after as the planner's
   docstring lists it: a stack the cluster refuses should not even cost the record its
   deployment object.
3. Write `plan.parent_before`, the record of the change under way.
4. The waves, in order. A wave first dry-runs its steps that could not be dry-run in step 2
   (custom resources of a CRD of this stack, objects in a namespace this stack creates), now that
   what they need exists; then applies its steps, kind by kind (`objects`); then waits for the
   CRDs in its `establish` to be Established. Objects that fail in a wave are reported together
   once the wave is done, and later waves are not started: they may depend on what failed.
5. Prune what `plan.prune.select` picks from the listing of step 1: the stack's objects created
   in step 4 are all kept, so listing again would find nothing more to delete.
6. Write `plan.parent_after`, which records the new deployment object: only now is it applied.

When the live parent already records exactly what `parent_after` records (a re-apply of the
version the stack holds), steps 3 and 6 are skipped: interrupted or not, the record stays true.

The outcome of each object comes from the API server: CREATED when the apply answered 201;
UNCHANGED when its resourceVersion did not move (the server stores nothing for an apply that
changes nothing) or, without any write, when the dry run's answer is the listed live object (but
for the times in managedFields, see `_same`); CONFIGURED otherwise. So a re-apply of an
unchanged stack writes nothing at all.

Removing a stack (`RemovalPlan`) records the change under way, prunes every member, and deletes
the parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agent.kube.client import KubeClient, Obj, Response, gather_all
from agent.kube.discovery import NAMESPACES, Discovery
from agent.kube.establishing import wait_established
from agent.kube.members import list_members
from agent.kube.objects import each_object, failed
from agent.kube.pruning import prune
from agent.kube.recording import Records, records_same
from agent.reconcile.errors import FORBIDDEN, MISSING_KIND, MISSING_NAMESPACE, ClusterError, PermanentError
from agent.reconcile.kinds import CRD, NAMESPACE, GroupKind, Identity, identity, key_of
from agent.reconcile.plan import ApplyPlan, ApplyWave, RemovalPlan, Step
from agent.reconcile.pruning import PruneScope
from brokkr_common.session.reports import ResourceOutcome, ResourceResult
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DesiredResource

Trials = dict[ResourceKey, Response]


class Applier:
    """Carries out apply and removal plans through one client."""

    def __init__(
        self,
        api: KubeClient,
        discovery: Discovery,
        records: Records,
        *,
        field_manager: str,
        establish_timeout: float,
        scope: str | None = None,
    ) -> None:
        self._api = api
        self._scope = scope
        self._discovery = discovery
        self._records = records
        self._field_manager = field_manager
        self._establish_timeout = establish_timeout

    async def apply(
        self, plan: ApplyPlan, parent: Mapping[str, Any] | None, *, force: bool
    ) -> tuple[ResourceResult, ...]:
        """Bring the stack to `plan` (made with the live `parent`): the outcome of every object
        applied, then of every object pruned. A ClusterError naming the objects that failed."""
        members = await self._members(plan.prune)
        live = {identity(key): obj for obj in members if (key := key_of(obj)) is not None}
        trials = await self._dry_run(plan.dry_run, force=force)
        recorded = records_same(parent, plan.parent_after)
        if not recorded:
            await self._records.write(plan.parent_before)
        results: list[ResourceResult] = []
        for wave in plan.waves:
            pending = [step for step in wave.steps if step.key not in trials]
            trials |= await self._dry_run(pending, force=force)
            results += await self._apply_wave(wave, trials, live, force=force)
        results += await prune(self._api, self._discovery, plan.prune.select(members))
        if not recorded:
            await self._records.write(plan.parent_after)
        return tuple(results)

    async def remove(self, plan: RemovalPlan) -> tuple[ResourceResult, ...]:
        """Remove the stack as `plan` says: the outcome of every object pruned."""
        if plan.parent_before is not None:
            await self._records.write(plan.parent_before)
        pruned = await prune(self._api, self._discovery, plan.prune.select(await self._members(plan.prune)))
        if plan.delete_parent:
            await self._records.delete(plan.parent_name)
        return pruned

    async def _members(self, scope: PruneScope) -> list[Obj]:
        where = dict.fromkeys(scope.group_kinds, scope.namespaces)
        return await list_members(
            self._api, self._discovery, where, scope.label_selector, confined=self._scope
        )

    async def _dry_run(self, steps: Sequence[Step], *, force: bool) -> Trials:
        """The dry-run answer for each step; a ClusterError naming every step that failed."""
        by_key = {step.key: step for step in steps}

        async def trial(key: ResourceKey) -> Response:
            return await self._send(by_key[key], force=force, dry_run=True)

        trials, failures = await each_object(list(by_key), trial)
        if failures:
            raise failed(failures)
        return trials

    async def _apply_wave(
        self, wave: ApplyWave, trials: Trials, live: Mapping[Identity, Obj], *, force: bool
    ) -> list[ResourceResult]:
        by_key = {step.key: step for step in wave.steps}

        async def apply(key: ResourceKey) -> ResourceOutcome:
            trial, current = trials[key], live.get(identity(key))
            if (
                trial.status == 200
                and current is not None
                and _same(trial.body, current, by_key[key].manifest, self._field_manager)
            ):
                return ResourceOutcome.UNCHANGED
            applied = await self._send(by_key[key], force=force, dry_run=False)
            if applied.status == 201:
                return ResourceOutcome.CREATED
            if trial.status == 200 and applied.resource_version == trial.resource_version:
                return ResourceOutcome.UNCHANGED
            return ResourceOutcome.CONFIGURED

        outcomes, failures = await each_object(list(by_key), apply)
        if failures:
            raise failed(failures)
        if wave.establish:
            crds = {key.name: key for key in by_key if GroupKind.of(key) == CRD}
            named = {
                name: crds.get(name, ResourceKey(CRD.group, "v1", CRD.kind, "", name))
                for name in wave.establish
            }
            await wait_established(self._api, named, limit_seconds=self._establish_timeout)
        return [ResourceResult(key, outcome) for key, outcome in outcomes.items()]

    async def _send(self, step: Step, *, force: bool, dry_run: bool) -> Response:
        resource = await self._discovery.find(GroupKind.of(step.key))
        if resource is None:
            raise PermanentError(f"the cluster does not serve {GroupKind.of(step.key)}", reason=MISSING_KIND)
        return await self._api.apply(
            resource.object_path(step.key),
            step.manifest,
            field_manager=self._field_manager,
            force=force,
            dry_run=dry_run,
        )


def _same(dry_run: Obj, live: Obj, manifest: Mapping[str, Any], manager: str) -> bool:
    """Whether applying would change nothing: the fields of our manifest hold the same values in
    the dry run's answer as in the live object, and our field manager owns the same fields (apart
    from when it last wrote). Fields of other managers are not compared: controllers keep writing
    status, annotations and resource versions between our listing and our dry run, and none of that
    is ours to apply. Fields the server drops on storing (`stringData`, empty maps) would otherwise
    make every apply look like a change too, and move only our manager's `time`."""
    return _project(dry_run, manifest) == _project(live, manifest) and _ownership(
        dry_run, manager
    ) == _ownership(live, manager)


_ABSENT = object()


def _project(obj: Any, shape: Any) -> Any:
    """`obj` cut down to the keys `shape` has (maps recursively; lists and scalars whole)."""
    if isinstance(shape, Mapping) and isinstance(obj, Mapping):
        return {key: _project(obj.get(key, _ABSENT), value) for key, value in shape.items()}
    return obj


def _ownership(obj: Obj, manager: str) -> list[Any]:
    metadata = obj.get("metadata")
    managed = metadata.get("managedFields") if isinstance(metadata, Mapping) else None
    if not isinstance(managed, list):
        return []
    return [
        {k: v for k, v in entry.items() if k != "time"}
        for entry in managed
        if isinstance(entry, Mapping) and entry.get("manager") == manager
    ]


async def existing_namespaces(api: KubeClient, resources: Iterable[DesiredResource]) -> frozenset[str]:
    """Which of the Namespaces among `resources` exist. One the agent may not read counts as
    existing: then it is never recorded as created by Brokkr, and so never deleted by it."""
    names = sorted({r.key.name for r in resources if GroupKind.of(r.key) == NAMESPACE})

    async def exists(name: str) -> bool:
        try:
            await api.request("GET", NAMESPACES.path(name=name))
        except ClusterError as error:
            if error.reason in (MISSING_NAMESPACE, "NOT_FOUND"):
                return False
            if error.reason == FORBIDDEN:
                return True
            raise
        return True

    found = await gather_all(*(exists(name) for name in names))
    return frozenset(name for name, present in zip(names, found, strict=True) if present)
