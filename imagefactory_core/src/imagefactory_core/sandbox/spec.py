"""What a sandbox is made of: the value a plugin describes and the launcher carries out.

A `SandboxSpec` is plain data so that it can travel to the launcher process on its command
line (`to_json` / `from_json`) and be logged with the command that runs in it.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .ids import IdRange
from .policy import EgressPolicy

Network = Literal["none", "egress"]

DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}


def _inside_path(path: str) -> str:
    if not path.startswith("/") or posixpath.normpath(path) != path or path == "/":
        raise ValueError(f"{path!r} is not a normalised absolute path below / inside the sandbox")
    return path


@dataclass(frozen=True)
class Bind:
    """A host file or directory shown at `inside` in the sandbox."""

    host: Path
    inside: str

    def __post_init__(self) -> None:
        if not self.host.is_absolute():
            raise ValueError(f"bind source {self.host} is not an absolute path")
        _inside_path(self.inside)


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits; None means unlimited.

    Attributes:
        memory_mib: memory of all processes together (a cgroup), or per process (RLIMIT_AS)
            where the host has no memory controller; tmpfs mounts count too.
        processes: processes at once (a pids cgroup, or RLIMIT_NPROC).
        wall_seconds: the sandbox is killed after this long.
        tree_mib: the disk space the image tree may use, checked before the start and every
            `tree_check_seconds` while it runs.
    """

    memory_mib: int | None = 4096
    processes: int | None = 1024
    wall_seconds: float | None = None
    tree_mib: int | None = None
    tree_check_seconds: float = 5.0


@dataclass(frozen=True)
class SandboxSpec:
    """A sandbox to run commands in.

    Attributes:
        root: the image tree, ``/`` inside, read-write; it must be owned by `ids` (see
            `imagefactory_core.sandbox.ids`). None: an empty tmpfs, for host tools that only
            read or write what `inputs` and `outputs` show (`imagefactory_core.sandbox.tools`).
        inputs: host paths shown read-only (and nosuid, nodev); readable inside only if they
            are world-readable or owned by `ids`.
        outputs: host files or directories shown writable; the launcher gives the top one to
            the sandbox's root (chown into `ids`) so that root inside may write it.
        network: ``"none"`` (only loopback) or ``"egress"`` (only loopback, plus an HTTP proxy
            at ``http_proxy`` that reaches what `egress` allows).
        egress: the policy of the egress proxy.
        limits: resource limits.
        env: the whole environment inside (nothing of the caller's leaks in).
        cwd: the working directory inside.
        hostname: the host name inside (its own UTS namespace).
        ids: the host ids the sandbox runs as; None: root's first subordinate range.
    """

    root: Path | None
    inputs: tuple[Bind, ...] = ()
    outputs: tuple[Bind, ...] = ()
    network: Network = "none"
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    env: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV))
    cwd: str = "/"
    hostname: str = "imagefactory"
    ids: IdRange | None = None

    def __post_init__(self) -> None:
        if self.root is not None and not self.root.is_absolute():
            raise ValueError(f"sandbox root {self.root} is not an absolute path")
        if self.network not in ("none", "egress"):
            raise ValueError(f"network must be 'none' or 'egress', not {self.network!r}")
        if self.cwd != "/":
            _inside_path(self.cwd)
        seen = [bind.inside for bind in (*self.inputs, *self.outputs)]
        if len(seen) != len(set(seen)):
            raise ValueError(f"two binds share a path inside the sandbox: {sorted(seen)}")

    def with_ids(self, ids: IdRange) -> SandboxSpec:
        return replace(self, ids=ids)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "root": None if self.root is None else str(self.root),
            "inputs": [[str(b.host), b.inside] for b in self.inputs],
            "outputs": [[str(b.host), b.inside] for b in self.outputs],
            "network": self.network,
            "egress": self.egress.to_dict(),
            "limits": vars(self.limits),
            "env": dict(self.env),
            "cwd": self.cwd,
            "hostname": self.hostname,
            "ids": None if self.ids is None else vars(self.ids),
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SandboxSpec:
        data = json.loads(text)
        return cls(
            root=None if data["root"] is None else Path(data["root"]),
            inputs=tuple(Bind(Path(host), inside) for host, inside in data["inputs"]),
            outputs=tuple(Bind(Path(host), inside) for host, inside in data["outputs"]),
            network=data["network"],
            egress=EgressPolicy(tuple(data["egress"]["allow"]), tuple(data["egress"]["ports"]),
                                data["egress"]["via"]),
            limits=SandboxLimits(**data["limits"]),
            env=data["env"],
            cwd=data["cwd"],
            hostname=data["hostname"],
            ids=None if data["ids"] is None else IdRange(**data["ids"]),
        )
