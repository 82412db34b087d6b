"""What the REST shim tests forward to: small in-memory gRPC servicers, and a test-only proto.

The fakes behave like the real servicers where the shim can tell: they authenticate the
`authorization` metadata, and they fail with rich `google.rpc.Status` details made by the same
`brokkr_common.rpc_status` mapping the broker's edge uses. The test-only `ProbeService` covers
what Brokkr's own protos do not (yet): server streaming, enums, repeated and nested query
parameters, well-known types, oneofs, unannotated streaming methods.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.descriptor import FileDescriptor
from grpc_status import rpc_status as grpc_rpc_status

from brokkr_common import errors, rpc_status
from brokkr_common.pb.brokkr.v1 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    stack_pb2,
    stack_service_pb2,
    stack_service_pb2_grpc,
    target_pb2,
    target_service_pb2,
    target_service_pb2_grpc,
)

ADMIN_KEY = "brokkr_admin0000_secretsecretsecretsecret"
GENERATOR_KEY = "brokkr_gen00000_secretsecretsecretsecret"

PROBE_PROTO = """
syntax = "proto3";

package brokkrtest.v1;

import "google/api/annotations.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";

// Exercises the shim where Brokkr's own protos do not.
service ProbeService {
  // Answers with the request exactly as the servicer received it.
  rpc Echo(EchoRequest) returns (EchoResponse) {
    option (google.api.http) = {
      get: "/test/v1/echo"
      additional_bindings {post: "/test/v1/echo" body: "*"}
      additional_bindings {get: "/test/v1/topics/{topic=*}/echo"}
      additional_bindings {put: "/test/v1/topics/{topic}/filter" body: "filter" response_body: "request"}
    };
  }
  // Sends `count` events, then ends with `fail_with` if set.
  rpc Watch(WatchRequest) returns (stream Event) {
    option (google.api.http) = {get: "/test/v1/watch"};
  }
  // Client streaming: not exposed over HTTP.
  rpc Upload(stream Event) returns (EchoResponse);
  // Bidirectional streaming: not exposed over HTTP.
  rpc Chat(stream Event) returns (stream Event);
}

// How bad something is.
enum Severity {
  // Not set.
  SEVERITY_UNSPECIFIED = 0;
  // Worth knowing.
  SEVERITY_INFO = 1;
  // Worth acting on.
  SEVERITY_WARNING = 2;
}

message Filter {
  repeated string kinds = 1;
  bool include_deleted = 2;
  Severity min_severity = 3;
}

message EchoRequest {
  string topic = 1;
  int32 limit = 2;
  bool verbose = 3;
  Severity severity = 4;
  repeated Severity severities = 5;
  Filter filter = 6;
  google.protobuf.Timestamp since = 7;
  google.protobuf.FieldMask mask = 8;
  google.protobuf.Duration timeout = 9;
  map<string, string> labels = 10;
  google.protobuf.Struct attributes = 11;
  int64 big = 12;
  // A google.rpc.Code to fail with.
  int32 fail_with = 13;
  oneof choice {
    string left = 14;
    string right = 15;
  }
  repeated Filter filters = 16;
}

message EchoResponse {
  EchoRequest request = 1;
  // The call's metadata as "key=value", sorted, but for what every gRPC client sends.
  repeated string metadata = 2;
}

message WatchRequest {
  int32 count = 1;
  // A google.rpc.Code to end the stream with, after `count` events.
  int32 fail_with = 2;
  // Keep the stream open after `count` events, until the call is cancelled.
  bool follow = 3;
}

message Event {
  int32 sequence = 1;
  string text = 2;
}
"""

#: Metadata every gRPC client sends by itself.
_TRANSPORT_KEYS = ("user-agent",)


@dataclass(frozen=True)
class CompiledProto:
    """A proto compiled at test time into its own descriptor pool."""

    file: FileDescriptor
    source_info: descriptor_pb2.FileDescriptorSet

    def message_class(self, name: str) -> Any:
        return message_factory.GetMessageClass(self.file.message_types_by_name[name])


def compile_proto(directory: Path, name: str, source: str) -> CompiledProto:
    """Compile `source` with grpc_tools' protoc (imports and comments included) into a fresh pool."""
    proto = directory / name
    proto.write_text(source)
    output = directory / f"{proto.stem}.binpb"
    site = Path(grpc.__file__).parent.parent  # googleapis-common-protos ships google/api/*.proto here
    protoc = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{directory}", f"-I{site}", f"-I{site / 'grpc_tools' / '_proto'}",
        "--include_imports", "--include_source_info", f"--descriptor_set_out={output}", str(proto),
    ]  # fmt: skip
    subprocess.run(protoc, check=True, capture_output=True, timeout=60)
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(output.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_set.file:  # dependencies come first
        pool.Add(file)
    return CompiledProto(pool.FindFileByName(name), descriptor_set)


def _received(context: grpc.aio.ServicerContext) -> list[str]:
    return sorted(
        f"{key}={value}" for key, value in context.invocation_metadata() or () if key not in _TRANSPORT_KEYS
    )


async def _fail(context: grpc.aio.ServicerContext, code: int, message: str, extra_detail: Any) -> None:
    """Abort with a rich status: ErrorInfo and RetryInfo as the broker sends them, plus a detail
    of a type only the test's descriptor pool knows."""
    error = errors.BrokkrError(message, reason="PROBE_FAILURE", metadata={"code": str(code)},
                               retry_after_seconds=2.5)  # fmt: skip
    error.code = code
    status = rpc_status.to_status(error)
    status.details.add().Pack(extra_detail)
    await context.abort_with_status(grpc_rpc_status.to_status(status))


class ProbeServicer:
    """The test-only ProbeService, served through the generic handler API."""

    def __init__(self, proto: CompiledProto) -> None:
        self._echo_response = proto.message_class("EchoResponse")
        self._event = proto.message_class("Event")
        self._proto = proto
        #: Set when a following Watch is cancelled, e.g. because its HTTP client went away.
        self.watch_cancelled = asyncio.Event()

    def handler(self) -> grpc.GenericRpcHandler:
        request = self._proto.message_class
        return grpc.method_handlers_generic_handler(
            "brokkrtest.v1.ProbeService",
            {
                "Echo": grpc.unary_unary_rpc_method_handler(
                    self.echo, request_deserializer=request("EchoRequest").FromString,
                    response_serializer=self._echo_response.SerializeToString,
                ),
                "Watch": grpc.unary_stream_rpc_method_handler(
                    self.watch, request_deserializer=request("WatchRequest").FromString,
                    response_serializer=self._event.SerializeToString,
                ),
            },
        )  # fmt: skip

    async def echo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.fail_with:
            await _fail(context, request.fail_with, f"failing with code {request.fail_with} as asked",
                        self._event(text="extra"))  # fmt: skip
        return self._echo_response(request=request, metadata=_received(context))

    async def watch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        for sequence in range(1, request.count + 1):
            yield self._event(sequence=sequence, text=f"event {sequence}")
        if request.fail_with:
            await _fail(context, request.fail_with, "the watch broke", self._event(text="extra"))
        if request.follow:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.watch_cancelled.set()
                raise


def _authenticate(context: grpc.aio.ServicerContext) -> str:
    """The caller's role from its `authorization` metadata, as the broker's interceptor decides it."""
    authorization = dict(context.invocation_metadata() or ()).get("authorization")
    roles = {f"Bearer {ADMIN_KEY}": "admin", f"Bearer {GENERATOR_KEY}": "generator"}
    if authorization not in roles:
        raise errors.Unauthenticated("a valid key is required: Authorization: Bearer <key>")
    return roles[authorization]


def _rich_errors(method: Any) -> Any:
    """Turn a raised BrokkrError into the rich status the broker's edge would send."""

    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except errors.BrokkrError as error:
            await context.abort_with_status(rpc_status.to_grpc_status(error))

    return wrapper


@dataclass
class FakeStacks(stack_service_pb2_grpc.StackServiceServicer):
    """StackService over a dict. ListStackAgents fails with a plain status, without details."""

    stacks: dict[str, stack_pb2.Stack] = field(default_factory=dict)
    calls: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)

    def _record(self, name: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        _authenticate(context)
        self.calls.append((name, request, dict(context.invocation_metadata() or ())))

    def _live(self, ident: str) -> stack_pb2.Stack:
        stack = self.stacks.get(ident)
        if stack is None:
            raise errors.not_found("stack", ident)
        return stack

    @_rich_errors
    async def CreateStack(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("CreateStack", request, context)
        if not request.stack.name:
            raise errors.InvalidArgument.for_field("stack.name", "is required", reason="REQUIRED_FIELD")
        if any(stack.name == request.stack.name for stack in self.stacks.values()):
            raise errors.AlreadyExists(f"stack {request.stack.name!r} exists", reason="STACK_EXISTS")
        stack = stack_pb2.Stack()
        stack.CopyFrom(request.stack)
        stack.id = str(uuid.uuid4())
        stack.create_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1_700_000_000))
        self.stacks[stack.id] = stack
        return stack_service_pb2.CreateStackResponse(stack=stack)

    @_rich_errors
    async def GetStack(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("GetStack", request, context)
        return stack_service_pb2.GetStackResponse(stack=self._live(request.id))

    @_rich_errors
    async def ListStacks(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("ListStacks", request, context)
        key, _, value = request.label_selector.partition("=")
        stacks = [
            stack
            for stack in sorted(self.stacks.values(), key=lambda stack: stack.name)
            if (request.show_deleted or not stack.HasField("delete_time"))
            and (not key or stack.labels.get(key) == value)
        ]
        start = int(request.page_token or 0)
        end = start + (request.page_size or 50)
        return stack_service_pb2.ListStacksResponse(
            stacks=stacks[start:end], next_page_token=str(end) if end < len(stacks) else ""
        )

    @_rich_errors
    async def UpdateStack(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("UpdateStack", request, context)
        stack = self._live(request.stack.id)
        for path in request.update_mask.paths:
            if path not in ("name", "description", "labels", "annotations"):
                raise errors.InvalidArgument.for_field("update_mask", f"{path!r} cannot be updated")
            stack.ClearField(path)
            if path in ("labels", "annotations"):
                getattr(stack, path).update(getattr(request.stack, path))
            else:
                setattr(stack, path, getattr(request.stack, path))
        return stack_service_pb2.UpdateStackResponse(stack=stack)

    @_rich_errors
    async def DeleteStack(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("DeleteStack", request, context)
        stack = self._live(request.id)
        stack.delete_time.CopyFrom(timestamp_pb2.Timestamp(seconds=1_800_000_000))
        return stack_service_pb2.DeleteStackResponse(stack=stack)

    async def ListStackAgents(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake does not list a stack's agents")


class FakeAuth(auth_service_pb2_grpc.AuthServiceServicer):
    """AuthService: who the key belongs to; admin-only key rotation."""

    @_rich_errors
    async def WhoAmI(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        role = _authenticate(context)
        if role == "admin":
            return auth_service_pb2.WhoAmIResponse(role=auth_service_pb2.ROLE_ADMIN, principal_name="admin")
        return auth_service_pb2.WhoAmIResponse(
            role=auth_service_pb2.ROLE_GENERATOR, principal_id="g-1", principal_name="ci"
        )

    @_rich_errors
    async def RotateAdminKey(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if _authenticate(context) != "admin":
            raise errors.PermissionDenied("only the admin may rotate the admin key")
        return auth_service_pb2.RotateAdminKeyResponse(key="brokkr_admin0001_rotatedrotatedrotated")


class FakeTargets(target_service_pb2_grpc.TargetServiceServicer):
    """TargetService.ListTargets only: one target, for whichever side the request names."""

    @_rich_errors
    async def ListTargets(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        _authenticate(context)
        target = target_pb2.Target(
            agent_id=request.agent_id or "agent-1", stack_id=request.stack_id or "stack-1"
        )
        return target_service_pb2.ListTargetsResponse(targets=[target])
