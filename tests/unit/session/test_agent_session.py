"""Every transition of the agent end of a session, as a table: inputs in, exact actions out, and
what the agent holds afterwards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from brokkr_common.errors import ERROR_DOMAIN, FailedPrecondition, InvalidArgument, Unavailable
from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as pb
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.session.agent_session import (
    WELCOME_TIMEOUT_SECONDS,
    Action,
    AgentSession,
    Apply,
    Close,
    Remove,
    Send,
    Welcomed,
)
from brokkr_common.session.delta import compute_delta
from brokkr_common.session.reports import (
    Health,
    ResourceError,
    ResourceOutcome,
    ResourceResult,
    StackHealth,
)
from brokkr_common.session.stacks import UNKNOWN, DesiredResource, DesiredStack, HeldStack
from brokkr_common.session.times import duration, timestamp
from brokkr_common.session.updates import PlannedUpdate
from tests.unit.session.builders import (
    A1,
    A2,
    A3,
    B1,
    CONFIG,
    CONFIG_CHANGED,
    DEPLOYMENT,
    FAILED,
    SERVICE,
    STACK_A,
    STACK_B,
    T0,
    comparable,
    holding,
)

Input = Callable[[AgentSession], list[Action]]

# -- broker -> agent ---------------------------------------------------------------------------

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
WELCOMED = Welcomed("agent-1", "edge-1", "session-1", "broker-0", 10.0, 30.0, datetime.fromtimestamp(T0, UTC))


def stack_update(
    desired: DesiredStack, nonce: str, base: HeldStack | None = None
) -> service_pb.ConnectResponse:
    """The update a broker sends to bring `base` (None: unknown) to `desired`."""
    delta = compute_delta(base.resources if base else {}, desired.hashes)
    message = PlannedUpdate(desired, delta, full_state=base is None).to_proto()
    return service_pb.ConnectResponse(stack_update=message, nonce=nonce)


def stack_removal(stack_id: str, nonce: str) -> service_pb.ConnectResponse:
    return service_pb.ConnectResponse(stack_removal=pb.StackRemoval(stack_id=stack_id), nonce=nonce)


def tampered(message: service_pb.ConnectResponse) -> service_pb.ConnectResponse:
    """`message` with its first manifest changed but not its content hash."""
    copy = service_pb.ConnectResponse()
    copy.CopyFrom(message)
    copy.stack_update.apply[0].manifest += " "
    return copy


def repeating_a_key(message: service_pb.ConnectResponse) -> service_pb.ConnectResponse:
    copy = service_pb.ConnectResponse()
    copy.CopyFrom(message)
    copy.stack_update.remove.append(copy.stack_update.apply[0].key)
    return copy


# -- inputs ------------------------------------------------------------------------------------


def receive(message: service_pb.ConnectResponse, now: float = T0) -> Input:
    return lambda session: session.receive(message, now)


def applied(nonce: str, *results: ResourceResult) -> Input:
    return lambda session: session.applied(nonce, results)


def failed(nonce: str, *errors: ResourceError) -> Input:
    return lambda session: session.failed(nonce, FAILED, errors)


def beat(now: float, reachable: bool = True) -> Input:
    return lambda session: session.heartbeat(
        now, kubernetes_reachable=reachable, kubernetes_api_latency_ms=7 if reachable else 0
    )


def tick(now: float) -> Input:
    return lambda session: session.tick(now)


# -- expected actions --------------------------------------------------------------------------


def apply(
    nonce: str,
    desired: DesiredStack,
    to_apply: tuple[DesiredResource, ...],
    to_remove: tuple[DesiredResource, ...] = (),
    full_state: bool = False,
) -> Apply:
    return Apply(
        nonce,
        desired.stack_id,
        desired.name,
        desired.deployment_object,
        tuple(sorted(to_apply, key=lambda r: r.key)),
        tuple(sorted(r.key for r in to_remove)),
        full_state,
    )


def sent_ack(nonce: str, stack_id: str, desired: DesiredStack | None, *results: ResourceResult) -> Send:
    message = pb.Ack(
        nonce=nonce,
        stack_id=stack_id,
        deployment_object=desired.deployment_object.to_proto() if desired else None,
        results=[result.to_proto() for result in results],
    )
    return Send(service_pb.ConnectRequest(ack=message))


def sent_nack(nonce: str, stack_id: str, status: status_pb2.Status, *errors: ResourceError) -> Send:
    message = pb.Nack(nonce=nonce, stack_id=stack_id, status=status, errors=[e.to_proto() for e in errors])
    return Send(service_pb.ConnectRequest(nack=message))


def rejected(message: str, reason: str) -> status_pb2.Status:
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))
    return status


def sent_heartbeat(now: float, sequence: int, reachable: bool = True) -> Send:
    message = pb.Heartbeat(
        agent_time=timestamp(now),
        kubernetes_reachable=reachable,
        kubernetes_api_latency_ms=7 if reachable else 0,
        sequence=sequence,
    )
    return Send(service_pb.ConnectRequest(heartbeat=message))


CREATED = ResourceResult(CONFIG.key, ResourceOutcome.CREATED)
PRUNED = ResourceResult(SERVICE.key, ResourceOutcome.PRUNED, "no longer in the stack")
INVALID_DEPLOYMENT = ResourceError(DEPLOYMENT.key, "INVALID_OBJECT", "spec.replicas: must be >= 0")


@dataclass
class Case:
    name: str
    steps: list[tuple[Input, list[Action]]]
    held_before: dict[str, HeldStack] = field(default_factory=dict)
    held_after: dict[str, HeldStack] | None = None  # None: as before


CASES = [
    Case(
        "the welcome first: the heartbeat is due at once",
        steps=[(receive(WELCOME), [WELCOMED])],
    ),
    Case(
        "a full state on nothing: apply everything, ack, hold it",
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (receive(stack_update(A1, "n1")), [apply("n1", A1, A1.resources, full_state=True)]),
            (applied("n1", CREATED), [sent_ack("n1", STACK_A, A1, CREATED)]),
        ],
        held_after={STACK_A: holding(A1)},
    ),
    Case(
        "a delta: apply only the changes, and hold the merged state",
        held_before={STACK_A: holding(A1)},
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (
                receive(stack_update(A3, "n1", holding(A1))),
                [apply("n1", A3, (CONFIG_CHANGED, DEPLOYMENT), to_remove=(SERVICE,))],
            ),
            (applied("n1", PRUNED), [sent_ack("n1", STACK_A, A3, PRUNED)]),
        ],
        held_after={STACK_A: holding(A3)},
    ),
    Case(
        "a full state replaces whatever was held",
        held_before={STACK_A: holding(A3), STACK_B: holding(B1)},
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (receive(stack_update(A1, "n1")), [apply("n1", A1, A1.resources, full_state=True)]),
            (applied("n1"), [sent_ack("n1", STACK_A, A1)]),
        ],
        held_after={STACK_A: holding(A1), STACK_B: holding(B1)},
    ),
    Case(
        "a removal: remove, ack without a deployment object, forget the stack",
        held_before={STACK_A: holding(A1), STACK_B: holding(B1)},
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (receive(stack_removal(STACK_A, "n1")), [Remove("n1", STACK_A)]),
            (applied("n1"), [sent_ack("n1", STACK_A, None)]),
        ],
        held_after={STACK_B: holding(B1)},
    ),
    Case(
        "a failed apply: nack with the errors, and the stack is held but unknown",
        held_before={STACK_A: holding(A1)},
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (
                receive(stack_update(A2, "n1", holding(A1))),
                [apply("n1", A2, (CONFIG_CHANGED, DEPLOYMENT))],
            ),
            (failed("n1", INVALID_DEPLOYMENT), [sent_nack("n1", STACK_A, FAILED, INVALID_DEPLOYMENT)]),
        ],
        held_after={STACK_A: UNKNOWN},
    ),
    Case(
        "a failed removal: nack, and the stack is held but unknown",
        held_before={STACK_A: holding(A1)},
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (receive(stack_removal(STACK_A, "n1")), [Remove("n1", STACK_A)]),
            (failed("n1"), [sent_nack("n1", STACK_A, FAILED)]),
        ],
        held_after={STACK_A: UNKNOWN},
    ),
    Case(
        "a removal supersedes an unfinished apply, whose outcome is not answered",
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (receive(stack_update(A1, "n1")), [apply("n1", A1, A1.resources, full_state=True)]),
            (receive(stack_removal(STACK_A, "n2")), [Remove("n2", STACK_A)]),
            (applied("n1"), []),
            (applied("n2"), [sent_ack("n2", STACK_A, None)]),
        ],
    ),
    Case(
        "outcomes for unknown or already answered nonces are not answered",
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (applied("from-an-earlier-stream"), []),
            (receive(stack_update(A1, "n1")), [apply("n1", A1, A1.resources, full_state=True)]),
            (applied("n1"), [sent_ack("n1", STACK_A, A1)]),
            (applied("n1"), []),
            (failed("n1"), []),
        ],
        held_after={STACK_A: holding(A1)},
    ),
    Case(
        "an update whose manifest does not match its hash is nacked, not applied",
        held_before={STACK_A: holding(A1)},
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (
                receive(tampered(stack_update(A2, "n1", holding(A1)))),
                [
                    sent_nack(
                        "n1",
                        STACK_A,
                        rejected(
                            "stack_update.apply[0].content_hash: is not the SHA-256 of the manifest",
                            "CONTENT_HASH_MISMATCH",
                        ),
                    )
                ],
            ),
        ],
        held_after={STACK_A: holding(A1)},
    ),
    Case(
        "an update naming a key twice is nacked, not applied",
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (
                receive(repeating_a_key(stack_update(A1, "n1"))),
                [
                    sent_nack(
                        "n1",
                        STACK_A,
                        rejected("stack_update: lists a resource key more than once", "INVALID_FIELD"),
                    )
                ],
            ),
        ],
    ),
    Case(
        "heartbeat answers and message types from a newer broker are ignored",
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (receive(service_pb.ConnectResponse(heartbeat_ack=pb.HeartbeatAck(sequence=1))), []),
            (receive(service_pb.ConnectResponse()), []),
        ],
    ),
    # -- protocol violations ----------------------------------------------------------------------
    Case(
        "anything before the welcome closes the stream; nothing after counts",
        steps=[
            (receive(stack_update(A1, "n1")), [Close(FailedPrecondition("", reason="WELCOME_REQUIRED"))]),
            (receive(WELCOME), []),
        ],
    ),
    Case(
        "a second welcome closes the stream",
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (receive(WELCOME), [Close(FailedPrecondition("", reason="DUPLICATE_WELCOME"))]),
        ],
    ),
    Case(
        "a welcome without heartbeat interval closes the stream",
        steps=[
            (
                receive(service_pb.ConnectResponse(welcome=pb.Welcome(heartbeat_timeout=duration(30)))),
                [Close(InvalidArgument.for_field("welcome.heartbeat_interval", ""))],
            ),
        ],
    ),
    Case(
        "an update without nonce cannot be answered: the stream closes",
        steps=[
            (receive(WELCOME), [WELCOMED]),
            (receive(stack_update(A1, "")), [Close(InvalidArgument.for_field("nonce", ""))]),
        ],
    ),
    # -- heartbeats and health --------------------------------------------------------------------
    Case(
        "heartbeats only after the welcome, numbered from 1",
        steps=[
            (beat(T0), []),
            (receive(WELCOME), [WELCOMED]),
            (beat(T0 + 1), [sent_heartbeat(T0 + 1, 1)]),
            (beat(T0 + 11, reachable=False), [sent_heartbeat(T0 + 11, 2, reachable=False)]),
        ],
    ),
    Case(
        "a silent broker closes the stream after the welcome's timeout",
        steps=[
            (receive(WELCOME, now=T0 + 5), [WELCOMED]),
            (tick(T0 + 34), []),
            (tick(T0 + 35), [Close(Unavailable("", reason="BROKER_SILENT"))]),
            (beat(T0 + 36), []),
        ],
    ),
    Case(
        "no welcome in time closes the stream",
        steps=[
            (tick(T0 + WELCOME_TIMEOUT_SECONDS - 1), []),
            (tick(T0 + WELCOME_TIMEOUT_SECONDS), [Close(Unavailable("", reason="WELCOME_TIMEOUT"))]),
        ],
    ),
    Case(
        "health only after the welcome",
        steps=[
            (lambda session: session.report_health([StackHealth(STACK_A, None, Health.HEALTHY)]), []),
            (receive(WELCOME), [WELCOMED]),
            (
                lambda session: session.report_health(
                    [StackHealth(STACK_A, A1.deployment_object, Health.HEALTHY)]
                ),
                [
                    Send(
                        service_pb.ConnectRequest(
                            health_report=pb.HealthReport(
                                stacks=[
                                    pb.StackHealth(
                                        stack_id=STACK_A,
                                        deployment_object=A1.deployment_object.to_proto(),
                                        health=pb.HEALTH_STATUS_HEALTHY,
                                    )
                                ]
                            )
                        )
                    )
                ],
            ),
        ],
    ),
]


def start(held: dict[str, HeldStack] | None = None) -> AgentSession:
    return AgentSession(agent_version="1.0.0", held=held or {}, now=T0, capabilities=["compressed_manifests"])


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_transitions(case: Case) -> None:
    session = start(case.held_before)
    for number, (step, expected) in enumerate(case.steps):
        assert comparable(step(session)) == comparable(expected), f"step {number}"
    assert dict(session.held) == (case.held_before if case.held_after is None else case.held_after)


def test_hello_reports_every_held_stack_with_its_objects_sorted() -> None:
    session = start({STACK_B: UNKNOWN, STACK_A: holding(A1)})

    hello = session.hello().hello

    assert hello.agent_version == "1.0.0"
    assert list(hello.capabilities) == ["compressed_manifests"]
    assert [stack.stack_id for stack in hello.stacks] == [STACK_A, STACK_B]
    assert hello.stacks[0].deployment_object == A1.deployment_object.to_proto()
    assert [(r.key.kind, r.content_hash) for r in hello.stacks[0].resources] == [
        ("ConfigMap", CONFIG.content_hash),
        ("Service", SERVICE.content_hash),
    ]
    assert not hello.stacks[1].HasField("deployment_object")
    assert not hello.stacks[1].resources


def test_resume_state_marks_stacks_with_unfinished_work_unknown() -> None:
    session = start({STACK_A: holding(A1), STACK_B: holding(B1)})
    session.receive(WELCOME, T0)
    session.receive(stack_update(A2, "n1", holding(A1)), T0)
    session.receive(stack_removal("stack-c", "n2"), T0)

    resumed = session.resume_state()

    assert resumed == {STACK_A: UNKNOWN, STACK_B: holding(B1), "stack-c": UNKNOWN}
    assert AgentSession(agent_version="1.0.0", held=resumed, now=T0).hello().hello.stacks[0] == pb.HeldStack(
        stack_id=STACK_A
    )


def test_heartbeats_are_due_every_interval_after_the_welcome() -> None:
    session = start()
    assert session.next_heartbeat_at is None

    session.receive(WELCOME, T0 + 2)
    assert session.next_heartbeat_at == T0 + 2
    session.heartbeat(T0 + 3, kubernetes_reachable=True, kubernetes_api_latency_ms=5)

    assert session.next_heartbeat_at == T0 + 13
    assert session.deadline == T0 + 32
