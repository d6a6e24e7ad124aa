"""The client verbs: each turns its arguments into API calls and prints the answer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .api import Api
from .display import make_display
from .errors import USAGE, CliError
from .follow import follow_chain, follow_image, wait
from .inputs import credentials, parameters, provider, read_text
from .output import failure, listing, plugins, started, summary, to_json

BUILD_COLLECTIONS = {"base-image": "base_images", "target-image": "target_images",
                     "provider-image": "provider_images"}


def _print(lines: list[str] | str) -> None:
    print(lines if isinstance(lines, str) else "\n".join(lines), flush=True)


def _json(args: argparse.Namespace) -> bool:
    return bool(args.output == "json")


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any], int]:
    """The collection to POST to, the body, and how many parent levels the request creates
    (a template cascades: a target image's base, a provider image's target and base)."""
    collection = BUILD_COLLECTIONS[args.verb]
    body: dict[str, Any] = {"parameters": parameters(args.parameters, args.parameter,
                                                     args.file_parameter)}
    template = getattr(args, "template", None)
    if template:
        body["template"] = read_text(template, "template")
    created = 0
    if args.verb == "target-image":
        body["target"] = args.target
        if args.base_image:
            body["base_image_id"] = args.base_image
        elif args.target_image:
            body["target_image_id"] = args.target_image
        created = 1 if template else 0
    elif args.verb == "provider-image":
        body.update(target=args.target, provider=provider(args.provider),
                    credentials=credentials(args.credentials))
        if args.snapshot:  # the service answers why it does not do these
            body["parameters"].setdefault("snapshot", True)
        if args.target_image:
            body["target_image_id"] = args.target_image
        elif args.base_image:
            body["base_image_id"] = args.base_image
        created = 2 if template else 1 if args.base_image else 0
    return collection, body, created


def _chain(api: Api, collection: str, image: dict[str, Any],
           created: int) -> list[tuple[str, dict[str, Any]]]:
    """The images this request made, parents first."""
    chain = [(collection, image)]
    for _ in range(created):
        link, parent = (("target_image_id", "target_images") if "target_image_id" in image
                        else ("base_image_id", "base_images"))
        image = api.image(parent, image[link])
        chain.insert(0, (parent, image))
    return chain


def build(args: argparse.Namespace, api: Api) -> int:
    collection, body, created = _request(args)
    image = api.create(collection, body)
    cause: dict[str, Any] | None = None
    if args.follow or api.builds_in_process:
        with make_display(sys.stderr if _json(args) else sys.stdout) as display:
            followed = follow_chain(api, _chain(api, collection, image, created), display)
        cause = next((i for i in followed if i["status"] != "COMPLETE"), None)
        # a failed parent fails its children: the requested image settles at once
        image = followed[-1] if followed[-1]["id"] == image["id"] else \
            wait(api, collection, image)
    elif args.wait:
        image = wait(api, collection, image)
    else:
        _print(to_json(image, args.raw) if _json(args) else started(image))
        return 0
    _print(to_json(image, args.raw) if _json(args) else summary(image))
    if image["status"] != "COMPLETE":
        raise CliError(failure(cause or image))
    return 0


def show(args: argparse.Namespace, api: Api) -> int:
    _, image = api.find(args.image_id)
    if args.icicle:
        if not image.get("icicle"):
            raise CliError(f"image {image['id']} has no ICICLE (it is {image['status']}; "
                           "base and target images get one when they COMPLETE)")
        icicle = image["icicle"]
        sys.stdout.write(icicle if icicle.endswith("\n") else icicle + "\n")
    else:
        _print(to_json(image, args.raw) if _json(args) else summary(image))
    return 0


def log(args: argparse.Namespace, api: Api) -> int:
    collection, image = api.find(args.image_id)
    if not args.follow:
        with api.log(collection, image["id"]) as response:
            for chunk in response.iter_content(64 * 1024):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return 0
    with make_display(sys.stdout, statuses=False) as display:
        image = follow_image(api, collection, image, display)
    if image["status"] != "COMPLETE":
        raise CliError(failure(image))
    return 0


def images(args: argparse.Namespace, api: Api) -> int:
    chosen = [args.collection] if args.collection else ["base_images", "target_images",
                                                       "provider_images"]
    found = {collection: api.listing(collection) for collection in chosen}
    if _json(args):
        _print(to_json({c: [{e["_type"]: e} for e in entries] for c, entries in found.items()},
                       args.raw))
    else:
        _print(listing([entry for entries in found.values() for entry in entries]))
    return 0


def delete(args: argparse.Namespace, api: Api) -> int:
    collection, image = api.find(args.image_id)
    body: dict[str, Any] = {}
    if collection == "provider_images":
        body = {key: value for key, value in (
            ("provider", provider(args.provider) if args.provider else None),
            ("credentials", credentials(args.credentials) if args.credentials else None),
            ("target", args.target)) if value is not None}
    elif args.provider or args.credentials:
        raise CliError(f"--provider and --credentials are for provider images; {args.image_id}"
                       " is not one", USAGE)
    chosen = parameters(args.parameters, args.parameter, args.file_parameter)
    if chosen:  # callbacks, for one: the service tells them how the delete went
        body["parameters"] = chosen
    kwargs = {"json": {collection[:-1]: body}} if body else {}
    api.call("DELETE", f"/{collection}/{image['id']}", **kwargs)
    image = api.image(collection, image["id"])
    if api.builds_in_process:  # the delete runs in this process: see it through
        image = wait(api, collection, image)
    _print(to_json(image, args.raw) if _json(args) else summary(image))
    if image["status"] == "DELETEFAILED":
        raise CliError(failure(image))
    return 0


def download(args: argparse.Namespace, api: Api) -> int:
    collection, image = api.find(args.image_id)
    with api.call("GET", f"/{collection}/{image['id']}/raw_image", stream=True) as response, \
            args.output_file.open("wb") as handle:
        for chunk in response.iter_content(1024 * 1024):
            handle.write(chunk)
    return 0


def list_plugins(args: argparse.Namespace, api: Api) -> int:
    plugin_id = args.plugin_id or args.id
    if plugin_id:
        plugin = api.call("GET", f"/plugins/{plugin_id}").json()
        lines = [*plugins([plugin]),
                 *(f"  {p['name']} ({p['type']}): {p.get('help') or ''}".rstrip()
                   for p in plugin.get("parameters") or [])]
        _print(to_json(plugin, args.raw) if _json(args) else lines)
    else:
        answer = api.call("GET", "/plugins").json()
        _print(to_json(answer, args.raw) if _json(args) else plugins(answer["plugins"]))
    return 0


def import_base_image(args: argparse.Namespace) -> int:
    """The original's verb, answered rather than refused as unknown."""
    raise CliError("import_base_image is not supported: this service builds base images from "
                   "TDL templates (imagefactory base-image TEMPLATE); there is no import of a "
                   "disk image yet", USAGE)

