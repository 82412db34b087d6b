"""Templates: Jinja2 text that renders to a deployment object's YAML, and its parameters' JSON Schema.

Template content comes from generators (CI pipelines, tenants) and is evaluated inside the broker,
so it runs in Jinja's `ImmutableSandboxedEnvironment` with these rules on top:

* **Strict.** An undefined variable is an error, never an empty string. Output is not escaped
  (it is YAML, not HTML) and ends the way the template does.
* **Self-contained.** There is no loader: `{% include %}`, `{% import %}`, `{% from %}` and
  `{% extends %}` are refused when the template is checked. `random` and `lipsum` are gone, so
  one template and one set of parameters always render the same text (provenance relies on it).
* **No Python internals.** Attributes starting with `_` are off limits (the sandbox's rule), and
  of the methods of strings, numbers, lists and dicts only the read-only ones in `_METHODS` may be
  called; the others either mutate or can build huge text from a small argument.
* **Bounded.** One render may take at most `max_steps` steps and produce at most `max_bytes`
  bytes. A step is one loop iteration, call (function, method, macro, `loop()`), filter, test,
  comparison, slice or printed expression, plus one per `_BYTES_PER_STEP` bytes of the values it
  handles (a value's weight is about the size of its JSON text; loop bodies also pay for their
  literal text). No value may weigh more than `max_bytes`: what `~`, `+`, `*`, `**` (numbers
  up to `_MAX_INT_BITS` bits), `%` and the text-building filters `format`, `indent`, `join` and
  `replace` would build is estimated *before* it is built. `range()` yields at most
  `MAX_RANGE` numbers, `tojson` indents by at most `_MAX_JSON_INDENT`, and the layout filters
  `center`, `wordwrap`, `batch`, `slice` and `urlize` (which turn a small argument into a huge
  result) are not available. Every bound is deterministic: the same input always passes or
  always fails, whatever the machine's load.

The checks run where Jinja lets a sandbox intervene: the environment's `call`, `call_binop` and
`finalize` hooks, wrapped filters and tests, and a rewrite of the parsed template that routes
loops, `~`, comparisons and slices through the meter (`_Instrument`).

Parameters are described by a JSON Schema (draft 2020-12) whose root is an object. Its defaults
are filled in before validation (see `resolve_parameters` for exactly which), and every violation
is reported with the JSON path of the offending value (`parameters.ports[0].name`).

Reasons: TEMPLATE_TOO_LARGE, INVALID_TEMPLATE (syntax, unknown filter or test, with the line),
TEMPLATE_FEATURE_NOT_ALLOWED, TEMPLATE_RENDER_FAILED (undefined variable, sandbox refusal, type
error, ... with the line), TEMPLATE_LIMIT_EXCEEDED, INVALID_PARAMETERS_SCHEMA and INVALID_PARAMETER.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, NoReturn

import jsonschema
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_environment, pass_eval_context
from jinja2 import filters as jinja_filters
from jinja2.environment import Template
from jinja2.exceptions import FilterArgumentError, TemplateError
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from broker.domain.validation import Violations
from brokkr_common.errors import InvalidArgument

MAX_TEMPLATE_BYTES = 1024 * 1024
#: Default bound on a render's output, and on any value built while rendering (UTF-8 bytes).
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
#: Default bound on a render's work; about a second of CPU when every step is as costly as it gets.
MAX_STEPS = 500_000
#: The most numbers one `range()` may yield (the sandbox's own limit).
MAX_RANGE = 100_000
MAX_SCHEMA_BYTES = 64 * 1024
#: How deeply objects and arrays may nest in a parameters schema.
MAX_SCHEMA_DEPTH = 64

_BYTES_PER_STEP = 16
_ITEM_WEIGHT = 8
_MAX_INT_BITS = 16_384  # a little above what Python will print (4300 digits)
_MAX_JSON_INDENT = 8
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

# Methods a template may call on JSON values; everything else on these types is refused.
# fmt: off
_STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha", "isdigit",
    "islower", "isspace", "isupper", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
    "rfind", "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
    "swapcase", "title", "upper",
})
# fmt: on
_METHODS: Mapping[type, frozenset[str]] = {
    str: _STR_METHODS,
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    int: frozenset(),
    float: frozenset(),
    bytes: frozenset(),
}
_REMOVED_FILTERS = frozenset({"batch", "center", "random", "slice", "urlize", "wordwrap"})
_LOADING_TAGS = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from",
    nodes.Extends: "extends",
}
# What Jinja adds to a call's keywords inside loops and blocks; `Context.call` takes them out.
_SCOPES = frozenset({"_loop_vars", "_block_vars"})
_WIDTH = re.compile(r"[1-9][0-9]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_template(content: str, field: str) -> None:
    """Refuse content that could never render: too large, bad syntax, unknown filters, loading tags."""
    _compile(content, field, _Sandbox(_Meter(MAX_STEPS, MAX_OUTPUT_BYTES)))


def render(
    content: str,
    parameters: Mapping[str, Any],
    *,
    max_bytes: int = MAX_OUTPUT_BYTES,
    max_steps: int = MAX_STEPS,
    field: str = "template.content",
) -> str:
    """Render `content` with `parameters` (already resolved) as its variables.

    The caller validates the result like any submitted deployment object.
    """
    meter = _Meter(max_steps, max_bytes)
    template = _compile(content, field, _Sandbox(meter))
    pieces: list[str] = []
    size = 0
    try:
        for piece in template.generate(dict(parameters)):
            size += len(piece.encode("utf-8", "surrogatepass"))
            if size > max_bytes:
                raise _LimitExceeded(f"the output would be larger than {max_bytes} bytes")
            pieces.append(piece)
    except _LimitExceeded as error:
        _fail(
            field, "exceeds a rendering limit", str(error), "TEMPLATE_LIMIT_EXCEEDED", _template_line(error)
        )
    except TemplateError as error:
        _fail(field, "failed to render", str(error), "TEMPLATE_RENDER_FAILED", _template_line(error))
    except Exception as error:  # whatever the user's template raised is the template's failure
        problem = f"{type(error).__name__}: {error}"
        _fail(field, "failed to render", problem, "TEMPLATE_RENDER_FAILED", _template_line(error))
    return "".join(pieces)


def required_labels_missing(
    template_labels: Mapping[str, str],
    template_annotations: Mapping[str, str],
    stack_labels: Mapping[str, str],
    stack_annotations: Mapping[str, str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The template's labels and annotations (`key=value`, sorted) that the stack does not carry.

    A template may be instantiated into a stack only when both are empty.
    """
    return _missing(template_labels, stack_labels), _missing(template_annotations, stack_annotations)


def _missing(required: Mapping[str, str], carried: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(f"{key}={value}" for key, value in sorted(required.items()) if carried.get(key) != value)


# Compiling ------------------------------------------------------------------------------------------


def _compile(content: str, field: str, environment: _Sandbox) -> Template:
    size = len(content.encode("utf-8", "surrogatepass"))
    if size > MAX_TEMPLATE_BYTES:
        raise InvalidArgument.for_field(
            field, f"must be at most {MAX_TEMPLATE_BYTES} bytes of UTF-8 (got {size})", "TEMPLATE_TOO_LARGE"
        )
    try:
        tree = environment.parse(content)
        _refuse_loading_tags(field, tree)
        _Instrument().visit(tree)
        tree.set_environment(environment)
        return environment.from_string(tree)
    except TemplateSyntaxError as error:
        _fail(field, "has a syntax error", error.message or str(error), "INVALID_TEMPLATE", error.lineno)


def _refuse_loading_tags(field: str, tree: nodes.Template) -> None:
    violations = Violations()
    for node in tree.find_all(tuple(_LOADING_TAGS)):
        tag = _LOADING_TAGS[type(node)]
        violations.add(
            field,
            f"uses {{% {tag} %}} at line {node.lineno}: templates cannot load other templates",
            "TEMPLATE_FEATURE_NOT_ALLOWED",
        )
    violations.raise_if_any()


class _Instrument(NodeTransformer):
    """Routes what Jinja compiles to plain Python through the sandbox's meter.

    The replacements are calls of environment attributes, which template text cannot name.
    """

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        text = sum(len(data.data) for data in node.find_all(nodes.TemplateData))
        cost = nodes.Const(1 + text // _BYTES_PER_STEP, lineno=node.lineno)
        node.iter = _internal_call("brokkr_iterate", node.iter, cost)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _internal_call("brokkr_concat", *node.nodes)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = _weighed(node.expr)
        for operand in node.ops:
            operand.expr = _weighed(operand.expr)
        return node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):  # Jinja compiles slices to plain Python
            node.node = _weighed(node.node)
        return node


def _weighed(expression: nodes.Expr) -> nodes.Expr:
    """`expression`, charged for by its weight when it is evaluated (constants cost nothing)."""
    return expression if isinstance(expression, nodes.Const) else _internal_call("brokkr_weighed", expression)


def _internal_call(name: str, *args: nodes.Expr) -> nodes.Call:
    lineno = args[0].lineno
    return nodes.Call(
        nodes.EnvironmentAttribute(name, lineno=lineno), list(args), [], None, None, lineno=lineno
    )


# Rendering ------------------------------------------------------------------------------------------


class _LimitExceeded(Exception):
    """A render went past one of its bounds."""


class _Meter:
    """One render's budget: the steps it may still take and the weight any value may have."""

    def __init__(self, max_steps: int, max_bytes: int) -> None:
        self.max_steps = max_steps
        self.max_bytes = max_bytes
        self.steps = 0

    def charge(self, steps: int) -> None:
        self.steps += steps
        if self.steps > self.max_steps:
            raise _LimitExceeded(f"the template takes more than {self.max_steps} steps")

    def limit(self, size: int, what: str = "a value") -> None:
        if size > self.max_bytes:
            raise _LimitExceeded(f"{what} would be larger than {self.max_bytes} bytes")

    def weigh(self, *values: Any) -> int:
        """Charge for handling `values`; refuse them if together they weigh more than `max_bytes`."""
        size = _weight(values, self.max_bytes)
        self.limit(size)
        self.charge(1 + size // _BYTES_PER_STEP)
        return size


_SCALAR, _TEXT, _INT, _RANGE, _MAPPING, _COLLECTION, _NAMESPACE = range(7)


def _weight(values: Iterable[Any], limit: int) -> int:
    """About the length of `values` as JSON text; counting stops soon after passing `limit`.

    Every item, container or not, weighs `_ITEM_WEIGHT` plus its text (a string's length, a
    number's digits), which also keeps a walk up to `limit` short.

    Shared references count every time, as they would when printed, so a value built by nesting
    one list in itself twice over forty times weighs what printing it would take.
    """
    total = 0
    pending = list(values)
    while pending and total <= limit:
        item = pending.pop()
        kind = _kind(type(item))
        total += _ITEM_WEIGHT
        if kind == _TEXT:
            total += len(item)
        elif kind == _INT:
            total += item.bit_length() // 3
        elif kind == _RANGE:
            total += _ITEM_WEIGHT * len(item)
        elif kind == _MAPPING:
            pending.extend(islice(item.items(), max(limit - total, 0) // _ITEM_WEIGHT + 1))
        elif kind == _COLLECTION:
            pending.extend(islice(item, max(limit - total, 0) // _ITEM_WEIGHT + 1))
        elif kind == _NAMESPACE:  # printing one prints its attributes; `ns.x = ...` is not a call
            pending.append(item._Namespace__attrs)
    return total


@functools.cache
def _kind(cls: type) -> int:
    """How `_weight` treats instances of `cls`; decided once per type."""
    if issubclass(cls, str):
        return _TEXT
    if issubclass(cls, bool) or issubclass(cls, Undefined):  # undefined values raise on any use
        return _SCALAR
    if issubclass(cls, int):
        return _INT
    if issubclass(cls, range):
        return _RANGE
    if issubclass(cls, Namespace):
        return _NAMESPACE
    if issubclass(cls, Mapping):
        return _MAPPING
    if issubclass(cls, Collection):  # lists, tuples (also `groupby`'s), dict views, bytes
        return _COLLECTION
    return _SCALAR  # other numbers, None; opaque objects: generators, macros, the loop


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with a meter on everything that can take time or build big values."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, meter: _Meter) -> None:
        super().__init__(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=self._printed
        )
        self._meter = meter
        self.globals.pop("lipsum")
        self.globals["range"] = self._range
        bounded: dict[str, Callable[..., Any]] = {
            "format": self._format,
            "indent": self._indent,
            "join": self._join,
            "replace": self._replace,
            "sum": self._sum,
            "tojson": self._tojson,
        }
        self.filters = {
            name: self._metered(bounded.get(name, function))
            for name, function in self.filters.items()
            if name not in _REMOVED_FILTERS
        }
        self.tests = {name: self._metered(function) for name, function in self.tests.items()}

    # Sandbox hooks ------------------------------------------------------------------------------

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        kind = next((kind for kind in _METHODS if isinstance(obj, kind)), None)
        return kind is None or attr in _METHODS[kind]

    def wrap_str_format(self, value: Any) -> None:
        """`str.format` is not offered at all (see `_METHODS`); the `format` filter is the bounded way."""

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        receiver = getattr(__obj, "__self__", None)
        if receiver is __self:  # `range` and the targets of `_Instrument` meter themselves
            return __context.call(__obj, *args, **kwargs)
        meter = __self._meter
        meter.weigh(receiver, *args, *(value for name, value in kwargs.items() if name not in _SCOPES))
        if isinstance(__obj, LoopContext) and args:  # `loop(children)` of a recursive loop
            args = (__self.brokkr_iterate(args[0], 1), *args[1:])
        result = super().call(__context, __obj, *args, **kwargs)
        meter.weigh(result)
        return result

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self._meter.weigh(left, right)
        if operator == "*":
            self._check_product(left, right)
        elif operator == "**" and _is_int(left) and _is_int(right) and right > 0:
            self._check_bits(left.bit_length() * right)
        elif operator == "%" and isinstance(left, str):
            self._meter.limit(_formatted_size(left, right, self._meter.max_bytes), "a formatted text")
        return super().call_binop(context, operator, left, right)

    def _printed(self, value: Any) -> Any:
        self._meter.weigh(value)
        return value

    # Targets of `_Instrument` ---------------------------------------------------------------------

    def brokkr_iterate(self, iterable: Iterable[Any], cost: int) -> Iterator[Any]:
        self._meter.weigh(iterable)
        for item in iterable:
            self._meter.charge(cost)
            yield item

    def brokkr_concat(self, *pieces: Any) -> str:
        self._meter.weigh(*pieces)  # a piece's weight bounds the length of its text
        return "".join(map(str, pieces))

    def brokkr_weighed(self, value: Any) -> Any:
        self._meter.weigh(value)  # comparing and slicing walk the value
        return value

    # Globals and bounded filters ----------------------------------------------------------------

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE:
            raise _LimitExceeded(f"range() may yield at most {MAX_RANGE} numbers (asked for {len(numbers)})")
        return numbers

    def _format(self, value: Any, *args: Any, **kwargs: Any) -> str:
        text = str(value)
        self._meter.limit(_formatted_size(text, kwargs or args, self._meter.max_bytes), "a formatted text")
        return jinja_filters.do_format(text, *args, **kwargs)

    def _indent(self, s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        text = str(s)
        pad = width if isinstance(width, int) else len(str(width))
        self._meter.limit(len(text) + (text.count("\n") + 1) * pad, "an indented text")
        return jinja_filters.do_indent(text, width, first, blank)

    @pass_eval_context
    def _join(self, eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
        items = list(value)  # count a lazy `map` or `select` before joining it
        self._meter.limit(self._meter.weigh(items) + len(items) * len(str(d)), "a joined text")
        return jinja_filters.do_join(eval_ctx, items, d, attribute)

    @pass_eval_context
    def _replace(self, eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
        text, old_text, new_text = str(s), str(old), str(new)
        found = text.count(old_text) if old_text else len(text) + 1
        if count is not None and count >= 0:
            found = min(found, count)
        self._meter.limit(len(text) + found * len(new_text), "a replaced text")
        return jinja_filters.do_replace(eval_ctx, s, old, new, count)

    @pass_environment
    def _sum(self, environment: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
        items = list(iterable)
        if not isinstance(start, int | float):  # adding lists copies the running total every time
            self._meter.charge(len(items) * (_weight(items, self._meter.max_bytes) // _BYTES_PER_STEP))
        return jinja_filters.sync_do_sum(environment, items, attribute, start)

    @pass_eval_context
    def _tojson(self, eval_ctx: Any, value: Any, indent: int | None = None) -> str:
        if indent is not None and not 0 <= indent <= _MAX_JSON_INDENT:
            raise FilterArgumentError(f"tojson indents by at most {_MAX_JSON_INDENT} spaces (got {indent})")
        return jinja_filters.do_tojson(eval_ctx, value, indent)

    def _metered(self, function: Callable[..., Any]) -> Callable[..., Any]:
        meter = self._meter

        def metered(*args: Any, **kwargs: Any) -> Any:
            meter.weigh(*args, *kwargs.values())
            result = function(*args, **kwargs)
            meter.weigh(result)
            return result

        metered.jinja_pass_arg = getattr(function, "jinja_pass_arg", None)  # type: ignore[attr-defined]
        return metered

    def _check_product(self, left: Any, right: Any) -> None:
        if _is_int(left) and _is_int(right):
            self._check_bits(left.bit_length() + right.bit_length())
        elif _is_int(right) and isinstance(left, str | list | tuple):
            self._meter.limit(self._repeated_size(left, right))
        elif _is_int(left) and isinstance(right, str | list | tuple):
            self._meter.limit(self._repeated_size(right, left))

    def _repeated_size(self, sequence: str | list[Any] | tuple[Any, ...], times: int) -> int:
        size = len(sequence) if isinstance(sequence, str) else _weight(sequence, self._meter.max_bytes)
        return size * max(times, 0)

    def _check_bits(self, bits: int) -> None:
        if bits > _MAX_INT_BITS:
            raise _LimitExceeded(f"a number would have more than {_MAX_INT_BITS} bits")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _formatted_size(template: str, arguments: Any, limit: int) -> int:
    """An upper bound on `template % arguments`: the text, the arguments, and every width it names."""
    widths = sum(int(run) if len(run) <= 10 else 10**10 for run in _WIDTH.findall(template))
    if "*" in template:  # widths taken from the arguments
        values = arguments if isinstance(arguments, tuple) else (arguments,)
        widths += sum(abs(value) for value in values if _is_int(value))
    return len(template) + _weight(arguments, limit) + widths


def _template_line(error: BaseException) -> int | None:
    """The template line being rendered when `error` was raised, from Jinja's rewritten traceback."""
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _fail(field: str, what: str, problem: str, reason: str, line: int | None) -> NoReturn:
    where = f" at line {line}" if line else ""
    raise InvalidArgument.for_field(field, f"{what}{where}: {problem}", reason)


# Parameters -----------------------------------------------------------------------------------------


def check_parameters_schema(schema: Mapping[str, Any], field: str) -> None:
    """A draft 2020-12 JSON Schema for an object, small, and self-contained.

    Self-contained: `$schema`, when given, is draft 2020-12; `$ref` and `$dynamicRef` point into
    the schema itself (`#/$defs/port`, `#port`) and resolve; `$id` appears at most at the root.
    `format` is an annotation, as the draft says, not an assertion.
    """
    if not isinstance(schema, Mapping):
        raise InvalidArgument.for_field(field, "must be a JSON object", "INVALID_PARAMETERS_SCHEMA")
    depth = _depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise InvalidArgument.for_field(
            field,
            f"must nest at most {MAX_SCHEMA_DEPTH} levels deep (got {depth})",
            "INVALID_PARAMETERS_SCHEMA",
        )
    size = len(json.dumps(schema, ensure_ascii=False).encode())
    if size > MAX_SCHEMA_BYTES:
        raise InvalidArgument.for_field(
            field,
            f"must be at most {MAX_SCHEMA_BYTES} bytes as JSON (got {size})",
            "INVALID_PARAMETERS_SCHEMA",
        )
    violations = Violations()
    meta = jsonschema.Draft202012Validator(
        jsonschema.Draft202012Validator.META_SCHEMA,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    for error in _in_order(meta.iter_errors(schema), field):
        violations.add(field + _json_path(error.absolute_path), error.message, "INVALID_PARAMETERS_SCHEMA")
    violations.raise_if_any()
    _check_self_contained(schema, field, violations)
    if schema.get("type") != "object":
        violations.add(f"{field}.type", "must be 'object': parameters are named", "INVALID_PARAMETERS_SCHEMA")
    violations.raise_if_any()


def _depth(value: Any) -> int:
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_SCHEMA_DEPTH:
            break
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else ()
        pending.extend((child, depth + 1) for child in children)
    return deepest


def _check_self_contained(schema: Mapping[str, Any], field: str, violations: Violations) -> None:
    if schema.get("$schema", _DRAFT) != _DRAFT:
        violations.add(f"{field}.$schema", f"must be {_DRAFT!r} or left out", "INVALID_PARAMETERS_SCHEMA")
    root = DRAFT202012.create_resource(schema)
    base = root.id() or ""
    resolver = Registry().with_resource(base, root).resolver(base_uri=base)
    pending = list(DRAFT202012.subresources_of(schema))
    while pending:
        subschema = pending.pop()
        if not isinstance(subschema, Mapping):
            continue
        pending.extend(DRAFT202012.subresources_of(subschema))
        if isinstance(subschema.get("$id"), str):
            violations.add(field, "may use '$id' at the root only", "INVALID_PARAMETERS_SCHEMA")
        for keyword in ("$ref", "$dynamicRef"):
            reference = subschema.get(keyword)
            if isinstance(reference, str):
                _check_reference(field, keyword, reference, resolver.lookup, violations)


def _check_reference(
    field: str, keyword: str, reference: str, lookup: Callable[[str], Any], violations: Violations
) -> None:
    if not reference.startswith("#"):
        violations.add(
            field, f"{keyword} {reference!r} must point into the schema ('#...')", "INVALID_PARAMETERS_SCHEMA"
        )
        return
    try:
        lookup(reference)
    except Unresolvable:
        violations.add(field, f"{keyword} {reference!r} points at nothing", "INVALID_PARAMETERS_SCHEMA")


def resolve_parameters(
    schema: Mapping[str, Any], parameters: Mapping[str, Any], field: str = "parameters"
) -> dict[str, Any]:
    """`parameters` with the schema's defaults filled in, once it is valid; else every violation.

    Defaults applied, to a copy, from the root down: for each entry of an object schema's
    `properties`, a member missing from the object gets (a copy of) that property's `default`;
    then the same is done inside every present member, inside each array element through
    `prefixItems` (by position) and `items` (the rest). A missing object is not created just to
    hold its members' defaults: give it `"default": {}`. Defaults behind `$ref`, in
    `allOf`/`anyOf`/`oneOf`, `if`/`then`/`else`, `additionalProperties` or `patternProperties`
    are not applied. Defaults go in before validation, so a default that breaks the schema is
    reported like any other violation.
    """
    resolved = copy.deepcopy(dict(parameters)) if isinstance(parameters, Mapping) else parameters
    _apply_defaults(schema, resolved)
    violations = Violations()
    validator = jsonschema.Draft202012Validator(schema)
    for error in _in_order(validator.iter_errors(resolved), field):
        violations.add(field + _json_path(error.absolute_path), error.message, "INVALID_PARAMETER")
    violations.raise_if_any()
    return resolved


def _apply_defaults(schema: Any, instance: Any) -> None:
    if not isinstance(schema, Mapping):
        return
    if isinstance(instance, dict):
        properties = schema.get("properties")
        for name, subschema in properties.items() if isinstance(properties, Mapping) else ():
            if name not in instance and isinstance(subschema, Mapping) and "default" in subschema:
                instance[name] = copy.deepcopy(subschema["default"])
            if name in instance:
                _apply_defaults(subschema, instance[name])
    elif isinstance(instance, list):
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        for index, item in enumerate(instance):
            _apply_defaults(prefix[index] if index < len(prefix) else schema.get("items"), item)


def _in_order(errors: Iterable[jsonschema.ValidationError], field: str) -> list[jsonschema.ValidationError]:
    return sorted(errors, key=lambda error: (field + _json_path(error.absolute_path), error.message))


def _json_path(path: Iterable[str | int]) -> str:
    """`.name` for identifier keys, `["odd key"]` for the others, `[0]` for array indexes."""
    parts = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _IDENTIFIER.fullmatch(step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{json.dumps(step, ensure_ascii=False)}]")
    return "".join(parts)
