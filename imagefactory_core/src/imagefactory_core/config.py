"""Configuration: imagefactory.conf (JSON) < environment < command line.

The keys are the original Image Factory's where they still make sense (`debug`, `no_ssl`,
`no_oauth`, `clients`, `max_concurrent_local_sessions`, `image_manager_args.storage_path`,
`tdl_require_root_pw`); the rest are new and documented in docs/operators.md. A file in the
original's own format, and its daemon's option spellings, are read by `legacyconfig`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import legacyconfig
from .errors import InvalidRequest
from .outbound import OutboundPolicy
from .sandbox.policy import EgressPolicy
from .sandbox.runner import SandboxSettings
from .sandbox.spec import SandboxLimits

DEFAULT_CONFIG_FILE = Path("/etc/imagefactory/imagefactory.conf")
ENV_PREFIX = "IMAGEFACTORY_"


@dataclass
class Config:
    address: str = "0.0.0.0"
    port: int = 8075
    debug: bool = False
    no_ssl: bool = False
    no_oauth: bool = False
    ssl_cert: str | None = None
    ssl_key: str | None = None
    clients: dict[str, str] = field(default_factory=dict)
    protect_reads: bool = False
    oauth_timestamp_window: int = 600
    trust_proxy_headers: bool = False
    public_url: str | None = None
    state_dir: str = "/var/lib/imagefactory"
    storage_path: str | None = None
    storage_url: str | None = None
    storage_endpoint_url: str | None = None
    storage_region: str | None = None
    storage_access_key: str | None = None
    storage_secret_key: str | None = field(default=None, repr=False)
    storage_cache_mib: int = 8192
    raw_image_redirect: bool = False
    log_upload_seconds: float = 10.0
    cache_path: str = "/var/cache/imagefactory"
    database_url: str | None = None
    max_concurrent_local_sessions: int = 2
    max_concurrent_uploads: int = 2
    build_workers: str = "embedded"
    queue_url: str | None = field(default=None, repr=False)
    worker_plugins: list[str] = field(default_factory=list)
    worker_stale_seconds: int = 60
    secret_key_path: str | None = None
    tdl_require_root_pw: bool = False
    max_request_bytes: int = 4 * 1024 * 1024
    max_template_bytes: int = 1024 * 1024
    callback_timeout: float = 10.0
    callback_retries: int = 3
    server_threads: int = 16
    request_head_seconds: float = 10.0
    log_followers: int = 4
    log_follow_seconds: int = 3600
    max_log_bytes: int = 64 * 1024 * 1024
    disabled_plugins: list[str] = field(default_factory=list)
    plugin_modules: list[str] = field(default_factory=list)
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    operator_parameters: dict[str, list[str]] = field(default_factory=dict)
    outbound_allow: list[str] = field(default_factory=list)
    sandbox_memory_mib: int = 4096
    sandbox_processes: int = 1024
    sandbox_tree_mib: int = 0
    sandbox_wall_seconds: int = 0
    sandbox_network: str = "egress"
    sandbox_egress_allow: list[str] = field(default_factory=list)
    # Not a key: what reading the sources found to say, as (log level, message) — the
    # original's keys that are not used, how its others were mapped; `serve` logs it once.
    notices: list[tuple[int, str]] = field(default_factory=list, init=False, repr=False,
                                           compare=False)

    # -- derived locations ----------------------------------------------------------------------
    @property
    def storage_dir(self) -> Path:
        """Where image bodies (`<uuid>.body`) and build logs (`<uuid>.log`) live; with a
        `storage_url`, this worker's local copies of them (`imagefactory_core.storage`)."""
        return Path(self.storage_path or Path(self.state_dir) / "storage")

    @property
    def work_dir(self) -> Path:
        return Path(self.state_dir) / "work"

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache_path)

    @property
    def secret_key_file(self) -> Path:
        """Key that seals the unredacted template and queued credentials in the database
        (so restarts can rebuild); API servers and build workers of one database share it."""
        return Path(self.secret_key_path or Path(self.state_dir) / "secret.key")

    def checked_workers(self) -> str:
        """`build_workers`, checked with `queue_url`; a bad value raises `InvalidRequest`."""
        if self.build_workers not in BUILD_WORKERS:
            raise InvalidRequest(f"configuration key 'build_workers': {self.build_workers!r} is "
                                 f"not one of {', '.join(BUILD_WORKERS)}")
        if self.queue_url and not self.queue_url.startswith(QUEUE_SCHEMES):
            raise InvalidRequest("configuration key 'queue_url': a Celery broker URL starts "
                                 f"with one of {', '.join(QUEUE_SCHEMES)}")
        if self.queue_url and self.build_workers == "in-process":
            raise InvalidRequest("configuration key 'queue_url' needs build_workers 'embedded' "
                                 "or 'external': in-process builds take no queue")
        return self.build_workers

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_file}"

    @property
    def sqlite_file(self) -> Path:
        """The embedded database (used without `database_url`)."""
        return Path(self.state_dir) / "imagefactory.db"

    @property
    def oauth_enabled(self) -> bool:
        return not self.no_oauth

    def outbound_policy(self) -> OutboundPolicy:
        """The policy every outbound connection a client asks for obeys (callbacks, cloud
        endpoints): public addresses plus the operator's ``outbound_allow``."""
        return OutboundPolicy(tuple(self.outbound_allow))

    def sandbox_settings(self) -> SandboxSettings:
        """What every build sandbox gets (docs/security.md); a bad value raises
        `InvalidRequest` naming the key."""
        if self.sandbox_network not in ("egress", "none"):
            raise InvalidRequest(f"configuration key 'sandbox_network': {self.sandbox_network!r}"
                                 " is neither 'egress' nor 'none'")
        try:
            EgressPolicy.of(self.sandbox_egress_allow)
        except ValueError as exc:
            raise InvalidRequest(f"configuration key 'sandbox_egress_allow': {exc}") from exc
        return SandboxSettings(
            limits=SandboxLimits(memory_mib=self.sandbox_memory_mib,
                                 processes=self.sandbox_processes,
                                 tree_mib=self.sandbox_tree_mib or None,
                                 wall_seconds=self.sandbox_wall_seconds or None),
            network="egress" if self.sandbox_network == "egress" else "none",
            egress_allow=tuple(self.sandbox_egress_allow))


# Where builds run: a worker process `serve` starts and watches (the default), workers started
# apart with `imagefactory worker` (scale-out), or threads of the API process (local mode).
BUILD_WORKERS = ("embedded", "external", "in-process")
QUEUE_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")
_FIELDS = {f.name: f for f in fields(Config) if f.init}
# What a file may hold: the fields, and the original's nesting of one of them.
_KEYS = {*_FIELDS, "image_manager_args"}


# Smallest value that works; below it the service would fail later with an obscure error.
_MINIMUM = {"sandbox_memory_mib": 64, "sandbox_processes": 16, "sandbox_tree_mib": 0,
            "sandbox_wall_seconds": 0,
            "port": 1, "max_concurrent_local_sessions": 1, "max_concurrent_uploads": 1,
            "server_threads": 1, "max_request_bytes": 1, "log_followers": 1,
            "log_follow_seconds": 1, "max_log_bytes": 4096, "max_template_bytes": 1,
            "callback_timeout": 0.001, "callback_retries": 0, "oauth_timestamp_window": 1,
            "request_head_seconds": 0.1, "storage_cache_mib": 0, "log_upload_seconds": 0.1,
            "worker_stale_seconds": 15}
_MAXIMUM = {"port": 65535}
# Element type of the dict and list fields.
_ITEMS = {"clients": str, "plugins": dict, "disabled_plugins": str, "plugin_modules": str,
          "operator_parameters": list, "sandbox_egress_allow": str, "outbound_allow": str,
          "worker_plugins": str}


_ITEM_NAMES = {str: "string", dict: "JSON object", list: "list of parameter names"}


def _typed(name: str, kind: str, value: Any) -> Any:
    if "bool" in kind:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError("not a boolean")
            return lowered in {"1", "true", "yes", "on"}
        if isinstance(value, bool) or (type(value) is int and value in (0, 1)):
            return bool(value)  # the original's files say 0 and 1
        raise ValueError("not a boolean")
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("not a number")
        number = int(value) if kind == "int" and not isinstance(value, float) else float(value)
        if kind == "int":
            if number != int(number):
                raise ValueError("not a whole number")
            number = int(number)
        low, high = _MINIMUM.get(name), _MAXIMUM.get(name)
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(f"must be at least {low}" if high is None
                             else f"must be {low} to {high}")
        return number
    if kind.startswith("list") and isinstance(value, str) and not value.startswith("["):
        return [part.strip() for part in value.split(",") if part.strip()]
    if kind.startswith(("dict", "list")):
        loaded = json.loads(value) if isinstance(value, str) else value
        container = dict if kind.startswith("dict") else list
        if not isinstance(loaded, container):
            raise ValueError(f"not a JSON {'object' if container is dict else 'list'}")
        items = loaded.values() if container is dict else loaded
        if not all(isinstance(item, _ITEMS[name]) for item in items):
            raise ValueError(f"every {'value' if container is dict else 'item'} must be a "
                             f"{_ITEM_NAMES[_ITEMS[name]]}")
        return loaded
    if value is None and "None" in kind:
        return None
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _coerce(name: str, value: Any) -> Any:
    """Turn a JSON or environment value into the field's type, or say what is wrong."""
    try:
        return _typed(name, _FIELDS[name].type, value)
    except (ValueError, TypeError) as exc:
        shown = ("(not shown: it holds secrets)"
                 if name in ("clients", "storage_secret_key", "queue_url") else repr(value))
        raise InvalidRequest(f"configuration key {name!r}: cannot use {shown} ({exc})") from exc


def _from_mapping(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "image_manager_args" and isinstance(value, Mapping):
            unknown = sorted(set(value) - {"storage_path"})
            if unknown:
                raise InvalidRequest(f"{source}: unknown configuration key "
                                     f"'image_manager_args.{unknown[0]}' (only storage_path)")
            if "storage_path" in value:
                values["storage_path"] = _coerce("storage_path", value["storage_path"])
            continue
        name = key.replace("-", "_")
        if name not in _FIELDS:
            raise InvalidRequest(f"{source}: unknown configuration key {key!r}")
        values[name] = _coerce(name, value)
    return values


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw)
    return values


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the config file, then the environment, then `overrides` (the command line).

    The file is `path`, else ``$IMAGEFACTORY_CONFIG``, else /etc/imagefactory/imagefactory.conf
    when it exists. ``IMAGEFACTORY_DISABLED_PLUGINS`` is a comma-separated list. A file in the
    original Image Factory's format is read leniently (`legacyconfig`), ours strictly; the
    returned config's `notices` say what the log should about either.
    """
    env = os.environ if env is None else env
    chosen = path or (Path(env["IMAGEFACTORY_CONFIG"]) if env.get("IMAGEFACTORY_CONFIG") else None)
    if chosen is None and DEFAULT_CONFIG_FILE.exists():
        chosen = DEFAULT_CONFIG_FILE
    values: dict[str, Any] = {}
    notices: list[tuple[int, str]] = []
    if chosen is not None:
        try:
            raw = json.loads(Path(chosen).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"cannot read configuration file {chosen}: {exc}") from exc
        if not isinstance(raw, dict):
            raise InvalidRequest(f"configuration file {chosen} must hold a JSON object")
        if legacyconfig.is_original(raw):
            read = legacyconfig.translate(raw, _KEYS, str(chosen), lenient=True)
            raw, notices = read.values, read.notices
        values.update(_from_mapping(raw, str(chosen)))
    values.update(_from_environment(env))
    # the command line may use the original daemon's spellings (`legacyconfig.SERVE_OPTIONS`)
    given = legacyconfig.translate(overrides or {}, _KEYS, "command line", lenient=False,
                                   spelling=legacyconfig.option_spelling)
    values.update(_from_mapping(given.values, "command line"))
    config = Config(**values)
    config.notices = [*notices, *given.notices]
    return config
