"""The opt-in end-to-end suite: the real broker and the real agent against a real Kubernetes cluster.

    BROKKR_TEST_KUBECONFIG=~/.kube/config .venv/bin/pytest tests/e2e -v

Without BROKKR_TEST_KUBECONFIG every test marked `e2e` is skipped, for that one reason. With it,
a cluster that cannot be reached fails the run: asking for the suite and not getting it is an error.

Each test gets a broker (`running_broker`, SQLite in its temporary directory), an ACTIVE agent
created through the admin API, and `start_agent` to run the real agent with that agent's key. The
kubeconfig's user needs cluster-admin: the tests create namespaces and CRDs. The agent keeps its
ApplySet parents in `brokkr-system`, as a Helm install would; the suite creates that namespace if
the cluster has none, and deletes it again at the end. Each test names its objects after its own
id and deletes what it left behind (its namespaces, CRDs and parent Secrets) once its agent stopped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import urllib3

from tests.e2e.admin import Admin, CreatedAgent
from tests.e2e.agent_thread import AgentThread
from tests.e2e.cluster import PARENT_NAMESPACE, Cluster
from tests.e2e.manifests import Names
from tests.integration.harness import RunningBroker, running_broker

KUBECONFIG_VARIABLE = "BROKKR_TEST_KUBECONFIG"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(KUBECONFIG_VARIABLE):
        return
    skip = pytest.mark.skip(
        reason=f"{KUBECONFIG_VARIABLE} is not set: e2e tests need a real Kubernetes cluster"
    )
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The cluster at BROKKR_TEST_KUBECONFIG, with the agent's namespace in place."""
    kubeconfig = Path(os.environ[KUBECONFIG_VARIABLE]).expanduser()
    if not kubeconfig.is_file():
        pytest.fail(f"{KUBECONFIG_VARIABLE}={kubeconfig} is not a file", pytrace=False)
    opened = Cluster(kubeconfig)
    try:
        opened.version()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        opened.close()
        pytest.fail(f"the cluster in {kubeconfig} is unreachable: {error}", pytrace=False)
    created = opened.ensure_namespace(PARENT_NAMESPACE)
    try:
        yield opened
    finally:
        if created:
            opened.delete_namespace(PARENT_NAMESPACE)
        opened.close()


@pytest.fixture
def names(cluster: Cluster) -> Iterator[Names]:
    """The test's names; what the test left in the cluster is deleted after everything else."""
    names = Names(uuid.uuid4().hex[:8])
    yield names
    cluster.delete_test_objects(names.test_id, stack_name_prefix=names.stack_prefix)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    with running_broker(f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}") as running:
        yield running


@pytest.fixture
def admin(broker: RunningBroker) -> Iterator[Admin]:
    opened = Admin(broker)
    yield opened
    opened.close()


@pytest.fixture
def agent(admin: Admin, names: Names) -> CreatedAgent:
    """An ACTIVE agent the broker knows; `start_agent` runs the real agent as it."""
    return admin.create_active_agent(names.namespace)


@pytest.fixture
def start_agent(
    broker: RunningBroker, agent: CreatedAgent, cluster: Cluster
) -> Iterator[Callable[[], AgentThread]]:
    """Starts the real agent with `agent`'s key; every run still going is stopped after the test."""
    started: list[AgentThread] = []

    def start(namespace: str | None = None) -> AgentThread:
        thread = AgentThread(broker.grpc_target, agent.key, cluster.kubeconfig, namespace)
        started.append(thread.start())
        return thread

    yield start
    for thread in started:
        thread.stop()
