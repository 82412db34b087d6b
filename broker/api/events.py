"""brokkr.v1.EventService: validate -> service -> convert, plus the event messages themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from broker.api import convert
from broker.context import current_principal
from broker.domain.events import Event
from broker.domain.ports import UnitOfWorkFactory
from broker.services import events
from brokkr_common.pb.brokkr.v1 import event_pb2, event_service_pb2_grpc
from brokkr_common.pb.brokkr.v1 import event_service_pb2 as pb


def optional_time(message: object, field: str) -> datetime | None:
    """A Timestamp field of a request as an aware datetime, or None when unset."""
    if not message.HasField(field):  # type: ignore[attr-defined]
        return None
    value: timestamp_pb2.Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)


def event(value: Event) -> event_pb2.Event:
    payload = struct_pb2.Struct()
    payload.update(dict(value.payload))
    return event_pb2.Event(
        id=value.id,
        type=str(value.type),
        time=convert.timestamp(value.time),
        actor_role=value.actor_role,
        actor_id=value.actor_id or "",
        agent_id=value.agent_id or "",
        stack_id=value.stack_id or "",
        deployment_object_id=value.deployment_object_id or "",
        template_id=value.template_id or "",
        labels=dict(value.labels),
        payload=payload,
    )


class EventServicer(event_service_pb2_grpc.EventServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory, signal: events.EventSignal, *, poll_seconds: float) -> None:
        self._uow = uow
        self._signal = signal
        self._poll_seconds = poll_seconds

    async def ListEvents(
        self, request: pb.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListEventsResponse:
        page = await events.list_events(
            self._uow,
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            types=list(request.types),
            stack_id=request.stack_id or None,
            agent_id=request.agent_id or None,
            start_time=optional_time(request, "start_time"),
            end_time=optional_time(request, "end_time"),
        )
        return pb.ListEventsResponse(
            events=[event(item) for item in page.items], next_page_token=page.next_page_token
        )

    async def WatchEvents(
        self, request: pb.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchEventsResponse]:
        following = await events.watch_events(
            self._uow,
            current_principal(),
            self._signal,
            types=list(request.types),
            after_event_id=request.after_event_id,
            poll_seconds=self._poll_seconds,
        )
        async for item in following:
            yield pb.WatchEventsResponse(event=event(item))
