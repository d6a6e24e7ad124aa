"""What each kind of job does, from a queued image to the `Outcome` stored when it ends.

The engine (`engine.py`) decides when a job runs; this module decides what it does, calling
plugins through the `PluginHost` facade with what the job's `Plan` says: which plugin, with
which parameters. Each hook call gets a context bound to its plugin that masks the plugin's
secret parameter values. Plugins see bodies as local files: the parent bodies a job reads
are fetched from storage first, and the body a build writes is stored before the job may
complete (`store.bodies`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..context import BuildContext
from ..errors import BuildError
from ..model import ImageKind, ImageRecord, Outcome, Status
from ..parameters import secret_values
from ..plugins import PluginHost, PluginInfo
from ..processes import kill_job_processes, kill_recorded_groups
from ..storage import StorageError
from ..store import ImageStore
from ..tdl import Template
from .job import Job, Plan


class Work:
    def __init__(self, store: ImageStore, plugins: PluginHost):
        self.store = store
        self.plugins = plugins

    def run(self, job: Job, record: ImageRecord, ctx: BuildContext) -> Outcome:
        """Do `job` on `record`; raise `BuildError` (or `BuildCancelled`) when it fails. A
        build ends COMPLETE only once its body is in storage."""
        builds = job.action == "build" and job.kind is not ImageKind.PROVIDER
        try:
            if builds:
                self.store.bodies.hold(record.id, job.image_id)
            outcome = self._run(job, record, ctx)
            if builds:
                self._store_body(record, ctx)
            return outcome
        finally:
            self.store.bodies.release(job.image_id)

    def _run(self, job: Job, record: ImageRecord, ctx: BuildContext) -> Outcome:
        if job.plan.template:
            template = job.plan.parsed_template()
            if template.os.rootpw:
                ctx.add_secret(template.os.rootpw)
        if job.action == "delete":
            self._unpush(job, record, ctx)
            return Outcome(Status.DELETED, "Deleted from the provider")
        if job.kind is ImageKind.BASE:
            return self._base(job, ctx)
        if job.kind is ImageKind.TARGET:
            return self._target(job, record, ctx)
        return self._push(job, record, ctx)

    def _plugin(self, plugin_id: str | None) -> PluginInfo:
        info = self.plugins.loaded_by_id(plugin_id)
        if info is None:
            raise BuildError(f"plugin {plugin_id!r} is not loaded any more; GET "
                             "/imagefactory/plugins says why")
        return info

    @staticmethod
    def _bound(ctx: BuildContext, plan: Plan, info: PluginInfo) -> tuple[BuildContext,
                                                                         dict[str, Any]]:
        """A context bound to `info` and that plugin's parameters."""
        parameters = plan.parameters_of(info.id)
        return ctx.bound(info.id, secret_values(info.parameters, parameters)), parameters

    def _base(self, job: Job, ctx: BuildContext) -> Outcome:
        template = job.plan.parsed_template()
        os_plugin = self._plugin(job.plan.os_plugin)
        os_ctx, parameters = self._bound(ctx, job.plan, os_plugin)
        os_ctx.progress(0, f"Building {template.os.name} {template.os.version} "
                           f"{template.os.arch} with plugin {os_plugin.id}")
        result = self.plugins.create_base_image(os_plugin, os_ctx, template, parameters)
        _require_body(ctx)
        return _complete(icicle=result.icicle,
                         properties={**result.properties, "os_plugin": os_plugin.id})

    def _target(self, job: Job, record: ImageRecord, ctx: BuildContext) -> Outcome:
        plan = job.plan
        template = plan.parsed_template()
        assert record.base_image_id and plan.target
        cloud = self._plugin(plan.cloud_plugin)
        cloud_ctx, cloud_parameters = self._bound(ctx, plan, cloud)
        if record.target_image_id:
            return self._derived_target(record.target_image_id, job, template, cloud,
                                        cloud_ctx, cloud_parameters)
        base = self._fetched(self.store.get(record.base_image_id), job, ctx)
        content = self.plugins.target_content(cloud, plan.target, template, cloud_parameters)
        source = base.body_path
        icicle = base.icicle
        if content:
            os_plugin = self._plugin(plan.os_plugin)
            os_ctx, os_parameters = self._bound(ctx.scaled(5, 60), plan, os_plugin)
            source = ctx.workdir / "disk.raw"
            ctx.progress(0, f"Copying base image {base.id} for {plan.target} customisation")
            ctx.run(["cp", "--sparse=always", base.body_path, source])
            ctx.check_cancelled()
            ctx.progress(5, f"Adding {plan.target} content with plugin {os_plugin.id}")
            applied = self.plugins.apply_target_content(os_plugin, os_ctx, template, content,
                                                        source, os_parameters)
            icicle = applied.icicle or icicle
        ctx.progress(60, f"Creating {plan.target} image with plugin {cloud.id}")
        result = self.plugins.create_target_image(cloud, cloud_ctx.scaled(60, 100), template,
                                                  base.view(), source, plan.target,
                                                  cloud_parameters)
        _require_body(ctx)
        return _complete(icicle=icicle,
                         properties={**result.properties, "cloud_plugin": cloud.id})

    def _derived_target(self, source_id: str, job: Job, template: Template,
                        cloud: PluginInfo, cloud_ctx: BuildContext,
                        cloud_parameters: dict[str, Any]) -> Outcome:
        """A target image made from another target image (``CloudTarget.from_targets``): the
        plugin gets the source's body as it is, without target content."""
        plan = job.plan
        assert plan.target
        source = self._fetched(self.store.get(source_id), job, cloud_ctx)
        cloud_ctx.progress(0, f"Creating {plan.target} image from {source.target} target image "
                              f"{source.id} with plugin {cloud.id}")
        result = self.plugins.create_target_image(cloud, cloud_ctx, template, source.view(),
                                                  source.body_path, plan.target,
                                                  cloud_parameters)
        _require_body(cloud_ctx)
        return _complete(icicle=source.icicle,
                         properties={**result.properties, "cloud_plugin": cloud.id})

    def _push(self, job: Job, record: ImageRecord, ctx: BuildContext) -> Outcome:
        plan = job.plan
        assert record.target_image_id and plan.target
        target_image = self._fetched(self.store.get(record.target_image_id), job, ctx)
        cloud = self._plugin(plan.cloud_plugin)
        cloud_ctx, parameters = self._bound(ctx, plan, cloud)
        _mask(cloud_ctx, job.credentials)
        template = plan.parsed_template() if plan.template else None
        cloud_ctx.progress(0, f"Pushing to {plan.target} provider {_provider_name(plan.provider)}")
        result = self.plugins.push_image(cloud, cloud_ctx, template, target_image.view(),
                                         plan.target, plan.provider or "",
                                         job.credentials or {}, parameters)
        return _complete(identifier_on_provider=result.identifier_on_provider,
                         provider_account_identifier=result.provider_account_identifier,
                         properties={**record.properties, **result.properties})

    def _unpush(self, job: Job, record: ImageRecord, ctx: BuildContext) -> None:
        plan = job.plan
        cloud = self._plugin(plan.cloud_plugin)
        cloud_ctx, parameters = self._bound(ctx, plan, cloud)
        _mask(cloud_ctx, job.credentials)
        cloud_ctx.progress(0, f"Deleting {record.identifier_on_provider} from {plan.target}")
        self.plugins.delete_from_provider(cloud, cloud_ctx, record.view(), plan.target or "",
                                          plan.provider or record.provider or "",
                                          job.credentials or {}, parameters)

    def _fetched(self, image: ImageRecord, job: Job, ctx: BuildContext) -> ImageRecord:
        """`image`, its body (`body_path`) a local file until `job` ends."""
        bodies = self.store.bodies
        named = f"{image.kind.singular.replace('_', ' ')} {image.id}"
        if bodies.copies:
            ctx.progress(0, f"Fetching the body of {named} from {bodies.storage.describe()}")
        try:
            bodies.fetch(image.id, job.image_id, lambda: ctx.cancelled)
        except StorageError as exc:
            ctx.check_cancelled()
            raise BuildError(f"the body of {named} could not be fetched: {exc}") from exc
        return image

    def _store_body(self, record: ImageRecord, ctx: BuildContext) -> None:
        """Upload the body the plugin wrote (nothing to do when storage is its directory)."""
        bodies = self.store.bodies
        if not bodies.copies:
            return
        ctx.progress(0, f"Storing the image body in {bodies.storage.describe()}")
        try:
            bodies.store(record.id, lambda: ctx.cancelled)
        except StorageError as exc:
            ctx.check_cancelled()
            raise BuildError(f"the image body could not be stored: {exc}") from exc
        ctx.check_cancelled()  # deleted while it uploaded: not COMPLETE, and removed


def _complete(**made: Any) -> Outcome:
    return Outcome(Status.COMPLETE, "Complete", **made)


def _mask(ctx: BuildContext, credentials: Any) -> None:
    """Mask every credential value in the log, the commands logged and the error shown,
    whatever the plugin does with them."""
    if isinstance(credentials, dict):
        for value in credentials.values():
            _mask(ctx, value)
    elif isinstance(credentials, list):
        for value in credentials:
            _mask(ctx, value)
    elif isinstance(credentials, str) and credentials.strip():
        ctx.add_secret(credentials)


def _require_body(ctx: BuildContext) -> None:
    if not ctx.body_path.exists():
        raise BuildError(f"the plugin finished without writing the image body {ctx.body_path}")


def _provider_name(provider: str | dict[str, Any] | None) -> str:
    if isinstance(provider, dict):
        return str(provider.get("name") or provider.get("region") or provider.get("auth_url")
                   or json.dumps(sorted(provider)))
    return provider or "(none)"


def remove_tree(path: Any) -> None:
    """Remove a job's work directory. Commands a killed service left running there, and
    processes the job's commands left behind, are ended first, then mounts left inside are
    unmounted, so rmtree never descends into a live filesystem."""
    kill_recorded_groups(Path(path))
    kill_job_processes(Path(path))
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True,
                            check=False).stdout.split()
    for mount in sorted((m for m in mounts if m.startswith(str(path))), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)
    shutil.rmtree(path, ignore_errors=True)
