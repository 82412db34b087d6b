"""The route table: every `google.api.http` binding of the served gRPC methods, read from their
descriptors at start-up, and the lookup from an HTTP verb and path to one of them.

Nothing here is listed by hand: a service added to the proto (and to the descriptors the broker
passes in) is reachable over HTTP on the next start. Annotations the shim cannot honour (custom
verbs, wildcard templates, client or bidirectional streaming, fields that do not exist, two
methods on one route) raise `UnsupportedAnnotation` here, at start-up.

Where several templates match a path, the one with a literal segment where the others have a
variable wins, comparing left to right; a path that matches but not for the request's verb is a
405 listing the verbs that would work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor, MethodDescriptor
from google.rpc import code_pb2

from broker.rest.statuses import HttpRefusal
from broker.rest.templates import PathTemplate, UnsupportedAnnotation, Variable, split_path
from brokkr_common import errors

_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Binding:
    """One HTTP route of one gRPC method.

    `body` is "" (no body), "*" (the body is the whole request) or the name of the top-level
    request field the body fills; `response_body` is "" (the whole response) or the name of the
    top-level response field that becomes the HTTP body.
    """

    method: MethodDescriptor
    verb: str
    template: PathTemplate
    body: str
    response_body: str

    @property
    def grpc_path(self) -> str:
        """The method's path on the gRPC channel, e.g. `/brokkr.v1.StackService/CreateStack`."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        return self.method.server_streaming


@dataclass(frozen=True)
class RouteMatch:
    """A resolved request: its binding and the decoded path variables by field path."""

    binding: Binding
    path_params: Mapping[str, str]


class RouteTable:
    """All bindings, indexed by path length and ordered by precedence for lookup."""

    def __init__(self, bindings: Iterable[Binding]) -> None:
        self.bindings = tuple(bindings)
        self._by_length: dict[int, list[Binding]] = defaultdict(list)
        claimed: dict[tuple[str, tuple[str | None, ...]], Binding] = {}
        for binding in self.bindings:
            route = (binding.verb, binding.template.shape)
            if route in claimed:
                raise UnsupportedAnnotation(
                    f"{binding.method.full_name}: {binding.verb} {binding.template.text} is already "
                    f"routed to {claimed[route].method.full_name}"
                )
            claimed[route] = binding
            self._by_length[len(binding.template.segments)].append(binding)
        for candidates in self._by_length.values():
            candidates.sort(key=lambda binding: binding.template.precedence)

    def resolve(self, verb: str, raw_path: str) -> RouteMatch:
        """The binding for a request; NotFound for an unknown path, a 405 refusal for a wrong verb."""
        segments = split_path(raw_path)
        allowed: list[str] = []
        for binding in self._by_length.get(len(segments), ()):
            path_params = binding.template.match(segments)
            if path_params is None:
                continue
            if binding.verb == verb:
                return RouteMatch(binding, path_params)
            allowed.append(binding.verb)
        if not allowed:
            raise errors.NotFound(
                f"no route for {raw_path}", reason="ROUTE_NOT_FOUND", metadata={"path": raw_path}
            )
        raise HttpRefusal(
            405,
            code_pb2.UNIMPLEMENTED,
            f"{verb} is not allowed on {raw_path}",
            reason="METHOD_NOT_ALLOWED",
            headers={"Allow": ", ".join(sorted(set(allowed)))},
        )


def build_routes(file_descriptors: Iterable[FileDescriptor]) -> RouteTable:
    """The route table of every http-annotated method of every service in `file_descriptors`.

    Methods without an annotation are not exposed over HTTP.
    """
    return RouteTable(
        binding
        for file in file_descriptors
        for service in file.services_by_name.values()
        for method in service.methods
        for binding in _bindings_of(method)
    )


def _bindings_of(method: MethodDescriptor) -> list[Binding]:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    if method.client_streaming:
        raise UnsupportedAnnotation(
            f"{method.full_name}: client- and bidirectional-streaming methods cannot be served over HTTP"
        )
    rule = options.Extensions[annotations_pb2.http]
    bindings = [_binding(method, rule)]
    for additional in rule.additional_bindings:
        if additional.additional_bindings:
            raise UnsupportedAnnotation(f"{method.full_name}: additional bindings cannot nest")
        bindings.append(_binding(method, additional))
    return bindings


def _binding(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Binding:
    kind = rule.WhichOneof("pattern")
    if kind not in _VERBS:
        raise UnsupportedAnnotation(f"{method.full_name}: HTTP pattern {kind!r} is not supported")
    try:
        template = PathTemplate.parse(getattr(rule, kind))
    except UnsupportedAnnotation as error:
        raise UnsupportedAnnotation(f"{method.full_name}: {error}") from error
    for variable in template.variables:
        _check_path_variable(method, variable)
    if rule.body not in ("", "*"):
        _top_level_field(method, method.input_type, rule.body, "body")
    if rule.response_body:
        _top_level_field(method, method.output_type, rule.response_body, "response_body")
    return Binding(method, kind.upper(), template, rule.body, rule.response_body)


def _check_path_variable(method: MethodDescriptor, variable: Variable) -> None:
    message: Descriptor | None = method.input_type
    field: FieldDescriptor | None = None
    for name in variable.field_path:
        field = message.fields_by_name.get(name) if message is not None else None
        if field is None or field.is_repeated:
            raise UnsupportedAnnotation(
                f"{method.full_name}: path variable {variable.name!r} is not a singular request field"
            )
        message = field.message_type
    if message is not None:
        raise UnsupportedAnnotation(
            f"{method.full_name}: path variable {variable.name!r} must name a scalar field, not a message"
        )


def _top_level_field(method: MethodDescriptor, message: Descriptor, name: str, option: str) -> None:
    if name not in message.fields_by_name:
        raise UnsupportedAnnotation(
            f"{method.full_name}: {option} {name!r} is not a field of {message.full_name}"
        )
