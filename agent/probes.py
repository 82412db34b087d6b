"""The agent's HTTP endpoint: /healthz (the process is alive), /readyz (the broker session is up and
the Kubernetes API answers) and /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass
class Readiness:
    """What /readyz reports, asked of the runner at each request."""

    session_up: Callable[[], bool]
    kubernetes: Callable[[], bool]

    def problems(self) -> list[str]:
        found = []
        if not self.session_up():
            found.append("no session with the broker")
        if not self.kubernetes():
            found.append("Kubernetes API unreachable")
        return found


def create_app(readiness: Readiness, registry: CollectorRegistry) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        problems = readiness.problems()
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the endpoint; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = site._server.sockets if site._server else ()  # type: ignore[union-attr]
    return runner, sockets[0].getsockname()[1] if sockets else port
