"""The broker's session rules under any interleaving of desired-state changes, answers, forged and
replayed answers, retries and reconnects.

A `RuleBasedStateMachine` drives `BrokerSession`s for one agent, playing the agent itself: it
answers the update awaited for a stack with an ack or a nack, replays answers it already gave
(duplicates and stale nonces), invents nonces, and reconnects, after which a new session starts
from what the "database" recorded (nacked versions stay parked) and what the agent holds.

Invariants, checked on every message the broker sends or records:

* at most one update or removal is awaited per stack, and nonces are never reused;
* a version the agent nacked is not sent again until a retry or an ack (a newer version may be
  sent meanwhile: that is not the parked one);
* duplicate, stale and unknown answers change nothing and are reported as `Ignored`;
* once the agent acks everything and parked stacks are retried, it holds exactly the newest
  desired version of every desired stack, and nothing else.

`tests/unit/session/test_session_properties.py` wires a real AgentSession to the broker session
for convergence with partial applies; this machine covers the broker's side of hostile agents.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.rpc import code_pb2, status_pb2
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as pb
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.session import broker_session
from brokkr_common.session.broker_session import BrokerSession, IgnoredReason
from brokkr_common.session.stacks import DesiredStack, HeldStack
from tests.unit.session.builders import T0, resource, version

STACKS = ("stack-a", "stack-b")
OBJECTS = [
    resource(kind, name, size=size) for kind in ("ConfigMap", "Secret") for name in "xy" for size in (1, 2)
]
#: Five versions per stack; the first two share every object but differ as deployment objects.
VERSIONS = {
    stack_id: [
        version(stack_id, n + 1, *(OBJECTS[i] for i in pick))
        for n, pick in enumerate([(0, 2), (0, 2), (1, 3, 6), (7,), (0, 5)])
    ]
    for stack_id in STACKS
}
VERSION_INDEXES = st.none() | st.integers(0, 4)


@dataclass
class Awaited:
    nonce: str
    target: DesiredStack | None  # None: a removal


class HostileAgent(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.desired: dict[str, DesiredStack] = {}
        #: What the agent holds: the version it last acked per stack; None: something, after a
        #: failed apply or removal, that it cannot name (it says so in its Hello).
        self.held: dict[str, DesiredStack | None] = {}
        #: What the broker's database recorded as parked (a nacked version), by stack.
        self.parked: dict[str, str] = {}
        #: (stack id, nonce, session number) of every answer given, in every session.
        self.answered: list[tuple[str, str, int]] = []
        self.sessions = 0
        self.connect()

    # -- the broker session and what it sends -----------------------------------------------

    def connect(self) -> None:
        self.sessions += 1
        self.awaited: dict[str, Awaited] = {}
        self.issued: set[str] = set()
        self.session = BrokerSession(
            agent_id="agent-1",
            agent_name="edge-1",
            session_id=f"session-{self.sessions}",
            replica_name="broker-0",
            desired=dict(self.desired),
            now=T0,
            parked=dict(self.parked),
        )
        held = [
            (HeldStack(stack.deployment_object, stack.hashes) if stack else HeldStack(None, {})).to_proto(
                stack_id
            )
            for stack_id, stack in self.held.items()
        ]
        self.take(
            self.session.receive(
                service_pb.ConnectRequest(hello=pb.Hello(agent_version="1.0.0", stacks=held)), T0
            )
        )

    def take(self, actions: list[broker_session.Action]) -> None:
        for action in actions:
            assert not isinstance(action, broker_session.Close), action.error
            if isinstance(action, broker_session.SendUpdate):
                stack_id, nonce, target = action.update.desired.stack_id, action.nonce, action.update.desired
                assert self.parked.get(stack_id) != target.deployment_object.id, "a parked version was resent"
                assert stack_id not in self.awaited, "two updates in flight for one stack"
            elif isinstance(action, broker_session.Send) and action.message.HasField("stack_removal"):
                stack_id, nonce, target = action.message.stack_removal.stack_id, action.message.nonce, None
                # A removal may supersede an awaited update, never another removal.
                assert stack_id not in self.awaited or self.awaited[stack_id].target is not None
            else:
                if isinstance(action, broker_session.RecordNack) and action.deployment_object is not None:
                    self.parked[action.stack_id] = action.deployment_object.id
                elif isinstance(action, broker_session.RecordAck):
                    self.parked.pop(action.stack_id, None)
                continue
            assert nonce not in self.issued, "a nonce was reused"
            self.issued.add(nonce)
            self.awaited[stack_id] = Awaited(nonce, target)

    # -- rules ----------------------------------------------------------------------------------

    @rule(stack_id=st.sampled_from(STACKS), index=VERSION_INDEXES)
    def change_desired_state(self, stack_id: str, index: int | None) -> None:
        target = None if index is None else VERSIONS[stack_id][index]
        if target is None:
            self.desired.pop(stack_id, None)
        else:
            self.desired[stack_id] = target
        self.take(self.session.set_desired(stack_id, target))

    @precondition(lambda self: self.awaited)
    @rule(data=st.data(), succeeds=st.booleans())
    def answer(self, data: st.DataObject, succeeds: bool) -> None:
        stack_id = data.draw(st.sampled_from(sorted(self.awaited)))
        awaited = self.awaited.pop(stack_id)
        self.answered.append((stack_id, awaited.nonce, self.sessions))
        if succeeds:
            if awaited.target is None:
                self.held.pop(stack_id, None)
            else:
                self.held[stack_id] = awaited.target
            message = service_pb.ConnectRequest(ack=pb.Ack(nonce=awaited.nonce, stack_id=stack_id))
        else:
            self.held[stack_id] = None  # a failed apply or removal leaves who knows what
            status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="refused by the cluster")
            message = service_pb.ConnectRequest(
                nack=pb.Nack(nonce=awaited.nonce, stack_id=stack_id, status=status)
            )
        actions = self.session.receive(message, T0)
        recorded = [a for a in actions if isinstance(a, broker_session.RecordAck | broker_session.RecordNack)]
        assert [(type(a), a.stack_id) for a in recorded] == [
            (broker_session.RecordAck if succeeds else broker_session.RecordNack, stack_id)
        ]
        self.take(actions)

    @precondition(lambda self: self.answered)
    @rule(data=st.data(), as_ack=st.booleans())
    def replay_an_old_answer(self, data: st.DataObject, as_ack: bool) -> None:
        """A duplicate or stale ack/nack, of this session or an earlier one: ignored, and nothing is
        sent or recorded for it."""
        stack_id, nonce, session = data.draw(st.sampled_from(self.answered))
        reason = IgnoredReason.STALE_NONCE if session == self.sessions else IgnoredReason.UNKNOWN_NONCE
        if as_ack:
            message = service_pb.ConnectRequest(ack=pb.Ack(nonce=nonce, stack_id=stack_id))
        else:
            status = status_pb2.Status(code=code_pb2.INTERNAL)
            message = service_pb.ConnectRequest(nack=pb.Nack(nonce=nonce, stack_id=stack_id, status=status))
        assert self.session.receive(message, T0) == [broker_session.Ignored(reason, stack_id, nonce)]

    @rule(
        stack_id=st.sampled_from(STACKS),
        nonce=st.sampled_from(
            ["", "forged", "session-1/999", "session-99/1", "session-1/01", "session-1/-1"]
        ),
    )
    def forge_an_answer(self, stack_id: str, nonce: str) -> None:
        """Nonces never issued (or issued by another session) are ignored as unknown or stale."""
        if nonce in self.issued:
            return
        actions = self.session.receive(
            service_pb.ConnectRequest(ack=pb.Ack(nonce=nonce, stack_id=stack_id)), T0
        )
        assert [type(a) for a in actions] == [broker_session.Ignored]
        assert actions[0].reason in (IgnoredReason.UNKNOWN_NONCE, IgnoredReason.STALE_NONCE)

    @rule(stack_id=st.sampled_from(STACKS))
    def retry(self, stack_id: str) -> None:
        self.parked.pop(stack_id, None)  # the admin's retry clears the recorded failure too
        self.take(self.session.retry(stack_id))

    @rule()
    def reconnect(self) -> None:
        """The stream breaks; answers still owed are lost, and a new session starts."""
        self.connect()

    # -- the end ----------------------------------------------------------------------------------

    def teardown(self) -> None:
        """Acks flow and parked stacks are retried: the agent ends with the newest desired state."""
        for _ in range(10):
            for stack_id in STACKS:
                self.retry(stack_id)
            while self.awaited:
                stack_id, awaited = next(iter(self.awaited.items()))
                del self.awaited[stack_id]
                if awaited.target is None:
                    self.held.pop(stack_id, None)
                else:
                    self.held[stack_id] = awaited.target
                self.take(
                    self.session.receive(
                        service_pb.ConnectRequest(ack=pb.Ack(nonce=awaited.nonce, stack_id=stack_id)), T0
                    )
                )
        assert not self.awaited
        assert {stack_id: stack and stack.deployment_object for stack_id, stack in self.held.items()} == {
            stack_id: stack.deployment_object for stack_id, stack in self.desired.items()
        }


TestHostileAgent = HostileAgent.TestCase
TestHostileAgent.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
