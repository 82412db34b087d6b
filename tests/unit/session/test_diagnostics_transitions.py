"""Diagnostics on both ends of a session, as tables: inputs in, exact actions out.

Requests travel beside stack updates: before the Welcome they wait, to an agent without the
`diagnostics` capability they fail at once, and only a result for a request the session sent and
still awaits is recorded (unknown ids and duplicates are ignored and counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from google.rpc import status_pb2

from brokkr_common.errors import InvalidArgument
from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as pb
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.pb.brokkr.v1 import diagnostics_pb2
from brokkr_common.session import agent_session as agent_end
from brokkr_common.session import broker_session as broker_end
from brokkr_common.session.broker_session import (
    BrokerSession,
    Close,
    DiagnosticsUnsupported,
    HeartbeatPolicy,
    Ignored,
    IgnoredReason,
    RecordConnected,
    RecordDiagnostics,
    RecordDiagnosticsSent,
    Send,
)
from brokkr_common.session.times import duration, timestamp
from tests.unit.session.builders import SESSION, STACK_A, T0, comparable, hello

OPTIONS = diagnostics_pb2.DiagnosticsOptions(log_tail_lines=50, max_log_bytes=16384)
REPORT = diagnostics_pb2.DiagnosticsReport(
    pods=[diagnostics_pb2.PodDiagnostics(namespace="web", name="web-1", phase="Running")]
)
FAILURE = status_pb2.Status(code=14, message="the Kubernetes API is unreachable")
D1, D2 = "diag-1", "diag-2"

BrokerInput = Callable[[BrokerSession], list[broker_end.Action]]


def request(diagnostics_id: str) -> BrokerInput:
    return lambda session: session.request_diagnostics(diagnostics_id, STACK_A, OPTIONS)


def receive(message: service_pb.ConnectRequest) -> BrokerInput:
    return lambda session: session.receive(message, T0)


def capable_hello() -> BrokerInput:
    return receive(hello(capabilities=["diagnostics"]))


def result(diagnostics_id: str, **fields: object) -> service_pb.ConnectRequest:
    message = pb.DiagnosticsResult(diagnostics_id=diagnostics_id, stack_id=STACK_A, **fields)
    return service_pb.ConnectRequest(diagnostics_result=message)


def sent(diagnostics_id: str) -> list[broker_end.Action]:
    message = pb.DiagnosticsRequest(diagnostics_id=diagnostics_id, stack_id=STACK_A, options=OPTIONS)
    return [
        Send(service_pb.ConnectResponse(diagnostics_request=message)),
        RecordDiagnosticsSent(diagnostics_id),
    ]


def greeting(*capabilities: str) -> list[broker_end.Action]:
    welcome = pb.Welcome(
        agent_id="agent-1",
        agent_name="edge-1",
        heartbeat_interval=duration(10),
        heartbeat_timeout=duration(30),
        server_time=timestamp(T0),
        session_id=SESSION,
        replica_name="broker-0",
    )
    return [
        RecordConnected("1.0.0", capabilities, MappingProxyType({})),
        Send(service_pb.ConnectResponse(welcome=welcome)),
    ]


def invalid(field: str) -> Close:
    return Close(InvalidArgument.for_field(field, ""))


@dataclass
class Case:
    name: str
    steps: list[tuple[BrokerInput, list[broker_end.Action]]]


BROKER_CASES = [
    Case(
        "a request before the Welcome waits for it, then follows it",
        [(request(D1), []), (capable_hello(), [*greeting("diagnostics"), *sent(D1)])],
    ),
    Case(
        "a request after the Welcome is sent at once",
        [(capable_hello(), greeting("diagnostics")), (request(D1), sent(D1))],
    ),
    Case(
        "an agent without the capability gets nothing: the request fails",
        [
            (request(D1), []),
            (receive(hello()), [*greeting(), DiagnosticsUnsupported(D1)]),
            (request(D2), [DiagnosticsUnsupported(D2)]),
        ],
    ),
    Case(
        "a request already sent on this session is not sent again",
        [(capable_hello(), greeting("diagnostics")), (request(D1), sent(D1)), (request(D1), [])],
    ),
    Case(
        "a report answers the request once; a duplicate is ignored",
        [
            (capable_hello(), greeting("diagnostics")),
            (request(D1), sent(D1)),
            (receive(result(D1, report=REPORT)), [RecordDiagnostics(D1, STACK_A, None, REPORT)]),
            (receive(result(D1, report=REPORT)), [Ignored(IgnoredReason.UNKNOWN_DIAGNOSTICS, STACK_A)]),
        ],
    ),
    Case(
        "an error answers the request",
        [
            (capable_hello(), greeting("diagnostics")),
            (request(D1), sent(D1)),
            (receive(result(D1, error=FAILURE)), [RecordDiagnostics(D1, STACK_A, FAILURE, None)]),
        ],
    ),
    Case(
        "a result for an id never sent is ignored",
        [
            (capable_hello(), greeting("diagnostics")),
            (
                receive(result("never-asked", report=REPORT)),
                [Ignored(IgnoredReason.UNKNOWN_DIAGNOSTICS, STACK_A)],
            ),
        ],
    ),
    Case(
        "a result with neither report nor error closes the stream",
        [
            (capable_hello(), greeting("diagnostics")),
            (request(D1), sent(D1)),
            (receive(result(D1)), [invalid("diagnostics_result")]),
        ],
    ),
    Case(
        "an error whose code is OK closes the stream",
        [
            (capable_hello(), greeting("diagnostics")),
            (request(D1), sent(D1)),
            (
                receive(result(D1, error=status_pb2.Status(code=0))),
                [invalid("diagnostics_result.error.code")],
            ),
        ],
    ),
    Case(
        "a result larger than 4 MiB closes the stream",
        [
            (capable_hello(), greeting("diagnostics")),
            (request(D1), sent(D1)),
            (
                receive(
                    result(
                        D1,
                        report=diagnostics_pb2.DiagnosticsReport(warnings=["x" * (1024 * 1024)] * 5),
                    )
                ),
                [invalid("diagnostics_result")],
            ),
        ],
    ),
]


def start_broker() -> BrokerSession:
    return BrokerSession(
        agent_id="agent-1",
        agent_name="edge-1",
        session_id=SESSION,
        replica_name="broker-0",
        desired={},
        now=T0,
        heartbeats=HeartbeatPolicy(interval=10, timeout=30),
    )


@pytest.mark.parametrize("case", BROKER_CASES, ids=[case.name for case in BROKER_CASES])
def test_broker_transitions(case: Case) -> None:
    session = start_broker()
    for number, (step, expected) in enumerate(case.steps):
        assert comparable(step(session)) == comparable(expected), f"step {number}"


# -- the agent end -----------------------------------------------------------------------------

AgentInput = Callable[[agent_end.AgentSession], list[agent_end.Action]]

WELCOME = service_pb.ConnectResponse(
    welcome=pb.Welcome(
        agent_id="agent-1",
        agent_name="edge-1",
        heartbeat_interval=duration(10),
        heartbeat_timeout=duration(30),
        server_time=timestamp(T0),
        session_id="session-1",
        replica_name="broker-0",
    )
)
WELCOMED = agent_end.Welcomed(
    "agent-1", "edge-1", "session-1", "broker-0", 10.0, 30.0, datetime.fromtimestamp(T0, UTC)
)


def broker_says(message: service_pb.ConnectResponse) -> AgentInput:
    return lambda session: session.receive(message, T0)


def asked(diagnostics_id: str, stack_id: str = STACK_A) -> service_pb.ConnectResponse:
    message = pb.DiagnosticsRequest(diagnostics_id=diagnostics_id, stack_id=stack_id, options=OPTIONS)
    return service_pb.ConnectResponse(diagnostics_request=message)


def answer(diagnostics_id: str, **fields: object) -> agent_end.Send:
    message = pb.DiagnosticsResult(diagnostics_id=diagnostics_id, stack_id=STACK_A, **fields)
    return agent_end.Send(service_pb.ConnectRequest(diagnostics_result=message))


@dataclass
class AgentCase:
    name: str
    steps: list[tuple[AgentInput, list[agent_end.Action]]]
    capabilities: tuple[str, ...] = ("diagnostics",)


AGENT_CASES = [
    AgentCase(
        "a request becomes a Diagnose; the report answers it once",
        [
            (broker_says(WELCOME), [WELCOMED]),
            (broker_says(asked(D1)), [agent_end.Diagnose(D1, STACK_A, OPTIONS)]),
            (lambda s: s.diagnosed(D1, STACK_A, REPORT), [answer(D1, report=REPORT)]),
            (lambda s: s.diagnosed(D1, STACK_A, REPORT), []),
        ],
    ),
    AgentCase(
        "a failure answers with its status",
        [
            (broker_says(WELCOME), [WELCOMED]),
            (broker_says(asked(D1)), [agent_end.Diagnose(D1, STACK_A, OPTIONS)]),
            (lambda s: s.diagnosis_failed(D1, STACK_A, FAILURE), [answer(D1, error=FAILURE)]),
        ],
    ),
    AgentCase(
        "a request repeated while it is collected starts nothing more",
        [
            (broker_says(WELCOME), [WELCOMED]),
            (broker_says(asked(D1)), [agent_end.Diagnose(D1, STACK_A, OPTIONS)]),
            (broker_says(asked(D1)), []),
        ],
    ),
    AgentCase(
        "an agent without the capability ignores requests",
        [(broker_says(WELCOME), [WELCOMED]), (broker_says(asked(D1)), [])],
        capabilities=(),
    ),
    AgentCase(
        "a request without a stack id closes the stream",
        [
            (broker_says(WELCOME), [WELCOMED]),
            (
                broker_says(asked(D1, stack_id="")),
                [agent_end.Close(InvalidArgument.for_field("diagnostics_request.stack_id", ""))],
            ),
        ],
    ),
    AgentCase(
        "an answer for a request never received sends nothing",
        [(broker_says(WELCOME), [WELCOMED]), (lambda s: s.diagnosed(D2, STACK_A, REPORT), [])],
    ),
]


@pytest.mark.parametrize("case", AGENT_CASES, ids=[case.name for case in AGENT_CASES])
def test_agent_transitions(case: AgentCase) -> None:
    session = agent_end.AgentSession(agent_version="1.0.0", held={}, now=T0, capabilities=case.capabilities)
    assert session.hello().hello.capabilities == list(case.capabilities)
    for number, (step, expected) in enumerate(case.steps):
        assert comparable(step(session)) == comparable(expected), f"step {number}"
