"""Watches: the kube double streams them to the official client as an API server does, and the
agent's `Watches` turn a change of a held stack's objects into a prompt `on_change`, resuming
after the server ends a watch and listing again after 410 Gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kubernetes import client, watch

from agent.config import KubernetesSettings
from agent.kube.client import KubeClient
from agent.kube.watching import Watches
from tests.integration.agent_kube.helpers import until
from tests.integration.agent_kube.stacks import config_map, namespace
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

SELECTOR = "applyset.kubernetes.io/part-of in (set-a,set-b)"
CONFIG_MAPS = "/api/v1/namespaces/shop/configmaps"


def labelled(name: str, applyset: str = "set-a", **data: str) -> dict[str, object]:
    obj = config_map(name, **data)
    obj["metadata"]["labels"] = {"applyset.kubernetes.io/part-of": applyset}
    return obj


@pytest.fixture
def shop(kube_api: KubeApi) -> None:
    kube_api.put_object(namespace("shop"))


@pytest.mark.usefixtures("shop")
def test_the_double_streams_watch_events_to_the_official_client(kube_api: KubeApi) -> None:
    core = client.CoreV1Api(kube_api.api_client())
    core.create_namespaced_config_map("shop", labelled("before"))
    start = core.list_namespaced_config_map("shop").metadata.resource_version
    core.create_namespaced_config_map("shop", labelled("a"))
    core.patch_namespaced_config_map("a", "shop", {"data": {"level": "debug"}})
    core.create_namespaced_config_map("shop", config_map("unlabelled"))
    core.delete_namespaced_config_map("a", "shop")

    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        "shop",
        label_selector=SELECTOR,
        resource_version=start,
        timeout_seconds=1,
    )
    seen = [(event["type"], event["object"].metadata.name) for event in stream]

    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


@pytest.mark.usefixtures("shop")
def test_a_watch_from_a_compacted_version_is_gone_and_one_from_now_lists_first(kube_api: KubeApi) -> None:
    core = client.CoreV1Api(kube_api.api_client())
    core.create_namespaced_config_map("shop", labelled("a"))
    old = core.list_namespaced_config_map("shop").metadata.resource_version
    core.create_namespaced_config_map("shop", labelled("b"))
    kube_api.compact()

    with pytest.raises(client.ApiException) as gone:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, "shop", resource_version=old, timeout_seconds=1
            )
        )
    fresh = watch.Watch().stream(core.list_namespaced_config_map, "shop", timeout_seconds=1)

    assert gone.value.status == 410
    assert [(e["type"], e["object"].metadata.name) for e in fresh] == [("ADDED", "a"), ("ADDED", "b")]


@pytest.fixture
async def api(kube_api: KubeApi) -> AsyncIterator[KubeClient]:
    opened = KubeClient.from_settings(KubernetesSettings(kubeconfig=kube_api.kubeconfig_path))
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.usefixtures("shop")
async def test_watches_call_on_change_for_changes_of_the_selected_objects_only(
    kube_api: KubeApi, api: KubeClient
) -> None:
    kube_api.put_object(labelled("a"))
    changes: list[float] = []
    watches = Watches(api, lambda: changes.append(asyncio.get_running_loop().time()), backoff_seconds=0.05)
    watches.track({CONFIG_MAPS: SELECTOR})
    try:
        await until(lambda: any(r.verb == "watch" for r in kube_api.requests()))
        await asyncio.sleep(0.2)
        assert changes == []  # the list and the watch from its version report nothing old

        kube_api.put_object(config_map("unlabelled"))
        kube_api.put_object(labelled("other", applyset="set-c"))
        await asyncio.sleep(0.3)
        assert changes == []
        kube_api.put_object(labelled("a", level="debug"))
        await until(lambda: len(changes) == 1, within=2)
    finally:
        await watches.close()


@pytest.mark.usefixtures("shop")
async def test_watches_resume_after_the_server_ends_them_and_list_again_after_410(
    kube_api: KubeApi, api: KubeClient
) -> None:
    changes: list[str] = []
    watches = Watches(api, lambda: changes.append("change"), backoff_seconds=0.05)
    watches.track({CONFIG_MAPS: SELECTOR})
    try:
        await until(lambda: any(r.verb == "watch" for r in kube_api.requests()))
        kube_api.put_object(labelled("a"))
        await until(lambda: len(changes) == 1)

        kube_api.end_watches()  # resumes from the version of its last event: nothing is repeated
        kube_api.put_object(labelled("b"))
        await until(lambda: len(changes) == 2)
        await asyncio.sleep(0.2)
        assert len(changes) == 2

        # The next watch is held up while a change happens and the history is compacted: it can
        # only be resumed from a version that is gone, so the agent lists again and says so.
        kube_api.hang_next("watch", CONFIG_MAPS)
        kube_api.end_watches()
        await asyncio.sleep(0.3)
        kube_api.put_object(labelled("missed"))
        kube_api.compact()
        kube_api.release_hangs()
        await until(lambda: len(changes) == 3)
        lists = [r for r in kube_api.requests() if r.verb == "list" and r.path == CONFIG_MAPS]
        assert len(lists) == 2
        kube_api.put_object(labelled("c"))
        await until(lambda: len(changes) == 4)
    finally:
        await watches.close()


@pytest.mark.usefixtures("shop")
async def test_a_watch_the_agent_may_not_open_is_retried_and_does_not_fail_anything(
    kube_api: KubeApi, api: KubeClient
) -> None:
    kube_api.deny("watch", "configmaps")
    changes: list[str] = []
    watches = Watches(api, lambda: changes.append("change"), backoff_seconds=0.05, max_backoff_seconds=0.1)
    watches.track({CONFIG_MAPS: SELECTOR})
    try:
        await until(lambda: sum(r.verb == "watch" and r.status == 403 for r in kube_api.requests()) >= 3)
        assert changes == []
        assert watches.targets == {CONFIG_MAPS: SELECTOR}
        watches.track({})
        assert watches.targets == {}
    finally:
        await watches.close()
