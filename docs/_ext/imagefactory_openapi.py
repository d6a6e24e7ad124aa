"""Render the REST reference from the OpenAPI document the service serves, at build time.

The document is built by the code (`imagefactory_core.api.openapi.document`) with the plugins
installed where the docs are built, so the reference cannot drift from the routes, and the
request parameters it lists are the installed plugins' declarations.

* ``.. imagefactory-openapi::`` renders the operations with sphinxcontrib-openapi (its
  ``httpdomain:old`` renderer; options ``include``/``exclude`` pass through). The spec is
  handed over in memory, not written to a file in the source tree.
* ``.. imagefactory-openapi-schema:: NAME`` renders one schema of ``components.schemas`` as a
  table of its properties.
* ``.. imagefactory-request-parameters::`` renders the request's ``parameters``: every
  parameter the core and the installed plugins declare.

Cells are docutils text, never parsed as markup: plugin help texts may hold any character.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinxcontrib.openapi.renderers import HttpdomainOldRenderer


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document `GET /imagefactory/openapi.json` serves with the installed plugins."""
    from imagefactory_core.api.openapi import document
    from imagefactory_core.plugins import load_plugins

    return document(load_plugins())


def _cell(value: str | nodes.Node) -> nodes.entry:
    entry = nodes.entry()
    paragraph = nodes.paragraph()
    paragraph += value if isinstance(value, nodes.Node) else nodes.Text(value)
    entry += paragraph
    return entry


def _table(headers: list[str], rows: list[list[str | nodes.Node]]) -> nodes.table:
    table = nodes.table(classes=["imagefactory-generated"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in headers)
    head = nodes.thead()
    head += nodes.row("", *(_cell(h) for h in headers))
    group += head
    body = nodes.tbody()
    body.extend(nodes.row("", *(_cell(c) for c in row)) for row in rows)
    group += body
    return table


def _type(schema: dict[str, Any]) -> str:
    """A schema's type in words: ``string (uri)``, ``one of: a, b``, ``Image`` for a $ref."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return "one of: " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "oneOf" in schema:
        return " or ".join(_type(option) for option in schema["oneOf"])
    kind = schema.get("type", "any")
    words = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if "items" in schema:
        words += f" of {_type(schema['items'])}"
    if "format" in schema:
        words += f" ({schema['format']})"
    return words


def _description(schema: dict[str, Any]) -> str:
    return str(schema.get("description", ""))


def _allowed(schema: dict[str, Any]) -> str:
    items = schema.get("items", {})
    parts = []
    if "enum" in schema or "enum" in items:
        parts.append("one of " + ", ".join(map(str, schema.get("enum") or items["enum"])))
    if "minimum" in schema or "maximum" in schema:
        parts.append(f"{schema.get('minimum', '…')} to {schema.get('maximum', '…')}")
    pattern = schema.get("pattern") or items.get("pattern")
    if pattern:
        parts.append(f"matching {pattern}")
    return "; ".join(parts)


class OpenAPIOperations(SphinxDirective):
    option_spec = {"include": directives.unchanged, "exclude": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        options = {key: value.split() for key, value in self.options.items()}
        renderer = HttpdomainOldRenderer(self.state, options)
        return list(renderer.render(copy.deepcopy(openapi_document())))


class OpenAPISchema(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        schemas = openapi_document()["components"]["schemas"]
        name = self.arguments[0]
        if name not in schemas:
            raise self.error(f"no schema {name!r}; the document has {', '.join(schemas)}")
        schema = schemas[name]
        if "additionalProperties" in schema and "properties" not in schema:
            schema = {"properties": {"<singular>": schema["additionalProperties"]},
                      "required": ["<singular>"], "description": schema.get("description")}
        required = set(schema.get("required", ()))
        rows: list[list[str | nodes.Node]] = [
            [nodes.literal(text=prop), _type(sub), "yes" if prop in required else "",
             _description(sub)]
            for prop, sub in schema.get("properties", {}).items()]
        result: list[nodes.Node] = []
        if schema.get("description"):
            result.append(nodes.paragraph(text=schema["description"]))
        result.append(_table(["property", "type", "required", "description"], rows))
        return result


class RequestParameters(SphinxDirective):
    def run(self) -> list[nodes.Node]:
        request = openapi_document()["components"]["schemas"]["ImageRequest"]
        declared = request["properties"]["parameters"]["properties"]
        rows: list[list[str | nodes.Node]] = []
        for name, schema in declared.items():
            default = schema.get("default")
            rows.append([
                nodes.literal(text=name), _type(schema),
                "" if default is None else json.dumps(default), _allowed(schema),
                ", ".join(schema["x-plugins"]),
                "operator" if schema["x-operator-only"] else "request or operator",
                _description(schema),
            ])
        return [_table(["parameter", "type", "default", "allowed", "declared by",
                        "who sets it", "meaning"], rows)]


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinxcontrib.openapi")
    app.add_directive("imagefactory-openapi", OpenAPIOperations)
    app.add_directive("imagefactory-openapi-schema", OpenAPISchema)
    app.add_directive("imagefactory-request-parameters", RequestParameters)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
