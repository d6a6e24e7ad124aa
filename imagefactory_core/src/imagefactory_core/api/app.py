"""`create_app(config)`: build every collaborator and route requests to thin resources.

Read ROUTES to find where a request goes. The OpenAPI document (`openapi.py`) is checked
against this table by the tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import falcon
import falcon.media

from ..builds.dispatch import Dispatcher
from ..builds.engine import BuildEngine
from ..builds.worker import open_queue
from ..config import Config
from ..model import ImageKind
from ..plugins import PluginHost, load_plugins
from ..service import ImageService
from ..statelock import instance_id
from ..storage import open_storage
from ..store import ImageStore, Instances, RecordCache, Sealer, SqlNonceStore, open_database
from ..store.cache import SqliteChanges
from ..store.jobs import Jobs
from . import errors
from .logs import Followers
from .media import (
    FORM_TYPE,
    MULTIPART_TYPE,
    XML_TYPES,
    JSONHandler,
    XMLHandler,
    multipart_handler,
)
from .middleware import BodyLimit, RequireJSONAccept
from .oauth import OAuthMiddleware
from .openapi import OpenAPIDocument
from .resources import BuildLog, ImageCollection, ImageItem, Plugins, RawImage, Root

log = logging.getLogger(__name__)
PREFIX = "/imagefactory"

# (collection URL template, kind of image, the field naming one image in it)
IMAGE_ROUTES: list[tuple[str, ImageKind, str]] = [
    ("/base_images", ImageKind.BASE, "base_id"),
    ("/target_images", ImageKind.TARGET, "target_id"),
    ("/provider_images", ImageKind.PROVIDER, "provider_id"),
    ("/base_images/{base_id}/target_images", ImageKind.TARGET, "target_id"),
    # target images made from a target image (an OVA of a vsphere image)
    ("/target_images/{target_id}/target_images", ImageKind.TARGET, "derived_id"),
    ("/target_images/{target_id}/provider_images", ImageKind.PROVIDER, "provider_id"),
    ("/base_images/{base_id}/target_images/{target_id}/provider_images", ImageKind.PROVIDER,
     "provider_id"),
]


@dataclass
class Services:
    """The collaborators `create_app` built; tests and the CLI reach them through
    ``app.services`` (to stop the engine, for example)."""

    config: Config
    store: ImageStore
    plugins: PluginHost
    engine: BuildEngine | Dispatcher
    images: ImageService


class ImageFactoryApp(falcon.App):
    """The Falcon app, carrying the `Services` it was built with (``app.services``)."""

    services: Services


def open_store(config: Config, connections: int, *, cache: RecordCache | None,
               owns_work: bool) -> ImageStore:
    """The store of `config`, keeping records in `cache` (store/cache.py); `owns_work`: this
    process runs builds, so each status it writes records its instance id as the image's
    owner (not an API process whose builds run in workers: the workers own their work)."""
    # Root's alone: image bodies and logs hold what templates put in them, and the work and
    # cache directories hold image trees owned by the build sandbox's subordinate ids, which a
    # process that escaped a sandbox must not be able to reach.
    for path in (Path(config.state_dir), config.storage_dir, config.work_dir, config.cache_dir):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
    database = open_database(config.db_url, connections)
    return ImageStore(database, config.storage_dir, Sealer(config.secret_key_file),
                      max_log_bytes=config.max_log_bytes,
                      cache=cache,
                      storage=open_storage(config),
                      cache_bytes=config.storage_cache_mib * 1024 * 1024,
                      log_upload_seconds=config.log_upload_seconds,
                      owner=instance_id(Path(config.state_dir)) if owns_work else None)


def build_services(config: Config, plugins: PluginHost | None = None, *,
                   dispatch: bool = False) -> Services:
    """Everything the app needs. Builds run in this process's `BuildEngine`, or with
    `dispatch` in build workers the `Dispatcher` hands jobs to (`config.build_workers`)."""
    # a connection for each thread that may query: the server's, builds', uploads', callbacks',
    # the heartbeat's
    connections = config.server_threads + 2
    if not dispatch:
        connections += config.max_concurrent_local_sessions + config.max_concurrent_uploads
    # The state directory's own database is written by this process alone (the engine holds
    # the state lock), or also by the build worker beside it, which the cache then watches
    # for; a database_url may be shared by hosts, so nothing is cached.
    cache = None
    if config.database_url is None:
        Path(config.state_dir).mkdir(parents=True, exist_ok=True)
        cache = (RecordCache(changed=SqliteChanges(config.sqlite_file)) if dispatch
                 else RecordCache())
    store = open_store(config, connections, cache=cache, owns_work=not dispatch)
    plugins = plugins or load_plugins(disabled=config.disabled_plugins,
                                     modules=config.plugin_modules)
    plugins.configure(config.plugins)
    engine: BuildEngine | Dispatcher
    if dispatch:
        jobs = Jobs(store.engine, store.sealer,
                    Instances(store.engine, config.worker_stale_seconds))
        engine = Dispatcher(store, jobs, open_queue(config, jobs), config)
    else:
        engine = BuildEngine(store, plugins, config)
    return Services(config, store, plugins, engine, ImageService(config, store, plugins, engine))


def route_table(services: Services) -> list[tuple[str, object, str | None]]:
    """Every (URL, resource, suffix) the app serves."""
    config, images = services.config, services.images
    followers = Followers(config.log_followers, config.log_follow_seconds)
    routes: list[tuple[str, object, str | None]] = [
        ("", Root(), None),
        ("/openapi.json", OpenAPIDocument(services.plugins), None),
        ("/plugins", Plugins(services.plugins, config), None),
        ("/plugins/{plugin_id}", Plugins(services.plugins, config), "one"),
    ]
    for path, kind, own in IMAGE_ROUTES:
        item = ImageItem(images, config, kind, own)
        item_path = f"{path}/{{{own}}}"
        routes += [(path, ImageCollection(images, config, kind), None), (item_path, item, None),
                   (f"{item_path}/log", BuildLog(item, followers), None)]
        if kind is not ImageKind.PROVIDER:
            routes.append((f"{item_path}/raw_image", RawImage(item), None))
    return routes


def create_app(config: Config, plugins: PluginHost | None = None,
               services: Services | None = None,
               resume_unfinished: bool = True, dispatch: bool = False) -> ImageFactoryApp:
    """The WSGI application. Starts the build engine and re-queues interrupted builds (or,
    without `resume_unfinished`, fails them: see `BuildEngine.recover`); with `dispatch`,
    hands builds to build workers instead (`build_services`)."""
    services = services or build_services(config, plugins, dispatch=dispatch)
    # Authentication comes before content negotiation: an unsigned write is a 401 whatever
    # it accepts.
    middleware: list[object] = [BodyLimit(config.max_request_bytes)]
    if config.oauth_enabled:
        middleware.append(OAuthMiddleware(
            config.clients,
            SqlNonceStore(services.store.engine, config.oauth_timestamp_window),
            protect_reads=config.protect_reads,
            timestamp_window=config.oauth_timestamp_window,
            trust_proxy_headers=config.trust_proxy_headers,
        ))
    else:
        log.warning("OAuth is OFF (--no-oauth): anyone who can reach this port can build, "
                    "push and delete images. Use this for development only.")
    middleware.append(RequireJSONAccept())
    app = ImageFactoryApp(middleware=middleware)
    handlers = {falcon.MEDIA_JSON: JSONHandler(),
                FORM_TYPE: falcon.media.URLEncodedFormHandler(),
                MULTIPART_TYPE: multipart_handler(config.max_request_bytes)}
    handlers.update(dict.fromkeys(XML_TYPES, XMLHandler()))
    app.req_options.media_handlers = falcon.media.Handlers(handlers)
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    for path, resource, suffix in route_table(services):
        app.add_route(PREFIX + path, resource, **({"suffix": suffix} if suffix else {}))
    app.services = services
    services.engine.recover(resume=resume_unfinished)
    return app
