"""The original Image Factory's configuration, read into ours: its imagefactory.conf and the
spellings of its daemon's command line (``imagefactoryd --imgdir DIR --ssl_pem FILE``).

Which format a file is in: the original's when it holds at least one key that only the
original knows (`ORIGINAL_ONLY`: ``imgdir``, ``ssl_pem``, ``image_manager``,
``proxy_ami_id`` …) or ``plugins`` as a string (the original's plugin directory; ours is an
object). Such a file is read leniently, as the original read it: its keys that we use are
mapped to ours (`translate`), and every other key is reported once in the log by name, with
why it is not used — never a reason to refuse the file. Any other file is in our format and
stays strict: an unknown key stops the service, so a misspelt key is never silently ignored.
A value we cannot use for a key we do use (``"max_concurrent_local_sessions": 0``) is an
error in both formats.

docs/migrating.md lists every key and option, and what becomes of it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

EC2_UTILITY = ("builds on an EC2 utility instance (snapshot style) are not done here: the ec2 "
               "plugin uploads the disk image it built")

# The original's keys (its imagefactory.conf, and the options of its imagefactoryd and
# imagefactory commands, which it read from the same file) that have no key of ours; each with
# why it is not used, for the log and docs/migrating.md. Keys mapped by `translate` are here
# too: their reason is given when the mapping does not apply.
ORIGINAL_ONLY: dict[str, str] = {
    "imgdir": "image bodies go to image_manager_args.storage_path, which is set; builds work "
              "in state_dir/work",
    "ssl_pem": "ssl_cert and ssl_key are set",
    "image_manager": "image metadata is in database_url and bodies are files under "
                     "storage_path: the original's 'file' manager is the only one",
    "verbose": "the log level is INFO unless 'debug' is set",
    "timeout": "there is no limit on a whole build: sandbox_wall_seconds bounds each sandboxed "
               "step, and plugins have their own limits (docs/operators.md)",
    "tmpdir": "builds work in state_dir/work",
    "plugins": "plugins are Python distributions found through the 'imagefactory.plugins' "
               "entry points (plugin_modules, disabled_plugins), not a directory",
    "foreground": "'imagefactory serve' always runs in the foreground: run it under your "
                  "process supervisor",
    "secondary": "secondary (helper) factories are not supported: this service is a primary "
                 "factory",
    "jeos_config": "JEOS image lists of the original's snapshot builds are not used; OS "
                   "plugins keep their own JEOS caches under cache_path",
    "proxy_ami_id": EC2_UTILITY,
    "ec2_build_style": EC2_UTILITY,
    "ec2_32bit_util": EC2_UTILITY,
    "ec2_64bit_util": EC2_UTILITY,
    "ec2_ami_type": "the ec2 plugin registers EBS-backed AMIs only",
    "max_concurrent_ec2_sessions": "pushes to every cloud share max_concurrent_uploads",
    "ec2_image_format": "a setting of the ec2 plugin now: plugins.ec2.ec2_image_format "
                        "(docs/plugins/ec2.md)",
    "openstack_image_format": "a setting of the openstack plugin now: "
                              "plugins.openstack.openstack_image_format "
                              "(docs/plugins/openstack.md)",
    "rhevm_image_format": "there is no rhevm plugin here",
    "oz_data_dir": "OS plugins build without Oz",
    "oz_screenshot_dir": "OS plugins build without Oz",
    "output": "an option of the original's command-line client (ours: 'imagefactory "
              "--help')",
    "raw": "an option of the original's command-line client (ours: 'imagefactory --help')",
    "config": "the configuration file is named on the command line (--config) or by "
              "IMAGEFACTORY_CONFIG",
}

# What the original's values mean when they already describe what this service does.
SAME_AS_OURS = {"image_manager": "file", "ec2_ami_type": "ebs"}
GENERATED_PEM = "*"  # the original's ssl_pem default: a certificate generated at start


@dataclass
class Translation:
    """A mapping of configuration values in our keys (values as given: `config` types and
    checks them), and what the log should say about how it was read: (level, message)."""

    values: dict[str, Any] = field(default_factory=dict)
    notices: list[tuple[int, str]] = field(default_factory=list)


def _name(key: str) -> str:
    return key.replace("-", "_")


def is_original(raw: Mapping[str, Any]) -> bool:
    """Whether a configuration file is in the original Image Factory's format."""
    return any(_name(key) in ORIGINAL_ONLY and (_name(key) != "plugins" or isinstance(value, str))
               for key, value in raw.items())


def translate(raw: Mapping[str, Any], ours: Collection[str], source: str, *,
              lenient: bool, spelling: Callable[[str], str] = "key {!r}".format,
              ) -> Translation:
    """Map the original's keys in `raw` to ours (`ours`: every key we have).

    Our own keys pass through. A key of the original that we do not use becomes a notice. A
    key that neither knows becomes a notice when `lenient` (a file in the original's format),
    else it passes through for `config` to refuse. `spelling` shows a key in notices."""
    names = {_name(key): value for key, value in raw.items()}
    spelled = {_name(key): key for key in raw}
    result = Translation()

    def shown(key: str) -> str:
        """`key` as it was written ("ec2-32bit-util"), in the words of `spelling`."""
        return spelling(spelled.get(key, key))

    theirs = {key: value for key, value in names.items()
              if key not in ours or (key == "plugins" and isinstance(value, str))}
    for key, value in names.items():
        if key not in theirs:
            result.values[key] = value
        elif key not in ORIGINAL_ONLY and lenient:
            result.notices.append((logging.WARNING, f"{source}: {shown(key)} is not a key "
                                   "of this service or of the original Image Factory "
                                   "(misspelt?); not used"))
        elif key not in ORIGINAL_ONLY:
            result.values[key] = value  # config refuses it, naming it
    manager_args = names.get("image_manager_args")
    if lenient and isinstance(manager_args, Mapping):
        # the original's other managers took other arguments; ours is the file manager alone
        result.values["image_manager_args"] = {k: v for k, v in manager_args.items()
                                               if k == "storage_path"}
        theirs.update({f"image_manager_args.{k}": v for k, v in manager_args.items()
                       if k != "storage_path"})
    done: list[str] = []
    for key, value in sorted(theirs.items()):
        if key not in ORIGINAL_ONLY and not key.startswith("image_manager_args."):
            continue
        note = _map(key, value, result.values, names, shown)
        if note:
            done.append(note)
        else:
            why = ORIGINAL_ONLY.get(key, ORIGINAL_ONLY["image_manager"])
            result.notices.append((logging.WARNING, f"{source}: {shown(key)} of the "
                                   f"original Image Factory is not used: {why}"))
    if done:
        result.notices.insert(0, (logging.INFO, f"{source}: read the original Image Factory's "
                                                f"settings: {'; '.join(done)}"))
    return result


def _map(key: str, value: Any, values: dict[str, Any], given: Mapping[str, Any],
         spelling: Callable[[str], str]) -> str | None:
    """Put the original's `key` into `values` (ours) when it has a meaning here; say how, or
    None when it is not used."""
    shown = spelling(key)
    if key == "imgdir" and "storage_path" not in values and not _storage_given(given):
        values["storage_path"] = value
        return f"{shown} -> storage_path"
    if key == "ssl_pem" and value in (GENERATED_PEM, "", None):
        return (f"{shown} {value!r} -> a self-signed certificate generated at first start "
                "in state_dir/tls")
    if key == "ssl_pem" and not {"ssl_cert", "ssl_key"} & set(given):
        values["ssl_cert"] = values["ssl_key"] = value
        return f"{shown} -> ssl_cert and ssl_key (one PEM file holding both)"
    if key in SAME_AS_OURS and SAME_AS_OURS[key] == value:
        return f"{shown} {value!r} is what this service does"
    return None


def _storage_given(given: Mapping[str, Any]) -> bool:
    manager_args = given.get("image_manager_args")
    return isinstance(manager_args, Mapping) and "storage_path" in manager_args


# The options of the original's daemon (imagefactoryd) that `imagefactory serve` has no
# spelling of its own for: (flag, what argparse stores, help). Each stores under the original's
# key. The others (--config, --port, --address, --debug, --no_ssl, --no_oauth) are ours too.
SERVE_OPTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("--imgdir", {"metavar": "DIR"}, "image storage (ours: storage_path)"),
    ("--ssl_pem", {"metavar": "PEM"},
     "one PEM file with the certificate and its key (ours: --ssl-cert and --ssl-key)"),
    ("--nodebug", {"dest": "debug", "action": "store_false"}, "no debug logging"),
    ("--verbose", {"action": "store_true"}, "accepted; logged as not used"),
    ("--foreground", {"action": "store_true"},
     "accepted: serve always runs in the foreground"),
    ("--timeout", {"metavar": "SECONDS"}, "accepted; logged as not used"),
    ("--tmpdir", {"metavar": "DIR"}, "accepted; logged as not used"),
    ("--plugins", {"metavar": "DIR"}, "accepted; logged as not used"),
    ("--secondary", {"action": "store_true"}, "accepted; logged as not supported"),
    ("--ec2-32bit-util", {"metavar": "TYPE"}, "accepted; logged as not used"),
    ("--ec2-64bit-util", {"metavar": "TYPE"}, "accepted; logged as not used"),
]


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Give `imagefactory serve` the original imagefactoryd's spellings; each is absent unless
    given (`SERVE_KEYS`), and `translate` maps it like the same key of a file."""
    group = parser.add_argument_group(
        "the original Image Factory's options",
        "imagefactoryd's spellings (docs/migrating.md)")
    for flag, options, text in SERVE_OPTIONS:
        group.add_argument(flag, default=argparse.SUPPRESS, help=text, **options)


# What those options store, for the command to pass on as configuration (--nodebug stores
# our own key, debug).
SERVE_KEYS = tuple(_name(flag.lstrip("-")) for flag, options, _ in SERVE_OPTIONS
                   if "dest" not in options)


def option_spelling(key: str) -> str:
    """How the command line spells the original's `key` (for notices)."""
    flags = {_name(flag.lstrip("-")): flag for flag, _, _ in SERVE_OPTIONS}
    return f"option {flags.get(key, '--' + key)}"
