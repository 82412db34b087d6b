"""`brokkrctl apply` and `brokkrctl diff`: a directory of YAML files as a stack's desired state.

`apply` is idempotent so CI can run it on every commit: it creates the stack if it is missing and
submits a new deployment object only when the content changed. "Changed" is decided in two steps:

1. The broker's checksum of a deployment object is SHA-256 over its exact UTF-8 text (the API
   documents it on `DeploymentObject.checksum`, and `Stack.desired_deployment_object` carries it).
   The files are joined the same way on every run (sorted names, `---` between files), so the same
   files give the same text and the same checksum: nothing to submit, one GetStack call.
2. When the text differs, the newest deployment object's text is fetched and both are read here
   into objects keyed by group, kind, namespace and name (the broker's identity of an object). If
   the objects are equal, only comments, formatting or order changed, and nothing is submitted.

Step 2 compares two texts read by this same module, so it cannot disagree with itself; it does not
reproduce the broker's per-object content hash, and it need not: the broker still validates
whatever is submitted and answers with its own precise errors.

`diff` shows, per object, a unified diff from the newest deployment object to the local files,
and exits like `kubectl diff`: 0 no differences, 1 differences, 2 trouble.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from brokkr_common.ctl.context import EXIT_API_ERROR, EXIT_OK, EXIT_USAGE, Context, fail, pass_ctx
from brokkr_common.pb.brokkr.v1 import deployment_object_pb2, stack_pb2
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2 as do_api
from brokkr_common.pb.brokkr.v1 import generator_service_pb2 as generator_api
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

#: An object's identity: (group, kind, namespace, name); the version does not count.
ObjectKey = tuple[str, str, str, str]


class ManifestError(Exception):
    """Local files that cannot be read as Kubernetes objects."""


# --- reading the files ---------------------------------------------------------------------------


def manifest_files(paths: Iterable[str]) -> list[Path | None]:
    """The files named by -f, in order: a directory stands for its *.yaml and *.yml files, sorted
    by name (not recursive); `-` (None here) is standard input."""
    files: list[Path | None] = []
    for given in paths:
        if given == "-":
            files.append(None)
            continue
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise ManifestError(f"{path} holds no *.yaml or *.yml file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ManifestError(f"{path} does not exist")
    return files


def read_manifests(paths: Iterable[str]) -> str:
    """One YAML stream from the files: each file's text, ending in a line break, `---` between
    files. Deterministic, so the same files always give the same checksum."""
    texts = []
    for file in manifest_files(paths):
        try:
            text = sys.stdin.read() if file is None else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ManifestError(f"cannot read {file}: {error}") from None
        texts.append(text if text.endswith("\n") or not text else text + "\n")
    return "---\n".join(texts)


def checksum(text: str) -> str:
    """What the broker puts in `DeploymentObject.checksum` for this text (see the proto)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def objects(text: str, where: str = "the files") -> dict[ObjectKey, dict[str, Any]]:
    """The Kubernetes objects of a YAML stream by identity; a `v1 List` stands for its items."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise ManifestError(f"{where}: invalid YAML: {error}") from None
    found: dict[ObjectKey, dict[str, Any]] = {}
    pending = list(documents)
    while pending:
        obj = pending.pop(0)
        if isinstance(obj, dict) and obj.get("apiVersion") == "v1" and obj.get("kind") == "List":
            pending[:0] = obj.get("items") or []
            continue
        key = object_key(obj)
        if key is None:
            raise ManifestError(
                f"{where}: not a Kubernetes object (apiVersion, kind, metadata.name): {obj!r:.80}"
            )
        if key in found:
            raise ManifestError(f"{where}: {describe(obj)} appears twice")
        found[key] = obj
    return found


def object_key(obj: object) -> ObjectKey | None:
    if not isinstance(obj, dict):
        return None
    api_version, kind, metadata = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(metadata, dict)):
        return None
    name = metadata.get("name")
    if not isinstance(name, str):
        return None
    group = api_version.rpartition("/")[0]
    return group, kind, str(metadata.get("namespace") or ""), name


def describe(obj: dict[str, Any]) -> str:
    """`apps/v1 Deployment demo/web`, as people name objects."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))
    return f"{obj.get('apiVersion')} {obj.get('kind')} {name}"


def _read_or_fail(paths: tuple[str, ...]) -> str:
    try:
        text = read_manifests(paths)
    except ManifestError as error:
        fail(str(error), EXIT_USAGE)
    if not text.strip():
        fail("the files hold no YAML", EXIT_USAGE)
    return text


# --- talking to the broker -----------------------------------------------------------------------


def find_stack(ctx: Context, name: str) -> stack_pb2.Stack | None:
    """The live stack called `name` that the key can see, if any."""
    for stack in ctx.all_pages(ctx.client.stacks.ListStacks, stack_api.ListStacksRequest(), "stacks"):
        if stack.name == name:
            return stack
    return None


def newest_text(ctx: Context, stack: stack_pb2.Stack | None) -> str | None:
    """The text of the stack's newest deployment object; None when it has none (or is deleted)."""
    desired = stack.desired_deployment_object if stack is not None else None
    if desired is None or not desired.id or desired.is_deletion_marker:
        return None
    reply = ctx.call(
        ctx.client.deployment_objects.GetDeploymentObject,
        do_api.GetDeploymentObjectRequest(
            id=desired.id, view=deployment_object_pb2.DEPLOYMENT_OBJECT_VIEW_FULL
        ),
    )
    return reply.deployment_object.yaml_content


def _generator_id(ctx: Context, generator: str) -> str:
    if not generator or _UUID.fullmatch(generator):
        return generator
    listed = ctx.all_pages(
        ctx.client.generators.ListGenerators, generator_api.ListGeneratorsRequest(), "generators"
    )
    found = next((candidate.id for candidate in listed if candidate.name == generator), None)
    if found is None:
        fail(f"GENERATOR_NOT_FOUND: no generator named {generator!r}", EXIT_API_ERROR)
    return found


@dataclass
class Outcome:
    """What `apply` did, for people (`message`) and scripts (`to_dict`)."""

    stack: stack_pb2.Stack
    stack_created: bool
    deployment_object: deployment_object_pb2.DeploymentObject | stack_pb2.DeploymentObjectRef
    deployment_object_created: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": {"id": self.stack.id, "name": self.stack.name, "created": self.stack_created},
            "deploymentObject": {
                "id": self.deployment_object.id,
                "sequenceId": str(self.deployment_object.sequence_id),
                "checksum": self.deployment_object.checksum,
                "created": self.deployment_object_created,
            },
            "reason": self.reason,
        }


@click.command("apply")
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    help="YAML file, directory (its *.yaml and *.yml, sorted), or - for stdin. Repeatable.",
)
@click.option("--stack", "stack_name", required=True, help="Stack name; created if missing.")
@click.option("--generator", default="", help="Owner of a new stack, by name or id (admins only).")
@click.option("--description", default="", help="Description of a new stack.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Label of a new stack.")
@pass_ctx
def apply(
    ctx: Context,
    paths: tuple[str, ...],
    stack_name: str,
    generator: str,
    description: str,
    labels: tuple[str, ...],
) -> None:
    """Make the files the stack's desired state; submit a deployment object only if they changed."""
    text = _read_or_fail(paths)
    stack = find_stack(ctx, stack_name)
    stack_created = stack is None
    if stack is None:
        if bad := [label for label in labels if "=" not in label]:
            raise click.BadParameter(f"{bad[0]!r} is not KEY=VALUE", param_hint="--label")
        pairs = dict(label.split("=", 1) for label in labels)
        stack = ctx.call(
            ctx.client.stacks.CreateStack,
            stack_api.CreateStackRequest(
                stack=stack_pb2.Stack(
                    name=stack_name,
                    description=description,
                    generator_id=_generator_id(ctx, generator),
                    labels=pairs,
                )
            ),
        ).stack
    desired = stack.desired_deployment_object
    unchanged = ""
    if desired.id and not desired.is_deletion_marker:
        if desired.checksum == checksum(text):
            unchanged = "same checksum"
        else:
            live = newest_text(ctx, stack)
            try:
                if live is not None and objects(live) == objects(text):
                    unchanged = "same objects; only formatting, comments or order differ"
            except ManifestError:
                pass  # let the broker judge the files and say precisely what is wrong
    if unchanged:
        outcome = Outcome(stack, stack_created, desired, False, unchanged)
    else:
        created = ctx.call(
            ctx.client.deployment_objects.CreateDeploymentObject,
            do_api.CreateDeploymentObjectRequest(
                stack_id=stack.id,
                deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=text),
            ),
        ).deployment_object
        reason = "new stack" if stack_created else "first version" if not desired.id else "content changed"
        outcome = Outcome(stack, stack_created, created, True, reason)
    if ctx.fmt == "json":
        click.echo(json.dumps(outcome.to_dict(), indent=2))
    elif ctx.fmt == "yaml":
        click.echo(yaml.safe_dump(outcome.to_dict(), sort_keys=False), nl=False)
    else:
        if stack_created:
            click.echo(f"stack/{stack.name} created")
        sequence = outcome.deployment_object.sequence_id
        if outcome.deployment_object_created:
            click.echo(f"stack/{stack.name} deployment object {sequence} created ({reason})")
        else:
            click.echo(f"stack/{stack.name} unchanged at deployment object {sequence} ({unchanged})")


@click.command("diff")
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    help="YAML file, directory (its *.yaml and *.yml, sorted), or - for stdin. Repeatable.",
)
@click.option("--stack", "stack_name", required=True, help="Stack name.")
@pass_ctx
def diff(ctx: Context, paths: tuple[str, ...], stack_name: str) -> None:
    """Show what `apply` would change, per object, as unified diffs from the newest deployment object.

    Exits 0 when there is no difference, 1 when there is, 2 on any error.
    """
    ctx.api_error_exit = EXIT_USAGE
    text = _read_or_fail(paths)
    try:
        local = objects(text)
    except ManifestError as error:
        fail(str(error), EXIT_USAGE)
    stack = find_stack(ctx, stack_name)
    live_text = newest_text(ctx, stack)
    live = objects(live_text, "the newest deployment object") if live_text is not None else {}
    changed = False
    colour_on = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    for key in sorted(set(local) | set(live)):
        before, after = live.get(key), local.get(key)
        if before == after:
            continue
        changed = True
        name = describe(after or before or {})
        lines = difflib.unified_diff(
            _lines(before), _lines(after), fromfile=f"live/{name}", tofile=f"local/{name}"
        )
        for line in lines:
            colour = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1])
            if line.startswith(("+++", "---")):
                colour = None
            text = line.rstrip("\n")
            click.echo(click.style(text, fg=colour) if colour else text, color=colour_on)
    sys.exit(EXIT_API_ERROR if changed else EXIT_OK)


def _lines(obj: dict[str, Any] | None) -> list[str]:
    if obj is None:
        return []
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)
