"""brokkr.v1.TemplateService: validate -> service -> convert.

Parameters and parameters schemas travel as `google.protobuf.Struct`, whose numbers are doubles.
JSON has one number type, so a whole number arriving as 2.0 is read back as the integer 2: the
template then renders `replicas: 2`, not `replicas: 2.0`, and `"type": "integer"` holds. NaN and
infinities (which gRPC clients can send, JSON cannot) are refused with the path of the value.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import grpc
from google.protobuf import struct_pb2

from broker.api import convert
from broker.api.masks import changes_from_mask
from broker.context import current_principal
from broker.domain.ports import UnitOfWorkFactory
from broker.domain.validation import Violations
from broker.services import templates
from brokkr_common.pb.brokkr.v1 import template_service_pb2 as pb
from brokkr_common.pb.brokkr.v1 import template_service_pb2_grpc

#: Doubles represent every integer up to this exactly; larger whole numbers stay floats.
_EXACT_INTEGERS = 2**53
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _value(value: struct_pb2.Value, path: str, violations: Violations) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _struct(value.struct_value, path, violations)
    if kind == "list_value":
        return [
            _value(item, f"{path}[{index}]", violations) for index, item in enumerate(value.list_value.values)
        ]
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            violations.add(path, f"must be a finite number (got {number})", "INVALID_PARAMETER")
            return None
        return int(number) if number.is_integer() and abs(number) <= _EXACT_INTEGERS else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None  # null_value, or a Value with nothing set


def _struct(message: struct_pb2.Struct, path: str, violations: Violations) -> dict[str, Any]:
    return {key: _value(item, path + _step(key), violations) for key, item in message.fields.items()}


def _step(key: str) -> str:
    """`.name` for identifier keys, `["odd key"]` for the others, as the schema violations spell paths."""
    return f".{key}" if _IDENTIFIER.fullmatch(key) else f"[{json.dumps(key, ensure_ascii=False)}]"


def from_struct(message: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """A Struct as JSON values, whole numbers as ints; INVALID_ARGUMENT naming any non-finite number."""
    violations = Violations()
    value = _struct(message, field, violations)
    violations.raise_if_any()
    return value


_UPDATABLE = {
    "description": lambda t: t.description,
    "content": lambda t: t.content,
    "parameters_schema": lambda t: from_struct(t.parameters_schema, "template.parameters_schema"),
    "labels": lambda t: dict(t.labels),
    "annotations": lambda t: dict(t.annotations),
}


class TemplateServicer(template_service_pb2_grpc.TemplateServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory, *, max_bytes: int) -> None:
        self._uow = uow
        self._max_bytes = max_bytes

    async def CreateTemplate(
        self, request: pb.CreateTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateTemplateResponse:
        template = request.template
        created = await templates.create_template(
            self._uow(),
            current_principal(),
            name=template.name,
            description=template.description,
            generator_id=template.generator_id or None,
            content=template.content,
            parameters_schema=from_struct(template.parameters_schema, "template.parameters_schema"),
            labels=dict(template.labels),
            annotations=dict(template.annotations),
            request_id=request.request_id or None,
        )
        return pb.CreateTemplateResponse(template=convert.template(created))

    async def GetTemplate(
        self, request: pb.GetTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTemplateResponse:
        found = await templates.get_template(self._uow(), current_principal(), request.id, request.version)
        return pb.GetTemplateResponse(template=convert.template(found))

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTemplatesResponse:
        page = await templates.list_templates(
            self._uow(),
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            name=request.name,
            generator_id=request.generator_id or None,
            show_deleted=request.show_deleted,
        )
        return pb.ListTemplatesResponse(
            templates=[convert.template(t) for t in page.items], next_page_token=page.next_page_token
        )

    async def UpdateTemplate(
        self, request: pb.UpdateTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateTemplateResponse:
        changes = changes_from_mask(request.template, request.update_mask, _UPDATABLE, field="template")
        updated = await templates.update_template(
            self._uow(), current_principal(), request.template.id, changes
        )
        return pb.UpdateTemplateResponse(template=convert.template(updated))

    async def DeleteTemplate(
        self, request: pb.DeleteTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteTemplateResponse:
        deleted = await templates.delete_template(self._uow(), current_principal(), request.id)
        return pb.DeleteTemplateResponse(template=convert.template(deleted))

    async def ListTemplateVersions(
        self, request: pb.ListTemplateVersionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTemplateVersionsResponse:
        page = await templates.list_template_versions(
            self._uow(),
            current_principal(),
            request.id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListTemplateVersionsResponse(
            templates=[convert.template(t) for t in page.items], next_page_token=page.next_page_token
        )

    async def InstantiateTemplate(
        self, request: pb.InstantiateTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.InstantiateTemplateResponse:
        created = await templates.instantiate_template(
            self._uow(),
            current_principal(),
            stack_id=request.stack_id,
            template_id=request.template_id,
            template_version=request.template_version,
            parameters=from_struct(request.parameters, "parameters"),
            dry_run=request.dry_run,
            request_id=request.request_id or None,
            max_bytes=self._max_bytes,
        )
        return pb.InstantiateTemplateResponse(deployment_object=convert.deployment_object(created, full=True))
