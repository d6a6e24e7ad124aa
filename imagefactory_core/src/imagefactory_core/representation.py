"""The JSON shape of images, shared by the API and the status callbacks (the seed's keys)."""

from __future__ import annotations

import json
from typing import Any

from .model import ImageKind, ImageRecord, ImageRef
from .redaction import redact_parameters


def image_href(base_url: str, record: ImageRecord | ImageRef,
               prefix: str | None = None) -> str:
    """`prefix` is the collection URL the client used (nested forms keep their path)."""
    return f"{prefix or base_url + '/imagefactory/' + record.kind.collection}/{record.id}"


def summary(base_url: str, record: ImageRecord | ImageRef,
            prefix: str | None = None) -> dict[str, Any]:
    return {record.kind.singular: {"_type": record.kind.value, "id": record.id,
                                   "href": image_href(base_url, record, prefix)}}


def provider_value(raw: str | None) -> Any:
    """Providers given as JSON objects are stored as JSON text and shown as objects again."""
    if raw and raw.lstrip().startswith("{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def full(base_url: str, record: ImageRecord, prefix: str | None = None,
         children: list[ImageRef] | None = None) -> dict[str, Any]:
    href = image_href(base_url, record, prefix)
    body: dict[str, Any] = {
        "_type": record.kind.value,
        "id": record.id,
        "href": href,
        "status": record.status.value,
        "status_detail": {"activity": record.status_detail.activity,
                          "error": record.status_detail.error},
        "percent_complete": record.percent_complete,
        "icicle": record.icicle,
        # Stored redacted; redacted again (it is idempotent) for records stored by a version
        # that kept callback URLs' paths and queries, where receivers' tokens travel.
        "parameters": redact_parameters(record.parameters),
        "properties": record.properties,
        "template": record.template,
        "log": f"{href}/log",
    }
    if record.kind is ImageKind.TARGET:
        body["base_image_id"] = record.base_image_id
        body["target"] = record.target
        if record.target_image_id:  # made from that target image (an OVA of a vsphere image)
            body["target_image_id"] = record.target_image_id
    if record.kind is ImageKind.PROVIDER:
        body["target_image_id"] = record.target_image_id
        body["target"] = record.target
        body["provider"] = provider_value(record.provider)
        body["identifier_on_provider"] = record.identifier_on_provider
        body["provider_account_identifier"] = record.provider_account_identifier
    else:
        body["raw_image"] = f"{href}/raw_image"
    if children is not None:
        child_kind = ImageKind.TARGET if record.kind is ImageKind.BASE else ImageKind.PROVIDER
        body[child_kind.collection] = {
            child_kind.collection: [summary(base_url, c, f"{href}/{child_kind.collection}")
                                    for c in children]
        }
    return {record.kind.singular: body}
