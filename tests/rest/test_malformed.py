"""Malformed and impossible requests: each gets a clear 4xx with a JSON body, never a 500, and
leaves no record behind. Also the state conflicts (409), 404s of every route form, and the
Range download of image bodies."""

from __future__ import annotations

import codecs
import time
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import falcon.testing
import pytest
from imagefactory_core.parameters import Parameter
from imagefactory_core.testing import ParameterError, make_config, wait_for_status

from .conftest import SEED_CREDENTIALS, fake_tdl

MAX_REQUEST_BYTES = 64 * 1024
COLLECTIONS = ("base_images", "target_images", "provider_images")
UNKNOWN = "00000000-0000-4000-8000-000000000000"

INSTALL = "<install type='url'><url>http://127.0.0.1:9/fake/</url></install>"
LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
          + "".join(f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n'
                    for i in range(1, 10))
          + "]>\n")
XXE = ('<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')


@pytest.fixture
def imagefactory_config(tmp_path):  # type: ignore[no-untyped-def]
    return make_config(tmp_path, max_request_bytes=MAX_REQUEST_BYTES)


def assert_error(result: falcon.testing.Result, status: int, *words: str) -> str:
    """The answer is `status`, JSON, with a non-empty title and a description naming
    `words`; returns the description."""
    assert result.status_code == status, result.text
    assert result.headers["content-type"].startswith("application/json"), result.headers
    body = result.json
    assert isinstance(body, dict), result.text
    assert isinstance(body.get("title"), str) and body["title"].strip(), body
    assert isinstance(body.get("description"), str) and body["description"].strip(), body
    for word in words:
        assert word.lower() in body["description"].lower(), (word, body["description"])
    return body["description"]


def assert_no_records(client: falcon.testing.TestClient) -> None:
    for collection in COLLECTIONS:
        listed = client.simulate_get(f"/imagefactory/{collection}")
        assert listed.status_code == 200, listed.text
        assert listed.json == {collection: []}


def post_json(client: falcon.testing.TestClient, collection: str,
              body: dict[str, Any]) -> falcon.testing.Result:
    return client.simulate_post(f"/imagefactory/{collection}", json=body)


def post_raw(client: falcon.testing.TestClient, collection: str, body: str | bytes,
             content_type: str) -> falcon.testing.Result:
    return client.simulate_post(f"/imagefactory/{collection}", body=body,
                                headers={"Content-Type": content_type})


def tdl_with(old: str, new: str) -> str:
    text = fake_tdl()
    assert old in text
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


# -- rejected requests on an empty service: 4xx, JSON, nothing created ------------------------
INTALL_TDL = tdl_with(INSTALL, INSTALL.replace("<install", "<intall")
                      .replace("</install>", "</intall>"))

REJECTED: list[tuple[str, str, Any, str, int, tuple[str, ...]]] = [
    # (case, collection, body (dict = JSON, (text, type) = raw), _, status, words in description)
    ("broken XML body", "base_images",
     ("<base_image><template>", "application/xml"), "", 400, ("xml",)),
    ("broken JSON body", "base_images",
     ('{"base_image": {"template": ', "application/json"), "", 400, ()),
    ("XML body with the wrong root", "target_images",
     ("<base_image><target>fakecloud</target></base_image>", "application/xml"), "", 400,
     ("<target_image>",)),
    ("invalid TDL", "base_images", {"base_image": {"template": INTALL_TDL}}, "", 400,
     ("intall", f"line {line_of(INTALL_TDL, '<intall')}")),
    ("TDL that is not well-formed", "base_images",
     {"base_image": {"template": fake_tdl().replace("</os>", "")}}, "", 400, ("line",)),
    ("template as a file path", "base_images", {"base_image": {"template": "/etc/passwd"}}, "",
     400, ("path",)),
    ("template as a URL", "base_images",
     {"base_image": {"template": "http://127.0.0.1:9/f17.tdl"}}, "", 400, ("url",)),
    ("template as a file URL", "base_images",
     {"base_image": {"template": "file:///etc/passwd"}}, "", 400, ("url",)),
    ("template not text", "base_images", {"base_image": {"template": 17}}, "", 400,
     ("template",)),
    ("empty body", "base_images", ("", "application/json"), "", 400, ("empty",)),
    ("missing wrapper key", "base_images", {"template": fake_tdl()}, "", 400, ("base_image",)),
    ("wrapper of the wrong kind", "target_images",
     {"base_image": {"template": fake_tdl(), "target": "fakecloud"}}, "", 400,
     ("target_image",)),
    ("wrapper not an object", "base_images", {"base_image": fake_tdl()}, "", 400,
     ("base_image",)),
    ("JSON body not an object", "base_images", ("[1, 2]", "application/json"), "", 400,
     ("base_image",)),
    ("unknown field", "base_images", {"base_image": {"template": fake_tdl(), "colour": "red"}},
     "", 400, ("colour",)),
    ("missing template", "base_images", {"base_image": {"parameters": {}}}, "", 400,
     ("template",)),
    ("unknown target", "target_images",
     {"target_image": {"template": fake_tdl(), "target": "no-such-cloud"}}, "", 400,
     ("no-such-cloud", "fakecloud")),
    ("missing target", "target_images", {"target_image": {"template": fake_tdl()}}, "", 400,
     ("target",)),
    ("unknown target for a provider image", "provider_images",
     {"provider_image": {"template": fake_tdl(), "target": "no-such-cloud", "provider": "p1",
                         "credentials": SEED_CREDENTIALS}}, "", 400,
     ("no-such-cloud", "fakecloud")),
    ("unknown OS", "base_images",
     {"base_image": {"template": tdl_with("<name>FakeOS</name>", "<name>Plan9</name>")}}, "",
     400, ("plan9", "fakeos")),
    ("unknown OS version", "target_images",
     {"target_image": {"template": tdl_with("<version>17</version>", "<version>x1</version>"),
                       "target": "fakecloud"}}, "", 400, ("x1", "fakeos")),
    ("unknown OS arch", "provider_images",
     {"provider_image": {"template": tdl_with("<arch>x86_64</arch>", "<arch>s390x</arch>"),
                         "target": "fakecloud", "provider": "p1",
                         "credentials": SEED_CREDENTIALS}}, "", 400, ("s390x", "fakeos")),
    ("wrong content type", "base_images", ("template=x", "text/plain"), "", 415,
     ("content-type",)),
    ("entity bomb in the request body", "base_images",
     (LAUGHS + "<base_image><template>&lol9;</template></base_image>", "application/xml"),
     "", 400, ("doctype",)),
    ("external entity in the request body", "base_images",
     (XXE + "<base_image><template>&xxe;</template></base_image>", "application/xml"),
     "", 400, ("doctype",)),
    ("entity bomb inside the template", "base_images",
     {"base_image": {"template": LAUGHS + tdl_with("<name>f17jeos</name>",
                                                   "<name>&lol9;</name>")}},
     "", 400, ("doctype",)),
    ("external entity inside the template", "target_images",
     {"target_image": {"template": XXE + tdl_with("<name>f17jeos</name>", "<name>&xxe;</name>"),
                       "target": "fakecloud"}},
     "", 400, ("doctype",)),
    ("provider image without credentials", "provider_images",
     {"provider_image": {"template": fake_tdl(), "target": "fakecloud", "provider": "p1"}},
     "", 400, ("credentials",)),
    ("provider image without provider", "provider_images",
     {"provider_image": {"template": fake_tdl(), "target": "fakecloud",
                         "credentials": SEED_CREDENTIALS}}, "", 400, ("provider",)),
    ("credentials that are not well-formed XML", "provider_images",
     {"provider_image": {"template": fake_tdl(), "target": "fakecloud", "provider": "p1",
                         "credentials": "<provider_credentials><fake_credentials>"}},
     "", 400, ("credentials",)),
    ("entity bomb in the credentials", "provider_images",
     {"provider_image": {"template": fake_tdl(), "target": "fakecloud", "provider": "p1",
                         "credentials": LAUGHS + "<provider_credentials>&lol9;"
                                                 "</provider_credentials>"}},
     "", 400, ("doctype",)),
    ("parameters a list", "base_images",
     {"base_image": {"template": fake_tdl(), "parameters": [1, 2]}}, "", 400, ("parameters",)),
    ("parameters a string", "target_images",
     {"target_image": {"template": fake_tdl(), "target": "fakecloud", "parameters": "x=1"}},
     "", 400, ("parameters",)),
    ("parameters a number in a form", "base_images",
     ("template=%3Ctemplate%2F%3E&parameters=5", "application/x-www-form-urlencoded"), "", 400,
     ("parameters",)),
    ("callbacks not http(s)", "base_images",
     {"base_image": {"template": fake_tdl(),
                     "parameters": {"callbacks": ["ftp://127.0.0.1/cb"]}}}, "", 400,
     ("callbacks", "ftp://127.0.0.1/")),
    ("callbacks a javascript: URL", "target_images",
     {"target_image": {"template": fake_tdl(), "target": "fakecloud",
                       "parameters": {"callbacks": ["javascript:alert(1)"]}}}, "", 400,
     ("callbacks",)),
    ("callbacks without a host", "provider_images",
     {"provider_image": {"template": fake_tdl(), "target": "fakecloud", "provider": "p1",
                         "credentials": SEED_CREDENTIALS,
                         "parameters": {"callbacks": ["http:///cb"]}}}, "", 400,
     ("callbacks",)),
    ("callbacks not a list", "base_images",
     {"base_image": {"template": fake_tdl(), "parameters": {"callbacks": {"url": "x"}}}}, "",
     400, ("callbacks",)),
    ("callbacks that cannot be parsed", "base_images",
     {"base_image": {"template": fake_tdl(),
                     "parameters": {"callbacks": ["http://[127.0.0.1/cb"]}}}, "", 400,
     ("callbacks",)),
    ("callbacks with an impossible port", "base_images",
     {"base_image": {"template": fake_tdl(),
                     "parameters": {"callbacks": ["http://127.0.0.1:99999/cb"]}}}, "", 400,
     ("callbacks",)),
    ("both a base image id and a template", "target_images",
     {"target_image": {"template": fake_tdl(), "target": "fakecloud",
                       "base_image_id": UNKNOWN}}, "", 400, ("either",)),
    ("a base image id that does not exist", "target_images",
     {"target_image": {"target": "fakecloud", "base_image_id": UNKNOWN}}, "", 404, (UNKNOWN,)),
    ("a target image id that does not exist", "provider_images",
     {"provider_image": {"provider": "p1", "credentials": SEED_CREDENTIALS,
                         "target_image_id": UNKNOWN}}, "", 404, (UNKNOWN,)),
]


@pytest.mark.parametrize(("collection", "body", "status", "words"),
                         [pytest.param(c, b, s, w, id=case) for case, c, b, _, s, w in REJECTED])
def test_rejected_request_is_a_clear_4xx_and_leaves_no_record(client, collection, body, status,
                                                              words):
    started = time.monotonic()
    if isinstance(body, tuple):
        result = post_raw(client, collection, *body)
    else:
        result = post_json(client, collection, body)
    assert_error(result, status, *words)
    assert time.monotonic() - started < 2.0, "rejecting the request took too long"
    assert_no_records(client)


# Deep enough to exhaust the JSON parser's recursion (60 000 characters, under the body limit),
# and deep enough to parse but not to be an image request.
DEEP = "[" * 30000 + "]" * 30000
NESTED = '{"a": ' * 100 + "1" + "}" * 100
DEEP_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000
DEEP_FORM = "[" * 3000 + "]" * 3000
DEEPLY_NESTED: list[tuple[str, str, str, str]] = [
    # (case, collection, body, content type): each a 400 saying how deep JSON may nest
    ("JSON body", "base_images", '{"base_image": {"template": ' + DEEP + "}}",
     "application/json"),
    ("JSON body that parses", "base_images", '{"base_image": {"parameters": ' + NESTED + "}}",
     "application/json"),
    ("JSON body of objects", "base_images", DEEP_OBJECT,
     "application/json"),
    ("form parameters", "base_images", urlencode({"template": fake_tdl(), "parameters": DEEP_FORM}),
     "application/x-www-form-urlencoded"),
    ("form parameters that parse", "base_images",
     urlencode({"template": fake_tdl(), "parameters": NESTED}),
     "application/x-www-form-urlencoded"),
    ("form provider", "provider_images",
     urlencode({"template": fake_tdl(), "target": "fakecloud", "credentials": SEED_CREDENTIALS,
                "provider": DEEP_OBJECT}),
     "application/x-www-form-urlencoded"),
    ("form credentials", "provider_images",
     urlencode({"template": fake_tdl(), "target": "fakecloud", "provider": "p1",
                "credentials": DEEP_OBJECT}),
     "application/x-www-form-urlencoded"),
    ("XML parameters", "base_images",
     f"<base_image><parameters>{DEEP}</parameters>{fake_tdl()}</base_image>",
     "application/xml"),
    ("XML provider", "provider_images",
     f"<provider_image><target>fakecloud</target><provider>{{{NESTED[1:]}</provider>"
     f"<credentials>{escape(SEED_CREDENTIALS)}</credentials>{fake_tdl()}</provider_image>",
     "application/xml"),
]


@pytest.mark.parametrize(("collection", "body", "content_type"),
                         [pytest.param(c, b, t, id=case) for case, c, b, t in DEEPLY_NESTED])
def test_deeply_nested_json_anywhere_is_a_400(client, collection, body, content_type):
    """JSON nesting is bounded wherever JSON may appear: never a RecursionError (a 500)."""
    assert len(body.encode()) < MAX_REQUEST_BYTES
    result = post_raw(client, collection, body, content_type)
    assert result.status_code == 400, result.text
    assert_error(result, 400, "nested more than 32 levels")
    assert_no_records(client)


@pytest.mark.parametrize("kind", ["list", "object"])
def test_deeply_nested_json_text_of_a_list_or_object_parameter_is_refused(kind):
    """Form and XML bodies carry every parameter as text; list and object parameters parse it."""
    expected = "a list of strings" if kind == "list" else "a JSON object"
    with pytest.raises(ParameterError, match=f"expected {expected}"):
        Parameter("deep", kind).coerce(DEEP if kind == "list" else DEEP_OBJECT)


def test_deeply_nested_provider_of_a_delete_is_a_400(client):
    result = client.simulate_delete(f"/imagefactory/provider_images/{UNKNOWN}",
                                    params={"provider": DEEP_OBJECT})
    assert result.status_code in (400, 404), result.text
    assert result.json["description"]


def test_xml_form_of_a_rejected_request_leaves_no_record(client):
    body = f"<target_image><target>fakecloud</target>{INTALL_TDL}</target_image>"
    assert_error(post_raw(client, "target_images", body, "application/xml"), 400, "intall")
    body = f"<target_image><target>nocloud</target>{fake_tdl()}</target_image>"
    assert_error(post_raw(client, "target_images", body, "application/xml"), 400, "fakecloud")
    assert_no_records(client)


def test_form_post_with_unknown_target_names_known_ones(client):
    result = post_raw(client, "provider_images",
                      "target=nocloud&provider=p1&credentials="
                      "%3Cprovider_credentials%3E%3Cfake_credentials%3E%3Cpassword%3Egood"
                      "%3C%2Fpassword%3E%3C%2Ffake_credentials%3E%3C%2Fprovider_credentials%3E"
                      "&template=" + "%3Ctemplate%3E",
                      "application/x-www-form-urlencoded")
    assert_error(result, 400, "nocloud", "fakecloud")
    assert_no_records(client)


def test_entity_bomb_is_refused_fast_even_at_size(client):
    """A bomb padded close to the body limit is refused without parsing the entities."""
    padding = "<!-- " + "x" * (MAX_REQUEST_BYTES - 4096) + " -->"
    body = LAUGHS + padding + "<base_image><template>&lol9;</template></base_image>"
    started = time.monotonic()
    result = post_raw(client, "base_images", body, "application/xml")
    assert_error(result, 400)
    assert time.monotonic() - started < 1.0
    assert "lollollol" not in result.text
    assert_no_records(client)


# -- XML bodies in any encoding: decoded as XML says, a DOCTYPE refused in every one -------------
# (case, byte order mark, codec, name in the XML declaration)
ENCODINGS = [
    ("UTF-8 with BOM", codecs.BOM_UTF8, "utf-8", "UTF-8"),
    ("UTF-16LE with BOM", codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    ("UTF-16BE with BOM", codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
    ("UTF-16LE without BOM", b"", "utf-16-le", "UTF-16"),
    ("UTF-16BE without BOM", b"", "utf-16-be", "UTF-16"),
    ("UTF-32LE with BOM", codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    ("UTF-32BE with BOM", codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    ("UTF-32LE without BOM", b"", "utf-32-le", "UTF-32"),
    ("UTF-32BE without BOM", b"", "utf-32-be", "UTF-32"),
]
HOSTILE = [
    ("entity bomb", LAUGHS + "<base_image><template>&lol9;</template></base_image>"),
    ("external entity", XXE + "<base_image><template>&xxe;</template></base_image>"),
]


def encoded(text: str, bom: bytes, codec: str, declared: str) -> bytes:
    """`text` as bytes in `codec` after `bom`, its XML declaration naming `declared`."""
    declaration = f'<?xml version="1.0" encoding="{declared}"?>'
    return bom + text.replace('<?xml version="1.0"?>', declaration).encode(codec)


@pytest.mark.parametrize(("bom", "codec", "declared"),
                         [pytest.param(*e[1:], id=e[0]) for e in ENCODINGS])
@pytest.mark.parametrize("body", [pytest.param(h[1], id=h[0]) for h in HOSTILE])
def test_doctype_is_refused_in_any_encoding(client, body, bom, codec, declared):
    started = time.monotonic()
    result = post_raw(client, "base_images", encoded(body, bom, codec, declared),
                      "application/xml")
    assert_error(result, 400, "request body", "doctype")
    assert time.monotonic() - started < 2.0
    assert "lollollol" not in result.text and "root:" not in result.text
    assert_no_records(client)


def test_doctype_hidden_in_utf7_escapes_is_refused(client):
    """A declared encoding is decoded before the DOCTYPE check: "+ADw-" is "<" in UTF-7."""
    declaration = '<?xml version="1.0" encoding="UTF-7"?>'
    rest = (LAUGHS.removeprefix('<?xml version="1.0"?>')
            + "<base_image><template>&lol9;</template></base_image>")
    body = declaration + rest.replace("<", "+ADw-")
    assert "<!" not in body
    result = post_raw(client, "base_images", body.encode("ascii"), "application/xml")
    assert_error(result, 400, "request body", "doctype")
    assert_no_records(client)


def test_entity_bomb_in_credentials_of_a_utf16_body_is_refused(client):
    credentials = escape(LAUGHS + "<provider_credentials>&lol9;</provider_credentials>")
    body = (f"<provider_image><target>fakecloud</target><provider>p1</provider>"
            f"{fake_tdl()}<credentials>{credentials}</credentials></provider_image>")
    result = post_raw(client, "provider_images",
                      codecs.BOM_UTF16_LE + body.encode("utf-16-le"), "application/xml")
    assert_error(result, 400, "credentials", "doctype")
    assert "lollollol" not in result.text
    assert_no_records(client)


@pytest.mark.parametrize(("bom", "codec", "declared"),
                         [pytest.param(*e[1:], id=e[0]) for e in ENCODINGS]
                         + [pytest.param(b"", "iso-8859-1", "ISO-8859-1", id="ISO-8859-1")])
def test_xml_body_in_a_declared_encoding_is_read(client, bom, codec, declared):
    template = tdl_with("<description>Fake 17</description>", "<description>Fäke 17</description>")
    body = f'<?xml version="1.0"?>\n<base_image>{template}</base_image>'
    result = post_raw(client, "base_images", encoded(body, bom, codec, declared),
                      "application/xml")
    assert result.status_code == 202, result.text
    assert "<description>Fäke 17</description>" in result.json["base_image"]["template"]


@pytest.mark.parametrize(("body", "words"), [
    pytest.param(b'<?xml version="1.0" encoding="x-no-such"?><base_image/>',
                 ("request body", "unknown encoding", "x-no-such"), id="unknown encoding"),
    pytest.param(b'<?xml version="1.0" encoding="base64"?><base_image/>',
                 ("request body", "unknown encoding", "base64"), id="not a text encoding"),
    pytest.param(b'<?xml version="1.0" encoding="UTF-16"?><base_image/>',
                 ("request body", "UTF-16", "not written in it"), id="declared, not used"),
    pytest.param(b'<?xml version="1.0"?><base_image>F\xe4ke</base_image>',
                 ("request body", "not UTF-8 text"), id="Latin-1 undeclared"),
    pytest.param(codecs.BOM_UTF16_LE + "<base_image/>".encode("utf-16-le")[:-1],
                 ("request body", "not UTF-16LE text"), id="truncated UTF-16"),
])
def test_xml_body_that_cannot_be_decoded_is_a_clear_400(client, body, words):
    assert_error(post_raw(client, "base_images", body, "application/xml"), 400, *words)
    assert_no_records(client)


def test_oversized_body_is_413(client):
    big = {"base_image": {"template": fake_tdl() + "<!--" + "x" * MAX_REQUEST_BYTES + "-->"}}
    assert_error(post_json(client, "base_images", big), 413, str(MAX_REQUEST_BYTES))
    form = "template=" + "x" * (MAX_REQUEST_BYTES + 1)
    assert_error(post_raw(client, "base_images", form, "application/x-www-form-urlencoded"),
                 413)
    assert_no_records(client)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_accept_html_is_406(client, method):
    kwargs: dict[str, Any] = {"headers": {"Accept": "text/html"}}
    if method == "POST":
        kwargs["json"] = {"base_image": {"template": fake_tdl()}}
    result = client.simulate_request(method, "/imagefactory/base_images", **kwargs)
    assert_error(result, 406)
    assert_no_records(client)


def test_accept_any_or_json_is_served(client):
    for accept in ("*/*", "application/json", "application/*", "text/html, application/json"):
        result = client.simulate_get("/imagefactory/base_images", headers={"Accept": accept})
        assert result.status_code == 200, (accept, result.text)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_unsupported_method_is_405_json(client, method):
    assert_error(client.simulate_request(method, "/imagefactory/base_images", json={}), 405)


def test_unknown_route_is_404_json(client):
    assert_error(client.simulate_get("/imagefactory/no_such_images"), 404)


# -- unknown ids on every route form ------------------------------------------------------------
UNKNOWN_PATHS = [
    ("GET", f"/imagefactory/base_images/{UNKNOWN}"),
    ("DELETE", f"/imagefactory/base_images/{UNKNOWN}"),
    ("GET", f"/imagefactory/target_images/{UNKNOWN}"),
    ("DELETE", f"/imagefactory/target_images/{UNKNOWN}"),
    ("GET", f"/imagefactory/provider_images/{UNKNOWN}"),
    ("DELETE", f"/imagefactory/provider_images/{UNKNOWN}"),
    ("GET", f"/imagefactory/base_images/{UNKNOWN}/target_images"),
    ("POST", f"/imagefactory/base_images/{UNKNOWN}/target_images"),
    ("GET", f"/imagefactory/base_images/{UNKNOWN}/target_images/{UNKNOWN}"),
    ("GET", f"/imagefactory/target_images/{UNKNOWN}/provider_images"),
    ("POST", f"/imagefactory/target_images/{UNKNOWN}/provider_images"),
    ("DELETE", f"/imagefactory/target_images/{UNKNOWN}/provider_images/{UNKNOWN}"),
    ("GET", f"/imagefactory/base_images/{UNKNOWN}/target_images/{UNKNOWN}/provider_images"),
    ("POST", f"/imagefactory/base_images/{UNKNOWN}/target_images/{UNKNOWN}/provider_images"),
    ("GET", f"/imagefactory/base_images/{UNKNOWN}/raw_image"),
    ("HEAD", f"/imagefactory/base_images/{UNKNOWN}/raw_image"),
    ("GET", f"/imagefactory/target_images/{UNKNOWN}/raw_image"),
    ("GET", f"/imagefactory/base_images/{UNKNOWN}/log"),
    ("GET", f"/imagefactory/target_images/{UNKNOWN}/log"),
    ("GET", f"/imagefactory/provider_images/{UNKNOWN}/log"),
    ("GET", "/imagefactory/plugins/NoSuchPlugin"),
]


@pytest.mark.parametrize(("method", "path"), UNKNOWN_PATHS)
def test_unknown_id_is_404(client, method, path):
    body = {"target_image" if path.endswith("target_images") else "provider_image": {
        "target": "fakecloud", "provider": "p1", "credentials": SEED_CREDENTIALS}}
    result = client.simulate_request(method, path,
                                     json=body if method == "POST" else None)
    if method == "HEAD":
        assert result.status_code == 404
    else:
        assert_error(result, 404, UNKNOWN if UNKNOWN in path else "NoSuchPlugin")
    assert_no_records(client)


# -- ids that exist but not where the URL puts them ----------------------------------------------
@pytest.fixture
def chain(client):  # type: ignore[no-untyped-def]
    """Two complete base images A and B; a target T built from A; a provider image P of T."""
    a = post_json(client, "base_images", {"base_image": {"template": fake_tdl()}}).json
    b = post_json(client, "base_images", {"base_image": {"template": fake_tdl()}}).json
    a_id, b_id = a["base_image"]["id"], b["base_image"]["id"]
    t = client.simulate_post(f"/imagefactory/base_images/{a_id}/target_images",
                             json={"target_image": {"target": "fakecloud"}})
    assert t.status_code == 202, t.text
    t_id = t.json["target_image"]["id"]
    assert wait_for_status(client, f"/imagefactory/target_images/{t_id}")["status"] == "COMPLETE"
    p = client.simulate_post(f"/imagefactory/target_images/{t_id}/provider_images",
                             json={"provider_image": {"provider": "p1",
                                                      "credentials": SEED_CREDENTIALS}})
    assert p.status_code == 202, p.text
    p_id = p.json["provider_image"]["id"]
    assert wait_for_status(client, f"/imagefactory/provider_images/{p_id}")["status"] \
        == "COMPLETE"
    wait_for_status(client, f"/imagefactory/base_images/{b_id}")
    return {"A": a_id, "B": b_id, "T": t_id, "P": p_id}


MISPLACED = [
    ("GET", "/imagefactory/base_images/{B}/target_images/{T}"),
    ("DELETE", "/imagefactory/base_images/{B}/target_images/{T}"),
    ("GET", "/imagefactory/base_images/{B}/target_images/{T}/raw_image"),
    ("GET", "/imagefactory/base_images/{B}/target_images/{T}/log"),
    ("GET", "/imagefactory/base_images/{B}/target_images/{T}/provider_images"),
    ("GET", "/imagefactory/base_images/{B}/target_images/{T}/provider_images/{P}"),
    ("GET", "/imagefactory/base_images/{A}/target_images/{A}/provider_images/{P}"),
    ("GET", "/imagefactory/target_images/{A}/provider_images/{P}"),
    ("GET", "/imagefactory/target_images/{A}/provider_images"),
    ("POST", "/imagefactory/base_images/{B}/target_images/{T}/provider_images"),
    # an id of another kind in a collection
    ("GET", "/imagefactory/base_images/{T}"),
    ("GET", "/imagefactory/target_images/{A}"),
    ("GET", "/imagefactory/provider_images/{T}"),
    ("DELETE", "/imagefactory/base_images/{T}"),
    ("GET", "/imagefactory/target_images/{P}/raw_image"),
    ("GET", "/imagefactory/base_images/{T}/target_images"),
]


def test_id_under_the_wrong_parent_or_kind_is_404(client, chain):
    body = {"provider_image": {"provider": "p1", "credentials": SEED_CREDENTIALS}}
    before = {c: client.simulate_get(f"/imagefactory/{c}").json for c in COLLECTIONS}
    for method, template in MISPLACED:
        path = template.format(**chain)
        result = client.simulate_request(method, path, json=body if method == "POST" else None)
        assert result.status_code == 404, (method, template, result.text)
        assert_error(result, 404)
    after = {c: client.simulate_get(f"/imagefactory/{c}").json for c in COLLECTIONS}
    assert after == before
    for name, kind in (("A", "base_images"), ("T", "target_images"), ("P", "provider_images")):
        image = client.simulate_get(f"/imagefactory/{kind}/{chain[name]}").json
        assert next(iter(image.values()))["status"] == "COMPLETE"


# -- conflicts with the image's state ------------------------------------------------------------
def test_target_on_a_failed_base_is_409_and_creates_nothing(client):
    base = post_json(client, "base_images",
                     {"base_image": {"template": fake_tdl("fail-me")}}).json["base_image"]
    failed = wait_for_status(client, f"/imagefactory/base_images/{base['id']}")
    assert failed["status"] == "FAILED"
    nested = client.simulate_post(f"/imagefactory/base_images/{base['id']}/target_images",
                                  json={"target_image": {"target": "fakecloud"}})
    description = assert_error(nested, 409, base["id"], "FAILED")
    assert "fail-me" in description
    by_id = post_json(client, "target_images",
                      {"target_image": {"target": "fakecloud", "base_image_id": base["id"]}})
    assert_error(by_id, 409, base["id"])
    assert client.simulate_get("/imagefactory/target_images").json == {"target_images": []}
    assert_error(client.simulate_get(f"/imagefactory/base_images/{base['id']}/raw_image"), 409,
                 "FAILED")


def test_provider_on_a_deleted_target_is_409(client):
    target = post_json(client, "target_images", {"target_image": {
        "template": fake_tdl(), "target": "fakecloud"}}).json["target_image"]
    href = f"/imagefactory/target_images/{target['id']}"
    assert wait_for_status(client, href)["status"] == "COMPLETE"
    assert client.simulate_delete(href).status_code == 204
    result = client.simulate_post(f"{href}/provider_images", json={"provider_image": {
        "provider": "p1", "credentials": SEED_CREDENTIALS}})
    assert_error(result, 409, "DELETED")
    assert client.simulate_get("/imagefactory/provider_images").json == {"provider_images": []}


def test_raw_image_of_an_unfinished_image_is_409(client):
    base = post_json(client, "base_images", {"base_image": {
        "template": fake_tdl(), "parameters": {"fake_build_seconds": 30}}}).json["base_image"]
    href = f"/imagefactory/base_images/{base['id']}"
    assert_error(client.simulate_get(f"{href}/raw_image"), 409, "COMPLETE")
    assert client.simulate_head(f"{href}/raw_image").status_code == 409
    assert client.simulate_delete(href).status_code == 204
    assert wait_for_status(client, href, timeout=20)["status"] == "DELETED"
    assert_error(client.simulate_get(f"{href}/raw_image"), 409, "DELETED")


# -- Range downloads -----------------------------------------------------------------------------
@pytest.fixture
def complete_base(client, storage):  # type: ignore[no-untyped-def]
    base = post_json(client, "base_images",
                     {"base_image": {"template": fake_tdl()}}).json["base_image"]
    href = f"/imagefactory/base_images/{base['id']}"
    assert wait_for_status(client, href)["status"] == "COMPLETE"
    return href, (storage / f"{base['id']}.body").read_bytes()


def test_full_download(client, complete_base):
    href, body = complete_base
    result = client.simulate_get(f"{href}/raw_image")
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/octet-stream"
    assert result.headers["accept-ranges"] == "bytes"
    assert int(result.headers["content-length"]) == len(body) == 4 * 1024 * 1024
    assert result.content == body
    assert body.startswith(b"FAKEOS f17jeos 17\n")
    head = client.simulate_head(f"{href}/raw_image")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(body)


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-15", 0, 15),
    ("bytes=7-13", 7, 13),
    ("bytes=1048570-1048585", 1048570, 1048585),
    ("bytes=4194300-", 4194300, 4194303),
    ("bytes=4194300-99999999", 4194300, 4194303),
    ("bytes=-10", 4194294, 4194303),
    ("bytes=-99999999", 0, 4194303),
])
def test_range_download(client, complete_base, header, first, last):
    href, body = complete_base
    result = client.simulate_get(f"{href}/raw_image", headers={"Range": header})
    assert result.status_code == 206, result.text
    assert result.headers["content-range"] == f"bytes {first}-{last}/{len(body)}"
    assert int(result.headers["content-length"]) == last - first + 1
    assert result.content == body[first:last + 1]


@pytest.mark.parametrize("header", ["bytes=4194304-", "bytes=5000000-5000010"])
def test_unsatisfiable_range_is_416(client, complete_base, header):
    href, body = complete_base
    result = client.simulate_get(f"{href}/raw_image", headers={"Range": header})
    assert_error(result, 416, f"{len(body)} bytes")
    assert result.headers["content-range"] == f"bytes */{len(body)}"


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=10-2", "bytes=1-2,5-6"])
def test_malformed_range_is_a_4xx_not_a_500(client, complete_base, header):
    href, _ = complete_base
    result = client.simulate_get(f"{href}/raw_image", headers={"Range": header})
    assert 400 <= result.status_code < 500, result.text
    assert_error(result, result.status_code)


def test_range_in_another_unit_is_ignored(client, complete_base):
    href, body = complete_base
    result = client.simulate_get(f"{href}/raw_image", headers={"Range": "pages=1-2"})
    assert result.status_code == 200
    assert "content-range" not in result.headers
    assert result.content == body
