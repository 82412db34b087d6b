"""TLS and mutual TLS on the broker's gRPC port, end to end with certificates made in the test:
the typed client and the agent's session client get in with the right credentials, and every
client without them (plaintext, no client certificate, a certificate from another CA, an
untrusted server) is refused during the handshake, before any key is looked at.

Transport security does not depend on the database, so these brokers run on SQLite only.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from agent.stream.client import ClientOptions, SessionClient
from brokkr_common.client import BrokkrClient, TlsConfig
from brokkr_common.errors import Unavailable
from brokkr_common.pb.brokkr.v1 import agent_pb2
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import auth_service_pb2 as auth_api
from brokkr_common.session import agent_session as machine
from brokkr_common.session.reports import ResourceResult
from tests.integration.harness import RunningBroker, running_broker
from tests.integration.security.pki import Issued, certificate_authority, issue

TIMEOUT = 10.0


@dataclass(frozen=True)
class Pki:
    ca: Issued
    server: Issued
    client: Issued
    other_ca: Issued
    foreign_client: Issued  # issued by other_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = certificate_authority(directory, "brokkr-test-ca")
    other_ca = certificate_authority(directory, "someone-elses-ca")
    return Pki(
        ca=ca,
        server=issue(directory, ca, "broker", server=True),
        client=issue(directory, ca, "agent-edge-1", server=False),
        other_ca=other_ca,
        foreign_client=issue(directory, other_ca, "intruder", server=False),
    )


def _tls_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki: Pki, *, mutual: bool
) -> Iterator[RunningBroker]:
    # `running_broker` sets the grpc group's host and port itself; TLS comes from the environment,
    # which the settings merge underneath, as in a deployment.
    monkeypatch.setenv("BROKKR_GRPC__TLS__CERT_FILE", str(pki.server.cert_file))
    monkeypatch.setenv("BROKKR_GRPC__TLS__KEY_FILE", str(pki.server.key_file))
    if mutual:
        monkeypatch.setenv("BROKKR_GRPC__TLS__CLIENT_CA_FILE", str(pki.ca.cert_file))
    with running_broker(f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}") as running:
        assert running.broker.settings.grpc.tls.enabled
        assert (running.broker.settings.grpc.tls.client_ca_file is not None) is mutual
        yield running


@pytest.fixture
def tls_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki: Pki) -> Iterator[RunningBroker]:
    yield from _tls_broker(tmp_path, monkeypatch, pki, mutual=False)


@pytest.fixture
def mtls_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pki: Pki) -> Iterator[RunningBroker]:
    yield from _tls_broker(tmp_path, monkeypatch, pki, mutual=True)


def who_am_i(running: RunningBroker, tls: TlsConfig | None, key: str | None = None) -> str:
    with BrokkrClient(running.grpc_target, key or running.admin_key, tls=tls, timeout=TIMEOUT) as client:
        return auth_api.Role.Name(client.call(client.auth.WhoAmI, auth_api.WhoAmIRequest()).role)


def assert_refused(running: RunningBroker, tls: TlsConfig | None) -> None:
    with pytest.raises(Unavailable):
        who_am_i(running, tls)


def test_tls_serves_clients_that_trust_the_ca_and_refuses_plaintext(
    tls_broker: RunningBroker, pki: Pki
) -> None:
    assert who_am_i(tls_broker, TlsConfig(ca_file=pki.ca.cert_file)) == "ROLE_ADMIN"
    assert who_am_i(tls_broker, TlsConfig(ca_file=pki.ca.cert_file, server_name="localhost")) == "ROLE_ADMIN"
    # A TLS-only broker does not ask for client certificates; presenting one does no harm.
    assert (
        who_am_i(tls_broker, TlsConfig(pki.ca.cert_file, pki.client.cert_file, pki.client.key_file))
        == "ROLE_ADMIN"
    )
    assert_refused(tls_broker, None)  # plaintext HTTP/2 to a TLS port
    assert_refused(tls_broker, TlsConfig(ca_file=pki.other_ca.cert_file))  # the server is not trusted


def test_the_rest_shim_keeps_working_behind_a_tls_port(tls_broker: RunningBroker) -> None:
    """The shim forwards over a loopback-only plaintext port, so TLS on the public port leaves it
    working, and it still checks keys."""
    assert tls_broker.rest_url is not None
    request = urllib.request.Request(
        tls_broker.rest_url + "/api/v1/stacks", headers={"Authorization": f"Bearer {tls_broker.admin_key}"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tls_broker.rest_url + "/api/v1/stacks", timeout=TIMEOUT)
    with refused.value:
        assert refused.value.code == 401


def test_mutual_tls_needs_a_client_certificate_from_the_configured_ca(
    mtls_broker: RunningBroker, pki: Pki
) -> None:
    good = TlsConfig(ca_file=pki.ca.cert_file, cert_file=pki.client.cert_file, key_file=pki.client.key_file)
    assert who_am_i(mtls_broker, good) == "ROLE_ADMIN"

    assert_refused(mtls_broker, TlsConfig(ca_file=pki.ca.cert_file))  # no client certificate
    foreign = TlsConfig(pki.ca.cert_file, pki.foreign_client.cert_file, pki.foreign_client.key_file)
    assert_refused(mtls_broker, foreign)  # a certificate from another CA
    assert_refused(mtls_broker, None)  # plaintext


def test_mutual_tls_does_not_replace_the_key(mtls_broker: RunningBroker, pki: Pki) -> None:
    good = TlsConfig(ca_file=pki.ca.cert_file, cert_file=pki.client.cert_file, key_file=pki.client.key_file)
    with (
        BrokkrClient(mtls_broker.grpc_target, None, tls=good, timeout=TIMEOUT) as client,
        pytest.raises(grpc.RpcError) as refused,
    ):
        client.auth.WhoAmI(auth_api.WhoAmIRequest(), timeout=TIMEOUT)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


class NothingToApply:
    """An agent runtime for a broker that targets nothing at the agent."""

    async def apply(self, work: machine.Apply) -> Sequence[ResourceResult]:
        raise AssertionError(f"unexpected work {work}")

    async def remove(self, work: machine.Remove) -> Sequence[ResourceResult]:
        raise AssertionError(f"unexpected work {work}")

    async def probe(self) -> tuple[bool, int]:
        return True, 1


def _agent_key(running: RunningBroker, tls: TlsConfig) -> tuple[str, str]:
    with BrokkrClient(running.grpc_target, running.admin_key, tls=tls, timeout=TIMEOUT) as admin:
        created = admin.call(
            admin.agents.CreateAgent,
            agent_api.CreateAgentRequest(
                agent=agent_pb2.Agent(
                    name="edge-1", cluster_name="edge", status=agent_pb2.AGENT_STATUS_ACTIVE
                )
            ),
        )
    return created.agent.id, created.key


async def _session(running: RunningBroker, key: str, credentials: grpc.ChannelCredentials) -> SessionClient:
    options = ClientOptions(
        agent_version="tls-test",
        reconnect_base_seconds=0.05,
        reconnect_max_seconds=0.2,
        credentials=credentials,
    )
    return SessionClient(running.grpc_target, lambda: key, NothingToApply(), {}, options)


async def test_the_agent_session_client_connects_over_mutual_tls(
    mtls_broker: RunningBroker, pki: Pki
) -> None:
    good = TlsConfig(ca_file=pki.ca.cert_file, cert_file=pki.client.cert_file, key_file=pki.client.key_file)
    agent_id, key = await asyncio.to_thread(_agent_key, mtls_broker, good)

    client = await _session(mtls_broker, key, good.credentials())
    task = asyncio.create_task(client.run())
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.connected.wait()
        assert client.welcome is not None and client.welcome.agent_id == agent_id
    finally:
        await client.stop()
        async with asyncio.timeout(TIMEOUT):
            await task


async def test_an_agent_without_a_client_certificate_never_gets_a_session(
    mtls_broker: RunningBroker, pki: Pki
) -> None:
    good = TlsConfig(ca_file=pki.ca.cert_file, cert_file=pki.client.cert_file, key_file=pki.client.key_file)
    _, key = await asyncio.to_thread(_agent_key, mtls_broker, good)

    client = await _session(mtls_broker, key, TlsConfig(ca_file=pki.ca.cert_file).credentials())
    task = asyncio.create_task(client.run())
    try:
        await asyncio.sleep(1.0)  # several reconnect attempts at 50-200 ms
        assert not client.connected.is_set() and client.welcome is None
    finally:
        await client.stop()
        async with asyncio.timeout(TIMEOUT):
            await task
