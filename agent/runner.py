"""The agent's composition root: wires the cluster, the session client and the probe endpoint.

Start-up: read what the cluster records of each stack (so a restart resumes instead of receiving
everything again), start the /healthz /readyz /metrics endpoint, dial the broker and keep the
session up. While running: apply what the broker sends, one stack at a time; collect diagnostics
when the broker asks, beside the applies; re-assess the health of
held stacks and report it when it changed (and in full after every Welcome). A re-assessment
follows, `health.debounce_seconds` later, any change Kubernetes watches see on a held stack's
objects (`agent.kube.watching`) and every apply or removal; every `health.interval_seconds`
there is one anyway, the safety net for whatever a watch missed.
Shutdown on SIGTERM: stop the session, then the endpoint, then the watches and the cluster client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from agent import probes
from agent.config import AgentSettings, HealthSettings
from agent.kube.cluster import Cluster
from agent.reconcile.errors import ClusterError
from agent.stream.client import ApplyFailed, ClientOptions, SessionClient
from brokkr_common.pb.brokkr.v1 import diagnostics_pb2
from brokkr_common.session import agent_session as machine
from brokkr_common.session.reports import ResourceResult, StackHealth
from brokkr_common.session.stacks import UNKNOWN, HeldStack

log = structlog.get_logger("brokkr.agent")

AGENT_VERSION = "brokkr-agent/0.1.0"


class KubernetesRuntime:
    """The session client's `StackRuntime`, over the agent's cluster."""

    def __init__(self, cluster: Cluster, registry: CollectorRegistry) -> None:
        self.cluster = cluster
        self.client: SessionClient | None = None
        self.kubernetes_reachable = False
        self._applies = Counter(
            "brokkr_agent_applies",
            "Stack applies and removals, by outcome.",
            ["kind", "outcome"],
            registry=registry,
        )

    def _held(self, stack_id: str) -> HeldStack:
        return self.client.held.get(stack_id, UNKNOWN) if self.client else UNKNOWN

    async def apply(self, work: machine.Apply) -> Sequence[ResourceResult]:
        try:
            results = await self.cluster.apply(work, self._held(work.stack_id))
        except ClusterError as error:
            self._applies.labels("apply", "failed").inc()
            log.warning("apply failed", stack=work.stack_name, reason=error.reason, error=str(error))
            raise ApplyFailed(error.status_error(), getattr(error, "errors", ())) from error
        self._applies.labels("apply", "ok").inc()
        self.cluster.changes.set()  # what the stack holds changed: assess, watch what it holds now
        log.info(
            "applied", stack=work.stack_name, version=work.deployment_object.sequence_id, objects=len(results)
        )
        return results

    async def remove(self, work: machine.Remove) -> Sequence[ResourceResult]:
        try:
            results = await self.cluster.remove(work.stack_id, self._held(work.stack_id))
        except ClusterError as error:
            self._applies.labels("remove", "failed").inc()
            raise ApplyFailed(error.status_error(), getattr(error, "errors", ())) from error
        self._applies.labels("remove", "ok").inc()
        self.cluster.changes.set()
        log.info("removed", stack=work.stack_id, objects=len(results))
        return results

    async def diagnose(self, work: machine.Diagnose) -> diagnostics_pb2.DiagnosticsReport:
        """Collect the stack's diagnostics, beside whatever apply is under way."""
        held = self._held(work.stack_id)
        keys = () if held.is_unknown else tuple(held.resources)
        try:
            report = await self.cluster.diagnose(work.stack_id, keys, work.options)
        except ClusterError as error:
            log.warning("diagnostics failed", stack=work.stack_id, reason=error.reason, error=str(error))
            raise error.status_error() from error
        log.info(
            "diagnostics collected", stack=work.stack_id, pods=len(report.pods), events=len(report.events)
        )
        return report

    async def probe(self) -> tuple[bool, int]:
        reachable, latency_ms = await self.cluster.probe()
        self.kubernetes_reachable = reachable
        return reachable, latency_ms


def _credentials(settings: AgentSettings) -> grpc.ChannelCredentials | None:
    tls = settings.broker.tls
    if not tls.active:
        return None
    read = lambda path: Path(path).read_bytes() if path else None  # noqa: E731
    return grpc.ssl_channel_credentials(
        root_certificates=read(tls.ca_file),
        private_key=read(tls.key_file),
        certificate_chain=read(tls.cert_file),
    )


async def _report_health(
    runtime: KubernetesRuntime, client: SessionClient, settings: HealthSettings, stop: asyncio.Event
) -> None:
    """Assess held stacks when watched objects change and periodically; send what changed, and
    everything after a (re)connect."""
    last: dict[str, StackHealth] = {}
    welcomes = 0
    changes = runtime.cluster.changes
    while not stop.is_set():
        changes.clear()  # a change from now on calls for another round
        await runtime.probe()  # keeps /readyz current between heartbeats
        if client.connected.is_set():
            full = client.connects != welcomes
            welcomes = client.connects
            changed: list[StackHealth] = []
            for stack_id, held in dict(client.held).items():
                if held.is_unknown:
                    continue
                try:
                    health = await runtime.cluster.health(stack_id, held.deployment_object, held.resources)
                except ClusterError as error:
                    log.warning("health assessment failed", stack=stack_id, error=str(error))
                    continue
                if full or last.get(stack_id) != health:
                    changed.append(health)
                last[stack_id] = health
            await client.report_health(changed)
        await _watch(runtime.cluster, client.held)
        await _next_round(changes, stop, settings.interval_seconds, settings.debounce_seconds)


async def _watch(cluster: Cluster, held: Mapping[str, HeldStack]) -> None:
    """Watch the objects of the stacks held now; a failure leaves the periodic rounds to do."""
    stacks = {stack_id: tuple(h.resources) for stack_id, h in dict(held).items() if not h.is_unknown}
    try:
        await cluster.watch_health(stacks)
    except ClusterError as error:
        log.warning("watching failed", reason=error.reason, error=str(error))


async def _next_round(changes: asyncio.Event, stop: asyncio.Event, interval: float, debounce: float) -> None:
    """Return `interval` seconds from now, or `debounce` seconds after `changes` is set, or at
    `stop`, whichever comes first; the debounce lets a burst of changes make one round."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changes.wait())]
    try:
        await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    if changes.is_set() and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=debounce)


class Agent:
    """One agent: `start()` reads the cluster's records, opens the probe endpoint and dials the
    broker; `stop()` shuts down in reverse order."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        kubernetes = settings.kubernetes
        self.cluster = Cluster(
            kubernetes, parent_namespace=None if kubernetes.namespace else kubernetes.records_namespace
        )
        self.runtime = KubernetesRuntime(self.cluster, self.registry)
        self.client: SessionClient | None = None
        self.http_port: int | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: web.AppRunner | None = None

    async def start(self) -> None:
        settings = self.settings
        held = await self.cluster.recorded()
        log.info("recorded state read", stacks=len(held))
        await self.runtime.probe()
        tls = settings.broker.tls
        options = ClientOptions(
            agent_version=AGENT_VERSION,
            capabilities=(machine.DIAGNOSTICS,),
            keepalive_time_seconds=settings.broker.keepalive_time_seconds,
            keepalive_timeout_seconds=settings.broker.keepalive_timeout_seconds,
            reconnect_max_seconds=settings.broker.reconnect_max_seconds,
            credentials=_credentials(settings),
            extra_channel_options=(
                (("grpc.ssl_target_name_override", tls.server_name),) if tls.server_name else ()
            ),
        )
        client = SessionClient(settings.broker.address, settings.broker.read_key, self.runtime, held, options)
        self.client = self.runtime.client = client
        readiness = probes.Readiness(
            session_up=client.connected.is_set, kubernetes=lambda: self.runtime.kubernetes_reachable
        )
        app = probes.create_app(readiness, self.registry)
        self._http, self.http_port = await probes.serve(app, settings.http.host, settings.http.port)
        self._tasks = [
            asyncio.create_task(client.run(), name="session"),
            asyncio.create_task(
                _report_health(self.runtime, client, settings.health, self._stop),
                name="health",
            ),
        ]
        log.info("agent started", broker=settings.broker.address, http_port=self.http_port)

    async def stop(self) -> None:
        log.info("agent stopping")
        self._stop.set()
        if self.client is not None:
            await self.client.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.cluster.stop_watching()
        if self._http is not None:
            await self._http.cleanup()
        self.cluster.close()
        log.info("agent stopped")


async def run(settings: AgentSettings, stop: asyncio.Event) -> None:
    """Run an agent until `stop` is set."""
    agent = Agent(settings)
    await agent.start()
    try:
        await stop.wait()
    finally:
        await agent.stop()
