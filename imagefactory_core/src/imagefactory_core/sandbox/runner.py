"""The sandbox as plugins use it: `BuildContext.sandbox(...)` returns a `Sandbox` bound to the
build's context and to the operator's sandbox settings.

A plugin says what it needs (the tree, read-only inputs, writable outputs, whether the step
needs the network); the operator's configuration decides the limits, whether template commands
get the egress proxy at all, and which private destinations it may reach. Commands run through
``BuildContext.run``, so they are logged (as the command, not the launcher's long spec), timed
out and cancelled like any other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .ids import IdRange, shift_into_range, shift_out_of_range, subordinate_ids
from .policy import EgressPolicy
from .spec import DEFAULT_ENV, Bind, SandboxLimits, SandboxSpec
from .tools import host_tool_spec
from .wrap import wrap

if TYPE_CHECKING:
    from ..context import BuildContext

Network = Literal["none", "egress"]


@dataclass(frozen=True)
class SandboxSettings:
    """The operator's say over every sandbox (configuration keys ``sandbox_*``).

    Attributes:
        limits: memory, processes and tree size of each sandbox.
        network: what steps that ask for the network get: ``egress`` (the proxy and its
            policy) or ``none`` (no network for anything a template controls).
        egress_allow: URLs, CIDRs or host names beyond the public internet the proxy may
            reach (a URL adds its port to 80 and 443).
    """

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    network: Network = "egress"
    egress_allow: tuple[str, ...] = ()


class Sandbox:
    """A sandbox for one build step; `run` runs commands in it."""

    def __init__(self, ctx: BuildContext, spec: SandboxSpec, enter: Sequence[str] = ()):
        self.ctx = ctx
        self.spec = spec
        self.enter = list(enter)

    def argv(self, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
        """The command line that runs `argv` in this sandbox."""
        return [*self.enter, *wrap(self.spec, argv)]

    def run(self, argv: Sequence[str | os.PathLike[str]], *, input: bytes | None = None,
            timeout: float | None = None, check: bool = True,
            capture: bool = False) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside, through `BuildContext.run` (logged as ``[sandbox] argv``)."""
        shown = ["[sandbox]", *(os.fspath(arg) for arg in argv)]
        return self.ctx.run(self.argv(argv), input=input, timeout=timeout, check=check,
                            capture=capture, shown=shown)


def make_sandbox(ctx: BuildContext, settings: SandboxSettings, root: Path | None, *,
                 network: Network, inputs: Sequence[tuple[Path, str]],
                 outputs: Sequence[tuple[Path, str]], env: Mapping[str, str] | None,
                 hostname: str, host_tools: bool, egress_allow: Sequence[str],
                 egress_via: str | None, enter: Sequence[str]) -> Sandbox:
    """The `Sandbox` `BuildContext.sandbox` describes (see there)."""
    granted = "egress" if network == "egress" and settings.network == "egress" else "none"
    spec = SandboxSpec(
        root=root,
        inputs=tuple(Bind(Path(host), inside) for host, inside in inputs),
        outputs=tuple(Bind(Path(host), inside) for host, inside in outputs),
        network=granted,
        egress=EgressPolicy.of([*settings.egress_allow, *egress_allow], via=egress_via),
        limits=settings.limits,
        env=dict(DEFAULT_ENV if env is None else env),
        hostname=hostname,
        ids=sandbox_ids(),
    )
    if host_tools:
        spec = host_tool_spec(spec.inputs, spec.outputs, spec)
    return Sandbox(ctx, spec, enter)


def sandbox_ids() -> IdRange:
    """The host ids every sandbox runs as (root's subordinate range)."""
    return subordinate_ids()


def shift_tree(ctx: BuildContext, tree: Path, direction: Literal["in", "out"],
               enter: Sequence[str]) -> None:
    """Shift `tree` into the sandbox's range (``in``) or back (``out``), in this process or,
    for a tree mounted in another mount namespace, in a command run there (`enter`)."""
    if enter:
        ctx.run([*enter, sys.executable, "-I", "-m", "imagefactory_core.sandbox.shift",
                 direction, os.fspath(tree)])
    elif direction == "in":
        shift_into_range(tree, sandbox_ids())
    else:
        shift_out_of_range(tree, sandbox_ids())
