"""The pieces the REST shim tests share: the running backend and shim, and their limits."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

import aiohttp
import grpc
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health
from prometheus_client import CollectorRegistry

from broker import rest
from brokkr_common.pb.brokkr import v1 as brokkr_v1
from tests.integration.rest.fakes import ADMIN_KEY, FakeStacks, ProbeServicer

#: Generous bound on every HTTP exchange, so a broken shim fails a test instead of hanging it.
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=20)
MAX_BODY_BYTES = 64 * 1024


def brokkr_files() -> list[FileDescriptor]:
    """Every brokkr.v1 service file, found by name so services added later are covered too."""
    return [
        importlib.import_module(f"{brokkr_v1.__name__}.{module.name}").DESCRIPTOR
        for module in pkgutil.iter_modules(brokkr_v1.__path__)
        if module.name.endswith("_service_pb2")
    ]


@dataclass
class Backend:
    """The gRPC server the shim forwards to."""

    port: int
    stacks: FakeStacks
    probe: ProbeServicer
    health: health.aio.HealthServicer
    server: grpc.aio.Server


@dataclass
class Shim:
    """The running shim and an HTTP client for it."""

    client: aiohttp.ClientSession
    registry: CollectorRegistry
    routes: rest.RouteTable

    @staticmethod
    def auth(key: str = ADMIN_KEY) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}
