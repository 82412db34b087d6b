"""What the common admin API calls cost, against the cheapest call the same broker answers.

A broker process (`python -m broker serve`, default settings, `bench.fanout_broker`) on a fresh
PostgreSQL database and, unless `--no-sqlite`, a second one on the embedded SQLite default (a file
in a temporary directory). Each is driven from this process through its public ports, as a CI
pipeline or brokkrctl would: the generated stubs on one `grpc.aio` channel with the admin key, and
`aiohttp` for the REST shim. Per call and concurrency (1 and 16 callers on that one channel or one
connection pool): `--requests` calls or `--seconds`, whichever ends first, after a short warm-up;
throughput, nearest-rank p50/p99 latency, and the broker's own CPU time per call (from /proc).

The calls, in this order (each works on what the ones before it created):
CreateStack; GetStack and ListStacks (page of 50) over those stacks; CreateDeploymentObject (a
realistic 10-object stack of about 10 KiB of YAML, one object changed per version, over 16 stacks so
concurrent writers do not queue on one stack's row lock); CreateAgent (labelled, so one of those
stacks reaches every agent); UpdateAgent (the labels, with an update mask); ListDeploymentStatuses
of the stack reaching every agent (a page of 50, all PENDING: no agent ever connects); and over
REST, POST /api/v1/stacks and GET /api/v1/stacks/{id}.

Baselines, measured in the same run against the same process: the standard gRPC health check
(grpc.health.v1.Health/Check) for the gRPC calls, and GET /healthz for REST. Both are answered by the
same server and event loop, but the API interceptor passes public services straight through
(`broker.api.authz.PUBLIC_SERVICES`): no key check, no metrics, no audit, no database. The difference
to a call is therefore what Brokkr adds on top of gRPC (or aiohttp) itself. The REST shim forwards
every call to the gRPC server over a loopback channel, so a REST call is a gRPC call plus a hop.

    .venv/bin/python -m bench.admin_api [--requests 400] [--seconds 3] [--no-sqlite] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import psycopg
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.fanout_broker import ADMIN_URL, BrokerProcess, Database
from bench.fanout_report import Latency, machine
from bench.fanout_workers import cpu_seconds
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    agent_service_pb2,
    agent_service_pb2_grpc,
    deployment_object_pb2,
    deployment_object_service_pb2,
    deployment_object_service_pb2_grpc,
    deployment_status_service_pb2,
    deployment_status_service_pb2_grpc,
    stack_pb2,
    stack_service_pb2,
    stack_service_pb2_grpc,
)

CONCURRENCIES = (1, 16)
#: Stacks CreateDeploymentObject spreads its calls over (one per concurrent caller).
_TARGET_STACKS = 16
_WARM_UP_CALLS = 3
_PAGE_SIZE = 50
_CALL_TIMEOUT_SECONDS = 30.0
_START_SECONDS = 120.0
#: The label the deployment-object stacks and the created agents share.
_LABEL = {"brokkr-bench": "admin"}


# --- the stack every CreateDeploymentObject submits (db_growth submits it too) --------------------

_APP_CONFIG = "\n".join(
    f"    feature.{name}.enabled: {str(index % 3 != 0).lower()}\n"
    f"    feature.{name}.rollout-percent: {(index * 7) % 100}\n"
    f"    feature.{name}.owner: team-{('checkout', 'catalog', 'growth', 'platform')[index % 4]}"
    for index, name in enumerate(
        [
            "checkout-v2",
            "express-shipping",
            "gift-cards",
            "wishlist-sync",
            "price-alerts",
            "recommendations",
            "loyalty-points",
            "multi-currency",
            "guest-checkout",
            "saved-carts",
            "order-tracking",
            "returns-portal",
            "bundle-pricing",
            "flash-sales",
            "inventory-hints",
            "address-autocomplete",
            "fraud-scoring",
            "a11y-contrast",
            "search-synonyms",
            "review-photos",
            "size-guide",
            "store-pickup",
            "subscriptions",
            "tax-estimates",
            "dark-mode",
            "one-click-reorder",
            "referral-codes",
            "carbon-offset",
            "live-chat",
            "coupon-stacking",
            "back-in-stock",
            "split-payments",
            "pre-orders",
            "digital-receipts",
            "gift-wrapping",
            "delivery-slots",
            "product-qna",
            "virtual-try-on",
            "vendor-portal",
            "bulk-orders",
        ]
    )
)

_OBJECTS = [
    """apiVersion: v1
kind: ServiceAccount
metadata:
  name: shop-web
  namespace: shop
  labels: {app.kubernetes.io/name: shop-web, app.kubernetes.io/part-of: shop}
""",
    """apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-web-config
  namespace: shop
  labels: {app.kubernetes.io/name: shop-web, app.kubernetes.io/part-of: shop}
data:
  application.properties: |
    server.port: 8080
    server.shutdown: graceful
    management.endpoints.web.exposure.include: health,info,prometheus
    spring.datasource.url: jdbc:postgresql://shop-db.shop.svc:5432/shop
    spring.datasource.hikari.maximum-pool-size: 20
    cache.products.ttl-seconds: 300
    cache.prices.ttl-seconds: 60
    payments.provider.endpoint: https://payments.example.com/v3
    payments.provider.timeout-ms: 2500
    logging.level.root: INFO
    logging.level.com.example.shop: DEBUG
"""
    + _APP_CONFIG
    + "\n",
    """apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-web
  namespace: shop
  labels: {app.kubernetes.io/name: shop-web, app.kubernetes.io/part-of: shop}
  annotations:
    example.com/release: "{version}"
spec:
  replicas: 3
  revisionHistoryLimit: 5
  selector:
    matchLabels: {app.kubernetes.io/name: shop-web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}
  template:
    metadata:
      labels: {app.kubernetes.io/name: shop-web, app.kubernetes.io/part-of: shop}
    spec:
      serviceAccountName: shop-web
      securityContext: {runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001}
      containers:
        - name: web
          image: registry.example.com/shop/web:1.{version}.0
          imagePullPolicy: IfNotPresent
          ports:
            - {name: http, containerPort: 8080}
          env:
            - {name: JAVA_TOOL_OPTIONS, value: "-XX:MaxRAMPercentage=75"}
            - {name: SPRING_CONFIG_LOCATION, value: /config/application.properties}
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {name: shop-db, key: password}
          resources:
            requests: {cpu: 250m, memory: 512Mi}
            limits: {memory: 1Gi}
          readinessProbe:
            httpGet: {path: /actuator/health/readiness, port: http}
            periodSeconds: 5
          livenessProbe:
            httpGet: {path: /actuator/health/liveness, port: http}
            initialDelaySeconds: 30
            periodSeconds: 10
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: config, mountPath: /config, readOnly: true}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: config
          configMap: {name: shop-web-config}
        - name: tmp
          emptyDir: {}
""",
    """apiVersion: v1
kind: Service
metadata:
  name: shop-web
  namespace: shop
  labels: {app.kubernetes.io/name: shop-web, app.kubernetes.io/part-of: shop}
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: shop-web}
  ports:
    - {name: http, port: 80, targetPort: http, protocol: TCP}
""",
    """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: shop-web
  namespace: shop
rules:
  - apiGroups: [""]
    resources: [configmaps, secrets]
    resourceNames: [shop-web-config, shop-db]
    verbs: [get, watch]
  - apiGroups: [""]
    resources: [endpoints]
    verbs: [get, list, watch]
""",
    """apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: shop-web
  namespace: shop
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: shop-web}
subjects:
  - {kind: ServiceAccount, name: shop-web, namespace: shop}
""",
    """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: shop-web
  namespace: shop
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: shop-web}
  minReplicas: 3
  maxReplicas: 20
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 70}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
        - {type: Percent, value: 20, periodSeconds: 60}
""",
    """apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: shop-web
  namespace: shop
spec:
  minAvailable: 2
  selector:
    matchLabels: {app.kubernetes.io/name: shop-web}
""",
    """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop-web
  namespace: shop
  annotations:
    cert-manager.io/cluster-issuer: letsencrypt
    nginx.ingress.kubernetes.io/proxy-body-size: 8m
spec:
  ingressClassName: nginx
  tls:
    - {hosts: [shop.example.com], secretName: shop-web-tls}
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: shop-web, port: {name: http}}
""",
    """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: shop-web
  namespace: shop
spec:
  podSelector:
    matchLabels: {app.kubernetes.io/name: shop-web}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - namespaceSelector:
            matchLabels: {kubernetes.io/metadata.name: ingress-nginx}
      ports:
        - {port: 8080, protocol: TCP}
  egress:
    - to:
        - podSelector:
            matchLabels: {app.kubernetes.io/name: shop-db}
      ports:
        - {port: 5432, protocol: TCP}
    - to:
        - namespaceSelector: {}
          podSelector:
            matchLabels: {k8s-app: kube-dns}
      ports:
        - {port: 53, protocol: UDP}
""",
]
#: The object that differs between versions (the Deployment: a new image tag and release annotation).
CHANGED_OBJECT = 2


def stack_yaml(version: int) -> str:
    """A realistic application as 10 Kubernetes objects, about 10 KiB of YAML. Versions differ only
    in the Deployment's image tag and release annotation (a 1-of-10 change, at the same size for
    versions of the same number of digits)."""
    return "---\n".join(
        text.replace("{version}", str(version)) if index == CHANGED_OBJECT else text
        for index, text in enumerate(_OBJECTS)
    )


# --- the calls ---------------------------------------------------------------------------------


class BadReply(Exception):
    """The broker answered, but not as the benchmark needs: a REST status other than 200, or a
    page shorter than asked for."""


Call = Callable[[int], Awaitable[object]]


class Workload:
    """Every call measured, as `(index) -> awaitable`, against one broker; indexes are unique per
    call, so creates get fresh names and reads spread over what was created."""

    def __init__(self, broker: BrokerProcess) -> None:
        self._channel = grpc.aio.insecure_channel(broker.target)
        self._metadata = (("authorization", f"Bearer {broker.admin_key}"),)
        self._rest_url = f"http://127.0.0.1:{broker.rest_port}"
        self._rest_headers = {"Authorization": f"Bearer {broker.admin_key}"}
        self._http: aiohttp.ClientSession | None = None
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._stacks = stack_service_pb2_grpc.StackServiceStub(self._channel)
        self._objects = deployment_object_service_pb2_grpc.DeploymentObjectServiceStub(self._channel)
        self._agents = agent_service_pb2_grpc.AgentServiceStub(self._channel)
        self._statuses = deployment_status_service_pb2_grpc.DeploymentStatusServiceStub(self._channel)
        self._created_stacks: list[str] = []
        self._rest_stacks: list[str] = []
        self._target_stacks: list[str] = []
        self._created_agents: list[str] = []

    def calls(self) -> list[tuple[str, str, Call]]:
        """(name, baseline name, call), in the order they are measured; a baseline's is ""."""
        health, healthz = "gRPC Health/Check", "REST GET /healthz"
        return [
            (health, "", self.health_check),
            ("CreateStack", health, self.create_stack),
            ("GetStack", health, self.get_stack),
            ("ListStacks (page of 50)", health, self.list_stacks),
            ("CreateDeploymentObject (10 KiB)", health, self.create_deployment_object),
            ("CreateAgent", health, self.create_agent),
            ("UpdateAgent (labels mask)", health, self.update_agent),
            ("ListDeploymentStatuses (50)", health, self.list_deployment_statuses),
            (healthz, "", self.rest_healthz),
            ("REST POST /api/v1/stacks", healthz, self.rest_create_stack),
            ("REST GET /api/v1/stacks/{id}", healthz, self.rest_get_stack),
        ]

    async def prepare(self) -> None:
        """The stacks CreateDeploymentObject writes to; they share a label with every agent created."""
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(CONCURRENCIES)))
        for index in range(_TARGET_STACKS):
            reply = await self._stacks.CreateStack(
                stack_service_pb2.CreateStackRequest(
                    stack=stack_pb2.Stack(name=f"shop-{index:02d}", labels=_LABEL)
                ),
                metadata=self._metadata,
                timeout=_CALL_TIMEOUT_SECONDS,
            )
            self._target_stacks.append(reply.stack.id)

    async def health_check(self, index: int) -> object:
        return await self._health.Check(health_pb2.HealthCheckRequest(), timeout=_CALL_TIMEOUT_SECONDS)

    async def create_stack(self, index: int) -> object:
        stack = stack_pb2.Stack(
            name=f"bench-{index:05d}", description="created by bench.admin_api", labels={"team": "bench"}
        )
        reply = await self._stacks.CreateStack(
            stack_service_pb2.CreateStackRequest(stack=stack),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )
        self._created_stacks.append(reply.stack.id)
        return reply

    async def get_stack(self, index: int) -> object:
        stack_id = self._created_stacks[index % len(self._created_stacks)]
        return await self._stacks.GetStack(
            stack_service_pb2.GetStackRequest(id=stack_id),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )

    async def list_stacks(self, index: int) -> object:
        reply = await self._stacks.ListStacks(
            stack_service_pb2.ListStacksRequest(page_size=_PAGE_SIZE),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )
        _expect(len(reply.stacks), _PAGE_SIZE, "ListStacks")
        return reply

    async def create_deployment_object(self, index: int) -> object:
        return await self._objects.CreateDeploymentObject(
            deployment_object_service_pb2.CreateDeploymentObjectRequest(
                stack_id=self._target_stacks[index % _TARGET_STACKS],
                deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=stack_yaml(index)),
            ),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )

    async def create_agent(self, index: int) -> object:
        agent = agent_pb2.Agent(
            name=f"bench-{index:05d}",
            cluster_name=f"cluster-{index:05d}",
            labels={**_LABEL, "region": "eu-west-1"},
            status=agent_pb2.AGENT_STATUS_ACTIVE,
        )
        reply = await self._agents.CreateAgent(
            agent_service_pb2.CreateAgentRequest(agent=agent),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )
        self._created_agents.append(reply.agent.id)
        return reply

    async def update_agent(self, index: int) -> object:
        agent = agent_pb2.Agent(
            id=self._created_agents[index % len(self._created_agents)],
            labels={**_LABEL, "region": "eu-west-1", "revision": str(index)},
        )
        return await self._agents.UpdateAgent(
            agent_service_pb2.UpdateAgentRequest(
                agent=agent, update_mask=field_mask_pb2.FieldMask(paths=["labels"])
            ),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )

    async def list_deployment_statuses(self, index: int) -> object:
        reply = await self._statuses.ListDeploymentStatuses(
            deployment_status_service_pb2.ListDeploymentStatusesRequest(
                stack_id=self._target_stacks[0], page_size=_PAGE_SIZE
            ),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )
        _expect(len(reply.deployment_statuses), _PAGE_SIZE, "ListDeploymentStatuses")
        return reply

    async def rest_healthz(self, index: int) -> object:
        return await self._rest("GET", "/healthz")

    async def rest_create_stack(self, index: int) -> object:
        body = {
            "name": f"rest-{index:05d}",
            "description": "created by bench.admin_api",
            "labels": {"team": "bench"},
        }
        stack = await self._rest("POST", "/api/v1/stacks", body)
        self._rest_stacks.append(stack["id"])
        return stack

    async def rest_get_stack(self, index: int) -> object:
        return await self._rest("GET", f"/api/v1/stacks/{self._rest_stacks[index % len(self._rest_stacks)]}")

    async def _rest(self, method: str, path: str, body: object = None) -> dict:
        assert self._http is not None, "prepare() first"
        async with self._http.request(
            method,
            self._rest_url + path,
            json=body,
            headers=self._rest_headers,
            timeout=aiohttp.ClientTimeout(total=_CALL_TIMEOUT_SECONDS),
        ) as response:
            if response.status != 200:
                raise BadReply(f"{method} {path}: {response.status} {await response.text()}")
            return await response.json()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        await self._channel.close()


def _expect(got: int, wanted: int, what: str) -> None:
    if got != wanted:
        raise BadReply(f"{what} returned {got} items, not {wanted}: the benchmark measures full pages")


# --- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One call at one concurrency."""

    calls: int
    errors: int
    seconds: float
    latency: Latency
    #: The broker process's CPU time (user + system) per successful call, in ms.
    broker_cpu_ms: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds


async def measure(
    call: Call, indexes: itertools.count, concurrency: int, requests: int, seconds: float, pid: int
) -> Cell:
    """`requests` calls or `seconds`, whichever ends first, by `concurrency` concurrent callers."""
    latencies: list[float] = []
    failures: list[BaseException] = []
    issued = itertools.count()
    stop_at = time.monotonic() + seconds

    async def caller() -> None:
        while next(issued) < requests and time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                await call(next(indexes))
            except (grpc.RpcError, aiohttp.ClientError, BadReply) as error:
                failures.append(error)
                continue
            latencies.append(time.perf_counter() - started)

    cpu_before, started = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    if failures:
        print(f"{len(failures)} calls failed; the first: {failures[0]}", file=sys.stderr)
    if not latencies:
        raise RuntimeError(f"every call failed; the first: {failures[0]}")
    return Cell(len(latencies), len(failures), elapsed, Latency.of(latencies), cpu * 1000 / len(latencies))


@dataclass(frozen=True)
class Row:
    name: str
    baseline: str
    cells: dict[int, Cell]


async def measure_backend(database_url: str, log_file: Path, requests: int, seconds: float) -> list[Row]:
    broker = BrokerProcess(database_url, log_file)
    workload: Workload | None = None
    try:
        await broker.start(time.time() + _START_SECONDS)
        workload = Workload(broker)
        await workload.prepare()
        rows = []
        for name, baseline, call in workload.calls():
            indexes = itertools.count()
            for _ in range(_WARM_UP_CALLS):
                await call(next(indexes))
            cells = {
                concurrency: await measure(call, indexes, concurrency, requests, seconds, broker.pid)
                for concurrency in CONCURRENCIES
            }
            rows.append(Row(name, baseline, cells))
        return rows
    finally:
        if workload is not None:
            await workload.close()
        await broker.kill()


# --- reporting ---------------------------------------------------------------------------------


def table(title: str, rows: Sequence[Row]) -> str:
    """Per call and concurrency: calls/s, p50, p99, broker CPU per call; and each call's p50 at
    concurrency 1 and calls/s at 16 as a multiple of its baseline's."""
    by_name = {row.name: row for row in rows}
    header = [
        "",
        *(h for c in CONCURRENCIES for h in (f"c={c} calls/s", "p50 ms", "p99 ms", "cpu ms")),
        "p50 c=1 vs base",
        "calls/s c=16 vs base",
    ]
    cells = [header]
    for row in rows:
        line = [row.name + (" (baseline)" if not row.baseline else "")]
        for concurrency in CONCURRENCIES:
            cell = row.cells[concurrency]
            errors = f" ({cell.errors} failed)" if cell.errors else ""
            line += [
                f"{cell.per_second:,.0f}{errors}",
                f"{cell.latency.p50_ms:,.1f}",
                f"{cell.latency.p99_ms:,.1f}",
                f"{cell.broker_cpu_ms:,.2f}",
            ]
        if row.baseline:
            base, low, high = by_name[row.baseline], min(CONCURRENCIES), max(CONCURRENCIES)
            line += [
                f"{row.cells[low].latency.p50_ms / base.cells[low].latency.p50_ms:.1f}x",
                f"1/{base.cells[high].per_second / row.cells[high].per_second:.1f}",
            ]
        else:
            line += ["-", "-"]
        cells.append(line)
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    return "\n".join([title, *lines])


def _records(backend: str, rows: Sequence[Row]) -> list[dict[str, object]]:
    return [
        {
            "backend": backend,
            "call": row.name,
            "baseline": row.baseline or None,
            "concurrency": concurrency,
            "calls": cell.calls,
            "errors": cell.errors,
            "calls_per_s": round(cell.per_second, 1),
            "p50_ms": cell.latency.p50_ms,
            "p99_ms": cell.latency.p99_ms,
            "broker_cpu_ms": round(cell.broker_cpu_ms, 2),
        }
        for row in rows
        for concurrency, cell in row.cells.items()
    ]


def _postgres_version() -> str:
    with psycopg.connect(ADMIN_URL.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0].split()[0] if row else '?'}"


async def run(requests: int, seconds: float, sqlite: bool, as_json: bool) -> int:
    logs = Path(tempfile.mkdtemp(prefix="brokkr-bench-admin-"))
    budget = f"{requests} calls or {seconds:g} s per cell, after {_WARM_UP_CALLS} warm-up calls"
    if not as_json:
        print(machine(), flush=True)
    backends: list[tuple[str, str]] = [("postgresql", _postgres_version())]
    if sqlite:
        backends.append(("sqlite", f"SQLite {sqlite3.sqlite_version} (embedded default)"))
    records: list[dict[str, object]] = []
    for backend, version in backends:
        database = Database() if backend == "postgresql" else None
        url = database.url if database else f"sqlite+aiosqlite:///{logs}/b.db"
        try:
            rows = await measure_backend(url, logs / f"broker-{backend}.log", requests, seconds)
        except Exception as error:
            print(
                f"{backend}: failed: {type(error).__name__}: {error} (broker log kept in {logs})",
                file=sys.stderr,
            )
            return 1
        except BaseException:
            shutil.rmtree(logs)
            raise
        finally:
            if database is not None:
                database.drop()
        if as_json:
            records += _records(backend, rows)
        else:
            print(f"\n{table(f'{version}; {budget}', rows)}", flush=True)
    if as_json:
        print(json.dumps(records))
    shutil.rmtree(logs)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=400, help="calls per call and concurrency (default 400)"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="at most this long per call and concurrency (default 3)"
    )
    parser.add_argument("--no-sqlite", dest="sqlite", action="store_false", help="measure PostgreSQL only")
    parser.add_argument("--json", action="store_true", help="print one JSON list of cells instead of tables")
    options = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the broker is ended and the database dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = asyncio.run(run(options.requests, options.seconds, options.sqlite, options.json))
    except KeyboardInterrupt:
        print("interrupted; the broker is ended and the database dropped", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
