"""A job: what was decided about one image's work when it was submitted, carried to the run.

The service validates a request once — parses the template, picks the OS and cloud plugins,
checks and resolves the parameters — and writes the result into a `Plan`. The engine and the
work it runs never decide any of it again: they read the plan. A plan is plain JSON, so it can
be sealed into the database (a restart re-queues the job from it) or sent to a worker on
another host; credentials travel beside it in the `Job` and are never serialised.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..errors import BuildError
from ..model import ImageKind
from ..tdl import Template, parse_template

Action = Literal["build", "delete"]


@dataclass
class Plan:
    """The decisions behind one image's job.

    Attributes:
        template: the TDL text in clear (secrets included); None for a provider image pushed
            from a target image whose template is unknown.
        os_plugin: the id of the OS plugin that builds (or built) the base image.
        cloud_plugin: the id of the cloud plugin serving `target`.
        target: the canonical cloud target name (``ec2``).
        parameters: for each plugin id (and ``core``), its resolved, typed parameter values.
        callbacks: the URLs that receive status changes.
        provider: the provider a push goes to (a name or a JSON object).
    """

    template: str | None = None
    os_plugin: str | None = None
    cloud_plugin: str | None = None
    target: str | None = None
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    callbacks: list[str] = field(default_factory=list)
    provider: str | dict[str, Any] | None = None
    _parsed: Template | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> str:
        values = asdict(self)
        values.pop("_parsed")
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        values = json.loads(text)
        if not isinstance(values, dict) or "parameters" not in values:
            raise BuildError("the stored job was written by an older version and cannot "
                             "resume: POST the image again")
        return cls(**values)

    def parsed_template(self) -> Template:
        """The template, parsed once per process (the service hands its parsed copy over)."""
        if self._parsed is None:
            if not self.template:
                raise BuildError("this image has no template to build from")
            self._parsed = parse_template(self.template)
        return self._parsed

    def parameters_of(self, plugin_id: str) -> dict[str, Any]:
        return dict(self.parameters.get(plugin_id, {}))


@dataclass
class Job:
    """One unit of work for the engine: build (or push) an image, or delete it from a cloud."""

    image_id: str
    kind: ImageKind
    action: Action
    parent_id: str | None
    plan: Plan
    credentials: dict[str, Any] | None = field(default=None, repr=False)
