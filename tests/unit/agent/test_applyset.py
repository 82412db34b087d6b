"""The ApplySet parent: its id, what it records, and reading it back, even after tampering."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.reconcile.applyset import (
    PART_OF_LABEL,
    RecordedState,
    applyset_id,
    foreign_tooling,
    member_labels,
    parent_manifest,
    parent_name,
    parse_parent,
)
from agent.reconcile.errors import PermanentError
from agent.reconcile.kinds import GroupKind
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import UNKNOWN, DeploymentObjectRef
from tests.unit.agent.builders import STACK, ref

HASH_A, HASH_B = "a" * 64, "0123456789abcdef" * 4
DEPLOYMENT = ResourceKey("apps", "v1", "Deployment", "shop", "web")
ROLE = ResourceKey("rbac.authorization.k8s.io", "v1", "ClusterRole", "", "system:shop-reader")
STATE = RecordedState(
    STACK,
    "brokkr-system",
    ref(7),
    {DEPLOYMENT: HASH_A, ROLE: HASH_B},
    group_kinds=frozenset(
        {GroupKind("apps", "Deployment"), GroupKind("rbac.authorization.k8s.io", "ClusterRole")}
    ),
    namespaces=frozenset({"shop"}),
    created_namespaces=frozenset({"shop"}),
    stack_name="shop",
)


# -- the id --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "namespace", "kind", "group", "expected"),
    [
        # kubectl's TestApplySetParentManagement: Secret my-set in namespace test.
        ("my-set", "test", "Secret", "", "applyset-0eFHV8ySqp7XoShsGvyWFQD3s96yqwHmzc4e0HR1dsY-v1"),
        # kubectl's TestApplySet_ClusterScopedCustomResourceParent: ApplySet.company.com my-set.
        ("my-set", "", "ApplySet", "company.com", "applyset-rhp1a-HVAVT_dFgyEygyA1BEB82HPp2o10UiFTpqtAs-v1"),
    ],
)
def test_the_id_is_the_one_kubectl_computes(
    name: str, namespace: str, kind: str, group: str, expected: str
) -> None:
    assert applyset_id(name, namespace, kind, group) == expected


def test_members_are_labelled_with_the_parents_id() -> None:
    expected_id = applyset_id(f"brokkr-stack-{STACK}", "brokkr-system", "Secret", "")
    assert STATE.applyset_id == expected_id
    assert member_labels(STATE.applyset_id) == {PART_OF_LABEL: expected_id}
    assert len(expected_id) <= 63  # a label value


@pytest.mark.parametrize("stack_id", ["Stack-1", "stack/1", "stack 1", "x" * 250])
def test_a_stack_id_that_cannot_name_an_object_is_a_permanent_error(stack_id: str) -> None:
    with pytest.raises(PermanentError) as error:
        parent_name(stack_id)
    assert error.value.reason == "UNSUPPORTED_STACK_ID"


# -- the parent ----------------------------------------------------------------------------------


def test_the_parent_is_a_secret_with_the_applyset_label_annotations_and_brokkrs_record() -> None:
    parent = parent_manifest(STATE)
    assert (parent["apiVersion"], parent["kind"], parent["type"]) == ("v1", "Secret", "brokkr.io/applyset")
    metadata = parent["metadata"]
    assert (metadata["namespace"], metadata["name"]) == ("brokkr-system", f"brokkr-stack-{STACK}")
    assert metadata["labels"] == {
        "applyset.kubernetes.io/id": STATE.applyset_id,
        "app.kubernetes.io/managed-by": "brokkr-agent",
    }
    assert metadata["annotations"] == {
        "applyset.kubernetes.io/tooling": "brokkr/v1",
        "applyset.kubernetes.io/contains-group-kinds": (
            "ClusterRole.rbac.authorization.k8s.io,Deployment.apps"
        ),
        "applyset.kubernetes.io/additional-namespaces": "shop",
        "brokkr.io/stack-id": STACK,
        "brokkr.io/stack-name": "shop",
        "brokkr.io/created-namespaces": "shop",
        "brokkr.io/deployment-object": json.dumps(
            {"checksum": ref(7).checksum, "id": "do-7", "is_deletion_marker": False, "sequence_id": 7},
            separators=(",", ":"),
        ),
    }
    hashes = json.loads(base64.b64decode(parent["data"]["resources.json"]))
    assert hashes == {
        "apps/v1/Deployment/shop/web": HASH_A,
        "rbac.authorization.k8s.io/v1/ClusterRole//system:shop-reader": HASH_B,
    }


def test_the_parents_own_namespace_is_in_scope_but_not_listed_as_additional() -> None:
    state = RecordedState(STACK, "brokkr-system", namespaces=frozenset({"brokkr-system", "shop", "api"}))
    parent = parent_manifest(state)
    assert parent["metadata"]["annotations"]["applyset.kubernetes.io/additional-namespaces"] == "api,shop"
    assert RecordedState(STACK).namespaces == {"brokkr-system"}


def test_a_change_under_way_records_no_deployment_object_and_reads_back_as_unknown() -> None:
    state = RecordedState(STACK, group_kinds=STATE.group_kinds, namespaces=STATE.namespaces)
    parent = parent_manifest(state)
    assert "brokkr.io/deployment-object" not in parent["metadata"]["annotations"]
    assert "data" not in parent
    recorded = parse_parent(parent)
    assert recorded == state
    assert recorded.held() is UNKNOWN


def test_what_the_parent_records_is_what_the_agent_reports_in_hello() -> None:
    held = parse_parent(parent_manifest(STATE)).held()
    assert held.deployment_object == ref(7)
    assert dict(held.resources) == {DEPLOYMENT: HASH_A, ROLE: HASH_B}


PARENT_AS_LISTED = f"""
apiVersion: v1
kind: Secret
type: brokkr.io/applyset
metadata:
  name: brokkr-stack-{STACK}
  namespace: brokkr-system
  uid: 0f8e2c1a-5b6d-4c3e-9f1a-7d2b4e6c8a10
  resourceVersion: "918273"
  creationTimestamp: "2025-01-07T10:11:12Z"
  labels:
    app.kubernetes.io/managed-by: brokkr-agent
    applyset.kubernetes.io/id: {STATE.applyset_id}
  annotations:
    applyset.kubernetes.io/tooling: brokkr/v1
    applyset.kubernetes.io/contains-group-kinds: Deployment.apps
    applyset.kubernetes.io/additional-namespaces: shop
    brokkr.io/stack-id: {STACK}
    brokkr.io/stack-name: shop
    brokkr.io/created-namespaces: ""
    brokkr.io/deployment-object: >-
      {{"checksum":"{HASH_B}","id":"do-3","is_deletion_marker":false,"sequence_id":3}}
  managedFields:
  - manager: brokkr-agent
    operation: Apply
    apiVersion: v1
    fieldsType: FieldsV1
data:
  resources.json: {base64.b64encode(json.dumps({"apps/v1/Deployment/shop/web": HASH_A}).encode()).decode()}
"""


def test_a_parent_as_the_api_server_returns_it_is_read_with_its_server_fields_ignored() -> None:
    recorded = parse_parent(yaml.safe_load(PARENT_AS_LISTED))
    assert recorded == RecordedState(
        STACK,
        "brokkr-system",
        DeploymentObjectRef("do-3", 3, HASH_B),
        {DEPLOYMENT: HASH_A},
        group_kinds=frozenset({GroupKind("apps", "Deployment")}),
        namespaces=frozenset({"shop"}),
        stack_name="shop",
    )


NAMES = st.sampled_from(["shop", "api", "team-a", "x", "0day", "brokkr-system", "a-b-c-1"])
KEYS = st.builds(
    ResourceKey,
    group=st.sampled_from(["", "apps", "shop.example.com"]),
    version=st.sampled_from(["v1", "v1beta1"]),
    kind=st.sampled_from(["ConfigMap", "Deployment", "Cart"]),
    namespace=st.one_of(st.just(""), NAMES),
    name=st.one_of(NAMES, st.just("system:auth-delegator")),
)
HASHES = st.text("0123456789abcdef", min_size=64, max_size=64)


@st.composite
def states(draw: st.DrawFn) -> RecordedState:
    applied = draw(st.one_of(st.none(), st.builds(ref, st.integers(1, 10**9))))
    resources = draw(st.dictionaries(KEYS, HASHES, max_size=6)) if applied else {}
    return RecordedState(
        draw(st.uuids().map(str)),
        draw(NAMES),
        applied,
        resources,
        group_kinds=frozenset(
            draw(
                st.lists(st.builds(GroupKind, st.sampled_from(["", "apps"]), st.sampled_from(["Pod", "Job"])))
            )
        ),
        namespaces=frozenset(draw(st.lists(NAMES, max_size=4))),
        created_namespaces=frozenset(draw(st.lists(NAMES, max_size=4))),
        stack_name=draw(st.text(max_size=20)),
    )


@settings(max_examples=50, deadline=None)
@given(states())
def test_reading_a_parent_back_gives_exactly_what_was_recorded(state: RecordedState) -> None:
    assert parse_parent(parent_manifest(state)) == state


# -- tampering -----------------------------------------------------------------------------------

Tamper = Callable[[dict[str, Any]], None]


def annotate(name: str, value: Any) -> Tamper:
    return lambda parent: parent["metadata"]["annotations"].__setitem__(name, value)


def drop_annotation(name: str) -> Tamper:
    return lambda parent: parent["metadata"]["annotations"].pop(name)


def set_data(value: Any) -> Tamper:
    return lambda parent: parent.__setitem__("data", value)


def set_label(value: Any) -> Tamper:
    return lambda parent: parent["metadata"]["labels"].__setitem__("applyset.kubernetes.io/id", value)


def encoded(hashes: Any) -> str:
    return base64.b64encode(json.dumps(hashes).encode()).decode()


NOT_OURS: dict[str, Tamper] = {
    "id label changed": set_label("applyset-somethingelse-v1"),
    "id label removed": lambda parent: parent["metadata"]["labels"].pop("applyset.kubernetes.io/id"),
    "stack id not the one in the name": annotate("brokkr.io/stack-id", "other-stack"),
    "stack id not a string": annotate("brokkr.io/stack-id", 42),
    "stack id removed": drop_annotation("brokkr.io/stack-id"),
    "another tool's tooling": annotate("applyset.kubernetes.io/tooling", "kubectl/v1.31"),
    "tooling removed": drop_annotation("applyset.kubernetes.io/tooling"),
    "annotations not a map": lambda parent: parent["metadata"].__setitem__("annotations", ["x"]),
    "metadata not a map": lambda parent: parent.__setitem__("metadata", "x"),
    "a ConfigMap": lambda parent: parent.__setitem__("kind", "ConfigMap"),
}


@pytest.mark.parametrize("tamper", NOT_OURS.values(), ids=NOT_OURS.keys())
def test_a_parent_whose_identity_does_not_add_up_is_not_read_as_brokkrs(tamper: Tamper) -> None:
    parent = parent_manifest(STATE)
    tamper(parent)
    assert parse_parent(parent) is None


UNKNOWN_HOLDING: dict[str, Tamper] = {
    "deployment object not JSON": annotate("brokkr.io/deployment-object", "{not json"),
    "deployment object missing a field": annotate(
        "brokkr.io/deployment-object", '{"id":"do-7","sequence_id":7}'
    ),
    "sequence not a number": annotate(
        "brokkr.io/deployment-object",
        json.dumps({"id": "do-7", "sequence_id": "7", "checksum": HASH_A, "is_deletion_marker": False}),
    ),
    "checksum not a hash": annotate(
        "brokkr.io/deployment-object",
        json.dumps({"id": "do-7", "sequence_id": 7, "checksum": "abc", "is_deletion_marker": False}),
    ),
    "resources removed": set_data(None),
    "resources not base64": set_data({"resources.json": "%%%"}),
    "resources not JSON": set_data({"resources.json": base64.b64encode(b"[1,").decode()}),
    "resources a list": set_data({"resources.json": encoded([HASH_A])}),
    "a key with four parts": set_data({"resources.json": encoded({"apps/v1/Deployment/web": HASH_A})}),
    "a malformed key": set_data({"resources.json": encoded({"apps/v1/Deploy ment/shop/web": HASH_A})}),
    "a hash in upper case": set_data(
        {"resources.json": encoded({"apps/v1/Deployment/shop/web": HASH_A.upper()})}
    ),
    "a hash not a string": set_data({"resources.json": encoded({"apps/v1/Deployment/shop/web": 7})}),
}


@pytest.mark.parametrize("tamper", UNKNOWN_HOLDING.values(), ids=UNKNOWN_HOLDING.keys())
def test_a_damaged_record_of_what_was_applied_makes_the_holding_unknown(tamper: Tamper) -> None:
    parent = parent_manifest(STATE)
    tamper(parent)
    recorded = parse_parent(parent)
    assert recorded is not None
    assert recorded.held() is UNKNOWN
    assert recorded.group_kinds == STATE.group_kinds  # pruning still knows where to look


def test_damaged_kinds_and_namespaces_are_dropped_one_by_one_so_less_is_ever_deleted() -> None:
    parent = parent_manifest(STATE)
    annotations = parent["metadata"]["annotations"]
    annotations["applyset.kubernetes.io/contains-group-kinds"] = "Deployment.apps,,9lives,Job.Batch_Group,Pod"
    annotations["applyset.kubernetes.io/additional-namespaces"] = "shop,Kube-System,a/b"
    annotations["brokkr.io/created-namespaces"] = ["shop"]
    recorded = parse_parent(parent)
    assert recorded.group_kinds == {GroupKind("apps", "Deployment"), GroupKind("", "Pod")}
    assert recorded.namespaces == {"shop", "brokkr-system"}
    assert recorded.created_namespaces == frozenset()
    assert recorded.held() == STATE.held()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["metadata", "data", "kind", "apiVersion"]),
    st.sampled_from(["annotations", "labels", "name", "namespace", "resources.json", None]),
    JSON,
)
def test_no_parent_makes_reading_it_raise(field: str, inner: str | None, value: Any) -> None:
    parent = copy.deepcopy(parent_manifest(STATE))
    if inner is None or not isinstance(parent.get(field), dict):
        parent[field] = value
    else:
        parent[field][inner] = value
    recorded = parse_parent(parent)
    assert recorded is None or isinstance(recorded, RecordedState)


@pytest.mark.parametrize(
    ("tooling", "foreign"),
    [("kubectl/v1.27.0", True), ("helm", True), ("example.com/tool/why/v1", True), ("brokkr/v1", False),
     ("brokkr/v2", False), (None, False)],
)  # fmt: skip
def test_parents_of_other_tools_are_recognised(tooling: str | None, foreign: bool) -> None:
    parent = parent_manifest(STATE)
    if tooling is None:
        del parent["metadata"]["annotations"]["applyset.kubernetes.io/tooling"]
    else:
        parent["metadata"]["annotations"]["applyset.kubernetes.io/tooling"] = tooling
    assert (foreign_tooling(parent) is not None) is foreign


def test_recording_resources_without_a_deployment_object_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="resources are recorded only"):
        RecordedState(STACK, resources={DEPLOYMENT: HASH_A})
