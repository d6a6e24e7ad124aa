"""Request bodies: the same image request as JSON, XML or form fields (the seed's three forms).

JSON   {"target_image": {"target": "ec2", "parameters": {…}}}
XML    <target_image><target>ec2</target></target_image>
form   target=ec2&provider=ec2-us-east-1&credentials=<provider_credentials>…
       or the same fields as multipart/form-data (``curl -F``, as the original took them),
       where a field may also be a file part (``-F template=@web.tdl``)

XML bodies and XML credentials go through the project's one safe XML parser
(`imagefactory_core.tdl.safexml`): decoded as their byte order mark or XML declaration says, a
DOCTYPE refused in any encoding, entity resolution, DTD loading and network access off. JSON
bodies, and JSON given as text inside any body (``parameters``, ``provider``, ``credentials``),
go through `imagefactory_core.jsontext`: nesting is bounded, so a deep value is a 400.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import falcon
from falcon.media import BaseHandler, MultipartFormHandler
from falcon.media.multipart import MultipartForm
from lxml import etree

from .. import jsontext
from ..errors import InvalidRequest, TemplateError
from ..tdl.safexml import parse_xml, xml_text

XML_TYPES = ("application/xml", "text/xml")
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
FIELDS = ("template", "target", "provider", "credentials", "parameters", "base_image_id",
          "target_image_id")
# The body limit (max_request_bytes) refuses larger bodies first; this bounds the parser itself.
MAX_XML_BYTES = 16 * 1024 * 1024


def safe_xml(data: bytes | str, what: str) -> etree._Element:
    """Parse untrusted XML: no DOCTYPE in any encoding, no entities, no DTD, no network.

    Errors are `InvalidRequest`s naming `what` ("request body", "credentials").
    """
    try:
        return parse_xml(xml_text(data, what=what, kind="XML text", max_bytes=MAX_XML_BYTES),
                         what)
    except TemplateError as exc:  # not "Invalid template": a body or credentials is a bad request
        raise InvalidRequest(str(exc)) from exc


class XMLHandler(BaseHandler):
    """Falcon media handler: XML request bodies become lxml elements."""

    def deserialize(self, stream: Any, content_type: str | None, content_length: int | None,
                    ) -> etree._Element:
        return safe_xml(stream.read(), "request body")

    def serialize(self, media: Any, content_type: str | None) -> bytes:
        return etree.tostring(media)


class JSONHandler(BaseHandler):
    """Falcon media handler: JSON request bodies, parsed with bounded nesting.

    Refusals are `InvalidRequest`s (400) that say what is wrong with the body.
    """

    def deserialize(self, stream: Any, content_type: str | None, content_length: int | None,
                    ) -> Any:
        data = stream.read()
        if not data:
            raise InvalidRequest("the JSON request body is empty")
        return load_json(data, "the JSON request body")

    def serialize(self, media: Any, content_type: str | None) -> bytes:
        return json.dumps(media, ensure_ascii=False).encode()


def load_json(text: str | bytes, what: str) -> Any:
    """Parse client JSON; `InvalidRequest` naming `what` if it is not JSON or nests too deep."""
    try:
        return jsontext.loads(text)
    except UnicodeDecodeError:
        raise InvalidRequest(f"{what} is not UTF-8 text; send JSON in UTF-8") from None
    except jsontext.TooDeep as exc:
        raise InvalidRequest(f"{what} is refused: {exc} (an image request needs only a few)"
                             ) from None
    except ValueError as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc}") from None


@dataclass
class ImageRequest:
    template: str | None = None
    target: str | None = None
    provider: str | dict[str, Any] | None = None
    credentials: dict[str, Any] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    base_image_id: str | None = None
    target_image_id: str | None = None


def read_image_request(req: falcon.Request, singular: str, *, body_required: bool = True,
                       ) -> ImageRequest:
    """Parse the body of a POST (or DELETE) on an image collection, whatever its format."""
    if not req.content_length and not req.get_header("Transfer-Encoding"):
        if body_required:
            raise InvalidRequest(f"empty request body: send {{\"{singular}\": {{…}}}} as JSON, "
                                 f"<{singular}>…</{singular}> as XML, or form fields")
        if "credentials" in req.params:
            # a URL ends up in access logs, proxies' logs and shell histories
            raise InvalidRequest("send 'credentials' in the request body, never in the URL")
        return _from_fields(dict(req.params))
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    if content_type in XML_TYPES:
        return _from_xml(req.get_media(), singular)
    if content_type == MULTIPART_TYPE:
        return _from_fields(_multipart_fields(req.get_media()))
    if content_type == FORM_TYPE:
        media = req.get_media()
        repeated = sorted(k for k, v in media.items() if not isinstance(v, str))
        if repeated:
            raise InvalidRequest(f"form field(s) {', '.join(repeated)} given more than once")
        return _from_fields(dict(media))
    if content_type in ("application/json", ""):
        media = req.get_media()
        if not isinstance(media, dict) or singular not in media:
            raise InvalidRequest(f"the JSON body must be an object wrapped in the key "
                                 f"{singular!r}: {{\"{singular}\": {{…}}}}")
        inner = media[singular]
        if not isinstance(inner, dict):
            raise InvalidRequest(f"{singular!r} must be a JSON object")
        return _from_fields(inner)
    raise falcon.HTTPUnsupportedMediaType(
        description=f"unsupported Content-Type {content_type!r}: use application/json, "
                    "application/xml, application/x-www-form-urlencoded or "
                    "multipart/form-data")


def multipart_handler(max_bytes: int) -> MultipartFormHandler:
    """Falcon's multipart parser, bounded: no more parts than there are fields, none larger
    than a whole request may be (`max_request_bytes`, which `BodyLimit` already enforces on
    the body)."""
    handler = MultipartFormHandler()
    handler.parse_options.max_body_part_count = len(FIELDS)
    handler.parse_options.max_body_part_buffer_size = max_bytes
    return handler


def _multipart_fields(form: MultipartForm) -> dict[str, str]:
    """The fields of a multipart/form-data body: text parts and file parts alike (``curl -F
    template=@web.tdl`` sends the file's content), decoded as their charset says, else
    UTF-8."""
    values: dict[str, str] = {}
    try:
        for part in form:
            name = part.name
            if not name:
                raise InvalidRequest("a multipart/form-data part has no name: name each part "
                                     f"after a field ({', '.join(FIELDS)})")
            if name in values:
                raise InvalidRequest(f"form field {name} given more than once")
            charset = falcon.parse_header(part.content_type)[1].get("charset", "utf-8")
            try:
                values[name] = part.data.decode(charset)
            except (LookupError, UnicodeDecodeError):
                raise InvalidRequest(f"form field {name} is not {charset} text; send text in "
                                     "UTF-8 (or name its charset)") from None
    except falcon.MediaMalformedError as exc:
        raise InvalidRequest(
            f"the multipart/form-data body cannot be read: {exc.description} (it takes at "
            f"most {len(FIELDS)} parts, one for each field: {', '.join(FIELDS)}; none larger "
            "than the request limit, max_request_bytes)") from None
    return values


def _from_fields(values: dict[str, Any]) -> ImageRequest:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidRequest(f"unknown field(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(FIELDS)}")
    parameters = values.get("parameters") or {}
    if isinstance(parameters, str):
        parameters = _json_object(parameters, "parameters")
    if not isinstance(parameters, dict):
        raise InvalidRequest("'parameters' must be an object")
    template = values.get("template")
    if template is not None and not isinstance(template, str):
        raise InvalidRequest("'template' must be TDL XML text")
    return ImageRequest(
        template=template,
        target=_text(values, "target"),
        provider=parse_provider(values.get("provider")),
        credentials=parse_credentials(values.get("credentials")),
        parameters=parameters,
        base_image_id=_text(values, "base_image_id"),
        target_image_id=_text(values, "target_image_id"),
    )


def _text(values: dict[str, Any], key: str) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{key!r} must be a string")
    return value.strip() or None


def _json_object(text: str, what: str) -> dict[str, Any]:
    value = load_json(text, repr(what))
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what!r} must be a JSON object")
    return value


def parse_provider(value: Any) -> str | dict[str, Any] | None:
    """A provider is a name (``ec2-us-east-1``) or a JSON object (endpoints, region …)."""
    if value is None or isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise InvalidRequest("'provider' must be a name or a JSON object")
    text = value.strip()
    return _json_object(text, "provider") if text.startswith("{") else (text or None)


def parse_credentials(value: Any) -> dict[str, Any] | None:
    """Credentials as the seed's XML (``<provider_credentials><ec2_credentials>…``) or JSON.

    XML becomes ``{"ec2_credentials": {"access_key": …, …}}``.
    """
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, etree._Element):
        return _credentials_from_element(value)
    if not isinstance(value, str):
        raise InvalidRequest("'credentials' must be XML, a JSON object or an object")
    text = value.strip()
    if not text:
        return None
    if text.startswith("{"):
        return _json_object(text, "credentials")
    return _credentials_from_element(safe_xml(text, "credentials"))


def _credentials_from_element(root: etree._Element) -> dict[str, Any]:
    if root.tag == "credentials" and len(root):
        root = root[0]
    groups = list(root) if root.tag == "provider_credentials" else [root]
    result: dict[str, Any] = {}
    for group in groups:
        if not isinstance(group.tag, str):
            continue
        result[group.tag] = {child.tag: (child.text or "").strip() for child in group
                             if isinstance(child.tag, str)}
    if not result:
        raise InvalidRequest("'credentials' XML holds no <…_credentials> element")
    return result


def _from_xml(root: etree._Element, singular: str) -> ImageRequest:
    if root.tag != singular:
        raise InvalidRequest(f"the XML body's root element must be <{singular}>, "
                             f"not <{root.tag}>")
    values: dict[str, Any] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "template":
            # The TDL may be inline XML or escaped text inside <template>.
            values["template"] = (etree.tostring(child, encoding="unicode", with_tail=False)
                                  if len(child) else (child.text or ""))
        elif child.tag == "credentials":
            values["credentials"] = child[0] if len(child) else (child.text or "")
        elif child.tag == "provider_credentials":
            values["credentials"] = child
        elif child.tag == "parameters":
            values["parameters"] = _xml_parameters(child)
        else:
            values[child.tag] = child.text or ""
    request = _from_fields({k: v for k, v in values.items() if k != "credentials"})
    request.credentials = parse_credentials(values.get("credentials"))
    return request


def _xml_parameters(element: etree._Element) -> dict[str, Any]:
    """``<parameters><parameter name="k" value="v"/></parameters>`` or ``<k>v</k>``."""
    if not len(element) and (element.text or "").strip():
        return _json_object(element.text or "", "parameters")
    parameters: dict[str, Any] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "parameter" and child.get("name"):
            parameters[child.get("name")] = child.get("value", child.text or "")
        else:
            parameters[child.tag] = child.text or ""
    return parameters
