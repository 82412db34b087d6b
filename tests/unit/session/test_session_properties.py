"""Properties that must hold for any inputs: deltas are exact, one answer is awaited per stack at a
time, and a broker and an agent wired together converge on the newest desired versions."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from google.rpc import code_pb2, status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.session import agent_session, broker_session
from brokkr_common.session.agent_session import AgentSession
from brokkr_common.session.broker_session import BrokerSession, IgnoredReason
from brokkr_common.session.delta import Delta, Hashes, apply_delta, compute_delta
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef, DesiredStack, HeldStack
from brokkr_common.session.updates import UpdateEncoder
from tests.unit.session.builders import T0, resource, sha256, version

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

KEYS = st.builds(
    ResourceKey,
    group=st.sampled_from(["", "apps"]),
    version=st.just("v1"),
    kind=st.sampled_from(["ConfigMap", "Deployment"]),
    namespace=st.sampled_from(["", "prod"]),
    name=st.sampled_from(["a", "b", "c"]),
)
HASHES = st.dictionaries(KEYS, st.sampled_from([sha256("1"), sha256("2"), sha256("3")]), max_size=12)


@PROPERTY_SETTINGS
@given(held=HASHES, desired=HASHES)
def test_applying_the_delta_from_a_to_b_to_a_yields_b(held: Hashes, desired: Hashes) -> None:
    delta = compute_delta(held, desired)

    assert apply_delta(held, delta) == desired
    assert all(held.get(key) != digest for key, digest in delta.to_apply)  # nothing sent in vain
    assert all(key in held and key not in desired for key in delta.to_remove)
    assert compute_delta(desired, desired) == Delta()


# -- a pool of versions ------------------------------------------------------------------------

STACKS = ("stack-a", "stack-b", "stack-c")
OBJECTS = [
    resource(kind, name, size=size) for kind in ("ConfigMap", "Secret") for name in "xy" for size in (1, 2)
]


def _versions(stack_id: str) -> list[DesiredStack]:
    picks = [(0, 2), (1, 2), (1, 3, 6), (7,), (0, 2, 5)]
    return [version(stack_id, n + 1, *(OBJECTS[i] for i in pick)) for n, pick in enumerate(picks)]


VERSIONS = {stack_id: _versions(stack_id) for stack_id in STACKS}
#: A version of a stack by its index in VERSIONS, or None: not desired.
INDEXES = st.none() | st.integers(0, len(VERSIONS[STACKS[0]]) - 1)
DESIRED_CHANGES = st.tuples(st.sampled_from(STACKS), INDEXES)
HELD_STACKS = st.dictionaries(
    st.sampled_from(STACKS),
    st.builds(
        lambda objects, claimed: HeldStack(
            DeploymentObjectRef(f"old-{claimed}", claimed, sha256(str(claimed))) if claimed else None,
            MappingProxyType({o.key: o.content_hash for o in objects}),
        ),
        st.lists(st.sampled_from(OBJECTS), max_size=4, unique_by=lambda o: o.key),
        st.integers(0, 3),
    ),
)
#: (what happens, to which stack, which version) - the version only counts for "desire".
Step = tuple[str, str, int | None]


def steps(*kinds: str, max_size: int) -> st.SearchStrategy[list[Step]]:
    return st.lists(st.tuples(st.sampled_from(kinds), st.sampled_from(STACKS), INDEXES), max_size=max_size)


def pick(stack_id: str, index: int | None) -> DesiredStack | None:
    return None if index is None else VERSIONS[stack_id][index]


def desired_state(changes: list[tuple[str, int | None]]) -> dict[str, DesiredStack]:
    desired: dict[str, DesiredStack] = {}
    for stack_id, index in changes:
        desired.pop(stack_id, None)
        if index is not None:
            desired[stack_id] = VERSIONS[stack_id][index]
    return desired


# -- the broker never awaits two answers for one stack ------------------------------------------


@PROPERTY_SETTINGS
@given(
    initial=st.lists(DESIRED_CHANGES, max_size=4),
    held=HELD_STACKS,
    script=steps("desire", "ack", "nack", "stale", "retry", max_size=40),
)
def test_the_broker_never_has_two_updates_in_flight_for_a_stack(
    initial: list[tuple[str, int | None]], held: dict[str, HeldStack], script: list[Step]
) -> None:
    session = BrokerSession(
        agent_id="agent-1",
        agent_name="edge-1",
        session_id="s",
        replica_name="broker-0",
        desired=desired_state(initial),
        now=T0,
    )
    awaited: dict[str, tuple[str, bool]] = {}  # stack id -> (nonce, is a removal)
    answered: list[tuple[str, str]] = []
    issued: set[str] = set()

    def check(actions: list[broker_session.Action]) -> None:
        for action in actions:
            assert not isinstance(action, broker_session.Close)
            if isinstance(action, broker_session.SendUpdate):
                stack_id, nonce, removal = action.update.desired.stack_id, action.nonce, False
            elif isinstance(action, broker_session.Send) and action.message.HasField("stack_removal"):
                stack_id, nonce, removal = action.message.stack_removal.stack_id, action.message.nonce, True
            else:
                continue
            # Only a removal may supersede an awaited update; nothing supersedes a removal.
            assert stack_id not in awaited or (removal and not awaited[stack_id][1])
            assert nonce not in issued
            issued.add(nonce)
            awaited[stack_id] = (nonce, removal)

    def answer(kind: str, stack_id: str, nonce: str) -> service_pb.ConnectRequest:
        message = {"stack_id": stack_id, "nonce": nonce}
        if kind == "ack":
            return service_pb.ConnectRequest(ack=message)
        return service_pb.ConnectRequest(nack={**message, "status": {"code": 13}})

    check(
        session.receive(
            service_pb.ConnectRequest(hello={"stacks": [h.to_proto(s) for s, h in held.items()]}), T0
        )
    )
    for kind, stack_id, index in script:
        if kind == "desire":
            check(session.set_desired(stack_id, pick(stack_id, index)))
        elif kind == "retry":
            check(session.retry(stack_id))
        elif kind == "stale" and answered:
            old_stack_id, nonce = answered[0]
            actions = session.receive(answer("ack", old_stack_id, nonce), T0)
            assert [type(action) for action in actions] == [broker_session.Ignored]
        elif kind in ("ack", "nack") and stack_id in awaited:
            nonce, _ = awaited.pop(stack_id)
            answered.append((stack_id, nonce))
            check(session.receive(answer(kind, stack_id, nonce), T0))


# -- broker and agent wired together converge -------------------------------------------------


@dataclass
class Wire:
    """A broker session and an agent session joined by two ordered queues of encoded messages,
    with a fake runtime doing the agent's work on a fake cluster (stack id -> object hashes)."""

    desired: dict[str, DesiredStack]
    cluster: dict[str, dict[ResourceKey, str]]
    held: Mapping[str, HeldStack]
    encoder: UpdateEncoder = field(default_factory=UpdateEncoder)
    sessions: int = 0

    def __post_init__(self) -> None:
        self.connect(self.held)

    def connect(self, held: Mapping[str, HeldStack]) -> None:
        self.sessions += 1
        self.to_agent: deque[bytes] = deque()
        self.to_broker: deque[bytes] = deque()
        self.work: deque[agent_session.Apply | agent_session.Remove] = deque()
        self.broker = BrokerSession(
            agent_id="agent-1",
            agent_name="edge-1",
            session_id=f"session-{self.sessions}",
            replica_name="broker-0",
            desired=dict(self.desired),
            now=T0,
        )
        self.agent = AgentSession(agent_version="1.0.0", held=held, now=T0)
        self.to_broker.append(self.agent.hello().SerializeToString())

    def reconnect(self, finish_unanswered_work: bool) -> None:
        held = self.agent.resume_state()
        while finish_unanswered_work and self.work:
            self.run(self.work.popleft())
        self.connect(held)

    def set_desired(self, stack_id: str, desired: DesiredStack | None) -> None:
        self.desired.pop(stack_id, None)
        if desired is not None:
            self.desired[stack_id] = desired
        self.from_broker(self.broker.set_desired(stack_id, desired))

    def step(self, which: str) -> None:
        if which == "agent" and self.to_agent:
            message = service_pb.ConnectResponse.FromString(self.to_agent.popleft())
            self.from_agent(self.agent.receive(message, T0))
        elif which == "broker" and self.to_broker:
            message = service_pb.ConnectRequest.FromString(self.to_broker.popleft())
            self.from_broker(self.broker.receive(message, T0))
        elif which == "runtime" and self.work:
            work = self.work.popleft()
            self.run(work)
            self.from_agent(self.agent.applied(work.nonce))
        elif which == "runtime fails" and self.work:
            work = self.work.popleft()
            self.run(work, partially=True)
            self.from_agent(self.agent.failed(work.nonce, status_pb2.Status(code=code_pb2.INTERNAL)))

    def drain(self) -> None:
        """Deliver everything and retry every parked stack until nothing moves."""
        for _ in range(len(STACKS) + 1):
            self.settle()
            for stack_id in STACKS:
                self.from_broker(self.broker.retry(stack_id))
        assert self.quiet, "the sessions do not settle"

    def settle(self) -> None:
        for _ in range(1000):
            if self.quiet:
                return
            for which in ("agent", "broker", "runtime"):
                self.step(which)

    @property
    def quiet(self) -> bool:
        return not (self.to_agent or self.to_broker or self.work)

    def run(self, work: agent_session.Apply | agent_session.Remove, partially: bool = False) -> None:
        """Do the work on the cluster; `partially`: apply only the first object, as a failure may."""
        if isinstance(work, agent_session.Remove):
            if not partially:
                self.cluster.pop(work.stack_id, None)
            return
        before = {} if work.full_state and not partially else self.cluster.get(work.stack_id, {})
        applied = work.apply[:1] if partially else work.apply
        delta = Delta(tuple((r.key, r.content_hash) for r in applied), () if partially else work.remove)
        self.cluster[work.stack_id] = apply_delta(before, delta)

    def from_broker(self, actions: list[broker_session.Action]) -> None:
        for action in actions:
            assert not isinstance(action, broker_session.Close), action.error
            if isinstance(action, broker_session.Ignored):
                assert action.reason is IgnoredReason.STALE_NONCE
            elif isinstance(action, broker_session.SendUpdate):
                self.to_agent.append(self.encoder.encode(action.update, action.nonce))
            elif isinstance(action, broker_session.Send):
                self.to_agent.append(action.message.SerializeToString())

    def from_agent(self, actions: list[agent_session.Action]) -> None:
        for action in actions:
            assert not isinstance(action, agent_session.Close), action.error
            if isinstance(action, agent_session.Send):
                self.to_broker.append(action.message.SerializeToString())
            elif isinstance(action, agent_session.Apply | agent_session.Remove):
                self.work.append(action)


class Convergence(RuleBasedStateMachine):
    """Any interleaving of deliveries, apply outcomes, desired-state changes and reconnects; at
    the end everything is delivered and every parked stack retried. Then the cluster and the
    agent hold exactly the newest desired version of every desired stack, and nothing else."""

    wire: Wire

    @initialize(initial=st.lists(DESIRED_CHANGES, max_size=4), held=HELD_STACKS)
    def connect(self, initial: list[tuple[str, int | None]], held: dict[str, HeldStack]) -> None:
        # The agent holds what it says it holds, under versions the broker never saw.
        cluster = {stack_id: dict(stack.resources) for stack_id, stack in held.items() if stack.resources}
        self.wire = Wire(desired_state(initial), cluster, held)

    @precondition(lambda self: self.wire.to_agent)
    @rule()
    def deliver_to_agent(self) -> None:
        self.wire.step("agent")

    @precondition(lambda self: self.wire.to_broker)
    @rule()
    def deliver_to_broker(self) -> None:
        self.wire.step("broker")

    @precondition(lambda self: self.wire.work)
    @rule(succeeds=st.booleans())
    def finish_work(self, succeeds: bool) -> None:
        self.wire.step("runtime" if succeeds else "runtime fails")

    @rule(change=DESIRED_CHANGES)
    def change_desired_state(self, change: tuple[str, int | None]) -> None:
        self.wire.set_desired(change[0], pick(*change))

    @rule(finish_unanswered_work=st.booleans())
    def reconnect(self, finish_unanswered_work: bool) -> None:
        self.wire.reconnect(finish_unanswered_work)

    def teardown(self) -> None:
        wire = self.wire
        wire.drain()
        assert wire.cluster == {stack_id: dict(stack.hashes) for stack_id, stack in wire.desired.items()}
        assert dict(wire.agent.held) == {
            stack_id: HeldStack(stack.deployment_object, stack.hashes)
            for stack_id, stack in wire.desired.items()
        }


TestConvergence = Convergence.TestCase
TestConvergence.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
