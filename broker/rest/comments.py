"""The comments of the proto files, by the full name of what they describe, for the OpenAPI document.

Generated Python modules drop source info, so the comments come from a descriptor set compiled
with `--include_source_info`: `proto/generate.py` writes Brokkr's next to the generated code.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from google.protobuf import descriptor_pb2

#: Field numbers of the descriptor messages, the steps of a `SourceCodeInfo.Location.path`.
_FILE_MESSAGES, _FILE_ENUMS, _FILE_SERVICES = 4, 5, 6
_MESSAGE_FIELDS, _MESSAGE_MESSAGES, _MESSAGE_ENUMS = 2, 3, 4
_ENUM_VALUES = 2
_SERVICE_METHODS = 2

_PACKAGED_SET = ("brokkr_common.pb", "brokkr_v1.binpb")


def brokkr_source_info() -> descriptor_pb2.FileDescriptorSet:
    """Brokkr's API as a descriptor set with source info, as generated into brokkr_common/pb."""
    package, name = _PACKAGED_SET
    return descriptor_pb2.FileDescriptorSet.FromString(resources.files(package).joinpath(name).read_bytes())


def comments_by_name(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Leading comments (else trailing ones) keyed by full name: `brokkr.v1.Stack.name`,
    `brokkr.v1.StackService.CreateStack`, `brokkr.v1.AgentStatus.AGENT_STATUS_ACTIVE` (enum values
    under their enum, unlike protobuf's own scoping)."""
    comments: dict[str, str] = {}
    for file in files:
        names = _names_by_path(file)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            text = _clean(location.leading_comments or location.trailing_comments)
            if name is not None and text:
                comments[name] = text
    return comments


def _names_by_path(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    prefix = f"{file.package}." if file.package else ""
    names: dict[tuple[int, ...], str] = {}
    for index, message in enumerate(file.message_type):
        _add_message(names, (_FILE_MESSAGES, index), prefix + message.name, message)
    for index, enum in enumerate(file.enum_type):
        _add_enum(names, (_FILE_ENUMS, index), prefix + enum.name, enum)
    for index, service in enumerate(file.service):
        path = (_FILE_SERVICES, index)
        names[path] = prefix + service.name
        for method_index, method in enumerate(service.method):
            names[(*path, _SERVICE_METHODS, method_index)] = f"{prefix}{service.name}.{method.name}"
    return names


def _add_message(
    names: dict[tuple[int, ...], str],
    path: tuple[int, ...],
    name: str,
    message: descriptor_pb2.DescriptorProto,
) -> None:
    names[path] = name
    for index, field in enumerate(message.field):
        names[(*path, _MESSAGE_FIELDS, index)] = f"{name}.{field.name}"
    for index, nested in enumerate(message.nested_type):
        _add_message(names, (*path, _MESSAGE_MESSAGES, index), f"{name}.{nested.name}", nested)
    for index, enum in enumerate(message.enum_type):
        _add_enum(names, (*path, _MESSAGE_ENUMS, index), f"{name}.{enum.name}", enum)


def _add_enum(
    names: dict[tuple[int, ...], str],
    path: tuple[int, ...],
    name: str,
    enum: descriptor_pb2.EnumDescriptorProto,
) -> None:
    names[path] = name
    for index, value in enumerate(enum.value):
        names[(*path, _ENUM_VALUES, index)] = f"{name}.{value.name}"


def _clean(comment: str) -> str:
    """Comment text without the single space `//` comments start with, and without trailing blanks."""
    lines = [line.removeprefix(" ").rstrip() for line in comment.strip("\n").split("\n")]
    return "\n".join(lines).strip()
