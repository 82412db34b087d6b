"""The broker as its admin drives it: agents, stacks, targets, deployment objects and statuses.

Everything goes through the public gRPC API with the admin key, as brokkrctl would: the e2e tests
learn what the agent did from the broker's `DeploymentStatusService` (what the agent acked or
nacked), from the broker's Prometheus metrics, and from the cluster itself, never from either
component's internals.
"""

from __future__ import annotations

from dataclasses import dataclass

from brokkr_common.client import BrokkrClient
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    agent_service_pb2,
    deployment_object_pb2,
    deployment_object_service_pb2,
    deployment_status_pb2,
    deployment_status_service_pb2,
    stack_pb2,
    stack_service_pb2,
    target_service_pb2,
)
from tests.e2e.polling import eventually
from tests.integration.harness import RunningBroker

APPLIED = deployment_status_pb2.DEPLOYMENT_STATE_APPLIED
FAILED = deployment_status_pb2.DEPLOYMENT_STATE_FAILED
REMOVED = deployment_status_pb2.DEPLOYMENT_STATE_REMOVED
CONNECTED = agent_pb2.CONNECTION_STATE_CONNECTED
DISCONNECTED = agent_pb2.CONNECTION_STATE_DISCONNECTED


@dataclass(frozen=True)
class CreatedAgent:
    id: str
    key: str


class Admin:
    """The admin's client of one running broker."""

    def __init__(self, running: RunningBroker) -> None:
        assert running.admin_key is not None, "the broker's database is not fresh"
        self.running = running
        self.client = BrokkrClient(running.grpc_target, running.admin_key)

    def close(self) -> None:
        self.client.close()

    def create_active_agent(self, name: str) -> CreatedAgent:
        agent = agent_pb2.Agent(name=name, cluster_name=name, status=agent_pb2.AGENT_STATUS_ACTIVE)
        created = self.client.call(
            self.client.agents.CreateAgent, agent_service_pb2.CreateAgentRequest(agent=agent)
        )
        return CreatedAgent(created.agent.id, created.key)

    def create_stack(self, name: str, agent_id: str, annotations: dict[str, str] | None = None) -> str:
        """A new stack targeted at the agent `agent_id`; its id."""
        request = stack_service_pb2.CreateStackRequest(
            stack=stack_pb2.Stack(name=name, annotations=annotations)
        )
        stack = self.client.call(self.client.stacks.CreateStack, request).stack
        target = target_service_pb2.CreateTargetRequest(agent_id=agent_id, stack_id=stack.id)
        self.client.call(self.client.targets.CreateTarget, target)
        return stack.id

    def submit(self, stack_id: str, yaml_content: str) -> int:
        """A new deployment object of the stack; its sequence id."""
        request = deployment_object_service_pb2.CreateDeploymentObjectRequest(
            stack_id=stack_id,
            deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=yaml_content),
        )
        created = self.client.call(self.client.deployment_objects.CreateDeploymentObject, request)
        return created.deployment_object.sequence_id

    def delete_stack(self, stack_id: str) -> None:
        self.client.call(self.client.stacks.DeleteStack, stack_service_pb2.DeleteStackRequest(id=stack_id))

    def connection_state(self, agent_id: str) -> int:
        request = agent_service_pb2.GetAgentRequest(id=agent_id)
        return self.client.call(self.client.agents.GetAgent, request).agent.connection_state

    def status(self, agent_id: str, stack_id: str) -> deployment_status_pb2.DeploymentStatus | None:
        """What the broker says the agent runs of the stack (listed by agent, so that a deleted
        stack's status stays visible), or None if it lists none."""
        request = deployment_status_service_pb2.ListDeploymentStatusesRequest(
            agent_id=agent_id, page_size=1000
        )
        response = self.client.call(self.client.deployment_statuses.ListDeploymentStatuses, request)
        return next((s for s in response.deployment_statuses if s.stack_id == stack_id), None)

    def wait_for_state(
        self, agent_id: str, stack_id: str, state: int, sequence_id: int | None = None
    ) -> deployment_status_pb2.DeploymentStatus:
        """The stack's status on the agent once it is `state`, for deployment object `sequence_id`
        when given (the applied one for APPLIED, the failed one for FAILED)."""

        def reached(status: deployment_status_pb2.DeploymentStatus | None) -> bool:
            if status is None or status.state != state:
                return False
            if sequence_id is None:
                return True
            ref = status.failed_deployment_object if state == FAILED else status.applied_deployment_object
            return ref.sequence_id == sequence_id

        what = f"stack {stack_id} {deployment_status_pb2.DeploymentState.Name(state)}"
        found = eventually(lambda: self.status(agent_id, stack_id), reached, what)
        assert found is not None
        return found

    def wait_for_connection(self, agent_id: str, state: int) -> None:
        what = f"agent {agent_id} {agent_pb2.ConnectionState.Name(state)}"
        eventually(lambda: self.connection_state(agent_id), lambda now: now == state, what)

    def updates_sent(self) -> float:
        """The broker's count of stack updates sent to agents (`brokkr_stack_updates_sent_total`)."""
        registry = self.running.broker.registry
        return registry.get_sample_value("brokkr_stack_updates_sent_total", {"kind": "update"}) or 0.0
