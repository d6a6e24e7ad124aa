"""Storage on both backends: the default local directory, and S3 served by a real moto server
on 127.0.0.1 (``moto_endpoint``, tests/services/moto.py). Each test gets a bucket of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from imagefactory_core.plugins import PluginHost, load_plugins
from imagefactory_core.storage import LocalStorage, S3Storage, Storage
from imagefactory_core.testing import make_config

from tests.plugins import fake_cloud, fake_os

# moto refuses parts below S3's 5 MiB minimum, as S3 does; small parts make multipart uploads
# of test-sized files
PART_SIZE = 5 * 1024 * 1024


def s3_client(endpoint: dict[str, Any]) -> Any:
    return boto3.session.Session(
        aws_access_key_id=endpoint["access_key"],
        aws_secret_access_key=endpoint["secret_access_key"],
        region_name=endpoint["region"],
    ).client("s3", endpoint_url=endpoint["endpoint_url"],
             config=botocore.config.Config(signature_version="s3v4",
                                         s3={"addressing_style": "path"}))


@pytest.fixture
def bucket(moto_endpoint: dict[str, Any]) -> Iterator[str]:
    """A new, empty bucket on the moto server."""
    name = f"images-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    yield name


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each backend in turn, empty."""
    if request.param == "local":
        root = tmp_path / "stored"
        root.mkdir()
        return LocalStorage(root)
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3Storage(s3_client(endpoint), request.getfixturevalue("bucket"), "some/prefix",
                     part_size=PART_SIZE, concurrency=2)


@pytest.fixture
def s3_config(tmp_path: Path, moto_endpoint: dict[str, Any], bucket: str) -> Any:
    """The service's configuration with its bodies and logs in `bucket`."""
    return make_config(tmp_path, storage_url=f"s3://{bucket}/imagefactory",
                       storage_endpoint_url=moto_endpoint["endpoint_url"],
                       storage_region=moto_endpoint["region"],
                       storage_access_key=moto_endpoint["access_key"],
                       storage_secret_key=moto_endpoint["secret_access_key"],
                       log_upload_seconds=0.2)


@pytest.fixture
def imagefactory_config(s3_config: Any) -> Any:
    return s3_config


@pytest.fixture
def imagefactory_plugins() -> PluginHost:
    return load_plugins(discover=False, extra=[("FakeOS", fake_os), ("FakeCloud", fake_cloud)])


@pytest.fixture
def client(imagefactory_client):  # type: ignore[no-untyped-def]
    return imagefactory_client
