"""Templates through a real broker, on SQLite and PostgreSQL: the original Brokkr's templates tutorial
step by step over the REST shim, and what gRPC clients see (Struct numbers, errors, a generator's view)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2 as do_api
from brokkr_common.pb.brokkr.v1 import (
    deployment_object_service_pb2_grpc,
    template_pb2,
    template_service_pb2_grpc,
)
from brokkr_common.pb.brokkr.v1 import template_service_pb2 as api
from tests.integration.harness import RunningBroker, running_broker

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

# The tutorial's web-service template; Jinja2 reads its {{ placeholders }} as Tera does.
WEB_SERVICE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {{ namespace }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ service_name }}
  namespace: {{ namespace }}
  labels:
    app: {{ service_name }}
    managed-by: brokkr
spec:
  replicas: {{ replicas }}
  selector:
    matchLabels:
      app: {{ service_name }}
  template:
    metadata:
      labels:
        app: {{ service_name }}
    spec:
      containers:
      - name: {{ service_name }}
        image: {{ image_repository }}:{{ image_tag }}
        ports:
        - containerPort: {{ container_port }}
        resources:
          requests:
            cpu: {{ cpu_request }}
            memory: {{ memory_request }}
          limits:
            cpu: {{ cpu_limit }}
            memory: {{ memory_limit }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ service_name }}
  namespace: {{ namespace }}
spec:
  selector:
    app: {{ service_name }}
  ports:
  - port: 80
    targetPort: {{ container_port }}
"""
WEB_SERVICE_SCHEMA = {
    "type": "object",
    "required": ["service_name", "namespace", "image_repository", "image_tag"],
    "properties": {
        "service_name": {
            "type": "string",
            "description": "Name of the service",
            "minLength": 1,
            "maxLength": 63,
        },
        "namespace": {"type": "string", "description": "Kubernetes namespace", "minLength": 1},
        "image_repository": {"type": "string", "description": "Container image repository"},
        "image_tag": {"type": "string", "description": "Container image tag", "default": "latest"},
        "replicas": {"type": "integer", "default": 2, "minimum": 1, "maximum": 20},
        "container_port": {"type": "integer", "default": 8080},
        "cpu_request": {"type": "string", "default": "100m"},
        "memory_request": {"type": "string", "default": "128Mi"},
        "cpu_limit": {"type": "string", "default": "500m"},
        "memory_limit": {"type": "string", "default": "256Mi"},
    },
}
FRONTEND = {
    "service_name": "frontend",
    "namespace": "frontend-app",
    "image_repository": "myregistry.example.com/frontend",
    "image_tag": "v2.1.0",
    "replicas": 3,
    "container_port": 3000,
    "cpu_request": "100m",
    "memory_request": "128Mi",
    "cpu_limit": "500m",
    "memory_limit": "512Mi",
}
LIVENESS = """\
        livenessProbe:
          httpGet:
            path: /healthz
            port: {{ container_port }}
          initialDelaySeconds: 10
          periodSeconds: 30
"""


@pytest.fixture
def running(database_url):
    with running_broker(database_url) as running:
        yield running


class Rest:
    def __init__(self, running: RunningBroker, key: str) -> None:
        assert running.rest_url is not None
        self.base = running.rest_url
        self.key = key

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self(method, path, body)
        assert status == 200, answer
        return answer


def _violations(status: dict) -> list[tuple[str, str]]:
    [bad_request] = [d for d in status["details"] if d["@type"] == BAD_REQUEST]
    return [(v["field"], v["reason"]) for v in bad_request["fieldViolations"]]


def _reason(status: dict) -> str:
    return next(d["reason"] for d in status["details"] if d["@type"] == ERROR_INFO)


def test_the_templates_tutorial_over_rest(running: RunningBroker):
    http = Rest(running, running.admin_key)

    # Step 2: create the template, with its schema as a plain JSON object.
    template = http.ok(
        "POST",
        "/api/v1/templates",
        {
            "name": "web-service",
            "description": "Standard web service with configurable replicas, image, and resource limits",
            "content": WEB_SERVICE,
            "parameters_schema": WEB_SERVICE_SCHEMA,
        },
    )
    assert (template["name"], template["version"], template["latestVersion"]) == ("web-service", "1", "1")
    assert template["parametersSchema"]["properties"]["replicas"]["default"] == 2
    template_id = template["id"]

    # Step 4: a stack owned by a generator, and the template instantiated into it.
    generator = http.ok("POST", "/api/v1/generators", {"name": "admin-generator"})["generator"]
    stack = http.ok(
        "POST",
        "/api/v1/stacks",
        {"name": "frontend-app", "description": "Frontend web application", "generator_id": generator["id"]},
    )
    created = http.ok(
        "POST",
        f"/api/v1/stacks/{stack['id']}/deployment-objects/from-template",
        {"template_id": template_id, "parameters": FRONTEND},
    )
    assert created["sequenceId"] == "1" and len(created["checksum"]) == 64

    # Step 5: the rendered YAML, and where it came from.
    listed = http.ok("GET", f"/api/v1/stacks/{stack['id']}/deployment-objects")["deploymentObjects"]
    assert [d["id"] for d in listed] == [created["id"]]
    fetched = http.ok("GET", f"/api/v1/deployment-objects/{created['id']}")
    rendered = fetched["yamlContent"]
    assert "  replicas: 3\n" in rendered
    assert "image: myregistry.example.com/frontend:v2.1.0\n" in rendered
    assert "memory: 512Mi\n" in rendered and "targetPort: 3000\n" in rendered
    assert [(r["key"]["kind"], r["key"]["name"]) for r in fetched["resources"]] == [
        ("Namespace", "frontend-app"),
        ("Deployment", "frontend"),
        ("Service", "frontend"),
    ]
    assert fetched["provenance"] == {
        "templateId": template_id,
        "templateVersion": "1",
        "parameters": FRONTEND,
    }

    # A dry run shows the rendering, defaults applied, and creates nothing.
    preview = http.ok(
        "POST",
        f"/api/v1/stacks/{stack['id']}/deployment-objects/from-template",
        {
            "template_id": template_id,
            "dry_run": True,
            "parameters": {"service_name": "api", "namespace": "backend-api", "image_repository": "nginx"},
        },
    )
    assert preview["id"] == "" and "image: nginx:latest\n" in preview["yamlContent"]
    assert "  replicas: 2\n" in preview["yamlContent"]
    assert preview["provenance"]["parameters"]["container_port"] == 8080
    assert len(http.ok("GET", f"/api/v1/stacks/{stack['id']}/deployment-objects")["deploymentObjects"]) == 1

    # Step 7: updating with PUT (the original's verb) adds version 2 under the same id.
    updated = http.ok(
        "PUT",
        f"/api/v1/templates/{template_id}",
        {
            "description": "Standard web service v2 - adds liveness probe",
            "content": WEB_SERVICE.replace("        resources:\n", LIVENESS + "        resources:\n"),
        },
    )
    assert (updated["id"], updated["version"]) == (template_id, "2")
    assert updated["parametersSchema"] == template["parametersSchema"]
    versions = http.ok("GET", f"/api/v1/templates/{template_id}/versions")["templates"]
    assert [v["version"] for v in versions] == ["2", "1"]
    first = http.ok("GET", f"/api/v1/templates/{template_id}?version=1")
    assert (first["version"], first["latestVersion"], first["content"]) == ("1", "2", WEB_SERVICE)
    newest = http.ok(
        "POST",
        f"/api/v1/stacks/{stack['id']}/deployment-objects/from-template",
        {"template_id": template_id, "parameters": FRONTEND},
    )
    assert "livenessProbe" in newest["yamlContent"] and newest["provenance"]["templateVersion"] == "2"
    old = http.ok(
        "POST",
        f"/api/v1/stacks/{stack['id']}/deployment-objects/from-template",
        {"template_id": template_id, "template_version": 1, "parameters": FRONTEND},
    )
    assert old["yamlContent"] == rendered and old["provenance"]["templateVersion"] == "1"

    # Step 8: bad parameters get every violation at once, each with its path.
    status, refused = http(
        "POST",
        f"/api/v1/stacks/{stack['id']}/deployment-objects/from-template",
        {"template_id": template_id, "parameters": {**FRONTEND, "service_name": "", "replicas": 100}},
    )
    assert status == 400 and refused["code"] == 3
    assert _violations(refused) == [
        ("parameters.replicas", "INVALID_PARAMETER"),
        ("parameters.service_name", "INVALID_PARAMETER"),
    ]
    assert len(http.ok("GET", f"/api/v1/stacks/{stack['id']}/deployment-objects")["deploymentObjects"]) == 3

    # Clean up: the template goes, what was rendered from it stays.
    deleted = http.ok("DELETE", f"/api/v1/templates/{template_id}")
    assert deleted["deleteTime"] is not None
    assert (
        http.ok("GET", f"/api/v1/deployment-objects/{created['id']}")["provenance"]["templateId"]
        == template_id
    )
    status, gone = http(
        "POST",
        f"/api/v1/stacks/{stack['id']}/deployment-objects/from-template",
        {"template_id": template_id, "parameters": FRONTEND},
    )
    assert (status, _reason(gone)) == (400, "TEMPLATE_DELETED")


def test_template_labels_restrict_which_stacks_may_use_it_over_rest(running: RunningBroker):
    http = Rest(running, running.admin_key)
    template = http.ok(
        "POST",
        "/api/v1/templates",
        {"name": "prod-only", "content": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ name }}\n",
         "labels": {"env": "prod"}, "annotations": {"team": "platform"}},
    )  # fmt: skip
    staging = http.ok("POST", "/api/v1/stacks", {"name": "staging", "labels": {"env": "staging"}})
    prod = http.ok(
        "POST",
        "/api/v1/stacks",
        {"name": "prod", "labels": {"env": "prod"}, "annotations": {"team": "platform"}},
    )
    body = {"template_id": template["id"], "parameters": {"name": "apps"}}

    status, refused = http("POST", f"/api/v1/stacks/{staging['id']}/deployment-objects/from-template", body)

    assert status == 400 and refused["code"] == 9
    assert _reason(refused) == "TEMPLATE_LABELS_MISSING"
    assert "label env=prod" in refused["message"] and "annotation team=platform" in refused["message"]
    assert http.ok("GET", f"/api/v1/stacks/{staging['id']}/deployment-objects")["deploymentObjects"] == []
    assert (
        http.ok("POST", f"/api/v1/stacks/{prod['id']}/deployment-objects/from-template", body)["sequenceId"]
        == "1"
    )


def test_a_bad_template_is_refused_with_every_problem(running: RunningBroker):
    http = Rest(running, running.admin_key)
    status, refused = http(
        "POST",
        "/api/v1/templates",
        {
            "name": "broken",
            "content": "{% if %}",
            "parameters_schema": {"type": "object", "required": "name"},
        },
    )
    assert status == 400
    assert _violations(refused) == [
        ("template.content", "INVALID_TEMPLATE"),
        ("template.parameters_schema.required", "INVALID_PARAMETERS_SCHEMA"),
    ]
    assert http.ok("GET", "/api/v1/templates")["templates"] == []


def _grpc_error(call) -> tuple[grpc.StatusCode, Any]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    status = rpc_status.from_call(raised.value)
    return raised.value.code(), status


def test_grpc_struct_numbers_render_as_integers_and_non_finite_ones_are_refused(running: RunningBroker):
    metadata = running.metadata(running.admin_key)
    templates = template_service_pb2_grpc.TemplateServiceStub(running.channel)
    schema = struct_pb2.Struct()
    schema.update({"type": "object", "properties": {"replicas": {"type": "integer", "default": 2}}})
    created = templates.CreateTemplate(
        api.CreateTemplateRequest(
            template=template_pb2.Template(
                name="numbers",
                content="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: n\ndata:\n"
                '  replicas: "{{ replicas }}"\n  ratio: "{{ ratio }}"\n',
                parameters_schema=schema,
            )
        ),
        metadata=metadata,
    ).template
    stack_id = _stack(running, "numbers")

    parameters = struct_pb2.Struct()
    parameters.update({"ratio": 0.5})
    preview = templates.InstantiateTemplate(
        api.InstantiateTemplateRequest(
            stack_id=stack_id, template_id=created.id, parameters=parameters, dry_run=True
        ),
        metadata=metadata,
    ).deployment_object
    assert 'replicas: "2"' in preview.yaml_content and 'ratio: "0.5"' in preview.yaml_content

    parameters.update({"ratio": math.nan})
    code, status = _grpc_error(
        lambda: templates.InstantiateTemplate(
            api.InstantiateTemplateRequest(stack_id=stack_id, template_id=created.id, parameters=parameters),
            metadata=metadata,
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    [detail] = [d for d in status.details if d.Is(bad_request.DESCRIPTOR)]
    detail.Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["parameters.ratio"]


def test_a_generator_sees_its_own_and_system_templates_and_agents_see_none(running: RunningBroker):
    http = Rest(running, running.admin_key)
    owner = http.ok("POST", "/api/v1/generators", {"name": "team-a"})
    other = http.ok("POST", "/api/v1/generators", {"name": "team-b"})
    content = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"
    http.ok("POST", "/api/v1/templates", {"name": "shared", "content": content})
    http.ok(
        "POST",
        "/api/v1/templates",
        {"name": "theirs", "content": content, "generator_id": other["generator"]["id"]},
    )
    as_owner = Rest(running, owner["key"])
    mine = as_owner.ok("POST", "/api/v1/templates", {"name": "mine", "content": content})
    assert mine["generatorId"] == owner["generator"]["id"]

    assert [t["name"] for t in as_owner.ok("GET", "/api/v1/templates")["templates"]] == ["mine", "shared"]
    assert [t["name"] for t in as_owner.ok("GET", "/api/v1/templates?name=shared")["templates"]] == ["shared"]
    assert [t["name"] for t in http.ok("GET", "/api/v1/templates")["templates"]] == [
        "mine",
        "shared",
        "theirs",
    ]

    agent = http.ok("POST", "/api/v1/agents", {"name": "edge", "cluster_name": "c1"})
    status, _ = Rest(running, agent["key"])("GET", "/api/v1/templates")
    assert status == 403


def _stack(running: RunningBroker, name: str) -> str:
    return Rest(running, running.admin_key).ok("POST", "/api/v1/stacks", {"name": name})["id"]


def test_an_instantiated_deployment_object_is_an_ordinary_one(running: RunningBroker):
    metadata = running.metadata(running.admin_key)
    templates = template_service_pb2_grpc.TemplateServiceStub(running.channel)
    objects = deployment_object_service_pb2_grpc.DeploymentObjectServiceStub(running.channel)
    created = templates.CreateTemplate(
        api.CreateTemplateRequest(
            template=template_pb2.Template(
                name="plain", content="apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ name }}\n"
            )
        ),
        metadata=metadata,
    ).template
    stack_id = _stack(running, "plain")
    parameters = struct_pb2.Struct()
    parameters.update({"name": "apps"})
    made = templates.InstantiateTemplate(
        api.InstantiateTemplateRequest(stack_id=stack_id, template_id=created.id, parameters=parameters),
        metadata=metadata,
    ).deployment_object

    read = objects.GetDeploymentObject(do_api.GetDeploymentObjectRequest(id=made.id), metadata=metadata)

    assert read.deployment_object == made
    assert read.deployment_object.provenance.template_id == created.id
    assert dict(read.deployment_object.provenance.parameters) == {"name": "apps"}
