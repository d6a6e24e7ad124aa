"""Every curl and HTTPie example in docs/ runs against a real `imagefactory serve`, and does what
its page says.

The examples are written for the shipped plugins (a Debian 12 template, the ``ec2``,
``vsphere`` and ``ova`` targets, AWS credentials). The server that runs them has the stand-ins
of `standin_debian`, `standin_ec2` and `standin_vsphere` instead, which take the same
templates, targets, parameters, providers and credentials, checked by the real plugins' code,
and answer in a moment. The ova plugin is cheap (qemu-img and tar), so the real one packages
the stand-in's real VMDK. The other installed plugins are disabled (listed, never imported), so
``/plugins/debian`` answers as a disabled plugin.

Each example runs in a shell, as a reader would paste it: with the page's base URL replaced by
the server's, a terminal as its standard input (HTTPie reads a body from a standard input that
is not one), `BASE`, `TARGET` and `PROVIDER` naming a complete chain of images and `VSPHERE`
and `OVA` a vsphere target image of `BASE` and an OVA made from it (new ones after an example
deleted one of them), in a directory where the pages' here documents wrote ``web.tdl`` and
``ec2-credentials.xml``. The server's access log tells which request each made (method, route,
status, client). Then:

* it exits 0, made one request, answered 2xx, on a route the OpenAPI document describes;
* its output has the shape of the answer the page shows after it, and a JSON answer is valid
  against the OpenAPI document's schema for that operation and status;
* across all examples, every operation of the OpenAPI document is called by a curl example
  and by an HTTPie example.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.server.conftest import REPO, ServerProcess, wait_until

from .examples import BASE_URL, Example, Page, matches_shape, read_docs

pytestmark = pytest.mark.slow

PAGES: list[Page] = read_docs()
EXAMPLES: list[Example] = [example for page in PAGES for example in page.examples]
STANDINS = ["tests.docs.standin_debian", "tests.docs.standin_ec2", "tests.docs.standin_vsphere"]
REAL_PLUGINS = {"ova"}
# what each variable of the chain names
CHAIN_KINDS = {"BASE": "base_images", "TARGET": "target_images", "PROVIDER": "provider_images",
               "VSPHERE": "target_images", "OVA": "target_images"}
METHODS = ("get", "head", "post", "put", "delete", "patch")
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.[01]" (?P<status>\d{3}) \S+ '
                    r'"[^"]*" "(?P<agent>[^"]*)"$')
AGENTS = {"curl": "curl/", "HTTPie": "HTTPie/"}


@dataclass
class Request:
    method: str
    route: str | None  # the OpenAPI path template, None when no template matches
    status: int


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    requests: list[Request] = field(default_factory=list)
    output_bytes: int | None = None  # size of the file a download example wrote


class Routes:
    """The OpenAPI document the server serves: its operations and response schemas."""

    def __init__(self, document: dict[str, Any]):
        self.document = document
        self.templates = [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
                                      + "$"), path) for path in document["paths"]]
        self.registry = Registry().with_resource(
            "urn:openapi", Resource.from_contents(document, default_specification=DRAFT202012))

    def operations(self) -> set[tuple[str, str]]:
        return {(method.upper(), path) for path, item in self.document["paths"].items()
                for method in item if method in METHODS}

    def route(self, path: str) -> str | None:
        return next((template for pattern, template in self.templates
                     if pattern.match(path)), None)

    def schema_problems(self, request: Request, output: str) -> list[str]:
        """Where a JSON answer breaks the document's schema for its operation and status."""
        assert request.route is not None
        answer = self.document["paths"][request.route][request.method.lower()]["responses"]
        content = answer.get(str(request.status), {}).get("content", {})
        if "application/json" not in content:
            return []
        pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in (
            "paths", request.route, request.method.lower(), "responses", str(request.status),
            "content", "application/json", "schema"))
        validator = Draft202012Validator({"$ref": f"urn:openapi#/{pointer}"},
                                         registry=self.registry)
        return [error.message for error in validator.iter_errors(json.loads(output))]


class Harness:
    """The server, the reader's directory and shell, and the images the examples name."""

    def __init__(self, root: Path):
        installed = {ep.name for ep in entry_points(group="imagefactory.plugins")}
        self.server = ServerProcess(root / "server", no_oauth=True, plugin_modules=STANDINS,
                                    disabled_plugins=sorted(installed - REAL_PLUGINS))
        self.server.root.mkdir(parents=True)
        self.cwd = root / "reader"
        self.cwd.mkdir()
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith("IMAGEFACTORY_")}
        self.env.update(HOME=str(root / "home"), PATH=f"{REPO / '.venv' / 'bin'}:"
                                                      f"{os.environ['PATH']}")
        self.chain: dict[str, str] = {}
        self.routes: Routes

    def start(self) -> None:
        self.server.start()
        self.routes = Routes(self.server.request("GET", "/openapi.json").json())
        for page in PAGES:
            for script in page.setup:
                subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, check=True,
                               timeout=30)

    # -- the images the examples name ------------------------------------------------------
    def _complete(self, *keys: str) -> bool:
        for key in keys:
            if key not in self.chain:
                return False
            answer = self.server.request("GET", f"/{CHAIN_KINDS[key]}/{self.chain[key]}")
            if answer.status_code != 200 or \
                    next(iter(answer.json().values()))["status"] != "COMPLETE":
                return False
        return True

    def _made(self, path: str, body: dict[str, Any]) -> str:
        """The id of the target image `body` POSTed to `path` makes, once COMPLETE."""
        made = self.server.post(path, body)
        return str(self.server.wait_for(f"/target_images/{made['id']}", ("COMPLETE",))["id"])

    def ensure_chain(self) -> None:
        """COMPLETE images for every variable: a base image, a target and a provider image of
        it made by one cascading push, a vsphere target image of it and an OVA of that. What an
        example deleted is made again, with what is made from it."""
        if self._complete("BASE"):
            source = {"base_image_id": self.chain["BASE"]}
        else:
            self.chain = {}
            source = {"template": (self.cwd / "web.tdl").read_text()}
        if not self._complete("TARGET", "PROVIDER"):
            pushed = self.server.post("/provider_images", {"provider_image": {
                **source, "target": "ec2", "provider": "ec2-us-east-1",
                "credentials": (self.cwd / "ec2-credentials.xml").read_text()}})
            provider = self.server.wait_for(f"/provider_images/{pushed['id']}", ("COMPLETE",))
            target = self.server.get(f"/target_images/{provider['target_image_id']}")
            self.chain.update(BASE=target["base_image_id"], TARGET=target["id"],
                              PROVIDER=provider["id"])
        if not self._complete("VSPHERE"):
            self.chain["VSPHERE"] = self._made("/target_images", {"target_image": {
                "target": "vsphere", "base_image_id": self.chain["BASE"]}})
            self.chain.pop("OVA", None)
        if not self._complete("OVA"):
            self.chain["OVA"] = self._made(f"/target_images/{self.chain['VSPHERE']}/target_images",
                                           {"target_image": {"target": "ova"}})

    # -- running one example ---------------------------------------------------------------
    def _access_lines(self, agent: str) -> list[re.Match[str]]:
        return [match for line in self.server.log().splitlines()
                if (match := ACCESS.search(line)) and match["agent"].startswith(agent)]

    def run(self, example: Example) -> Run:
        self.ensure_chain()
        agent = AGENTS[example.client]
        seen = len(self._access_lines(agent))
        command = example.command.replace(BASE_URL, f"http://127.0.0.1:{self.server.port}")
        if example.output_file:
            (self.cwd / example.output_file).unlink(missing_ok=True)
        terminal, reader_side = pty.openpty()
        try:
            done = subprocess.run(["bash", "-c", command], cwd=self.cwd,
                                  env={**self.env, **self.chain}, stdin=reader_side,
                                  capture_output=True, text=True, timeout=60)
        finally:
            os.close(terminal)
            os.close(reader_side)
        run = Run(done.returncode, done.stdout, done.stderr)
        made = wait_until(lambda: self._access_lines(agent)[seen:], 10,
                          f"the request of {example} in the access log")
        run.requests = [Request(m["method"], self.routes.route(m["path"]), int(m["status"]))
                        for m in made]
        if example.output_file:
            written = self.cwd / example.output_file
            run.output_bytes = written.stat().st_size if written.exists() else None
        return run


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    made = Harness(tmp_path_factory.mktemp("docs-examples"))
    try:
        made.start()
        yield made
    finally:
        made.server.cleanup()


@pytest.fixture(scope="module")
def runs(harness: Harness) -> dict[int, Run]:
    """Every example, run once, in the order of the pages (index into EXAMPLES)."""
    return {index: harness.run(example) for index, example in enumerate(EXAMPLES)}


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=[str(e) for e in EXAMPLES])
def test_example_does_what_the_page_says(index: int, runs: dict[int, Run],
                                         harness: Harness) -> None:
    example, run = EXAMPLES[index], runs[index]
    context = f"{example}\n{example.command}\nstdout: {run.stdout[:2000]}\nstderr: {run.stderr}"
    assert run.returncode == 0, context
    assert len(run.requests) == 1, f"{context}\nrequests: {run.requests}"
    request = run.requests[0]
    assert request.route is not None, f"{context}\nno route of the OpenAPI document"
    assert 200 <= request.status < 300, f"{context}\nstatus {request.status}"
    if example.answer is not None:
        assert matches_shape(example.answer, run.stdout) == [], context
    assert harness.routes.schema_problems(request, run.stdout) == [], context
    if example.output_file:
        assert run.output_bytes, f"{context}\n{example.output_file} was not written"
    elif request.status == 204:
        assert run.stdout == "", context


def test_every_operation_has_a_curl_and_an_httpie_example(runs: dict[int, Run],
                                                          harness: Harness) -> None:
    operations = harness.routes.operations()
    assert len(EXAMPLES) >= 2 * len(operations) > 0
    called: dict[str, set[tuple[str, str]]] = {"curl": set(), "HTTPie": set()}
    for index, run in runs.items():
        called[EXAMPLES[index].client].update(
            (r.method, r.route) for r in run.requests if r.route and 200 <= r.status < 300)
    for client, seen in called.items():
        missing = sorted(operations - seen)
        assert not missing, f"operations without a working {client} example: {missing}"


def test_the_harness_sees_a_failing_example(harness: Harness) -> None:
    """An example of a route that does not exist is caught: a 404, and no route."""
    broken = Example("test", 0, f"curl -s {BASE_URL}/imagefactory/base_image")
    run = harness.run(broken)
    assert run.returncode == 0 and [(r.route, r.status) for r in run.requests] == [(None, 404)]


def test_examples_were_found() -> None:
    assert {page.name for page in PAGES if page.examples} >= {"quickstart.md",
                                                              "rest-examples.md"}
    assert all(example.answer is not None or example.output_file or "DELETE" in example.command
               for example in EXAMPLES), [str(e) for e in EXAMPLES
                                          if e.answer is None and not e.output_file
                                          and "DELETE" not in e.command]

