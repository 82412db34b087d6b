"""Templates as the use cases see them: one version of a template, with its template's identity.

A template is an id, a name and an owner (a generator, or none for a system template) plus a run
of immutable versions 1, 2, 3 ... Each version holds everything rendering and its rules need
(content, parameters schema, required labels and annotations), so a version number names exactly
what was rendered and an old version stays instantiable after newer ones exist. The rendering and
schema rules themselves are in `broker.domain.templating`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Template:
    """A template at one `version`; `latest_version`, `updated_at` and `deleted_at` are the template's."""

    id: str
    name: str
    generator_id: str | None
    version: int
    latest_version: int
    description: str
    content: str
    parameters_schema: Mapping[str, Any]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    created_at: datetime
    updated_at: datetime
    version_created_at: datetime
    deleted_at: datetime | None = None

    @property
    def is_system(self) -> bool:
        """A system template belongs to no generator: admins manage it, every generator reads it."""
        return self.generator_id is None
