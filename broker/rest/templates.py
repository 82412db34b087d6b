"""Path templates of `google.api.http` rules, parsed once at start-up and matched segment by segment.

A template such as `/api/v1/agents/{agent.id}/stacks` is a sequence of literal segments and
variables; a variable binds exactly one non-empty path segment to a (possibly nested) request field.
Only the part of the grammar Brokkr's protos use is supported: literals, `{field.path}`, its
spelled-out form `{field.path=*}` and a custom verb at the end (`/api/v1/webhooks/{id}:test`, AIP-136).
Wildcards and multi-segment variables (`{name=projects/*}`) are refused when the template is parsed,
so an annotation the shim cannot serve fails the start-up instead of a request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote


class UnsupportedAnnotation(Exception):
    """A `google.api.http` annotation the shim cannot serve. Raised at start-up, never per request."""


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FIELD_PATH = re.compile(rf"{_IDENT}(\.{_IDENT})*")
_LITERAL = re.compile(r"[A-Za-z0-9._~-]+")
_VERB = re.compile(r":[^/{}]*$")
_SEGMENT = re.compile(r"\{(?P<variable>[^{}]*)\}|(?P<literal>[^/{}]+)")


@dataclass(frozen=True)
class Variable:
    """A `{field.path}` segment: binds one path segment to a request field."""

    field_path: tuple[str, ...]

    @property
    def name(self) -> str:
        return ".".join(self.field_path)


Segment = str | Variable


@dataclass(frozen=True)
class PathTemplate:
    """A parsed path template. `text` is the template as written in the proto."""

    text: str
    segments: tuple[Segment, ...]
    #: The custom verb after the last segment (`test` in `.../{id}:test`), if any.
    verb: str | None = None

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        if not text.startswith("/"):
            raise UnsupportedAnnotation(f"path template {text!r} does not start with '/'")
        verb = None
        end = len(text)
        if (found_verb := _VERB.search(text)) is not None:
            verb = found_verb.group()[1:]
            if not _LITERAL.fullmatch(verb):
                raise UnsupportedAnnotation(
                    f"path template {text!r}: custom verb {found_verb.group()!r} is not a plain literal"
                )
            end = found_verb.start()
        segments: list[Segment] = []
        position = 1
        while True:
            found = _SEGMENT.match(text, position, end)
            if found is None:
                raise UnsupportedAnnotation(f"path template {text!r} has an empty segment at {position}")
            segments.append(_parse_segment(text, found))
            position = found.end()
            if position == end:
                return cls(text, tuple(segments), verb)
            if text[position] != "/":
                raise UnsupportedAnnotation(f"path template {text!r} is malformed at {position}")
            position += 1

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(segment for segment in self.segments if isinstance(segment, Variable))

    @property
    def shape(self) -> tuple[str | None, ...]:
        """The literals, with None for variables, then the verb: two templates of one shape match
        the same paths."""
        literals = tuple(None if isinstance(segment, Variable) else segment for segment in self.segments)
        return (*literals, f":{self.verb}" if self.verb else None)

    @property
    def precedence(self) -> tuple[bool, ...]:
        """Sort key: where two templates match one path, one with a custom verb beats one without,
        then a literal beats a variable, leftmost first."""
        return (self.verb is None, *(isinstance(segment, Variable) for segment in self.segments))

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """The variable bindings if the decoded path `segments` match, else None."""
        if len(segments) != len(self.segments):
            return None
        if self.verb is not None:
            last, colon, verb = segments[-1].rpartition(":")
            if not colon or verb != self.verb:
                return None
            segments = [*segments[:-1], last]
        bound: dict[str, str] = {}
        for expected, actual in zip(self.segments, segments, strict=True):
            if isinstance(expected, Variable):
                if not actual:
                    return None
                bound[expected.name] = actual
            elif expected != actual:
                return None
        return bound


def split_path(raw_path: str) -> list[str]:
    """The segments of a still percent-encoded path, each decoded on its own.

    Decoding after splitting keeps an encoded slash (`%2F`) inside its segment, as a variable
    bound to one segment requires.
    """
    return [unquote(segment) for segment in raw_path.removeprefix("/").split("/")]


def _parse_segment(text: str, found: re.Match[str]) -> Segment:
    variable = found.group("variable")
    if variable is None:
        literal = found.group("literal")
        if not _LITERAL.fullmatch(literal):
            raise UnsupportedAnnotation(
                f"path template {text!r}: segment {literal!r} is not a plain literal "
                "(wildcards and custom verbs are not supported)"
            )
        return literal
    field_path, equals, pattern = variable.partition("=")
    if not _FIELD_PATH.fullmatch(field_path):
        raise UnsupportedAnnotation(f"path template {text!r}: {field_path!r} is not a field path")
    if equals and pattern != "*":
        raise UnsupportedAnnotation(
            f"path template {text!r}: variable pattern {pattern!r} is not supported (only '*')"
        )
    return Variable(tuple(field_path.split(".")))
