"""Where to push: the request's provider, ``ec2-<region>`` as in the seed, or a JSON object
naming the region and, for any EC2-compatible cloud (or a local moto), the endpoints.

JSON keys: ``region`` (required); ``endpoint_url`` for every service; ``ec2_endpoint``,
``ebs_endpoint``, ``s3_endpoint``, ``sts_endpoint`` to override one service.

An endpoint is where the service sends the client's signed requests and image, so a request may
only name one the operator listed (parameter ``endpoints``, set in ``plugins.ec2``); by default
none, and boto3 picks AWS's own endpoints from the region.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imagefactory_core.plugin import BuildError, OutboundPolicy

SERVICES = ("ec2", "ebs", "s3", "sts")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


@dataclass(frozen=True)
class Ec2Provider:
    region: str
    endpoint_url: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)

    def endpoint(self, service: str) -> str | None:
        """The endpoint for `service`, or None for AWS's own."""
        return self.endpoints.get(service, self.endpoint_url)

    def named_endpoints(self) -> dict[str, str]:
        """Every endpoint the provider names, by its field."""
        named = {f"{service}_endpoint": url for service, url in self.endpoints.items()}
        return {"endpoint_url": self.endpoint_url, **named} if self.endpoint_url else named


def check_endpoints(where: Ec2Provider, endpoints: list[str] | None,
                    outbound: OutboundPolicy) -> None:
    """Refuse an endpoint the operator did not list (`endpoints`) or whose literal address
    the outbound policy refuses."""
    for name, url in where.named_endpoints().items():
        refused = outbound.endpoint_refusal(url, endpoints or [], "plugins.ec2.endpoints")
        if refused:
            raise BuildError(f"ec2 provider {name}: {refused}")


def parse_provider(provider: str | Mapping[str, Any] | None) -> Ec2Provider:
    if isinstance(provider, str) and provider.lstrip().startswith("{"):
        try:
            provider = json.loads(provider)
        except json.JSONDecodeError as exc:
            raise BuildError(f"ec2 provider is not valid JSON: {exc}") from None
    if isinstance(provider, str) and provider.strip():
        return Ec2Provider(region=_region(provider.strip().removeprefix("ec2-")))
    if isinstance(provider, Mapping):
        return _from_mapping(provider)
    raise BuildError("ec2 needs a provider: 'ec2-<region>' (e.g. ec2-us-east-1) or a JSON "
                     "object with a region")


def _from_mapping(provider: Mapping[str, Any]) -> Ec2Provider:
    known = {"region", "endpoint_url", *(f"{s}_endpoint" for s in SERVICES)}
    unknown = sorted(set(provider) - known)
    if unknown:
        raise BuildError(f"unknown ec2 provider field(s): {', '.join(unknown)}; expected "
                         f"{', '.join(sorted(known))}")
    if not provider.get("region"):
        raise BuildError("ec2 provider JSON needs a region")
    endpoints = {s: str(provider[f"{s}_endpoint"]) for s in SERVICES
                 if provider.get(f"{s}_endpoint")}
    return Ec2Provider(region=_region(str(provider["region"])),
                       endpoint_url=str(provider["endpoint_url"]) if provider.get("endpoint_url")
                       else None, endpoints=endpoints)


def _region(name: str) -> str:
    if not _REGION.fullmatch(name):
        raise BuildError(f"'{name}' is not an AWS region name (expected e.g. us-east-1, "
                         "so provider ec2-us-east-1)")
    return name
