"""Hostile XML against a real server: entity bombs, external entities and other outside
references, and DOCTYPEs hidden by an encoding. Each is refused with a 400 that names the
DOCTYPE (or, for references that need none, accepted and built without following them), fast,
with nothing fetched from a listener on 127.0.0.1 and no file's content in any answer."""

from __future__ import annotations

import codecs
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import pytest
import requests

from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl
from tests.security.conftest import Listener
from tests.server.conftest import ServerProcess

from .conftest import assert_error, post, settled

pytestmark = pytest.mark.slow

LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol0 "lol">'
          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
          + "]>")
QUADRATIC = f'<!DOCTYPE q [<!ENTITY a "{"a" * 50_000}">]>'


@pytest.fixture
def listener() -> Iterator[Listener]:
    started = Listener()
    yield started
    started.close()


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A file whose content must never come back in an answer."""
    path = tmp_path / "canary"
    path.write_text(f"hostile-canary-{uuid.uuid4().hex}\n")
    return path


# -- where a hostile XML document can stand in a request ----------------------------------------
def in_xml_body(server: ServerProcess, prolog: str, reference: str) -> requests.Response:
    body = f"{prolog}<base_image><template>{reference}</template></base_image>"
    return post(server, "base_images", body, "application/xml")


def in_template(server: ServerProcess, prolog: str, reference: str) -> requests.Response:
    template = prolog + fake_tdl().replace("<name>f17jeos</name>", f"<name>{reference}</name>")
    return post(server, "base_images", json.dumps({"base_image": {"template": template}}),
                "application/json")


def in_form_template(server: ServerProcess, prolog: str, reference: str) -> requests.Response:
    template = prolog + fake_tdl().replace("Fake 17", reference)
    return post(server, "base_images", urlencode({"template": template}),
                "application/x-www-form-urlencoded")


def in_template_in_xml(server: ServerProcess, prolog: str, reference: str) -> requests.Response:
    """The template as escaped text inside an XML body: only the template carries the DOCTYPE."""
    template = prolog + fake_tdl().replace("Fake 17", reference)
    body = f"<base_image><template>{escape(template)}</template></base_image>"
    return post(server, "base_images", body, "application/xml")


def in_credentials(server: ServerProcess, prolog: str, reference: str) -> requests.Response:
    credentials = prolog + SEED_CREDENTIALS.replace("alice", reference)
    return post(server, "provider_images", json.dumps({"provider_image": {
        "template": fake_tdl(), "target": "fakecloud", "provider": "p1",
        "credentials": credentials}}), "application/json")


PLACES: list[Callable[[ServerProcess, str, str], requests.Response]] = [
    in_xml_body, in_template, in_form_template, in_template_in_xml, in_credentials]
PLACE_IDS = ["XML body", "template in JSON", "template in a form", "template in XML",
             "credentials"]


@pytest.mark.parametrize("place", PLACES, ids=PLACE_IDS)
@pytest.mark.parametrize(("prolog", "reference"), [
    pytest.param(LAUGHS, "&lol9;", id="billion laughs"),
    pytest.param(QUADRATIC, "&a;" * 50_000, id="quadratic blowup"),
])
def test_entity_bombs_are_refused_without_expanding(server, place, prolog, reference):
    answer = place(server, prolog, reference)
    assert_error(answer, 400, "doctype")
    assert "lollol" not in answer.text and "aaaa" not in answer.text
    assert answer.elapsed.total_seconds() < 10, "the bomb was worked on"


@pytest.mark.parametrize("place", PLACES, ids=PLACE_IDS)
@pytest.mark.parametrize("declaration", [
    '<!DOCTYPE t [<!ENTITY x SYSTEM "{file}">]>',
    '<!DOCTYPE t [<!ENTITY x SYSTEM "{http}">]>',
    '<!DOCTYPE t [<!ENTITY % p SYSTEM "{http}"> %p;]>',
    '<!DOCTYPE t SYSTEM "{http}">',
    '<!DOCTYPE t PUBLIC "-//x//y" "{http}">',
], ids=["file entity", "http entity", "parameter entity", "external DTD", "public DTD"])
def test_external_entities_are_refused_and_never_fetched(server, listener, canary, place,
                                                         declaration):
    prolog = declaration.format(file=canary.as_uri(),
                                http=f"http://127.0.0.1:{listener.port}/x")
    answer = place(server, prolog, "&x;")
    assert_error(answer, 400, "doctype")
    assert canary.read_text().strip() not in answer.text
    assert "host-secret" not in answer.text
    assert listener.connections == 0


def test_references_that_need_no_doctype_are_never_followed(server, listener, canary):
    """XInclude, schema locations and a stylesheet instruction are not DOCTYPEs: the first two
    are refused by the schema, the last is kept as text, and none is ever fetched."""
    url = f"http://127.0.0.1:{listener.port}/x"
    xinclude = f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{url}"/>'
    schema = ('<template xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
              f'xsi:noNamespaceSchemaLocation="{url}">')
    refused = {
        "XInclude in the template": fake_tdl().replace("Fake 17", xinclude),
        "XInclude of a file": fake_tdl().replace(
            "Fake 17", xinclude.replace(url, canary.as_uri()).replace("/>", ' parse="text"/>')),
        "schema location": fake_tdl().replace("<template>", schema),
    }
    for case, template in refused.items():
        answer = post(server, "base_images", json.dumps({"base_image": {"template": template}}),
                      "application/json")
        assert_error(answer, 400, "not allowed")
        assert canary.read_text().strip() not in answer.text, case
    body = f"<base_image>{xinclude}<template>{escape(fake_tdl())}</template></base_image>"
    assert_error(post(server, "base_images", body, "application/xml"), 400, "include")
    stylesheet = f'<?xml-stylesheet type="text/xsl" href="{url}"?>\n{fake_tdl("styled")}'
    image = settled(server, post(server, "base_images", json.dumps(
        {"base_image": {"template": stylesheet}}), "application/json"))
    assert image["status"] == "COMPLETE", image["status_detail"]
    assert listener.connections == 0


# -- a DOCTYPE in any encoding ------------------------------------------------------------------
BOMB_BODY = f"{LAUGHS}<base_image><template>&lol9;</template></base_image>"


def encoded(codec: str, bom: bytes = b"", declared: str | None = None,
            text: str = BOMB_BODY) -> bytes:
    declaration = f'<?xml version="1.0" encoding="{declared}"?>' if declared else ""
    return bom + (declaration + text).encode(codec)


@pytest.mark.parametrize("body", [
    pytest.param(encoded("utf-8", codecs.BOM_UTF8), id="UTF-8 with BOM"),
    pytest.param(encoded("utf-16-le", codecs.BOM_UTF16_LE), id="UTF-16LE with BOM"),
    pytest.param(encoded("utf-16-be", codecs.BOM_UTF16_BE, "UTF-16"), id="UTF-16BE with BOM"),
    pytest.param(encoded("utf-16-le", declared="UTF-16"), id="UTF-16LE declared, no BOM"),
    pytest.param(encoded("utf-16-be", declared="UTF-16"), id="UTF-16BE declared, no BOM"),
    pytest.param(encoded("utf-32-le", codecs.BOM_UTF32_LE), id="UTF-32LE with BOM"),
    pytest.param(encoded("utf-32-be", codecs.BOM_UTF32_BE), id="UTF-32BE with BOM"),
    pytest.param(encoded("utf-32-le", declared="UTF-32"), id="UTF-32LE declared, no BOM"),
    pytest.param(encoded("utf-32-be", declared="UTF-32"), id="UTF-32BE declared, no BOM"),
    pytest.param(b'<?xml version="1.0" encoding="UTF-7"?>'
                 + BOMB_BODY.replace("<", "+ADw-").encode("ascii"), id="UTF-7 escapes"),
    pytest.param(encoded("cp037", declared="IBM037"), id="EBCDIC"),
    pytest.param(encoded("latin-1", declared="ISO-8859-1"), id="ISO-8859-1 declared"),
    pytest.param(encoded("utf-8", declared="UTF-16"), id="declared UTF-16, written UTF-8"),
    pytest.param(encoded("utf-8", text="<!-- c --><?pi x?>\n" + BOMB_BODY),
                 id="after a comment and an instruction"),
    pytest.param(encoded("utf-8", text=BOMB_BODY.replace("DOCTYPE", "doctype")),
                 id="lower-case doctype"),
])
def test_doctype_is_refused_in_any_encoding(server, body):
    answer = post(server, "base_images", body, "application/xml")
    assert_error(answer, 400)
    assert "lollol" not in answer.text


@pytest.mark.parametrize("codec", ["utf-16", "utf-32", "utf-8-sig"])
def test_doctype_in_a_template_given_as_encoded_text_is_refused(server, codec):
    """A template sent as text (in a form) starting with a BOM character and a DOCTYPE."""
    template = "\ufeff" + LAUGHS + fake_tdl().replace("f17jeos", "&lol9;")
    answer = post(server, "base_images", urlencode({"template": template}, encoding=codec),
                  "application/x-www-form-urlencoded")
    assert_error(answer, 400)
