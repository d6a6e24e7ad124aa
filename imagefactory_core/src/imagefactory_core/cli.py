"""The `imagefactory` command: `serve` runs the daemon; the other verbs talk to a service.

Options of `serve` keep the original's spellings (`--no_ssl`, `--no_oauth`) beside the new
ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from .config import load_config
from .errors import ImageFactoryError
from .statelock import StateLock

COLLECTIONS = ("base_images", "target_images", "provider_images")
SETTLED = {"COMPLETE", "FAILED", "DELETED", "DELETEFAILED"}


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the REST service")
    p.add_argument("--config", type=Path, help="imagefactory.conf (JSON)")
    p.add_argument("--port", type=int)
    p.add_argument("--address")
    p.add_argument("--state-dir", help="database, keys and (by default) image storage")
    p.add_argument("--no-ssl", "--no_ssl", dest="no_ssl", action="store_true", default=None,
                   help="serve plain HTTP (development only)")
    p.add_argument("--no-oauth", "--no_oauth", dest="no_oauth", action="store_true",
                   default=None, help="accept unsigned writes (development only)")
    p.add_argument("--ssl-cert", "--ssl_cert", dest="ssl_cert")
    p.add_argument("--ssl-key", "--ssl_key", dest="ssl_key")
    p.add_argument("--debug", action="store_true", default=None)


def _client_parsers(sub: Any) -> None:
    def client(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", default=os.environ.get("IMAGEFACTORY_URL",
                                                       "https://127.0.0.1:8075"))
        p.add_argument("--key", default=os.environ.get("IMAGEFACTORY_OAUTH_KEY"),
                       help="OAuth consumer key (or IMAGEFACTORY_OAUTH_KEY)")
        p.add_argument("--secret", default=os.environ.get("IMAGEFACTORY_OAUTH_SECRET"),
                       help="OAuth shared secret (or IMAGEFACTORY_OAUTH_SECRET)")
        p.add_argument("--ca", help="CA bundle or the service's self-signed certificate")
        p.add_argument("--insecure", action="store_true", help="do not verify TLS")
        return p

    def build_verb(name: str, help_text: str, positionals: dict[str, str],
                   parent: str | None) -> None:
        """A verb that POSTs an image; it starts from `parent`'s id or from a template."""
        p = client(name, help_text)
        for positional, text in positionals.items():
            p.add_argument(positional, type=Path if positional == "credentials" else str,
                           help=text)
        if parent is None:
            p.add_argument("template", type=Path, help="TDL file")
        else:
            group = p.add_mutually_exclusive_group(required=True)
            group.add_argument(parent)
            group.add_argument("--template", type=Path, help="TDL file")
        p.add_argument("--parameters", type=json.loads, default={}, help="JSON object")
        p.add_argument("--wait", action="store_true", help="poll until the image settles")

    build_verb("base-image", "build a base image from a TDL file", {}, None)
    build_verb("target-image", "build a target image", {"target": "cloud target"},
               "--base-image")
    build_verb("provider-image", "push a target image to a cloud provider",
               {"target": "cloud target", "provider": "provider name or JSON",
                "credentials": "credentials file (XML or JSON)"}, "--target-image")
    p = client("images", "list images")
    p.add_argument("collection", nargs="?", choices=COLLECTIONS)
    p = client("show", "show one image")
    p.add_argument("image_id")
    p = client("delete", "delete an image (provider images: also from the cloud)")
    p.add_argument("image_id")
    p.add_argument("--provider")
    p.add_argument("--credentials", type=Path)
    client("plugins", "list plugins")
    p = client("download", "download an image body")
    p.add_argument("image_id")
    p.add_argument("output", type=Path)
    p = client("log", "print an image's build log")
    p.add_argument("image_id")
    p.add_argument("--follow", action="store_true")


class Client:
    def __init__(self, args: argparse.Namespace):
        self.base = args.url.rstrip("/") + "/imagefactory"
        self.session = requests.Session()
        self.session.verify = False if args.insecure else (args.ca or True)
        if args.key and args.secret:
            from requests_oauthlib import OAuth1

            self.session.auth = OAuth1(args.key, args.secret)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, self.base + path, timeout=60, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
                message = f"{body.get('title')}: {body.get('description')}"
            except ValueError:
                message = response.text
            raise SystemExit(f"imagefactory: HTTP {response.status_code}: {message}")
        return response

    def find(self, image_id: str) -> tuple[str, dict[str, Any]]:
        for collection in COLLECTIONS:
            response = self.session.get(f"{self.base}/{collection}/{image_id}", timeout=60)
            if response.status_code == 200:
                return collection, next(iter(response.json().values()))
        raise SystemExit(f"imagefactory: no image {image_id}")

    def wait(self, collection: str, image: dict[str, Any]) -> dict[str, Any]:
        while image["status"] not in SETTLED:
            time.sleep(2)
            image = next(iter(self.call("GET", f"/{collection}/{image['id']}").json().values()))
            print(f"\r{image['status']:>9} {image['percent_complete']:3d}% "
                  f"{image['status_detail']['activity'][:60]:60}", end="", file=sys.stderr)
        print(file=sys.stderr)
        return image


def _credentials(path: Path) -> Any:
    text = path.read_text()
    return json.loads(text) if text.lstrip().startswith("{") else text


def run_client(args: argparse.Namespace) -> int:
    client = Client(args)
    command = args.command
    if command in ("base-image", "target-image", "provider-image"):
        collection = command.replace("-image", "_images")
        body: dict[str, Any] = {"parameters": args.parameters}
        if getattr(args, "template", None):
            body["template"] = args.template.read_text()
        if command == "target-image":
            body["target"] = args.target
            if args.base_image:
                body["base_image_id"] = args.base_image
        elif command == "provider-image":
            body.update(target=args.target, credentials=_credentials(args.credentials),
                        provider=json.loads(args.provider) if args.provider.startswith("{")
                        else args.provider)
            if args.target_image:
                body["target_image_id"] = args.target_image
        singular = collection[:-1]
        image = client.call("POST", f"/{collection}", json={singular: body}).json()[singular]
        if args.wait:
            image = client.wait(collection, image)
        print(json.dumps(image, indent=2))
        return 0 if image["status"] != "FAILED" else 1
    if command == "images":
        for collection in [args.collection] if args.collection else COLLECTIONS:
            for entry in client.call("GET", f"/{collection}").json()[collection]:
                item = next(iter(entry.values()))
                print(f"{item['_type']:14} {item['id']}")
        return 0
    if command == "show":
        print(json.dumps(client.find(args.image_id)[1], indent=2))
        return 0
    if command == "delete":
        collection, _ = client.find(args.image_id)
        kwargs: dict[str, Any] = {}
        if args.credentials:
            kwargs["json"] = {"provider_image": {"provider": args.provider,
                                                 "credentials": _credentials(args.credentials)}}
        client.call("DELETE", f"/{collection}/{args.image_id}", **kwargs)
        return 0
    if command == "plugins":
        print(json.dumps(client.call("GET", "/plugins").json(), indent=2))
        return 0
    if command == "download":
        collection, _ = client.find(args.image_id)
        response = client.call("GET", f"/{collection}/{args.image_id}/raw_image", stream=True)
        with args.output.open("wb") as handle:
            for chunk in response.iter_content(1024 * 1024):
                handle.write(chunk)
        return 0
    collection, _ = client.find(args.image_id)
    response = client.call("GET", f"/{collection}/{args.image_id}/log",
                           params={"follow": "true"} if args.follow else None, stream=True)
    for chunk in response.iter_content(None):
        sys.stdout.write(chunk.decode("utf-8", "replace"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagefactory", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _client_parsers(sub)
    args = parser.parse_args(argv)
    if args.command != "serve":
        return run_client(args)
    overrides = {key: value for key, value in vars(args).items()
                 if key not in ("command", "config") and value is not None}
    try:
        config = load_config(args.config, overrides=overrides)
        # Say at once that another service holds the state directory, rather than through a
        # gunicorn worker that fails to boot; the worker's engine takes the lock for good.
        Path(config.state_dir).mkdir(parents=True, exist_ok=True)
        StateLock(Path(config.state_dir)).release()
    except ImageFactoryError as exc:
        parser.exit(2, f"imagefactory: {exc}\n")
    from .server import serve

    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
