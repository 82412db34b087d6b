"""Domain objects to protobuf messages, in one place. Servicers never build messages by hand."""

from __future__ import annotations

import json
from datetime import datetime

from google.protobuf import struct_pb2, timestamp_pb2

from broker.domain import model
from broker.domain.templates import Template
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    auth_service_pb2,
    deployment_object_pb2,
    generator_pb2,
    stack_pb2,
    target_pb2,
    template_pb2,
)

_AGENT_STATUS = {
    model.AgentStatus.ACTIVE: agent_pb2.AGENT_STATUS_ACTIVE,
    model.AgentStatus.INACTIVE: agent_pb2.AGENT_STATUS_INACTIVE,
}
_CONNECTION_STATE = {
    model.ConnectionState.NEVER_CONNECTED: agent_pb2.CONNECTION_STATE_UNSPECIFIED,
    model.ConnectionState.CONNECTED: agent_pb2.CONNECTION_STATE_CONNECTED,
    model.ConnectionState.DISCONNECTED: agent_pb2.CONNECTION_STATE_DISCONNECTED,
}
ROLES = {
    model.Role.ADMIN: auth_service_pb2.ROLE_ADMIN,
    model.Role.GENERATOR: auth_service_pb2.ROLE_GENERATOR,
    model.Role.AGENT: auth_service_pb2.ROLE_AGENT,
}


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def agent_status_from_proto(value: int) -> model.AgentStatus | None:
    """None for UNSPECIFIED; unknown numbers are the caller's to reject."""
    for status, number in _AGENT_STATUS.items():
        if number == value:
            return status
    return None


def agent(value: model.Agent) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        id=value.id,
        name=value.name,
        cluster_name=value.cluster_name,
        labels=dict(value.labels),
        annotations=dict(value.annotations),
        status=_AGENT_STATUS[value.status],
        connection_state=_CONNECTION_STATE[value.connection_state],
        last_heartbeat_time=timestamp(value.last_heartbeat_at),
        kubernetes_reachable=value.kubernetes_reachable,
        create_time=timestamp(value.created_at),
        update_time=timestamp(value.updated_at),
        delete_time=timestamp(value.deleted_at),
    )


def generator(value: model.Generator) -> generator_pb2.Generator:
    return generator_pb2.Generator(
        id=value.id,
        name=value.name,
        description=value.description,
        create_time=timestamp(value.created_at),
        update_time=timestamp(value.updated_at),
        delete_time=timestamp(value.deleted_at),
    )


def deployment_object_ref(value: model.DeploymentObjectRef | None) -> stack_pb2.DeploymentObjectRef | None:
    if value is None:
        return None
    return stack_pb2.DeploymentObjectRef(
        id=value.id,
        sequence_id=value.sequence_id,
        checksum=value.checksum,
        is_deletion_marker=value.is_deletion_marker,
    )


def stack(value: model.Stack) -> stack_pb2.Stack:
    return stack_pb2.Stack(
        id=value.id,
        name=value.name,
        description=value.description,
        generator_id=value.generator_id or "",
        labels=dict(value.labels),
        annotations=dict(value.annotations),
        desired_deployment_object=deployment_object_ref(value.desired),
        create_time=timestamp(value.created_at),
        update_time=timestamp(value.updated_at),
        delete_time=timestamp(value.deleted_at),
    )


def resource_key(value: model.ResourceKey) -> deployment_object_pb2.ResourceKey:
    return deployment_object_pb2.ResourceKey(
        group=value.group, version=value.version, kind=value.kind, namespace=value.namespace, name=value.name
    )


def deployment_object(value: model.DeploymentObject, *, full: bool) -> deployment_object_pb2.DeploymentObject:
    message = deployment_object_pb2.DeploymentObject(
        id=value.id,
        stack_id=value.stack_id,
        sequence_id=value.sequence_id,
        checksum=value.checksum,
        is_deletion_marker=value.is_deletion_marker,
        create_time=timestamp(value.created_at),
    )
    if full:
        message.yaml_content = value.yaml_content
        message.resources.extend(
            deployment_object_pb2.Resource(key=resource_key(r.key), content_hash=r.content_hash)
            for r in value.resources
        )
    if value.provenance is not None:
        parameters = struct_pb2.Struct()
        parameters.update(json.loads(json.dumps(dict(value.provenance.parameters))))
        message.provenance.CopyFrom(
            deployment_object_pb2.Provenance(
                template_id=value.provenance.template_id,
                template_version=value.provenance.template_version,
                parameters=parameters,
            )
        )
    return message


def target(value: model.Target) -> target_pb2.Target:
    return target_pb2.Target(
        agent_id=value.agent_id, stack_id=value.stack_id, create_time=timestamp(value.created_at)
    )


def registration(value: model.Registration) -> target_pb2.Registration:
    return target_pb2.Registration(
        agent_id=value.agent_id, generator_id=value.generator_id, create_time=timestamp(value.created_at)
    )


def target_match(value: model.TargetMatch) -> target_pb2.TargetMatch:
    return target_pb2.TargetMatch(
        agent_id=value.agent_id,
        stack_id=value.stack_id,
        explicit=value.explicit,
        shared_labels=list(value.shared_labels),
        shared_annotations=list(value.shared_annotations),
    )


def json_struct(value: object) -> struct_pb2.Struct:
    """A JSON object (str keys; JSON values) as a Struct."""
    message = struct_pb2.Struct()
    message.update(json.loads(json.dumps(value)))
    return message


def template(value: Template) -> template_pb2.Template:
    return template_pb2.Template(
        id=value.id,
        name=value.name,
        version=value.version,
        latest_version=value.latest_version,
        description=value.description,
        generator_id=value.generator_id or "",
        content=value.content,
        parameters_schema=json_struct(dict(value.parameters_schema)),
        labels=dict(value.labels),
        annotations=dict(value.annotations),
        create_time=timestamp(value.created_at),
        update_time=timestamp(value.updated_at),
        version_create_time=timestamp(value.version_created_at),
        delete_time=timestamp(value.deleted_at),
    )
