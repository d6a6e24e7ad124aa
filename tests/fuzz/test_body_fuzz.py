"""Fuzzing the request body parsers (`api/media.py`): whatever body, content type and query a
client sends to an image collection, `read_image_request` returns an `ImageRequest` or raises
`InvalidRequest` (a 400 with a message) or a 4xx `falcon.HTTPError`, and nothing else.

The requests carry the media handlers of an app built by `create_app`, so the JSON, XML and
form handlers under test are the ones the service uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import falcon
import falcon.testing
import pytest
from hypothesis import given
from hypothesis import strategies as st
from imagefactory_core.api.app import ImageFactoryApp, create_app
from imagefactory_core.api.media import FIELDS, ImageRequest, read_image_request
from imagefactory_core.errors import InvalidRequest
from imagefactory_core.plugins import load_plugins
from imagefactory_core.testing import make_config
from lxml import etree

from tests.plugins import fake_cloud, fake_os

from .conftest import HANG_SECONDS, XML_CHARS, bounded, encoded, markup_text

pytestmark = pytest.mark.timeout(HANG_SECONDS)

SINGULARS = ["base_image", "target_image", "provider_image"]
CONTENT_TYPES = ["application/json", "application/xml", "text/xml",
                 "application/x-www-form-urlencoded", "application/json; charset=latin-1",
                 "application/xml; charset=utf-16", "text/plain", "multipart/form-data", "",
                 "application/x-www-form-urlencoded; charset=utf-8", "APPLICATION/JSON"]
# Names a body may use, and some it may not: the credentials' own elements among them.
NAMES = [*FIELDS, *SINGULARS, "provider_credentials", "fake_credentials", "ec2_credentials",
         "username", "password", "parameter", "name", "value", "callbacks", "marker", "colour"]
CREDENTIALS = ("<provider_credentials><fake_credentials><username>a</username>"
               "<password>good</password></fake_credentials></provider_credentials>")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageFactoryApp]:
    plugins = load_plugins(discover=False, extra=[("FakeOS", fake_os), ("FakeCloud", fake_cloud)])
    built = create_app(make_config(tmp_path_factory.mktemp("body-fuzz")), plugins)
    yield built
    built.services.engine.shutdown(timeout=30)


def reads_or_refuses(app: ImageFactoryApp, singular: str, body: bytes,
                     content_type: str | None, *, method: str = "POST",
                     query: str = "") -> ImageRequest | None:
    """The contract under test: an `ImageRequest`, or a 400/4xx that says what is wrong."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    req = falcon.testing.create_req(options=app.req_options, method=method, body=body,
                                    path=f"/imagefactory/{singular}s", query_string=query,
                                    headers=headers)
    try:
        request = read_image_request(req, singular, body_required=method == "POST")
    except InvalidRequest as error:
        assert str(error).strip(), "an InvalidRequest without a message"
        return None
    except falcon.HTTPError as error:
        assert 400 <= error.status_code < 500, error
        assert error.description, error
        return None
    assert isinstance(request, ImageRequest)
    return request


def test_a_valid_body_of_each_kind_is_read(app):
    """The fuzzed bodies below are variations of these."""
    as_json = json.dumps({"provider_image": {"target": "fakecloud", "provider": "p1",
                                             "credentials": CREDENTIALS}}).encode()
    as_xml = (f"<provider_image><target>fakecloud</target><provider>p1</provider>"
              f"<credentials>{CREDENTIALS}</credentials></provider_image>").encode()
    as_form = urlencode({"target": "fakecloud", "provider": "p1",
                         "credentials": CREDENTIALS}).encode()
    for body, content_type in ((as_json, "application/json"), (as_xml, "application/xml"),
                               (as_form, "application/x-www-form-urlencoded")):
        request = reads_or_refuses(app, "provider_image", body, content_type)
        assert request is not None, content_type
        assert request.credentials == {"fake_credentials": {"username": "a", "password": "good"}}


# -- strategies ---------------------------------------------------------------------------------
def text_value() -> st.SearchStrategy[str]:
    return st.sampled_from(["", " ", "fakecloud", "p1", "{", "{}", '{"a": 1}', "[1]",
                            CREDENTIALS, "<template/>", "null"]) | markup_text()


def json_value() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | text_value()
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=5), inner,
                                          max_size=4), max_leaves=12)


@st.composite
def json_body(draw: st.DrawFn) -> bytes:
    """A JSON document: usually the wrapper key around fields, sometimes anything at all;
    some nested far deeper than any request needs."""
    fields = st.dictionaries(st.sampled_from(NAMES), json_value(), max_size=5)
    document = draw(st.dictionaries(st.sampled_from(SINGULARS), fields, min_size=1, max_size=2)
                    | json_value())
    text = json.dumps(document)
    depth = draw(st.sampled_from([0, 0, 0, 40, 1000, 100_000]))
    if depth:
        text = "[" * depth + text + "]" * depth
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"])),
                       errors="replace")


@st.composite
def xml_element(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    element = etree.Element(draw(st.sampled_from(NAMES)))
    if draw(st.booleans()):
        element.set(draw(st.sampled_from(["name", "value", "type"])),
                    draw(st.text(XML_CHARS, max_size=10)))
    element.text = draw(st.none() | st.sampled_from(["fakecloud", "p1", '{"marker": "m"}',
                                                      CREDENTIALS, "{"])
                        | st.text(XML_CHARS, max_size=10))
    if depth < 3:
        element.extend(draw(st.lists(xml_element(depth + 1), max_size=3)))
    if draw(st.integers(0, 9)) == 0:
        element.append(etree.Comment("c"))
    return element


@st.composite
def xml_body(draw: st.DrawFn) -> bytes:
    root = draw(xml_element())
    if draw(st.booleans()):
        root.tag = draw(st.sampled_from(SINGULARS))
    text = etree.tostring(root, encoding="unicode")
    return draw(encoded(st.just(text)) | st.just(text.encode()))


@st.composite
def form_body(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(st.sampled_from(NAMES) | st.text(max_size=4), text_value()),
                          max_size=6))
    body = urlencode(pairs).encode()
    raw = st.binary(max_size=40) | st.sampled_from([b"%", b"%zz", b"%ff%fe", b"&&==", b"a=%00"])
    return body + draw(st.just(b"") | raw)


# -- the fuzz tests -----------------------------------------------------------------------------
@bounded(300)
@given(st.sampled_from(SINGULARS), json_body(), st.sampled_from(["application/json", ""]))
def test_json_bodies(app, singular: str, body: bytes, content_type: str) -> None:
    reads_or_refuses(app, singular, body, content_type)


@bounded(300)
@given(st.sampled_from(SINGULARS), xml_body() | encoded(markup_text()),
       st.sampled_from(["application/xml", "text/xml"]))
def test_xml_bodies(app, singular: str, body: bytes, content_type: str) -> None:
    reads_or_refuses(app, singular, body, content_type)


@bounded(300)
@given(st.sampled_from(SINGULARS), form_body())
def test_form_bodies(app, singular: str, body: bytes) -> None:
    reads_or_refuses(app, singular, body, "application/x-www-form-urlencoded")


@bounded(300)
@given(st.sampled_from(SINGULARS), st.binary(max_size=300) | json_body() | xml_body()
       | form_body(), st.sampled_from(CONTENT_TYPES) | st.none() | st.text(max_size=20))
def test_any_body_under_any_content_type(app, singular: str, body: bytes,
                                         content_type: str | None) -> None:
    reads_or_refuses(app, singular, body, content_type)


@bounded(200)
@given(st.sampled_from(SINGULARS), st.just(b"") | form_body(),
       st.lists(st.tuples(st.sampled_from(NAMES), text_value()), max_size=4).map(urlencode))
def test_delete_bodies_and_query_strings(app, singular: str, body: bytes, query: str) -> None:
    """A DELETE may come without a body; then its fields are read from the query string."""
    reads_or_refuses(app, singular, body, "application/x-www-form-urlencoded" if body else None,
                     method="DELETE", query=query)
