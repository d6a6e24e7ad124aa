"""The command line: verbs, their options, and the original Image Factory's spellings.

Options every client verb shares (where the service is, how to sign, what to print, local
mode) may come before the verb, as the original's ``--output json base_image …``, or after
it. The copies after the verb default to "not given" (argparse.SUPPRESS), so they do not
overwrite a value given before it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import __version__
from . import commands, serve, worker

DESCRIPTION = """Build, push and inspect images with an imagefactory service, or run one.
The original Image Factory's verbs and options work too (base_image, target_image,
provider_image, --parameter NAME VALUE, --output json)."""
COLLECTION_NAMES = {"base_images": "base_images", "base_image": "base_images",
                    "target_images": "target_images", "target_image": "target_images",
                    "provider_images": "provider_images", "provider_image": "provider_images"}


def _shared(parser: argparse.ArgumentParser, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    service = parser.add_argument_group("service")
    service.add_argument("--url", default=default(None),
                         help="the service (default: $IMAGEFACTORY_URL, the client "
                              "configuration's 'url', https://127.0.0.1:8075)")
    service.add_argument("--key", default=default(None),
                         help="OAuth consumer key (or $IMAGEFACTORY_KEY, or 'key' in the "
                              "client configuration)")
    service.add_argument("--secret", default=default(None),
                         help="OAuth secret; better $IMAGEFACTORY_SECRET or the client "
                              "configuration: a command line is visible to every user")
    service.add_argument("--client-config", default=default(None), metavar="FILE",
                         help="client configuration (JSON: url, key, secret, ca, insecure; "
                              "default ~/.config/imagefactory/client.json)")
    service.add_argument("--ca", default=default(None), metavar="FILE",
                         help="CA bundle or the service's self-signed certificate")
    service.add_argument("--insecure", action="store_true", default=default(False),
                         help="do not verify the service's TLS certificate")
    output = parser.add_argument_group("output")
    output.add_argument("--output", choices=("text", "log", "json"), default=default("text"),
                        help="json: the image as the API returns it, for scripts; "
                             "text (or the original's 'log'): a summary")
    output.add_argument("--raw", action="store_true", default=default(False),
                        help="JSON on one line")
    local = parser.add_argument_group("local mode (no daemon: docs/cli.md)")
    local.add_argument("--local", action="store_true", default=default(False),
                       help="run the service inside this command instead of calling one")
    local.add_argument("--state-dir", default=default(None), metavar="DIR",
                       help="local mode's database and images (default "
                            "~/.local/share/imagefactory)")
    local.add_argument("--cache-dir", default=default(None), metavar="DIR",
                       help="local mode's build caches (default ~/.cache/imagefactory)")
    local.add_argument("--config", type=Path, default=default(None), metavar="FILE",
                       help="local mode's service configuration (imagefactory.conf)")


def _parameter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("parameters (the original's spellings)")
    group.add_argument("--parameters", metavar="FILE_OR_JSON",
                       help="a JSON file of parameters, or a JSON object")
    group.add_argument("--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="one parameter (repeatable; after --parameters)")
    group.add_argument("--file-parameter", "--file_parameter", nargs=2, action="append",
                       metavar=("NAME", "FILE"),
                       help="one parameter whose value is FILE's text (repeatable; last)")


def _client(sub: Any, name: str, handler: Any, help_text: str,
            aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, aliases=list(aliases),
                                                     help=help_text, description=help_text)
    _shared(parser, suppress=True)
    parser.set_defaults(handler=handler, verb=name, client=True)
    return parser


def _build_verbs(sub: Any) -> None:
    def follow_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--follow", action="store_true",
                            help="show progress and the build log until the image is "
                                 "COMPLETE (exit 0) or FAILED (exit 1)")
        parser.add_argument("--wait", action="store_true",
                            help="wait quietly until the image settles")

    p = _client(sub, "base-image", commands.build, "build a base image from a TDL template",
                ("base_image",))
    p.add_argument("template", type=Path, help="TDL file")
    _parameter_options(p)
    follow_options(p)

    p = _client(sub, "target-image", commands.build,
                "build a target image for a cloud, from a base image or a template",
                ("target_image",))
    p.add_argument("target", help="cloud target, such as ec2")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--base-image", "--id", dest="base_image", metavar="ID",
                       help="the base image to start from (the original's --id)")
    group.add_argument("--target-image", dest="target_image", metavar="ID",
                       help="the target image it is made from (an ova of a vsphere image)")
    group.add_argument("--template", type=Path, help="TDL file: build the base image too")
    _parameter_options(p)
    follow_options(p)

    p = _client(sub, "provider-image", commands.build,
                "push an image to a cloud provider, from a target or base image or a template",
                ("provider_image",))
    p.add_argument("target", help="cloud target, such as ec2")
    p.add_argument("provider", help="provider name, JSON object, or file; @NAME is a name "
                                    "(the original's @ec2-us-east-1) unless NAME is a file")
    p.add_argument("credentials", type=Path, help="credentials file (XML or JSON)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--target-image", "--id", dest="target_image", metavar="ID",
                       help="the target image to push (the original's --id)")
    group.add_argument("--base-image", dest="base_image", metavar="ID",
                       help="build the target image from this base image, then push")
    group.add_argument("--template", type=Path, help="TDL file: build base and target too")
    p.add_argument("--snapshot", action="store_true",
                   help="the original's snapshot builds (the service says it has none)")
    _parameter_options(p)
    follow_options(p)


def _other_verbs(sub: Any) -> None:
    p = _client(sub, "images", commands.images, "list images")
    p.add_argument("collection", nargs="?", type=lambda v: COLLECTION_NAMES.get(v, v),
                   choices=sorted(set(COLLECTION_NAMES.values())))
    p = _client(sub, "show", commands.show, "an image's summary (--output json: all of it)")
    p.add_argument("image_id")
    p.add_argument("--icicle", action="store_true", help="print the image's ICICLE only")
    p = _client(sub, "log", commands.log, "print an image's build log")
    p.add_argument("image_id")
    p.add_argument("--follow", action="store_true",
                   help="stream it until the image is COMPLETE (exit 0) or not (exit 1)")
    p = _client(sub, "delete", commands.delete,
                "delete an image (a provider image: from the cloud too, given credentials)")
    p.add_argument("image_id")
    p.add_argument("--provider", help="as for provider-image")
    p.add_argument("--credentials", type=Path, help="credentials file (XML or JSON)")
    p.add_argument("--target", help="the cloud target (the original's --target)")
    _parameter_options(p)
    p = _client(sub, "plugins", commands.list_plugins, "list plugins, or show one")
    p.add_argument("plugin_id", nargs="?")
    p.add_argument("--id", help="the original's spelling of PLUGIN_ID")
    p = _client(sub, "download", commands.download, "download an image's disk")
    p.add_argument("image_id")
    p.add_argument("output_file", type=Path, metavar="output")
    p = sub.add_parser("import_base_image", aliases=["import-base-image"],
                       help="the original's import of a disk image (not supported)")
    p.add_argument("image_file")
    p.set_defaults(handler=commands.import_base_image, client=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagefactory", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _shared(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    serve.add_parser(sub)
    worker.add_parser(sub)
    _build_verbs(sub)
    _other_verbs(sub)
    return parser
