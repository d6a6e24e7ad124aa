"""Refuse a plugin name that would make an unusable plugin, before anything is written."""

import re
import sys

PLUGIN_ID = {{ cookiecutter.__plugin_id | tojson }}
KIND = {{ cookiecutter.kind | tojson }}
# Written into pyproject.toml and Python strings as they are: no quotes, backslashes or breaks.
TEXTS = {
    "description": {{ cookiecutter.description | tojson }},
    "author_name": {{ cookiecutter.author_name | tojson }},
    "author_email": {{ cookiecutter.author_email | tojson }},
    "license": {{ cookiecutter.license | tojson }},
    "url": {{ cookiecutter.url | tojson }},
}
# The plugin id is the entry-point name, the configuration section and (as the OS or cloud
# target name) what requests name; parameter names start with it. Shipped plugins own theirs.
SHIPPED = {"debian", "ec2", "openstack", "fedora", "vsphere", "rhevm"}


def problem() -> str | None:
    if KIND not in ("os", "cloud"):
        return f"kind must be os or cloud, not {KIND!r}"
    if PLUGIN_ID.startswith("imagefactory_"):
        return "give the plugin name without the imagefactory- prefix: the template adds it"
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", PLUGIN_ID):
        return (f"plugin name gives the id {PLUGIN_ID!r}: use a letter, then letters, digits, "
                "- or _ (at most 32)")
    if PLUGIN_ID in SHIPPED:
        return f"{PLUGIN_ID!r} is a plugin imagefactory ships: choose another name"
    for name, text in TEXTS.items():
        if not text or re.search(r'["\\\x00-\x1f]', text):
            return f"{name} must be one line of text without quotes or backslashes"
    return None


if (message := problem()) is not None:
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)
