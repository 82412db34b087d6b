"""`brokkrctl templates`: versioned Jinja2 templates and rendering them into stacks.

A template is named by id or by name (when one template the key can see has that name).
`instantiate` takes parameters the way Helm does: files (`--params`, later ones win) and then
`-p key=value` assignments, values read as YAML scalars, dotted keys for nested values. With
`--dry-run` nothing is created and the rendered YAML is printed (in table mode, as plain YAML so it
can be piped into `kubectl apply -f -` or a diff).
"""

from __future__ import annotations

from typing import Any

import click
from google.protobuf import field_mask_pb2

from brokkr_common.ctl.arguments import (
    UUID,
    limit_option,
    pairs,
    read_mapping,
    read_text,
    set_parameters,
    stack_id,
    to_struct,
)
from brokkr_common.ctl.context import EXIT_API_ERROR, EXIT_USAGE, Context, fail, pass_ctx
from brokkr_common.pb.brokkr.v1 import template_pb2
from brokkr_common.pb.brokkr.v1 import template_service_pb2 as template_api


def template_id(ctx: Context, template: str) -> str:
    """The id of TEMPLATE given as an id or as a name the key sees exactly once."""
    if UUID.fullmatch(template):
        return template
    found = ctx.all_pages(
        ctx.client.templates.ListTemplates, template_api.ListTemplatesRequest(name=template), "templates"
    )
    if not found:
        fail(f"TEMPLATE_NOT_FOUND: no template named {template!r}", EXIT_API_ERROR)
    if len(found) > 1:
        owners = ", ".join(t.generator_id or "system" for t in found)
        fail(
            f"TEMPLATE_AMBIGUOUS: {len(found)} templates are named {template!r} ({owners}); give the id",
            EXIT_USAGE,
        )
    return str(found[0].id)


@click.group("templates")
def templates() -> None:
    """Versioned templates that render into stacks."""


@templates.command("list")
@click.option("--name", default="", help="Only templates with exactly this name.")
@click.option(
    "--generator", "generator_id", default="", metavar="ID", help="Only templates of this generator (id)."
)
@click.option("--show-deleted", is_flag=True)
@limit_option
@pass_ctx
def templates_list(ctx: Context, name: str, generator_id: str, show_deleted: bool, limit: int) -> None:
    """Templates, each at its newest version, by name."""
    request = template_api.ListTemplatesRequest(
        name=name, generator_id=generator_id, show_deleted=show_deleted
    )
    ctx.show(*ctx.all_pages(ctx.client.templates.ListTemplates, request, "templates", limit))


@templates.command("get")
@click.argument("template")
@click.option(
    "--version", type=click.IntRange(min=1), metavar="N", help="This version instead of the newest."
)
@click.option("--content", "content_only", is_flag=True, help="Print only the Jinja2 text.")
@pass_ctx
def templates_get(ctx: Context, template: str, version: int | None, content_only: bool) -> None:
    """Show TEMPLATE (an id or a name); -o yaml shows its content and schema."""
    request = template_api.GetTemplateRequest(id=template_id(ctx, template), version=version or 0)
    found = ctx.call(ctx.client.templates.GetTemplate, request).template
    if content_only:
        click.echo(found.content, nl=not found.content.endswith("\n"))
        return
    ctx.show(found, single=True)


@templates.command("versions")
@click.argument("template")
@limit_option
@pass_ctx
def templates_versions(ctx: Context, template: str, limit: int) -> None:
    """TEMPLATE's versions, newest first."""
    request = template_api.ListTemplateVersionsRequest(id=template_id(ctx, template))
    ctx.show(*ctx.all_pages(ctx.client.templates.ListTemplateVersions, request, "templates", limit))


def _schema(path: str | None) -> dict[str, Any]:
    return read_mapping(path, "parameters schema") if path else {}


@templates.command("create")
@click.option("--name", required=True, help="A DNS-1123 label, unique among the owner's templates.")
@click.option(
    "-f",
    "--filename",
    "content_file",
    required=True,
    metavar="FILE",
    help="The Jinja2 text (a file, or - for stdin).",
)
@click.option(
    "--schema", "schema_file", metavar="FILE", help="JSON Schema of the parameters (a YAML or JSON file)."
)
@click.option("--description", default="")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label stacks must carry.")
@click.option(
    "--annotation", "annotations", multiple=True, metavar="KEY=VALUE", help="An annotation stacks must carry."
)
@click.option(
    "--generator", "generator_id", default="", metavar="ID", help="Owning generator id (admins only)."
)
@pass_ctx
def templates_create(
    ctx: Context,
    name: str,
    content_file: str,
    schema_file: str | None,
    description: str,
    labels: tuple[str, ...],
    annotations: tuple[str, ...],
    generator_id: str,
) -> None:
    """Create a template at version 1."""
    template = template_pb2.Template(
        name=name,
        content=read_text(content_file),
        description=description,
        generator_id=generator_id,
        labels=pairs(labels, "--label"),
        annotations=pairs(annotations, "--annotation"),
    )
    if schema_file:
        template.parameters_schema.CopyFrom(to_struct(_schema(schema_file)))
    created = ctx.call(
        ctx.client.templates.CreateTemplate, template_api.CreateTemplateRequest(template=template)
    )
    ctx.show(created.template, single=True)


@templates.command("update")
@click.argument("template")
@click.option(
    "-f", "--filename", "content_file", metavar="FILE", help="New Jinja2 text (a file, or - for stdin)."
)
@click.option("--schema", "schema_file", metavar="FILE", help="New parameters schema (a YAML or JSON file).")
@click.option("--description")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Replace the required labels.")
@click.option(
    "--annotation",
    "annotations",
    multiple=True,
    metavar="KEY=VALUE",
    help="Replace the required annotations.",
)
@click.option("--clear-labels", is_flag=True, help="Require no labels.")
@click.option("--clear-annotations", is_flag=True, help="Require no annotations.")
@pass_ctx
def templates_update(
    ctx: Context,
    template: str,
    content_file: str | None,
    schema_file: str | None,
    description: str | None,
    labels: tuple[str, ...],
    annotations: tuple[str, ...],
    clear_labels: bool,
    clear_annotations: bool,
) -> None:
    """Add a version of TEMPLATE: the newest one with the given fields replaced."""
    changed = template_pb2.Template(id=template_id(ctx, template))
    paths: list[str] = []
    if content_file is not None:
        changed.content = read_text(content_file)
        paths.append("content")
    if schema_file is not None:
        changed.parameters_schema.CopyFrom(to_struct(_schema(schema_file)))
        paths.append("parameters_schema")
    if description is not None:
        changed.description = description
        paths.append("description")
    if labels or clear_labels:
        changed.labels.update(pairs(labels, "--label"))
        paths.append("labels")
    if annotations or clear_annotations:
        changed.annotations.update(pairs(annotations, "--annotation"))
        paths.append("annotations")
    if not paths:
        fail("nothing to update: give -f, --schema, --description, --label or --annotation", EXIT_USAGE)
    request = template_api.UpdateTemplateRequest(
        template=changed, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    ctx.show(ctx.call(ctx.client.templates.UpdateTemplate, request).template, single=True)


@templates.command("delete")
@click.argument("template")
@pass_ctx
def templates_delete(ctx: Context, template: str) -> None:
    """Delete TEMPLATE with all its versions; deployment objects rendered from it stay."""
    request = template_api.DeleteTemplateRequest(id=template_id(ctx, template))
    ctx.show(ctx.call(ctx.client.templates.DeleteTemplate, request).template, single=True)


@templates.command("instantiate")
@click.argument("template")
@click.option("--stack", required=True, metavar="STACK", help="The stack to render into (a name or an id).")
@click.option(
    "--version", type=click.IntRange(min=1), metavar="N", help="Render this version instead of the newest."
)
@click.option(
    "--params",
    "params_files",
    multiple=True,
    metavar="FILE",
    help="Parameters from a YAML or JSON file (- for stdin); repeatable, later files win.",
)
@click.option(
    "-p",
    "--param",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="One parameter, applied after the files; the value is read as YAML (3, true, [a, b]); "
    "image.tag=v2 sets a nested value.",
)
@click.option("--dry-run", is_flag=True, help="Render and check only; print the YAML, create nothing.")
@pass_ctx
def templates_instantiate(
    ctx: Context,
    template: str,
    stack: str,
    version: int | None,
    params_files: tuple[str, ...],
    assignments: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Render TEMPLATE with parameters into a new deployment object of a stack."""
    parameters: dict[str, Any] = {}
    for path in params_files:
        parameters.update(read_mapping(path, "parameters"))
    set_parameters(parameters, assignments, "--param")
    request = template_api.InstantiateTemplateRequest(
        stack_id=stack_id(ctx, stack),
        template_id=template_id(ctx, template),
        template_version=version or 0,
        parameters=to_struct(parameters),
        dry_run=dry_run,
    )
    rendered = ctx.call(ctx.client.templates.InstantiateTemplate, request).deployment_object
    if dry_run and ctx.fmt == "table":
        click.echo(rendered.yaml_content, nl=not rendered.yaml_content.endswith("\n"))
        return
    ctx.show(rendered, single=True)
