"""The storage the configuration names: ``storage_url`` unset, the local directory
``storage_path`` (the embedded default); ``s3://bucket/prefix``, that bucket."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config import Config
from ..errors import InvalidRequest
from .base import Storage, StorageError
from .local import LocalStorage
from .s3 import CONCURRENCY, S3Storage


def open_storage(config: Config) -> Storage:
    """The configured storage, checked: an object store's bucket must answer, or the service
    does not start (`InvalidRequest` naming the key)."""
    if not config.storage_url:
        return LocalStorage(config.storage_dir)
    url = urlsplit(config.storage_url)
    bucket = url.netloc
    if url.scheme != "s3" or not bucket or set(bucket) & set(":@") or url.query or url.fragment:
        raise InvalidRequest(f"configuration key 'storage_url': {config.storage_url!r} is not "
                             "s3://bucket/prefix (unset, storage is the directory "
                             "storage_path)")
    if bool(config.storage_access_key) != bool(config.storage_secret_key):
        raise InvalidRequest("configuration keys 'storage_access_key' and "
                             "'storage_secret_key': set both, or neither (boto3's standard "
                             "credentials: environment, shared files, instance role)")
    try:
        import boto3
        import botocore.config
    except ImportError as exc:
        raise InvalidRequest("configuration key 'storage_url': object storage needs boto3 "
                             "(pip install 'imagefactory-core[s3]')") from exc
    session = boto3.session.Session(aws_access_key_id=config.storage_access_key,
                                    aws_secret_access_key=config.storage_secret_key,
                                    region_name=config.storage_region)
    # S3-compatible stores (an endpoint of their own) rarely resolve virtual-host names
    addressing = {"addressing_style": "path"} if config.storage_endpoint_url else {}
    try:
        client = session.client("s3", endpoint_url=config.storage_endpoint_url,
                                config=botocore.config.Config(
                                    signature_version="s3v4", s3=addressing,
                                    retries={"max_attempts": 5, "mode": "standard"},
                                    connect_timeout=10, read_timeout=60,
                                    max_pool_connections=4 * CONCURRENCY))
    except ValueError as exc:  # botocore's invalid endpoint and region errors are ValueErrors
        raise InvalidRequest(f"configuration keys 'storage_endpoint_url', 'storage_region': "
                             f"{exc}") from exc
    storage = S3Storage(client, bucket, url.path)
    try:
        storage.check()
    except StorageError as exc:
        raise InvalidRequest(f"configuration key 'storage_url': {exc}") from exc
    return storage
