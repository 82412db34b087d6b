"""The `pods/log` subresource: container logs a test put there, served as upstream serves them.

Upstream streams from the kubelet; the double keeps, per pod and container, the text of the
current instance and of the previous one (`KubeApiServer.set_log`). Modelled options: `container`
(required when the pod has more than one container, 400 naming the choices otherwise),
`previous` (400 when there is no previous instance), `tailLines` (the last N lines) and
`limitBytes` (the first N bytes of what is selected, cutting mid-line as upstream does). Not
modelled: `follow`, `sinceSeconds`, `sinceTime`, `timestamps`, `insecureSkipTLSVerifyBackend`.
The answer is `text/plain`. A pod whose container never ran answers 400 "is waiting to start",
as upstream does, unless a log was set for it.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.kube_double.errors import ApiError, GroupResource, not_found

JSON = dict[str, Any]


class Logs:
    """Container logs by (namespace, pod, container, previous)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str, str, bool], str] = {}

    def set(self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False) -> None:
        with self._lock:
            self._logs[(namespace, pod, container, previous)] = text

    def read(self, pod: JSON | None, namespace: str, name: str, query: dict[str, list[str]]) -> bytes:
        """The log the query selects of the pod `pod` (None: it does not exist)."""
        if pod is None:
            raise not_found(GroupResource("", "pods"), name)
        spec = pod.get("spec") or {}
        containers = [
            c.get("name", "") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
        ]
        container = _param(query, "container")
        if not container:
            if len(spec.get("containers") or []) != 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(c.get('name', '') for c in spec.get('containers') or [])}]",
                )
            container = spec["containers"][0].get("name", "")
        if container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        previous = _param(query, "previous") == "true"
        with self._lock:
            text = self._logs.get((namespace, name, container, previous))
        if text is None:
            if previous:
                raise ApiError(
                    400,
                    "BadRequest",
                    f'previous terminated container "{container}" in pod "{name}" not found',
                )
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating',
            )
        data = text.encode()
        tail = _number(query, "tailLines")
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail else b""
        limit = _number(query, "limitBytes")
        if limit is not None:
            if limit <= 0:
                raise ApiError(422, "Invalid", "limitBytes: Invalid value: must be greater than 0")
            data = data[:limit]
        return data


def _param(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def _number(query: dict[str, list[str]], name: str) -> int | None:
    text = _param(query, name)
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name}: invalid integer {text!r}") from None
    if value < 0:
        raise ApiError(422, "Invalid", f"{name}: Invalid value: {value}: must be greater than or equal to 0")
    return value
