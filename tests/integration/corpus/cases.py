"""The bad-input corpus: one entry per hostile or mistaken request, with the exact answer it must get.

Every case says how the request is sent (a gRPC method and request, or an HTTP verb, path and raw
body through the REST shim), the status code, the `ErrorInfo.reason` and the fields of the
`BadRequest` violations, in order. `test_bad_input_corpus.py` sends each one to a real broker and
also checks that nothing was written and that the broker still answers its health check.

Requests that need real ids or page tokens are functions of the `World` the test module builds
once per broker: see `World` for what exists.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from google.protobuf import field_mask_pb2, struct_pb2
from google.protobuf.message import Message

from broker.domain.pagination import fingerprint
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    deployment_object_pb2,
    diagnostics_pb2,
    generator_pb2,
    stack_pb2,
    template_pb2,
)
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2 as do_api
from brokkr_common.pb.brokkr.v1 import diagnostics_service_pb2 as diagnostics_api
from brokkr_common.pb.brokkr.v1 import generator_service_pb2 as generator_api
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api
from brokkr_common.pb.brokkr.v1 import target_service_pb2 as target_api
from brokkr_common.pb.brokkr.v1 import template_service_pb2 as template_api

#: The broker's `limits.max_deployment_object_bytes` in the corpus run: small enough that oversized
#: content is cheap to send, large enough for Kubernetes' 256 KiB annotation limit to be reachable.
MAX_DEPLOYMENT_OBJECT_BYTES = 320 * 1024
#: The REST shim's default body limit (`broker.rest.app.create_app`).
MAX_REST_BODY_BYTES = 8 * 1024 * 1024
#: The broker's default `grpc.max_message_bytes`.
MAX_GRPC_MESSAGE_BYTES = 16 * 1024 * 1024

YAML_FIELD = "deployment_object.yaml_content"
UNKNOWN_UUID = "0b0e3c1c-1f4e-4d1e-9a6c-000000000000"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: demo\ndata:\n  k: v\n"


@dataclass(frozen=True)
class World:
    """What exists before any case runs (built by the test module, as the admin unless noted).

    * `stack_id`: stack "corpus" (the admin's), with one deployment object `deployment_object_id`;
      "reused" was created with `request_id` `reused_request_id`.
    * `generator_id` owns stacks "gen-a" and "gen-b"; `keys["generator"]` is its key and
      `keys["other"]` the key of a second generator.
    * `agent_id`: agent "corpus-agent"; there is a second agent, so agent lists have pages.
    * `template_id`: "strict" (parameters `name`: ^[a-z][a-z0-9-]*$ up to 30, `replicas`: 1..10,
      nothing else); `loose_template_id`: "loose" (any string `name`, pasted into the YAML).
    * `tokens`: page tokens for page 2, by "<method>/<caller>": ListStacks/admin,
      ListStacks/generator, ListAgents/admin, ListGenerators/admin.
    """

    stack_id: str
    deployment_object_id: str
    reused_request_id: str
    generator_id: str
    agent_id: str
    template_id: str
    loose_template_id: str
    keys: dict[str, str]
    tokens: dict[str, str]


Build = Callable[[World], Message | bytes]


@dataclass(frozen=True)
class Grpc:
    """A unary call of `method` (`Service/Method`) with the request `build` makes, or raw bytes."""

    method: str
    build: Build
    key: str = "admin"
    #: More call metadata, sent with the key.
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Rest:
    """An HTTP request through the shim; `{stack}`, `{agent}`, `{template}`, `{deployment_object}`
    and `{reused_request_id}` in `path` become the World's. `body` is sent byte for byte."""

    verb: str
    path: str
    body: bytes | Callable[[World], bytes] = b""
    content_type: str = "application/json"
    key: str = "admin"


@dataclass(frozen=True)
class Case:
    name: str
    send: Grpc | Rest
    code: grpc.StatusCode
    #: `ErrorInfo.reason`; None when the refusal comes from gRPC itself (no details at all).
    reason: str | None
    #: The `BadRequest` field violations' fields, in order; () means no BadRequest detail.
    fields: tuple[str, ...] = ()
    #: The HTTP status where the shim answers with one no gRPC code maps to (405, 413, 415).
    http_status: int | None = None
    marks: tuple[object, ...] = field(default=())
    #: A known bug on one backend ("sqlite" or "postgres"): the case is a strict xfail there.
    known_bug: tuple[str, str] | None = None


CASES: list[Case] = []


def case(
    name: str,
    send: Grpc | Rest,
    code: grpc.StatusCode,
    reason: str | None,
    fields: tuple[str, ...] = (),
    **extra: object,
) -> None:
    CASES.append(Case(name, send, code, reason, fields, **extra))  # type: ignore[arg-type]


INVALID = grpc.StatusCode.INVALID_ARGUMENT


# -- deployment object YAML -------------------------------------------------------------------


def submit(yaml_content: str, *, stack_id: str | None = None, request_id: str = "") -> Grpc:
    def build(world: World) -> Message:
        return do_api.CreateDeploymentObjectRequest(
            stack_id=world.stack_id if stack_id is None else stack_id,
            deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=yaml_content),
            request_id=request_id,
        )

    return Grpc("DeploymentObjectService/CreateDeploymentObject", build)


def yaml_case(name: str, text: str, reason: str, violations: int = 1) -> None:
    case(f"yaml/{name}", submit(text), INVALID, reason, (YAML_FIELD,) * violations)


def nested_mapping(depth: int) -> str:
    lines = [f"{'  ' * level}k{level}:" for level in range(depth)]
    return "\n".join(lines) + " leaf\n"


BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
)

# Malformed YAML: syntax the reader cannot parse, and repeated keys.
yaml_case("unclosed-flow-mapping", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n", "INVALID_YAML")
yaml_case("unclosed-flow-sequence", "items: [a, b\n", "INVALID_YAML")
yaml_case("bad-indentation", "apiVersion: v1\n kind: ConfigMap\n", "INVALID_YAML")
yaml_case("tab-indentation", "metadata:\n\tname: a\n", "INVALID_YAML")
yaml_case("unclosed-double-quote", 'apiVersion: "v1\nkind: ConfigMap\n', "INVALID_YAML")
yaml_case("unclosed-single-quote", "apiVersion: 'v1\n", "INVALID_YAML")
yaml_case(
    "repeated-key", "apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata: {name: a}\n", "INVALID_YAML"
)
yaml_case("repeated-nested-key", "metadata:\n  name: a\n  name: b\n", "INVALID_YAML")
yaml_case("key-longer-than-libyaml-allows", f"{'k' * 2000}: v\n", "INVALID_YAML")
yaml_case("mapping-after-scalar", "just text\nkey: value\n", "INVALID_YAML")
yaml_case("nul-byte", "apiVersion: v1\nkind: ConfigMap\x00\n", "INVALID_YAML")
yaml_case("bell-character", "apiVersion: v1\nkind: Config\x07Map\n", "INVALID_YAML")
yaml_case("escape-character", "metadata:\n  name: \x1b[31mred\n", "INVALID_YAML")
yaml_case("noncharacter-uffff", "metadata:\n  name: a\uffff\n", "INVALID_YAML")
# YAML features a JSON document cannot hold, and dangerous tags.
yaml_case("python-object-tag", "x: !!python/object/apply:os.system ['true']\n", "UNSUPPORTED_YAML")
yaml_case("python-name-tag", "x: !!python/name:os.system\n", "UNSUPPORTED_YAML")
yaml_case("binary-tag", "x: !!binary aGVsbG8=\n", "UNSUPPORTED_YAML")
yaml_case("set-tag", "x: !!set {a, b}\n", "UNSUPPORTED_YAML")
yaml_case("omap-tag", "x: !!omap [a: 1]\n", "UNSUPPORTED_YAML")
yaml_case("local-tag", "x: !secret value\n", "UNSUPPORTED_YAML")
yaml_case("int-tag-on-text", "x: !!int twelve\n", "UNSUPPORTED_YAML")
yaml_case(
    "unquoted-timestamp",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {at: 2024-01-01}\n",
    "UNSUPPORTED_YAML",
)
yaml_case("nan", "x: .nan\n", "UNSUPPORTED_YAML")
# Numbers Python cannot even turn into text (more than 4300 digits) once crashed the parser.
yaml_case(
    "integer-of-5000-digits", CONFIGMAP.format(name="a") + "  n: " + "9" * 5000 + "\n", "UNSUPPORTED_YAML"
)
yaml_case(
    "hex-integer-beyond-float64",
    CONFIGMAP.format(name="a") + "  n: 0x" + "f" * 300 + "\n",
    "UNSUPPORTED_YAML",
)
yaml_case(
    "integer-beyond-float64", CONFIGMAP.format(name="a") + "  n: -1" + "0" * 310 + "\n", "UNSUPPORTED_YAML"
)
yaml_case("infinity", "x: -.inf\n", "UNSUPPORTED_YAML")
yaml_case("integer-key", "1: one\n", "UNSUPPORTED_YAML")
yaml_case("boolean-key", "true: yes\n", "UNSUPPORTED_YAML")
yaml_case("null-key", "~: nothing\n", "UNSUPPORTED_YAML")
yaml_case("sequence-key", "? [a, b]\n: c\n", "UNSUPPORTED_YAML")
yaml_case("merge-key", "base: {a: 1}\nderived:\n  <<: {a: 2}\n", "UNSUPPORTED_YAML")
# YAML bombs: aliases, nesting, size, counts.
yaml_case("billion-laughs", BILLION_LAUGHS, "UNSUPPORTED_YAML")
yaml_case("alias-without-anchor", "x: *undefined\n", "UNSUPPORTED_YAML")
yaml_case("anchor-on-scalar", "x: &name value\n", "UNSUPPORTED_YAML")
yaml_case("deep-flow-nesting", "[" * 10_000 + "]" * 10_000, "UNSUPPORTED_YAML")
yaml_case("deep-block-nesting", nested_mapping(100), "UNSUPPORTED_YAML")
yaml_case(
    "huge-scalar",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  k: " + "x" * MAX_DEPLOYMENT_OBJECT_BYTES,
    "DEPLOYMENT_OBJECT_TOO_LARGE",
)
yaml_case(
    "too-large-in-bytes-not-characters",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  k: "
    + "é" * (MAX_DEPLOYMENT_OBJECT_BYTES // 2),
    "DEPLOYMENT_OBJECT_TOO_LARGE",
)
yaml_case("too-many-documents", "---\n" * 5001, "TOO_MANY_OBJECTS")
yaml_case(
    "too-many-list-items",
    "apiVersion: v1\nkind: List\nitems:\n" + "- {}\n" * 5001,
    "TOO_MANY_OBJECTS",
)
# Documents that are not Kubernetes objects.
yaml_case("empty", "", "DEPLOYMENT_OBJECT_EMPTY")
yaml_case("only-comments", "# nothing here\n", "DEPLOYMENT_OBJECT_EMPTY")
yaml_case("only-separators", "---\n---\n...\n", "DEPLOYMENT_OBJECT_EMPTY")
yaml_case("null-document", "~\n", "DEPLOYMENT_OBJECT_EMPTY")
yaml_case("empty-list", "apiVersion: v1\nkind: List\nitems: []\n", "DEPLOYMENT_OBJECT_EMPTY")
yaml_case("scalar-document", "hello\n", "INVALID_MANIFEST")
yaml_case("number-document", "42\n", "INVALID_MANIFEST")
yaml_case("list-document", "- apiVersion: v1\n- kind: ConfigMap\n", "INVALID_MANIFEST")
yaml_case("missing-api-version", "kind: ConfigMap\nmetadata: {name: a}\n", "INVALID_MANIFEST")
yaml_case("missing-kind", "apiVersion: v1\nmetadata: {name: a}\n", "INVALID_MANIFEST")
yaml_case("missing-metadata", "apiVersion: v1\nkind: ConfigMap\n", "INVALID_MANIFEST")
yaml_case("missing-name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: a}\n", "INVALID_MANIFEST")
yaml_case(
    "generate-name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n", "INVALID_MANIFEST"
)
yaml_case("metadata-is-a-list", "apiVersion: v1\nkind: ConfigMap\nmetadata: [a]\n", "INVALID_MANIFEST")
yaml_case(
    "api-version-upper-case",
    "apiVersion: Apps/V1\nkind: Deployment\nmetadata: {name: a}\n",
    "INVALID_MANIFEST",
)
yaml_case("api-version-number", "apiVersion: 1\nkind: ConfigMap\nmetadata: {name: a}\n", "INVALID_MANIFEST")
yaml_case("kind-lower-case", "apiVersion: v1\nkind: configMap\nmetadata: {name: a}\n", "INVALID_MANIFEST")
yaml_case("kind-too-long", f"apiVersion: v1\nkind: K{'a' * 63}\nmetadata: {{name: a}}\n", "INVALID_MANIFEST")
yaml_case(
    "name-upper-case", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: MyConfig}\n", "INVALID_MANIFEST"
)
yaml_case(
    "name-too-long", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {'a' * 254}}}\n", "INVALID_MANIFEST"
)
yaml_case("name-with-slash", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a/b}\n", "INVALID_MANIFEST")
yaml_case("name-is-a-number", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 12}\n", "INVALID_MANIFEST")
yaml_case(
    "namespace-not-a-dns-label",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: Bad_NS}\n",
    "INVALID_MANIFEST",
)
yaml_case("list-items-not-a-list", "apiVersion: v1\nkind: List\nitems: {a: b}\n", "INVALID_MANIFEST")
yaml_case(
    "list-item-without-kind",
    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  metadata: {name: a}\n",
    "INVALID_MANIFEST",
)
yaml_case(
    "every-bad-document-reported",
    "kind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: B}\n",
    "INVALID_MANIFEST",
    violations=2,
)
# Labels and annotations inside objects.
yaml_case(
    "label-value-too-long",
    f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {{app: {'v' * 64}}}\n",
    "INVALID_MANIFEST",
)
yaml_case(
    "label-key-bad-characters",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {'a b': c}\n",
    "INVALID_MANIFEST",
)
yaml_case(
    "label-value-not-a-string",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {replicas: 3}\n",
    "INVALID_MANIFEST",
)
yaml_case(
    "labels-not-a-mapping",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: [a, b]\n",
    "INVALID_MANIFEST",
)
yaml_case(
    "annotation-key-bad-prefix",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations: {'Example.COM/x': y}\n",
    "INVALID_MANIFEST",
)
yaml_case(
    "annotations-over-256-kib",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    big: "
    + "x" * (256 * 1024)
    + "\n",
    "INVALID_MANIFEST",
)
# Duplicate resources within one deployment object.
yaml_case(
    "duplicate-object",
    CONFIGMAP.format(name="a") + "---\n" + CONFIGMAP.format(name="a"),
    "DUPLICATE_RESOURCE",
)
yaml_case(
    "duplicate-across-versions",
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n"
    "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: web}\n",
    "DUPLICATE_RESOURCE",
)
yaml_case(
    "duplicate-inside-a-list",
    CONFIGMAP.format(name="a") + "---\napiVersion: v1\nkind: List\nitems:\n"
    "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: demo}}\n",
    "DUPLICATE_RESOURCE",
)
yaml_case(
    "duplicate-empty-and-missing-namespace",
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: ''}\n",
    "DUPLICATE_RESOURCE",
)
case(
    "yaml/duplicate-and-invalid-together",
    submit(CONFIGMAP.format(name="a") * 1 + "---\n" + CONFIGMAP.format(name="a") + "---\nkind: X\n"),
    INVALID,
    "INVALID_ARGUMENT",
    (YAML_FIELD,) * 3,  # the duplicate; the third document's apiVersion and metadata
)

# -- the other fields of CreateDeploymentObject ------------------------------------------------

case(
    "deployment-object/stack-id-not-a-uuid",
    submit(CONFIGMAP.format(name="a"), stack_id="corpus"),
    INVALID,
    "INVALID_UUID",
    ("stack_id",),
)
case(
    "deployment-object/stack-id-missing",
    submit(CONFIGMAP.format(name="a"), stack_id=""),
    INVALID,
    "FIELD_REQUIRED",
    ("stack_id",),
)
case(
    "deployment-object/request-id-not-a-uuid",
    submit(CONFIGMAP.format(name="a"), request_id="retry-1"),
    INVALID,
    "INVALID_UUID",
    ("request_id",),
)
case(
    "deployment-object/every-field-bad-at-once",
    submit("kind: X\n", stack_id="nope", request_id="nope"),
    INVALID,
    "INVALID_ARGUMENT",
    ("stack_id", YAML_FIELD, YAML_FIELD, "request_id"),  # "kind: X" lacks apiVersion and metadata
)
case(
    "deployment-object/unknown-stack",
    submit(CONFIGMAP.format(name="a"), stack_id=UNKNOWN_UUID),
    grpc.StatusCode.NOT_FOUND,
    "STACK_NOT_FOUND",
)

# -- stacks: names, labels, annotations, descriptions, ids -----------------------------------


def create_stack(request_id: str = "", **fields: object) -> Grpc:
    def build(world: World) -> Message:
        return stack_api.CreateStackRequest(stack=stack_pb2.Stack(**fields), request_id=request_id)  # type: ignore[arg-type]

    return Grpc("StackService/CreateStack", build)


def stack_case(case_name: str, reason: str, fields: tuple[str, ...], **stack: object) -> None:
    case(f"stack/{case_name}", create_stack(**stack), INVALID, reason, fields)


stack_case("name-missing", "FIELD_REQUIRED", ("stack.name",), name="")
stack_case("name-upper-case", "INVALID_DNS_LABEL", ("stack.name",), name="MyStack")
stack_case("name-too-long", "INVALID_DNS_LABEL", ("stack.name",), name="a" * 64)
stack_case("name-underscore", "INVALID_DNS_LABEL", ("stack.name",), name="my_stack")
stack_case("name-leading-dash", "INVALID_DNS_LABEL", ("stack.name",), name="-stack")
stack_case("name-trailing-dash", "INVALID_DNS_LABEL", ("stack.name",), name="stack-")
stack_case("name-with-dot", "INVALID_DNS_LABEL", ("stack.name",), name="my.stack")
stack_case("name-with-nul", "INVALID_DNS_LABEL", ("stack.name",), name="a\x00b")
stack_case("name-non-ascii", "INVALID_DNS_LABEL", ("stack.name",), name="stäck")
stack_case("name-sql", "INVALID_DNS_LABEL", ("stack.name",), name="x'; DROP TABLE stacks; --")
stack_case(
    "label-key-two-slashes", "INVALID_LABEL_KEY", ('stack.labels["a/b/c"]',), name="s", labels={"a/b/c": "v"}
)
stack_case(
    "label-key-empty-prefix", "INVALID_LABEL_KEY", ('stack.labels["/x"]',), name="s", labels={"/x": "v"}
)
stack_case(
    "label-key-empty-name",
    "INVALID_LABEL_KEY",
    ('stack.labels["example.com/"]',),
    name="s",
    labels={"example.com/": "v"},
)
stack_case("label-key-empty", "INVALID_LABEL_KEY", ('stack.labels[""]',), name="s", labels={"": "v"})
stack_case(
    "label-key-name-too-long",
    "INVALID_LABEL_KEY",
    (f'stack.labels["{"k" * 64}"]',),
    name="s",
    labels={"k" * 64: "v"},
)
stack_case(
    "label-key-prefix-upper-case",
    "INVALID_LABEL_KEY",
    ('stack.labels["Example.com/x"]',),
    name="s",
    labels={"Example.com/x": "v"},
)
stack_case(
    "label-key-prefix-too-long",
    "INVALID_LABEL_KEY",
    (f'stack.labels["{"a" * 254}/x"]',),
    name="s",
    labels={f"{'a' * 254}/x": "v"},
)
stack_case(
    "label-value-too-long",
    "INVALID_LABEL_VALUE",
    ('stack.labels["app"]',),
    name="s",
    labels={"app": "v" * 64},
)
stack_case(
    "label-value-space", "INVALID_LABEL_VALUE", ('stack.labels["app"]',), name="s", labels={"app": "a b"}
)
stack_case(
    "label-value-trailing-dot",
    "INVALID_LABEL_VALUE",
    ('stack.labels["app"]',),
    name="s",
    labels={"app": "web."},
)
stack_case(
    "label-value-nul", "INVALID_LABEL_VALUE", ('stack.labels["app"]',), name="s", labels={"app": "a\x00"}
)
stack_case(
    "label-key-and-value-both-bad",
    "INVALID_ARGUMENT",
    ('stack.labels["a b"]', 'stack.labels["a b"]'),
    name="s",
    labels={"a b": "c d"},
)
stack_case(
    "annotation-key-bad",
    "INVALID_ANNOTATION_KEY",
    ('stack.annotations["a b"]',),
    name="s",
    annotations={"a b": "x"},
)
stack_case(
    "annotation-key-quote-in-key",
    "INVALID_ANNOTATION_KEY",
    ('stack.annotations["say \\"hi\\""]',),
    name="s",
    annotations={'say "hi"': "x"},
)
stack_case(
    "annotations-too-large",
    "ANNOTATIONS_TOO_LARGE",
    ("stack.annotations",),
    name="s",
    annotations={"big": "x" * (256 * 1024)},
)
stack_case("description-too-long", "FIELD_TOO_LONG", ("stack.description",), name="s", description="d" * 1025)
stack_case("description-nul", "CONTROL_CHARACTER", ("stack.description",), name="s", description="a\x00b")
stack_case("description-escape", "CONTROL_CHARACTER", ("stack.description",), name="s", description="\x1b[2J")
stack_case(
    "description-c1-control", "CONTROL_CHARACTER", ("stack.description",), name="s", description="a\x85b"
)
stack_case("description-delete", "CONTROL_CHARACTER", ("stack.description",), name="s", description="a\x7f")
stack_case(
    "every-field-bad-at-once",
    "INVALID_ARGUMENT",
    ("stack.name", "stack.description", 'stack.labels["bad key!"]'),
    name="Not A DNS Label",
    labels={"bad key!": "x"},
    description="x" * 2000,
)
stack_case("generator-id-not-a-uuid", "INVALID_UUID", ("stack.generator_id",), name="s", generator_id="gen-1")
case(
    "stack/request-id-not-a-uuid",
    create_stack(name="s", request_id="abc"),
    INVALID,
    "INVALID_UUID",
    ("request_id",),
)
case(
    "stack/request-id-uuid-with-braces",
    create_stack(name="s", request_id="{6f1c1a1e-4a55-4a6b-9b0e-5c1f0e4d2a10}"),
    INVALID,
    "INVALID_UUID",
    ("request_id",),
)
case(
    "stack/long-x-request-id-header",
    Grpc("StackService/CreateStack", create_stack(name="Bad").build, metadata=(("x-request-id", "r" * 200),)),
    INVALID,
    "INVALID_DNS_LABEL",
    ("stack.name",),
)
case(
    "stack/request-id-reused-for-another-request",
    Grpc(
        "StackService/CreateStack",
        lambda w: stack_api.CreateStackRequest(
            stack=stack_pb2.Stack(name="different"), request_id=w.reused_request_id
        ),
    ),
    grpc.StatusCode.ALREADY_EXISTS,
    "REQUEST_ID_REUSED",
)
case("stack/name-taken", create_stack(name="corpus"), grpc.StatusCode.ALREADY_EXISTS, "STACK_ALREADY_EXISTS")
case(
    "stack/unknown-generator",
    create_stack(name="s", generator_id=UNKNOWN_UUID),
    grpc.StatusCode.NOT_FOUND,
    "GENERATOR_NOT_FOUND",
)


def by_id(method: str, request_type: type[Message], value: str, field_name: str = "id") -> Grpc:
    return Grpc(method, lambda w: request_type(**{field_name: value}))


for method, request_type in [
    ("StackService/GetStack", stack_api.GetStackRequest),
    ("StackService/DeleteStack", stack_api.DeleteStackRequest),
    ("StackService/ListStackAgents", stack_api.ListStackAgentsRequest),
    ("DeploymentObjectService/GetDeploymentObject", do_api.GetDeploymentObjectRequest),
    ("AgentService/GetAgent", agent_api.GetAgentRequest),
    ("AgentService/DeleteAgent", agent_api.DeleteAgentRequest),
    ("AgentService/RotateAgentKey", agent_api.RotateAgentKeyRequest),
    ("GeneratorService/GetGenerator", generator_api.GetGeneratorRequest),
    ("GeneratorService/RotateGeneratorKey", generator_api.RotateGeneratorKeyRequest),
    ("TemplateService/GetTemplate", template_api.GetTemplateRequest),
]:
    short = method.split("/")[1]
    case(
        f"id/{short}-not-a-uuid", by_id(method, request_type, "not-a-uuid"), INVALID, "INVALID_UUID", ("id",)
    )
case(
    "id/GetStack-missing",
    by_id("StackService/GetStack", stack_api.GetStackRequest, ""),
    INVALID,
    "FIELD_REQUIRED",
    ("id",),
)
case(
    "id/GetStack-uuid-with-suffix",
    by_id("StackService/GetStack", stack_api.GetStackRequest, UNKNOWN_UUID + "0"),
    INVALID,
    "INVALID_UUID",
    ("id",),
)
case(
    "id/DeleteStack-with-nul",
    by_id("StackService/DeleteStack", stack_api.DeleteStackRequest, UNKNOWN_UUID[:-1] + "\x00"),
    INVALID,
    "INVALID_UUID",
    ("id",),
)
case(
    "id/DeleteGenerator-sql",
    by_id("GeneratorService/DeleteGenerator", generator_api.DeleteGeneratorRequest, "' OR '1'='1"),
    INVALID,
    "INVALID_UUID",
    ("id",),
)
case(
    "id/ListDeploymentObjects-stack-not-a-uuid",
    by_id(
        "DeploymentObjectService/ListDeploymentObjects", do_api.ListDeploymentObjectsRequest, "x", "stack_id"
    ),
    INVALID,
    "INVALID_UUID",
    ("stack_id",),
)
case(
    "id/CreateTarget-both-ids-bad",
    Grpc("TargetService/CreateTarget", lambda w: target_api.CreateTargetRequest(agent_id="a", stack_id="s")),
    INVALID,
    "INVALID_UUID",
    ("agent_id", "stack_id"),
)
case(
    "id/CreateRegistration-generator-missing",
    Grpc(
        "TargetService/CreateRegistration",
        lambda w: target_api.CreateRegistrationRequest(agent_id=w.agent_id, generator_id=""),
    ),
    INVALID,
    "FIELD_REQUIRED",
    ("generator_id",),
)
case(
    "id/GetStack-unknown",
    by_id("StackService/GetStack", stack_api.GetStackRequest, UNKNOWN_UUID),
    grpc.StatusCode.NOT_FOUND,
    "STACK_NOT_FOUND",
)

# -- update masks ------------------------------------------------------------------------------


def update_stack(paths: list[str], **fields: object) -> Grpc:
    def build(world: World) -> Message:
        return stack_api.UpdateStackRequest(
            stack=stack_pb2.Stack(id=world.stack_id, **fields),  # type: ignore[arg-type]
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )

    return Grpc("StackService/UpdateStack", build)


MASK = ("update_mask",)
case("mask/unknown-path", update_stack(["colour"]), INVALID, "INVALID_UPDATE_MASK", MASK)
case("mask/immutable-id", update_stack(["id"]), INVALID, "INVALID_UPDATE_MASK", MASK)
case("mask/immutable-generator", update_stack(["generator_id"]), INVALID, "INVALID_UPDATE_MASK", MASK)
case("mask/output-only-create-time", update_stack(["create_time"]), INVALID, "INVALID_UPDATE_MASK", MASK)
case(
    "mask/output-only-desired",
    update_stack(["desired_deployment_object"]),
    INVALID,
    "INVALID_UPDATE_MASK",
    MASK,
)
case(
    "mask/nested-map-entry",
    update_stack(["labels.env"], labels={"env": "x"}),
    INVALID,
    "INVALID_UPDATE_MASK",
    MASK,
)
case("mask/json-name", update_stack(["generatorId"]), INVALID, "INVALID_UPDATE_MASK", MASK)
case("mask/wildcard", update_stack(["*"]), INVALID, "INVALID_UPDATE_MASK", MASK)
case(
    "mask/every-bad-path-named",
    update_stack(["name", "colour", "id"], name="x"),
    INVALID,
    "INVALID_UPDATE_MASK",
    MASK * 2,
)
case(
    "mask/valid-path-bad-value",
    update_stack(["name"], name="Bad Name"),
    INVALID,
    "INVALID_DNS_LABEL",
    ("stack.name",),
)
case(
    "mask/empty-mask-bad-labels",
    update_stack([], labels={"ok": "fine", "bad/key/x": "v"}),
    INVALID,
    "INVALID_LABEL_KEY",
    ('stack.labels["bad/key/x"]',),
)
case(
    "mask/stack-id-not-a-uuid",
    Grpc(
        "StackService/UpdateStack",
        lambda w: stack_api.UpdateStackRequest(stack=stack_pb2.Stack(id="x", description="d")),
    ),
    INVALID,
    "INVALID_UUID",
    ("stack.id",),
)
case(
    "mask/agent-unknown-path",
    Grpc(
        "AgentService/UpdateAgent",
        lambda w: agent_api.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=w.agent_id),
            update_mask=field_mask_pb2.FieldMask(paths=["last_heartbeat_time"]),
        ),
    ),
    INVALID,
    "INVALID_UPDATE_MASK",
    MASK,
)
case(
    "mask/agent-status-unknown-enum-value",
    Grpc(
        "AgentService/UpdateAgent",
        lambda w: agent_api.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=w.agent_id, status=99),  # type: ignore[arg-type]
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        ),
    ),
    INVALID,
    "INVALID_FIELD",
    ("agent.status",),
)
case(
    "mask/generator-immutable-id",
    Grpc(
        "GeneratorService/UpdateGenerator",
        lambda w: generator_api.UpdateGeneratorRequest(
            generator=generator_pb2.Generator(id=w.generator_id),
            update_mask=field_mask_pb2.FieldMask(paths=["id"]),
        ),
    ),
    INVALID,
    "INVALID_UPDATE_MASK",
    MASK,
)

# -- agents and generators ---------------------------------------------------------------------


def create_agent(**fields: object) -> Grpc:
    return Grpc(
        "AgentService/CreateAgent", lambda w: agent_api.CreateAgentRequest(agent=agent_pb2.Agent(**fields))
    )  # type: ignore[arg-type]


case(
    "agent/name-missing", create_agent(name="", cluster_name="c"), INVALID, "FIELD_REQUIRED", ("agent.name",)
)
case(
    "agent/name-upper-case",
    create_agent(name="Edge", cluster_name="c"),
    INVALID,
    "INVALID_DNS_LABEL",
    ("agent.name",),
)
case(
    "agent/cluster-name-not-a-subdomain",
    create_agent(name="edge", cluster_name="Cluster One"),
    INVALID,
    "INVALID_DNS_SUBDOMAIN",
    ("agent.cluster_name",),
)
case(
    "agent/cluster-name-too-long",
    create_agent(name="edge", cluster_name="a" * 254),
    INVALID,
    "INVALID_DNS_SUBDOMAIN",
    ("agent.cluster_name",),
)
case(
    "agent/label-value-bad",
    create_agent(name="edge", cluster_name="c", labels={"env": "prod!"}),
    INVALID,
    "INVALID_LABEL_VALUE",
    ('agent.labels["env"]',),
)
case(
    "generator/name-bad",
    Grpc(
        "GeneratorService/CreateGenerator",
        lambda w: generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name="Team A")),
    ),
    INVALID,
    "INVALID_DNS_LABEL",
    ("generator.name",),
)
case(
    "generator/description-control-character",
    Grpc(
        "GeneratorService/CreateGenerator",
        lambda w: generator_api.CreateGeneratorRequest(
            generator=generator_pb2.Generator(name="team-c", description="\x08")
        ),
    ),
    INVALID,
    "CONTROL_CHARACTER",
    ("generator.description",),
)

# -- page sizes and page tokens ----------------------------------------------------------------


def token_document(token: str) -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def make_token(document: object) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def tampered(name: str, **changes: object) -> Callable[[World], str]:
    return lambda world: make_token({**token_document(world.tokens[name]), **changes})


def list_stacks(token: str | Callable[[World], str], key: str = "admin", **fields: object) -> Grpc:
    def build(world: World) -> Message:
        page_token = token(world) if callable(token) else token
        return stack_api.ListStacksRequest(page_size=1, page_token=page_token, **fields)  # type: ignore[arg-type]

    return Grpc("StackService/ListStacks", build, key=key)


TOKEN = ("page_token",)
deep_json = "[" * 1500 + "]" * 1500
case("page/garbage-token", list_stacks("garbage!!"), INVALID, "INVALID_PAGE_TOKEN", TOKEN)
case(
    "page/base64-of-non-json",
    list_stacks(base64.urlsafe_b64encode(b"\xff\x00binary").decode()),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case("page/json-not-an-object", list_stacks(make_token([1, 2])), INVALID, "INVALID_PAGE_TOKEN", TOKEN)
case(
    "page/deeply-nested-json",
    list_stacks(make_token(json.loads("[" * 200 + "]" * 200))),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/recursion-bomb-json",
    list_stacks(base64.urlsafe_b64encode(deep_json.encode()).decode()),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case("page/token-too-long", list_stacks("A" * 5000), INVALID, "INVALID_PAGE_TOKEN", TOKEN)
case(
    "page/other-version", list_stacks(tampered("ListStacks/admin", v=2)), INVALID, "INVALID_PAGE_TOKEN", TOKEN
)
case(
    "page/tampered-fingerprint",
    list_stacks(tampered("ListStacks/admin", q="0" * 32)),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/position-not-a-list",
    list_stacks(tampered("ListStacks/admin", p={"name": "a"})),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/position-wrong-types",
    list_stacks(tampered("ListStacks/admin", p=[1, 2])),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/position-wrong-length",
    list_stacks(tampered("ListStacks/admin", p=["a"])),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/position-booleans",
    list_stacks(tampered("ListStacks/admin", p=[True, False])),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/token-from-another-method",
    list_stacks(lambda w: w.tokens["ListAgents/admin"]),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/token-from-another-principal",
    list_stacks(lambda w: w.tokens["ListStacks/admin"], key="generator"),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/token-from-another-generator",
    list_stacks(lambda w: w.tokens["ListStacks/generator"], key="other"),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/token-with-other-filters",
    list_stacks(lambda w: w.tokens["ListStacks/admin"], show_deleted=True),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/token-with-other-selector",
    list_stacks(lambda w: w.tokens["ListStacks/admin"], label_selector="env=prod"),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)


def forged(method: str, position: list[object], **query: object) -> Callable[[World], str]:
    """A token for `position` in a query the caller may run: tokens are opaque, not signed, and
    the fingerprint of a query's filters is public knowledge."""

    def build(world: World) -> str:
        filters = {name: value(world) if callable(value) else value for name, value in query.items()}
        return make_token({"v": 1, "p": position, "q": fingerprint(method=method, **filters)})

    return build


def list_deployment_objects(token: Callable[[World], str]) -> Grpc:
    return Grpc(
        "DeploymentObjectService/ListDeploymentObjects",
        lambda w: do_api.ListDeploymentObjectsRequest(stack_id=w.stack_id, page_token=token(w)),
    )


STACKS_QUERY = {"principal": None, "label_selector": "", "generator_id": None, "show_deleted": False}
case(
    "page/forged-position-beyond-int64",
    list_deployment_objects(
        forged("ListDeploymentObjects", [10**30], principal=None, stack_id=lambda w: w.stack_id)
    ),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/forged-position-below-int64",
    list_deployment_objects(
        forged("ListDeploymentObjects", [-(2**63) - 1], principal=None, stack_id=lambda w: w.stack_id)
    ),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/forged-position-with-nul",
    list_stacks(forged("ListStacks", ["a\x00b", "x"], **STACKS_QUERY)),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/forged-position-with-lone-surrogate",
    list_stacks(forged("ListStacks", ["\ud800", "x"], **STACKS_QUERY)),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/forged-position-that-is-merely-odd-is-fine",
    list_stacks(forged("ListStacks", ["zzz", ""], **STACKS_QUERY)),
    grpc.StatusCode.OK,
    None,
)
case(
    "page/negative-size",
    Grpc("StackService/ListStacks", lambda w: stack_api.ListStacksRequest(page_size=-1)),
    INVALID,
    "INVALID_PAGE_SIZE",
    ("page_size",),
)
case(
    "page/bad-size-and-token-together",
    Grpc("StackService/ListStacks", lambda w: stack_api.ListStacksRequest(page_size=-5, page_token="x")),
    INVALID,
    "INVALID_ARGUMENT",
    ("page_size", "page_token"),
)
case(
    "page/agents-token-on-generators",
    Grpc(
        "GeneratorService/ListGenerators",
        lambda w: generator_api.ListGeneratorsRequest(page_token=w.tokens["ListAgents/admin"]),
    ),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/generators-token-on-agents",
    Grpc(
        "AgentService/ListAgents",
        lambda w: agent_api.ListAgentsRequest(page_token=w.tokens["ListGenerators/admin"]),
    ),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/stacks-token-on-deployment-objects",
    Grpc(
        "DeploymentObjectService/ListDeploymentObjects",
        lambda w: do_api.ListDeploymentObjectsRequest(
            stack_id=w.stack_id, page_token=w.tokens["ListStacks/admin"]
        ),
    ),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "page/bad-label-selector",
    Grpc("StackService/ListStacks", lambda w: stack_api.ListStacksRequest(label_selector="env in (a")),
    INVALID,
    "INVALID_LABEL_SELECTOR",
    ("label_selector",),
)

# -- templates ---------------------------------------------------------------------------------


def instantiate(parameters: dict[str, object] | None, *, loose: bool = False, **fields: object) -> Grpc:
    def build(world: World) -> Message:
        request = template_api.InstantiateTemplateRequest(
            stack_id=world.stack_id,
            template_id=world.loose_template_id if loose else world.template_id,
            **fields,  # type: ignore[arg-type]
        )
        if parameters is not None:
            request.parameters.CopyFrom(_struct(parameters))
        return request

    return Grpc("TemplateService/InstantiateTemplate", build)


def _struct(values: dict[str, object]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


PARAMETER = "INVALID_PARAMETER"
case("template/required-parameter-missing", instantiate({"replicas": 2}), INVALID, PARAMETER, ("parameters",))
case(
    "template/parameter-wrong-type",
    instantiate({"name": "web", "replicas": "three"}),
    INVALID,
    PARAMETER,
    ("parameters.replicas",),
)
case(
    "template/parameter-below-minimum",
    instantiate({"name": "web", "replicas": 0}),
    INVALID,
    PARAMETER,
    ("parameters.replicas",),
)
case(
    "template/parameter-not-an-integer",
    instantiate({"name": "web", "replicas": 1.5}),
    INVALID,
    PARAMETER,
    ("parameters.replicas",),
)
case(
    "template/parameter-pattern",
    instantiate({"name": "Web Server"}),
    INVALID,
    PARAMETER,
    ("parameters.name",),
)
case("template/parameter-too-long", instantiate({"name": "w" * 31}), INVALID, PARAMETER, ("parameters.name",))
case(
    "template/unknown-parameter",
    instantiate({"name": "web", "colour": "red"}),
    INVALID,
    PARAMETER,
    ("parameters",),
)
case(
    "template/every-parameter-problem",
    instantiate({"name": "", "replicas": 100}),
    INVALID,
    PARAMETER,
    ("parameters.name", "parameters.replicas"),
)
case(
    "template/dry-run-still-validates",
    instantiate({"name": 7}, dry_run=True),
    INVALID,
    PARAMETER,
    ("parameters.name",),
)
case(
    "template/parameter-injects-yaml",
    instantiate({"name": "a\n  bad: [unclosed"}, loose=True),
    INVALID,
    "INVALID_YAML",
    ("rendered_yaml",),
)
case(
    "template/parameter-injects-a-second-object",
    instantiate({"name": "a\n---\nkind: Secret"}, loose=True),
    INVALID,
    "INVALID_MANIFEST",
    ("rendered_yaml",) * 2,  # the injected Secret lacks apiVersion and metadata
)
case(
    "template/template-id-not-a-uuid",
    Grpc(
        "TemplateService/InstantiateTemplate",
        lambda w: template_api.InstantiateTemplateRequest(stack_id=w.stack_id, template_id="strict"),
    ),
    INVALID,
    "INVALID_UUID",
    ("template_id",),
)
case(
    "template/negative-version",
    instantiate({"name": "web"}, template_version=-1),
    INVALID,
    "INVALID_FIELD",
    ("template_version",),
)


def create_template(**fields: object) -> Grpc:
    return Grpc(
        "TemplateService/CreateTemplate",
        lambda w: template_api.CreateTemplateRequest(template=template_pb2.Template(**fields)),  # type: ignore[arg-type]
    )


case(
    "template/syntax-error",
    create_template(name="t", content="{% if %}"),
    INVALID,
    "INVALID_TEMPLATE",
    ("template.content",),
)
case("template/content-missing", create_template(name="t"), INVALID, "FIELD_REQUIRED", ("template.content",))
case(
    "template/schema-not-an-object-type",
    Grpc(
        "TemplateService/CreateTemplate",
        lambda w: template_api.CreateTemplateRequest(
            template=template_pb2.Template(
                name="t", content="x: 1", parameters_schema=_struct({"type": "string"})
            )
        ),
    ),
    INVALID,
    "INVALID_PARAMETERS_SCHEMA",
    ("template.parameters_schema.type",),
)
case(
    "template/schema-remote-ref",
    Grpc(
        "TemplateService/CreateTemplate",
        lambda w: template_api.CreateTemplateRequest(
            template=template_pb2.Template(
                name="t",
                content="x: 1",
                parameters_schema=_struct(
                    {"type": "object", "properties": {"a": {"$ref": "https://example.com/schema.json"}}}
                ),
            )
        ),
    ),
    INVALID,
    "INVALID_PARAMETERS_SCHEMA",
    ("template.parameters_schema",),
)

# -- diagnostics -------------------------------------------------------------------------------


def ask_diagnostics(agent: str = "{agent}", stack: str = "{stack}", **options: int) -> Grpc:
    def build(world: World) -> Message:
        return diagnostics_api.CreateDiagnosticsRequest(
            diagnostics=diagnostics_pb2.Diagnostics(
                agent_id=agent.format(agent=world.agent_id),
                stack_id=stack.format(stack=world.stack_id),
                options=diagnostics_pb2.DiagnosticsOptions(**options),
            )
        )

    return Grpc("DiagnosticsService/CreateDiagnostics", build)


case(
    "diagnostics/options-out-of-range",
    ask_diagnostics(log_tail_lines=501, max_log_bytes=65537),
    INVALID,
    "OUT_OF_RANGE",
    ("diagnostics.options.log_tail_lines", "diagnostics.options.max_log_bytes"),
)
case(
    "diagnostics/negative-tail",
    ask_diagnostics(log_tail_lines=-1),
    INVALID,
    "OUT_OF_RANGE",
    ("diagnostics.options.log_tail_lines",),
)
case(
    "diagnostics/agent-not-a-uuid",
    ask_diagnostics(agent="edge-1"),
    INVALID,
    "INVALID_UUID",
    ("diagnostics.agent_id",),
)
case(
    "diagnostics/unknown-agent",
    ask_diagnostics(agent=UNKNOWN_UUID),
    grpc.StatusCode.NOT_FOUND,
    "AGENT_NOT_FOUND",
)
case(
    "diagnostics/get-not-a-uuid",
    by_id(
        "DiagnosticsService/GetDiagnostics",
        diagnostics_api.GetDiagnosticsRequest,
        "1; DROP TABLE diagnostics",
    ),
    INVALID,
    "INVALID_UUID",
    ("id",),
)
case(
    "diagnostics/rest-get-unknown",
    Rest("GET", f"/api/v1/diagnostics/{UNKNOWN_UUID}"),
    grpc.StatusCode.NOT_FOUND,
    "DIAGNOSTICS_NOT_FOUND",
)
case(
    "diagnostics/rest-list-agent-bad",
    Rest("GET", "/api/v1/diagnostics?agentId=edge-1"),
    INVALID,
    "INVALID_UUID",
    ("agent_id",),
)

# -- gRPC transport limits and raw bytes ---------------------------------------------------------


def raw_create_stack_with_name(name: bytes) -> bytes:
    """A CreateStackRequest whose stack.name holds `name` as is, even if it is not UTF-8."""
    inner = bytes([(2 << 3) | 2, len(name)]) + name  # Stack.name is field 2
    return bytes([(1 << 3) | 2, len(inner)]) + inner  # CreateStackRequest.stack is field 1


case(
    "grpc/invalid-utf8-in-a-string-field",
    Grpc("StackService/CreateStack", lambda w: raw_create_stack_with_name(b"\xff\xfe")),
    INVALID,
    "MALFORMED_REQUEST",
)
case(
    "grpc/message-over-the-size-limit",
    create_stack(name="s", description="x" * (MAX_GRPC_MESSAGE_BYTES + 1)),
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    None,
)

# -- REST: bodies, query parameters, paths ---------------------------------------------------------

case("rest/malformed-json", Rest("POST", "/api/v1/stacks", b'{"name": '), INVALID, "MALFORMED_JSON")
case("rest/invalid-utf8", Rest("POST", "/api/v1/stacks", b'{"name": "\xff\xfe"}'), INVALID, "MALFORMED_JSON")
case(
    "rest/raw-nul-byte-in-string",
    Rest("POST", "/api/v1/stacks", b'{"name": "a\x00b"}'),
    INVALID,
    "MALFORMED_JSON",
)
case(
    "rest/json-nesting-bomb",
    Rest("POST", "/api/v1/stacks", b"[" * 100_000 + b"]" * 100_000),
    INVALID,
    "MALFORMED_JSON",
)
case("rest/trailing-garbage", Rest("POST", "/api/v1/stacks", b'{"name": "a"} {}'), INVALID, "MALFORMED_JSON")
case(
    "rest/escaped-nul-in-name",
    Rest("POST", "/api/v1/stacks", b'{"name": "a\\u0000b"}'),
    INVALID,
    "INVALID_DNS_LABEL",
    ("stack.name",),
)
case(
    "rest/escaped-nul-in-description",
    Rest("POST", "/api/v1/stacks", b'{"name": "ok", "description": "\\u0000"}'),
    INVALID,
    "CONTROL_CHARACTER",
    ("stack.description",),
)
case(
    "rest/lone-surrogate",
    Rest("POST", "/api/v1/stacks", b'{"name": "ok", "description": "\\ud800"}'),
    INVALID,
    "INVALID_FIELD",
    ("stack.description",),
)
case(
    "rest/lone-surrogate-in-label-key",
    Rest("POST", "/api/v1/stacks", b'{"name": "ok", "labels": {"\\udfff": "v"}}'),
    INVALID,
    "INVALID_FIELD",
    ("stack.labels",),
)
case(
    "rest/lone-surrogate-in-field-name",
    Rest("POST", "/api/v1/stacks", b'{"\\ud800": 1}'),
    INVALID,
    "INVALID_FIELD",
    ("stack",),
)
case(
    "rest/unknown-field",
    Rest("POST", "/api/v1/stacks", b'{"name": "a", "colour": "red"}'),
    INVALID,
    "UNKNOWN_FIELD",
    ("stack.colour",),
)
case(
    "rest/output-only-field-is-not-settable-either",
    Rest("POST", "/api/v1/stacks", b'{"name": "a", "createTime": "2024-01-01T00:00:00Z", "owner": "x"}'),
    INVALID,
    "UNKNOWN_FIELD",
    ("stack.owner",),
)
case(
    "rest/name-is-a-number",
    Rest("POST", "/api/v1/stacks", b'{"name": 5}'),
    INVALID,
    "INVALID_FIELD",
    ("stack.name",),
)
case(
    "rest/name-is-nan",
    Rest("POST", "/api/v1/stacks", b'{"name": NaN}'),
    INVALID,
    "INVALID_FIELD",
    ("stack.name",),
)
case(
    "rest/name-is-a-boolean",
    Rest("POST", "/api/v1/stacks", b'{"name": true}'),
    INVALID,
    "INVALID_FIELD",
    ("stack.name",),
)
case(
    "rest/name-is-an-object",
    Rest("POST", "/api/v1/stacks", b'{"name": {"first": "a"}}'),
    INVALID,
    "INVALID_FIELD",
    ("stack.name",),
)
case(
    "rest/labels-is-a-list",
    Rest("POST", "/api/v1/stacks", b'{"name": "a", "labels": ["x"]}'),
    INVALID,
    "INVALID_FIELD",
    ("stack.labels",),
)
case(
    "rest/label-value-is-a-number",
    Rest("POST", "/api/v1/stacks", b'{"name": "a", "labels": {"replicas": 3}}'),
    INVALID,
    "INVALID_FIELD",
    ("stack.labels.replicas",),
)
case("rest/body-is-an-array", Rest("POST", "/api/v1/stacks", b"[]"), INVALID, "INVALID_FIELD", ("stack",))
case(
    "rest/body-is-a-string", Rest("POST", "/api/v1/stacks", b'"my-app"'), INVALID, "INVALID_FIELD", ("stack",)
)
case("rest/body-is-null", Rest("POST", "/api/v1/stacks", b"null"), INVALID, "FIELD_REQUIRED", ("stack.name",))
case(
    "rest/yaml-content-is-a-number",
    Rest("POST", "/api/v1/stacks/{stack}/deployment-objects", b'{"yamlContent": 42}'),
    INVALID,
    "INVALID_FIELD",
    ("deployment_object.yamlContent",),
)
case(
    "rest/yaml-with-escaped-nul",
    Rest("POST", "/api/v1/stacks/{stack}/deployment-objects", b'{"yaml_content": "kind: A\\u0000"}'),
    INVALID,
    "INVALID_YAML",
    (YAML_FIELD,),
)
case(
    "rest/stack-id-is-a-boolean",
    Rest("POST", "/api/v1/agents/{agent}/targets", lambda w: json.dumps({"stackId": True}).encode()),
    INVALID,
    "INVALID_FIELD",
    ("stackId",),
)
case(
    "rest/template-parameters-not-an-object",
    Rest(
        "POST",
        "/api/v1/stacks/{stack}/deployment-objects/from-template",
        lambda w: json.dumps({"templateId": w.template_id, "parameters": [1]}).encode(),
    ),
    INVALID,
    "INVALID_BODY",
)
case(
    "rest/template-parameters-nested-too-deeply",
    Rest(
        "POST",
        "/api/v1/stacks/{stack}/deployment-objects/from-template",
        lambda w: (
            b'{"templateId": "'
            + w.template_id.encode()
            + b'", "parameters": {"name": '
            + b'{"a": ' * 900
            + b"1"
            + b"}" * 900
            + b"}}"
        ),
    ),
    INVALID,
    "INVALID_BODY",
)
case(
    "rest/template-parameter-violates-schema",
    Rest(
        "POST",
        "/api/v1/stacks/{stack}/deployment-objects/from-template",
        lambda w: json.dumps(
            {"templateId": w.template_id, "parameters": {"name": "web", "replicas": 11}}
        ).encode(),
    ),
    INVALID,
    PARAMETER,
    ("parameters.replicas",),
)
case("rest/body-on-a-get", Rest("GET", "/api/v1/stacks", b'{"pageSize": 1}'), INVALID, "UNEXPECTED_BODY")
case(
    "rest/not-json-content-type",
    Rest("POST", "/api/v1/stacks", b"name=my-app", content_type="text/plain"),
    INVALID,
    "UNSUPPORTED_MEDIA_TYPE",
    http_status=415,
)
case(
    "rest/body-over-the-size-limit",
    Rest("POST", "/api/v1/stacks", b'{"description": "' + b"x" * MAX_REST_BODY_BYTES + b'"}'),
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    "REQUEST_TOO_LARGE",
    http_status=413,
)
case(
    "rest/unknown-query-parameter",
    Rest("GET", "/api/v1/stacks?colour=red"),
    INVALID,
    "UNKNOWN_FIELD",
    ("colour",),
)
case(
    "rest/page-size-not-a-number",
    Rest("GET", "/api/v1/stacks?pageSize=ten"),
    INVALID,
    "INVALID_FIELD",
    ("pageSize",),
)
case(
    "rest/page-size-out-of-range",
    Rest("GET", "/api/v1/stacks?pageSize=99999999999"),
    INVALID,
    "INVALID_FIELD",
    ("pageSize",),
)
case(
    "rest/page-size-negative",
    Rest("GET", "/api/v1/stacks?pageSize=-3"),
    INVALID,
    "INVALID_PAGE_SIZE",
    ("page_size",),
)
case(
    "rest/page-size-twice",
    Rest("GET", "/api/v1/stacks?pageSize=1&pageSize=2"),
    INVALID,
    "INVALID_FIELD",
    ("pageSize",),
)
case(
    "rest/page-size-spelled-twice",
    Rest("GET", "/api/v1/stacks?page_size=1&pageSize=2"),
    INVALID,
    "INVALID_FIELD",
    ("pageSize",),
)
case(
    "rest/show-deleted-not-a-boolean",
    Rest("GET", "/api/v1/stacks?showDeleted=maybe"),
    INVALID,
    "INVALID_FIELD",
    ("showDeleted",),
)
case(
    "rest/garbage-page-token",
    Rest("GET", "/api/v1/stacks?pageToken=%00%FF"),
    INVALID,
    "INVALID_PAGE_TOKEN",
    TOKEN,
)
case(
    "rest/path-variable-in-query",
    Rest("GET", "/api/v1/stacks/{stack}?id=other"),
    INVALID,
    "INVALID_FIELD",
    ("id",),
)
case("rest/path-id-not-a-uuid", Rest("GET", "/api/v1/stacks/not-a-uuid"), INVALID, "INVALID_UUID", ("id",))
case("rest/path-id-encoded-nul", Rest("GET", "/api/v1/stacks/%00"), INVALID, "INVALID_UUID", ("id",))
case("rest/path-id-invalid-utf8", Rest("GET", "/api/v1/stacks/%FF%FE"), INVALID, "INVALID_UUID", ("id",))
case("rest/path-id-encoded-slash", Rest("GET", "/api/v1/stacks/a%2Fb"), INVALID, "INVALID_UUID", ("id",))
case("rest/unknown-route", Rest("GET", "/api/v1/stackz"), grpc.StatusCode.NOT_FOUND, "ROUTE_NOT_FOUND")
case(
    "rest/wrong-verb",
    Rest("PUT", "/api/v1/stacks"),
    grpc.StatusCode.UNIMPLEMENTED,
    "METHOD_NOT_ALLOWED",
    http_status=405,
)
case(
    "rest/update-mask-unknown",
    Rest("PATCH", "/api/v1/stacks/{stack}?updateMask=colour", b'{"description": "d"}'),
    INVALID,
    "INVALID_UPDATE_MASK",
    MASK,
)
case(
    "rest/update-mask-immutable",
    Rest("PATCH", "/api/v1/stacks/{stack}?updateMask=generator_id", b'{"generatorId": "x"}'),
    INVALID,
    "INVALID_UPDATE_MASK",
    MASK,
)
case(
    "rest/patch-id-in-body-and-path",
    Rest("PATCH", "/api/v1/stacks/not-a-uuid", b'{"description": "d"}'),
    INVALID,
    "INVALID_UUID",
    ("stack.id",),
)
case(
    "rest/create-agent-wrong-enum",
    Rest("POST", "/api/v1/agents", b'{"name": "edge-9", "clusterName": "c", "status": "SLEEPING"}'),
    INVALID,
    "INVALID_FIELD",
    ("agent.status",),
)

# The servicers' refusals look the same through the shim: same reason, same proto field paths.


def rest_yaml(name: str, text: str, reason: str) -> None:
    body = json.dumps({"yamlContent": text}).encode()
    case(
        f"rest/yaml-{name}",
        Rest("POST", "/api/v1/stacks/{stack}/deployment-objects", body),
        INVALID,
        reason,
        (YAML_FIELD,),
    )


rest_yaml("billion-laughs", BILLION_LAUGHS, "UNSUPPORTED_YAML")
rest_yaml("deep-nesting", "[" * 1000 + "]" * 1000, "UNSUPPORTED_YAML")
rest_yaml("python-tag", "x: !!python/object/apply:os.system ['true']\n", "UNSUPPORTED_YAML")
rest_yaml("too-large", "data: " + "x" * MAX_DEPLOYMENT_OBJECT_BYTES, "DEPLOYMENT_OBJECT_TOO_LARGE")
rest_yaml("not-an-object", "- a\n- b\n", "INVALID_MANIFEST")
rest_yaml(
    "duplicate", CONFIGMAP.format(name="a") + "---\n" + CONFIGMAP.format(name="a"), "DUPLICATE_RESOURCE"
)
case(
    "rest/label-key-bad",
    Rest("POST", "/api/v1/stacks", b'{"name": "s", "labels": {"a b": "c"}}'),
    INVALID,
    "INVALID_LABEL_KEY",
    ('stack.labels["a b"]',),
)
case(
    "rest/annotations-too-large",
    Rest("POST", "/api/v1/stacks", json.dumps({"name": "s", "annotations": {"a": "x" * 300_000}}).encode()),
    INVALID,
    "ANNOTATIONS_TOO_LARGE",
    ("stack.annotations",),
)
case(
    "rest/agent-name-bad",
    Rest("POST", "/api/v1/agents", b'{"name": "Edge One", "clusterName": "edge"}'),
    INVALID,
    "INVALID_DNS_LABEL",
    ("agent.name",),
)
case(
    "rest/agent-update-mask-output-only",
    Rest("PATCH", "/api/v1/agents/{agent}?updateMask=lastHeartbeatTime", b"{}"),
    INVALID,
    "INVALID_UPDATE_MASK",
    MASK,
)
case(
    "rest/deployment-object-id-bad",
    Rest("GET", "/api/v1/deployment-objects/12"),
    INVALID,
    "INVALID_UUID",
    ("id",),
)
case(
    "rest/delete-stack-id-bad", Rest("DELETE", "/api/v1/stacks/not-a-uuid"), INVALID, "INVALID_UUID", ("id",)
)
case(
    "rest/target-stack-id-bad",
    Rest("POST", "/api/v1/agents/{agent}/targets", b'{"stackId": "web"}'),
    INVALID,
    "INVALID_UUID",
    ("stack_id",),
)
case(
    "rest/template-syntax-error",
    Rest("POST", "/api/v1/templates", b'{"name": "t", "content": "{% if %}"}'),
    INVALID,
    "INVALID_TEMPLATE",
    ("template.content",),
)
case(
    "rest/request-id-reused",
    Rest("POST", "/api/v1/stacks?requestId={reused_request_id}", b'{"name": "different"}'),
    grpc.StatusCode.ALREADY_EXISTS,
    "REQUEST_ID_REUSED",
)
