"""Configuration: imagefactory.conf (JSON) < environment < command line.

The keys are the original Image Factory's where they still make sense (`debug`, `no_ssl`,
`no_oauth`, `clients`, `max_concurrent_local_sessions`, `image_manager_args.storage_path`,
`tdl_require_root_pw`); the rest are new and documented in docs/operators.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InvalidRequest

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
    cache_path: str = "/var/cache/imagefactory"
    database_url: str | None = None
    max_concurrent_local_sessions: int = 2
    max_concurrent_uploads: int = 2
    tdl_require_root_pw: bool = False
    max_request_bytes: int = 4 * 1024 * 1024
    max_template_bytes: int = 1024 * 1024
    callback_timeout: float = 10.0
    callback_retries: int = 3
    server_threads: int = 16
    disabled_plugins: list[str] = field(default_factory=list)
    plugin_modules: list[str] = field(default_factory=list)
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- derived locations ----------------------------------------------------------------------
    @property
    def storage_dir(self) -> Path:
        """Where image bodies (`<uuid>.body`) and build logs (`<uuid>.log`) live."""
        return Path(self.storage_path or Path(self.state_dir) / "storage")

    @property
    def work_dir(self) -> Path:
        return Path(self.state_dir) / "work"

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache_path)

    @property
    def secret_key_file(self) -> Path:
        """Key that seals the unredacted template in the database (so restarts can rebuild)."""
        return Path(self.state_dir) / "secret.key"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.state_dir) / 'imagefactory.db'}"

    @property
    def oauth_enabled(self) -> bool:
        return not self.no_oauth

    def plugin_config(self, name: str) -> dict[str, Any]:
        return dict(self.plugins.get(name, {}))


_FIELDS = {f.name: f for f in fields(Config)}


def _coerce(name: str, value: Any) -> Any:
    """Turn a JSON or environment value into the field's type, or say what is wrong."""
    kind = _FIELDS[name].type
    try:
        if "bool" in kind:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(value)
                return lowered in {"1", "true", "yes", "on"}
            return bool(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("list") and isinstance(value, str) and not value.startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        if kind.startswith(("dict", "list")):
            return json.loads(value) if isinstance(value, str) else value
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"configuration key {name!r}: cannot use {value!r} ({exc})") from exc
    return value


def _from_mapping(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "image_manager_args" and isinstance(value, Mapping):
            if "storage_path" in value:
                values["storage_path"] = value["storage_path"]
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
    when it exists. ``IMAGEFACTORY_DISABLED_PLUGINS`` is a comma-separated list.
    """
    env = os.environ if env is None else env
    chosen = path or (Path(env["IMAGEFACTORY_CONFIG"]) if env.get("IMAGEFACTORY_CONFIG") else None)
    if chosen is None and DEFAULT_CONFIG_FILE.exists():
        chosen = DEFAULT_CONFIG_FILE
    values: dict[str, Any] = {}
    if chosen is not None:
        try:
            raw = json.loads(Path(chosen).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"cannot read configuration file {chosen}: {exc}") from exc
        if not isinstance(raw, dict):
            raise InvalidRequest(f"configuration file {chosen} must hold a JSON object")
        values.update(_from_mapping(raw, str(chosen)))
    values.update(_from_environment(env))
    values.update(_from_mapping(overrides or {}, "command line"))
    return Config(**values)
