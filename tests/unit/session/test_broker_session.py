"""Every transition of the broker end of a session, as a table: inputs in, exact actions out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest
from google.rpc import status_pb2

from brokkr_common.errors import FailedPrecondition, InvalidArgument, Unavailable
from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as pb
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.pb.brokkr.v1 import deployment_object_pb2
from brokkr_common.session.broker_session import (
    Action,
    BrokerSession,
    Close,
    HeartbeatPolicy,
    Ignored,
    IgnoredReason,
    RecordAck,
    RecordConnected,
    RecordHealth,
    RecordHeartbeat,
    RecordNack,
    Send,
    SendUpdate,
)
from brokkr_common.session.delta import Delta
from brokkr_common.session.reports import (
    Health,
    ResourceHealth,
    ResourceOutcome,
    ResourceResult,
    StackHealth,
)
from brokkr_common.session.stacks import (
    UNKNOWN,
    DeploymentObjectRef,
    DesiredResource,
    DesiredStack,
)
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
    SESSION,
    STACK_A,
    STACK_B,
    T0,
    ack,
    comparable,
    heartbeat,
    hello,
    holding,
    holding_objects,
    nack,
    nonce,
    sha256,
)

# -- inputs ------------------------------------------------------------------------------------

Input = Callable[[BrokerSession], list[Action]]


def receive(message: service_pb.ConnectRequest, now: float = T0) -> Input:
    return lambda session: session.receive(message, now)


def desire(stack_id: str, desired: DesiredStack | None) -> Input:
    return lambda session: session.set_desired(stack_id, desired)


def retry(stack_id: str) -> Input:
    return lambda session: session.retry(stack_id)


def tick(now: float) -> Input:
    return lambda session: session.tick(now)


# -- expected actions --------------------------------------------------------------------------


def greeting(held: Mapping[str, DeploymentObjectRef | None] | None = None) -> list[Action]:
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
        RecordConnected("1.0.0", (), MappingProxyType(dict(held or {}))),
        Send(service_pb.ConnectResponse(welcome=welcome)),
    ]


def update(
    desired: DesiredStack,
    counter: int,
    apply: tuple[DesiredResource, ...] = (),
    remove: tuple[DesiredResource, ...] = (),
    full_state: bool = False,
) -> SendUpdate:
    delta = Delta(tuple(sorted((r.key, r.content_hash) for r in apply)), tuple(sorted(r.key for r in remove)))
    return SendUpdate(PlannedUpdate(desired, delta, full_state), nonce(counter))


def full(desired: DesiredStack, counter: int) -> SendUpdate:
    return update(desired, counter, apply=desired.resources, full_state=True)


def removal(stack_id: str, counter: int) -> Send:
    message = pb.StackRemoval(stack_id=stack_id)
    return Send(service_pb.ConnectResponse(stack_removal=message, nonce=nonce(counter)))


def acked(stack_id: str, desired: DesiredStack | None, *results: ResourceResult) -> RecordAck:
    return RecordAck(stack_id, desired.deployment_object if desired else None, results)


def nacked(stack_id: str, desired: DesiredStack | None) -> RecordNack:
    return RecordNack(stack_id, desired.deployment_object if desired else None, FAILED, ())


def ignored(reason: IgnoredReason, stack_id: str, counter: int | str) -> Ignored:
    return Ignored(reason, stack_id, nonce(counter) if isinstance(counter, int) else counter)


def invalid(field: str, reason: str = "INVALID_FIELD") -> Close:
    return Close(InvalidArgument.for_field(field, "", reason=reason))


def precondition(reason: str) -> Close:
    return Close(FailedPrecondition("", reason=reason))


def health_report(*stacks: pb.StackHealth) -> service_pb.ConnectRequest:
    return service_pb.ConnectRequest(health_report=pb.HealthReport(stacks=stacks))


KEY_WITHOUT_NAME = deployment_object_pb2.ResourceKey(version="v1", kind="Pod")
HUGE_NONCE = f"{SESSION}/{'9' * 5000}"  # int() refuses strings this long
STRANGER = DeploymentObjectRef("never-seen", 7, sha256("never seen"))
CONNECTED = receive(hello())
HOLDS_A1 = {STACK_A: holding(A1)}


@dataclass
class Case:
    name: str
    steps: list[tuple[Input, list[Action]]]
    desired: dict[str, DesiredStack] = field(default_factory=dict)
    parked: dict[str, str] = field(default_factory=dict)


CASES = [
    # -- resuming: only what the agent lacks ----------------------------------------------------
    Case(
        "first connect: the full state of every desired stack, in stack id order",
        desired={STACK_B: B1, STACK_A: A1},
        steps=[(CONNECTED, [*greeting(), full(A1, 1), full(B1, 2)])],
    ),
    Case(
        "reconnect with nothing changed: no update",
        desired={STACK_A: A1},
        steps=[(receive(hello(HOLDS_A1)), greeting({STACK_A: A1.deployment_object}))],
    ),
    Case(
        "reconnect after a change: only the changed and new objects",
        desired={STACK_A: A2},
        steps=[
            (
                receive(hello(HOLDS_A1)),
                [
                    *greeting({STACK_A: A1.deployment_object}),
                    update(A2, 1, apply=(CONFIG_CHANGED, DEPLOYMENT)),
                ],
            )
        ],
    ),
    Case(
        "reconnect after two changes: the delta against what is held, removals included",
        desired={STACK_A: A3},
        steps=[
            (
                receive(hello(HOLDS_A1)),
                [
                    *greeting({STACK_A: A1.deployment_object}),
                    update(A3, 1, apply=(CONFIG_CHANGED, DEPLOYMENT), remove=(SERVICE,)),
                ],
            )
        ],
    ),
    Case(
        "hello claiming a version never seen: the delta is still per object hash",
        desired={STACK_A: A2},
        steps=[
            (
                receive(hello({STACK_A: holding_objects(STRANGER, (CONFIG, SERVICE, DEPLOYMENT))})),
                [*greeting({STACK_A: STRANGER}), update(A2, 1, apply=(CONFIG_CHANGED,))],
            )
        ],
    ),
    Case(
        "hello claiming the desired version with other objects: it gets the difference",
        desired={STACK_A: A2},
        steps=[
            (
                receive(hello({STACK_A: holding_objects(A2.deployment_object, (CONFIG, SERVICE))})),
                [
                    *greeting({STACK_A: A2.deployment_object}),
                    update(A2, 1, apply=(CONFIG_CHANGED, DEPLOYMENT)),
                ],
            )
        ],
    ),
    Case(
        "hello holding the desired objects under another version: an empty update, so it acks",
        desired={STACK_A: A1},
        steps=[
            (
                receive(hello({STACK_A: holding_objects(STRANGER, A1.resources)})),
                [*greeting({STACK_A: STRANGER}), update(A1, 1)],
            ),
            (receive(ack(1, STACK_A, A1)), [acked(STACK_A, A1)]),
        ],
    ),
    Case(
        "hello holding something it cannot describe: a full state",
        desired={STACK_A: A2},
        steps=[(receive(hello({STACK_A: UNKNOWN})), [*greeting({STACK_A: None}), full(A2, 1)])],
    ),
    Case(
        "hello holding a stack no longer desired: a removal, then the stack is forgotten",
        desired={STACK_B: B1},
        steps=[
            (
                receive(hello({STACK_A: holding(A1), STACK_B: holding(B1)})),
                [
                    *greeting({STACK_A: A1.deployment_object, STACK_B: B1.deployment_object}),
                    removal(STACK_A, 1),
                ],
            ),
            (receive(ack(1, STACK_A)), [acked(STACK_A, None)]),
            (desire(STACK_A, None), []),
        ],
    ),
    Case(
        "changes before the hello wait for it",
        desired={STACK_A: A1},
        steps=[
            (desire(STACK_A, A2), []),
            (desire(STACK_B, B1), []),
            (
                receive(hello(HOLDS_A1)),
                [
                    *greeting({STACK_A: A1.deployment_object}),
                    update(A2, 1, apply=(CONFIG_CHANGED, DEPLOYMENT)),
                    full(B1, 2),
                ],
            ),
        ],
    ),
    # -- acks, coalescing, stale answers --------------------------------------------------------
    Case(
        "ack: recorded with its results, and the next version is a delta against it",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (
                receive(
                    ack(
                        1,
                        STACK_A,
                        A1,
                        [pb.ResourceResult(key=CONFIG.key.to_proto(), outcome=pb.RESOURCE_OUTCOME_CREATED)],
                    )
                ),
                [acked(STACK_A, A1, ResourceResult(CONFIG.key, ResourceOutcome.CREATED))],
            ),
            (desire(STACK_A, A1), []),
            (desire(STACK_A, A2), [update(A2, 2, apply=(CONFIG_CHANGED, DEPLOYMENT))]),
        ],
    ),
    Case(
        "versions desired while one is in flight are coalesced: only the newest is sent",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (desire(STACK_A, A2), []),
            (desire(STACK_A, A3), []),
            (
                receive(ack(1, STACK_A, A1)),
                [acked(STACK_A, A1), update(A3, 2, apply=(CONFIG_CHANGED, DEPLOYMENT), remove=(SERVICE,))],
            ),
        ],
    ),
    Case(
        "a stack desired again at its in-flight version: nothing more after the ack",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (desire(STACK_A, A2), []),
            (desire(STACK_A, A1), []),
            (receive(ack(1, STACK_A, A1)), [acked(STACK_A, A1)]),
        ],
    ),
    Case(
        "duplicate ack: ignored as stale",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (receive(ack(1, STACK_A, A1)), [acked(STACK_A, A1)]),
            (receive(ack(1, STACK_A, A1)), [ignored(IgnoredReason.STALE_NONCE, STACK_A, 1)]),
        ],
    ),
    Case(
        "answers for nonces never issued, or for another stack, are ignored; the update still waits",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (receive(ack(2, STACK_A, A1)), [ignored(IgnoredReason.UNKNOWN_NONCE, STACK_A, 2)]),
            (
                receive(ack("other-session/1", STACK_A, A1)),
                [ignored(IgnoredReason.UNKNOWN_NONCE, STACK_A, "other-session/1")],
            ),
            (receive(ack(1, STACK_B, A1)), [ignored(IgnoredReason.STALE_NONCE, STACK_B, 1)]),
            (receive(nack(7, STACK_B)), [ignored(IgnoredReason.UNKNOWN_NONCE, STACK_B, 7)]),
            (receive(ack(HUGE_NONCE, STACK_A)), [ignored(IgnoredReason.UNKNOWN_NONCE, STACK_A, HUGE_NONCE)]),
            (receive(ack(1, STACK_A, A1)), [acked(STACK_A, A1)]),
        ],
    ),
    # -- nacks park a version ---------------------------------------------------------------------
    Case(
        "nack: recorded and parked, not resent when the same version is desired again",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (receive(nack(1, STACK_A)), [nacked(STACK_A, A1)]),
            (desire(STACK_A, A1), []),
            (tick(T0 + 1), []),
        ],
    ),
    Case(
        "nack then a newer version: un-parked, sent as a full state",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (receive(nack(1, STACK_A)), [nacked(STACK_A, A1)]),
            (desire(STACK_A, A2), [full(A2, 2)]),
        ],
    ),
    Case(
        "nack while a newer version waits: the newer one goes out at once",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (desire(STACK_A, A2), []),
            (receive(nack(1, STACK_A)), [nacked(STACK_A, A1), full(A2, 2)]),
        ],
    ),
    Case(
        "nack then an explicit retry: resent as a full state with a fresh nonce",
        desired={STACK_A: A2},
        steps=[
            (
                receive(hello(HOLDS_A1)),
                [
                    *greeting({STACK_A: A1.deployment_object}),
                    update(A2, 1, apply=(CONFIG_CHANGED, DEPLOYMENT)),
                ],
            ),
            (receive(nack(1, STACK_A)), [nacked(STACK_A, A2)]),
            (retry(STACK_A), [full(A2, 2)]),
            (retry(STACK_A), []),
        ],
    ),
    Case(
        "a version parked in an earlier session (recorded nack) stays parked on reconnect",
        desired={STACK_A: A2},
        parked={STACK_A: A2.deployment_object.id},
        steps=[
            (receive(hello(HOLDS_A1)), greeting({STACK_A: A1.deployment_object})),
            (desire(STACK_A, A3), [update(A3, 1, apply=(CONFIG_CHANGED, DEPLOYMENT), remove=(SERVICE,))]),
        ],
    ),
    Case(
        "a recorded nack of an older version does not park the desired one",
        desired={STACK_A: A2},
        parked={STACK_A: A1.deployment_object.id},
        steps=[(CONNECTED, [*greeting(), full(A2, 1)])],
    ),
    # -- removals ---------------------------------------------------------------------------------
    Case(
        "removal while an update is in flight supersedes it; the old ack is stale",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (desire(STACK_A, None), [removal(STACK_A, 2)]),
            (desire(STACK_A, None), []),
            (receive(ack(1, STACK_A, A1)), [ignored(IgnoredReason.STALE_NONCE, STACK_A, 1)]),
            (receive(ack(2, STACK_A)), [acked(STACK_A, None)]),
            (desire(STACK_A, A2), [full(A2, 3)]),
        ],
    ),
    Case(
        "a version desired while a removal is in flight waits for the removal's answer",
        steps=[
            (receive(hello(HOLDS_A1)), [*greeting({STACK_A: A1.deployment_object}), removal(STACK_A, 1)]),
            (desire(STACK_A, A2), []),
            (receive(ack(2, STACK_A)), [ignored(IgnoredReason.UNKNOWN_NONCE, STACK_A, 2)]),
            (receive(ack(1, STACK_A)), [acked(STACK_A, None), full(A2, 2)]),
        ],
    ),
    Case(
        "a failed removal is parked until retried",
        steps=[
            (receive(hello(HOLDS_A1)), [*greeting({STACK_A: A1.deployment_object}), removal(STACK_A, 1)]),
            (receive(nack(1, STACK_A)), [nacked(STACK_A, None)]),
            (desire(STACK_A, None), []),
            (retry(STACK_A), [removal(STACK_A, 2)]),
        ],
    ),
    Case(
        "a failed removal, then the stack is desired again: a full state",
        steps=[
            (receive(hello(HOLDS_A1)), [*greeting({STACK_A: A1.deployment_object}), removal(STACK_A, 1)]),
            (receive(nack(1, STACK_A)), [nacked(STACK_A, None)]),
            (desire(STACK_A, A1), [full(A1, 2)]),
        ],
    ),
    Case(
        "a removal nacked after a version was desired again is moot: the version goes out, and "
        "removing it again while it is in flight sends the removal (found by the property test)",
        steps=[
            (receive(hello(HOLDS_A1)), [*greeting({STACK_A: A1.deployment_object}), removal(STACK_A, 1)]),
            (desire(STACK_A, A2), []),
            (receive(nack(1, STACK_A)), [nacked(STACK_A, None), full(A2, 2)]),
            (desire(STACK_A, None), [removal(STACK_A, 3)]),
            (desire(STACK_A, A1), []),
        ],
    ),
    Case(
        "a stack the agent does not hold and no longer should: nothing to send",
        desired={STACK_A: A1},
        steps=[(desire(STACK_A, None), []), (CONNECTED, greeting()), (retry(STACK_A), [])],
    ),
    # -- protocol violations ----------------------------------------------------------------------
    Case(
        "a message before the hello closes the stream; nothing after counts",
        desired={STACK_A: A1},
        steps=[
            (receive(heartbeat(1)), [precondition("HELLO_REQUIRED")]),
            (CONNECTED, []),
            (desire(STACK_A, A2), []),
        ],
    ),
    Case(
        "a second hello closes the stream",
        steps=[(CONNECTED, greeting()), (CONNECTED, [precondition("DUPLICATE_HELLO")])],
    ),
    Case(
        "an ack naming another deployment object than its nonce's closes the stream",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (receive(ack(1, STACK_A, A2)), [invalid("ack.deployment_object")]),
        ],
    ),
    Case(
        "an ack with a malformed result key closes the stream",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (
                receive(
                    ack(
                        1, STACK_A, A1, [pb.ResourceResult(key=deployment_object_pb2.ResourceKey(kind="Pod"))]
                    )
                ),
                [invalid("ack.results[0].key", reason="MALFORMED_RESOURCE_KEY")],
            ),
        ],
    ),
    Case(
        "a nack with an OK status closes the stream",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (receive(nack(1, STACK_A, status_pb2.Status())), [invalid("nack.status.code")]),
        ],
    ),
    Case(
        "a message type from a newer agent is ignored",
        steps=[
            (CONNECTED, greeting()),
            (receive(service_pb.ConnectRequest()), [Ignored(IgnoredReason.UNKNOWN_MESSAGE)]),
        ],
    ),
    # -- health and heartbeats --------------------------------------------------------------------
    Case(
        "health of a known stack is recorded, of any other ignored",
        desired={STACK_A: A1},
        steps=[
            (CONNECTED, [*greeting(), full(A1, 1)]),
            (
                receive(
                    health_report(
                        pb.StackHealth(
                            stack_id=STACK_A,
                            health=pb.HEALTH_STATUS_FAILING,
                            resources=[
                                pb.ResourceHealth(
                                    key=DEPLOYMENT.key.to_proto(),
                                    health=pb.HEALTH_STATUS_FAILING,
                                    reason="CrashLoopBackOff",
                                )
                            ],
                        ),
                        pb.StackHealth(stack_id=STACK_B, health=pb.HEALTH_STATUS_HEALTHY),
                    )
                ),
                [
                    RecordHealth(
                        StackHealth(
                            STACK_A,
                            None,
                            Health.FAILING,
                            (ResourceHealth(DEPLOYMENT.key, Health.FAILING, "CrashLoopBackOff"),),
                        )
                    ),
                    Ignored(IgnoredReason.UNKNOWN_STACK, STACK_B),
                ],
            ),
        ],
    ),
    Case(
        "a heartbeat is recorded and answered, and postpones the timeout",
        steps=[
            (CONNECTED, greeting()),
            (
                receive(heartbeat(1), now=T0 + 20),
                [
                    RecordHeartbeat(None, True, 12, 1),
                    Send(
                        service_pb.ConnectResponse(
                            heartbeat_ack=pb.HeartbeatAck(server_time=timestamp(T0 + 20), sequence=1)
                        )
                    ),
                ],
            ),
            (tick(T0 + 49), []),
            (tick(T0 + 50), [Close(Unavailable("", reason="HEARTBEAT_TIMEOUT"))]),
            (receive(heartbeat(2), now=T0 + 51), []),
        ],
    ),
    Case(
        "no hello within the timeout closes the stream",
        steps=[(tick(T0 + 29), []), (tick(T0 + 30), [Close(Unavailable("", reason="HELLO_TIMEOUT"))])],
    ),
]


def start(
    desired: Mapping[str, DesiredStack] = MappingProxyType({}),
    parked: Mapping[str, str] = MappingProxyType({}),
) -> BrokerSession:
    return BrokerSession(
        agent_id="agent-1",
        agent_name="edge-1",
        session_id=SESSION,
        replica_name="broker-0",
        desired=desired,
        parked=parked,
        now=T0,
        heartbeats=HeartbeatPolicy(interval=10, timeout=30),
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_transitions(case: Case) -> None:
    session = start(case.desired, case.parked)
    for number, (step, expected) in enumerate(case.steps):
        assert comparable(step(session)) == comparable(expected), f"step {number}"


def held_entry(
    stack_id: str = STACK_A,
    *resources: deployment_object_pb2.Resource,
    ref: DeploymentObjectRef | None = None,
) -> pb.HeldStack:
    return pb.HeldStack(
        stack_id=stack_id, deployment_object=ref.to_proto() if ref else None, resources=resources
    )


def held_object(
    key: deployment_object_pb2.ResourceKey, digest: str = CONFIG.content_hash
) -> deployment_object_pb2.Resource:
    return deployment_object_pb2.Resource(key=key, content_hash=digest)


def key(**fields: str) -> deployment_object_pb2.ResourceKey:
    return deployment_object_pb2.ResourceKey(**{**CONFIG.key._asdict(), **fields})


def raw_hello(*stacks: pb.HeldStack, **fields: object) -> service_pb.ConnectRequest:
    return service_pb.ConnectRequest(hello=pb.Hello(stacks=stacks, **{"agent_version": "1.0.0", **fields}))


MALFORMED_HELLOS = [
    (
        "name missing",
        raw_hello(held_entry(STACK_A, held_object(key(name="")))),
        "hello.stacks[0].resources[0].key",
    ),
    (
        "name oversized",
        raw_hello(held_entry(STACK_A, held_object(key(name="n" * 254)))),
        "hello.stacks[0].resources[0].key",
    ),
    (
        "name with a slash",
        raw_hello(held_entry(STACK_A, held_object(key(name="a/b")))),
        "hello.stacks[0].resources[0].key",
    ),
    (
        "namespace upper case",
        raw_hello(held_entry(STACK_A, held_object(key(namespace="Prod")))),
        "hello.stacks[0].resources[0].key",
    ),
    (
        "group oversized",
        raw_hello(held_entry(STACK_A, held_object(key(group="g." * 127 + "io")))),
        "hello.stacks[0].resources[0].key",
    ),
    (
        "version missing",
        raw_hello(held_entry(STACK_A, held_object(key(version="")))),
        "hello.stacks[0].resources[0].key",
    ),
    (
        "kind not an identifier",
        raw_hello(held_entry(STACK_A, held_object(key(kind="Config Map")))),
        "hello.stacks[0].resources[0].key",
    ),
    (
        "content hash upper case",
        raw_hello(held_entry(STACK_A, held_object(key(), CONFIG.content_hash.upper()))),
        "hello.stacks[0].resources[0].content_hash",
    ),
    (
        "the same key twice",
        raw_hello(held_entry(STACK_A, held_object(key()), held_object(key()))),
        "hello.stacks[0].resources[1].key",
    ),
    ("the same stack twice", raw_hello(held_entry(STACK_A), held_entry(STACK_A)), "hello.stacks[1].stack_id"),
    ("stack id missing", raw_hello(held_entry("")), "hello.stacks[0].stack_id"),
    ("stack id oversized", raw_hello(held_entry("s" * 65)), "hello.stacks[0].stack_id"),
    (
        "sequence id zero",
        raw_hello(held_entry(STACK_A, ref=DeploymentObjectRef("do-1", 0, CONFIG.content_hash))),
        "hello.stacks[0].deployment_object.sequence_id",
    ),
    (
        "checksum missing",
        raw_hello(held_entry(STACK_A, ref=DeploymentObjectRef("do-1", 1, ""))),
        "hello.stacks[0].deployment_object.checksum",
    ),
    ("capability not lower_snake_case", raw_hello(capabilities=["Fancy-Feature"]), "hello.capabilities[0]"),
    ("too many capabilities", raw_hello(capabilities=["c"] * 65), "hello.capabilities"),
    ("agent version oversized", raw_hello(agent_version="1" * 129), "hello.agent_version"),
]


@pytest.mark.parametrize(
    ("message", "field"), [case[1:] for case in MALFORMED_HELLOS], ids=[case[0] for case in MALFORMED_HELLOS]
)
def test_a_malformed_hello_closes_the_stream_naming_the_field(
    message: service_pb.ConnectRequest, field: str
) -> None:
    session = start({STACK_A: A1})

    [action] = session.receive(message, T0)

    assert isinstance(action, Close)
    assert isinstance(action.error, InvalidArgument)
    assert [violation.field for violation in action.error.field_violations] == [field]
    assert session.closed
    assert session.receive(hello(), T0) == []
