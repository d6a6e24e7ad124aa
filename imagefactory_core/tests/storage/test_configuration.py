"""Choosing storage from the configuration: the local directory unless ``storage_url`` names
a bucket, a wrong value stops the start naming its key, and the storage secret is never
shown. (The backends' contract runs against a real S3 server in tests/storage.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imagefactory_core.config import Config, load_config
from imagefactory_core.errors import InvalidRequest
from imagefactory_core.storage import BodyCache, LocalStorage, LogMirror, open_storage
from imagefactory_core.testing import make_config

SECRET = "s3-secret-key-never-shown"


def test_the_default_is_the_storage_directory_as_before(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    storage = open_storage(config)
    assert isinstance(storage, LocalStorage)
    assert storage.local_path("x.body") == config.storage_dir / "x.body"
    assert config.storage_url is None and Config().storage_url is None
    assert (config.storage_cache_mib, config.raw_image_redirect) == (8192, False)


def test_local_storage_is_used_in_place(tmp_path: Path) -> None:
    """The embedded default copies nothing: jobs write and read the stored files."""
    storage = LocalStorage(tmp_path)
    bodies = BodyCache(storage, tmp_path / "elsewhere", max_bytes=0)
    logs = LogMirror(storage, tmp_path / "elsewhere", interval=1)
    assert not bodies.copies and not logs.copies
    body = bodies.fetch("img", "job")
    assert body == tmp_path / "img.body"
    body.write_bytes(b"disk")
    bodies.store("img")
    bodies.release("job")
    assert storage.size("img.body") == 4  # no eviction: the stored file is the only one
    logs.open("img")
    with logs.appending("img", publish=True) as path, path.open("ab") as handle:
        handle.write(b"line\n")
    logs.close("img")
    assert (tmp_path / "img.log").read_bytes() == b"line\n"
    bodies.remove("img")
    assert storage.size("img.body") is None and storage.size("img.log") == 5


@pytest.mark.parametrize("url", ["http://bucket/prefix", "s3://", "s3:///prefix",
                                 "s3://user:pw@bucket/x", "s3://bucket:9000/x",
                                 "s3://bucket/x?region=eu"])
def test_a_storage_url_that_is_not_a_bucket_stops_the_start(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidRequest, match=r"'storage_url'.*s3://bucket/prefix"):
        open_storage(make_config(tmp_path, storage_url=url))


def test_an_access_key_without_its_secret_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"storage_access_key.*storage_secret_key"):
        open_storage(make_config(tmp_path, storage_url="s3://bucket/x",
                                 storage_access_key="AKIAEXAMPLE"))


@pytest.mark.parametrize(("key", "value"), [("storage_endpoint_url", "not a url"),
                                            ("storage_region", "no/such region")])
def test_an_endpoint_or_region_boto3_refuses_stops_the_start(tmp_path: Path, key: str,
                                                              value: str) -> None:
    with pytest.raises(InvalidRequest, match="'storage_endpoint_url', 'storage_region'"):
        open_storage(make_config(tmp_path, storage_url="s3://bucket/x", **{key: value}))


def test_the_storage_secret_is_never_shown(tmp_path: Path) -> None:
    config = load_config(env={"IMAGEFACTORY_STORAGE_URL": "s3://bucket/images",
                              "IMAGEFACTORY_STORAGE_SECRET_KEY": SECRET})
    assert config.storage_secret_key == SECRET
    assert SECRET not in repr(config)
    path = tmp_path / "imagefactory.conf"
    path.write_text(json.dumps({"storage_secret_key": 12345678987654321}))
    with pytest.raises(InvalidRequest) as raised:
        load_config(path, env={})
    assert "storage_secret_key" in str(raised.value)
    assert "12345678987654321" not in str(raised.value)


@pytest.mark.parametrize(("key", "raw"), [("STORAGE_CACHE_MIB", "-1"),
                                          ("LOG_UPLOAD_SECONDS", "0"),
                                          ("RAW_IMAGE_REDIRECT", "maybe")])
def test_bad_storage_settings_are_clear_errors(key: str, raw: str) -> None:
    with pytest.raises(InvalidRequest, match=repr(key.lower())):
        load_config(env={f"IMAGEFACTORY_{key}": raw})
