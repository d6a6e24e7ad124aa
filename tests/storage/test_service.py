"""The service with its bodies and logs in S3 (a real moto server), built by the test plugins:
downloads through the API (whole, in ranges) or by a pre-signed redirect, jobs whose parent
bodies are only in the bucket, a body the bucket refuses, and logs read from the bucket while
and after a job runs."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import falcon.testing
import pytest
from imagefactory_core.api.app import build_services, create_app
from imagefactory_core.errors import InvalidRequest
from imagefactory_core.testing import wait_for_status

from tests.plugins import fake_cloud
from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl

from .conftest import s3_client

DISK_BYTES = 4 * 1024 * 1024
PREFIX = "imagefactory"


def post(client: falcon.testing.TestClient, collection: str, body: dict[str, Any]) -> str:
    result = client.simulate_post(f"/imagefactory/{collection}", json=body)
    assert result.status_code == 202, result.text
    image = next(iter(result.json.values()))
    return f"/imagefactory/{collection}/{image['id']}"


def built(client: falcon.testing.TestClient, collection: str, body: dict[str, Any]) -> str:
    href = post(client, collection, body)
    image = wait_for_status(client, href)
    assert image["status"] == "COMPLETE", image["status_detail"]
    return href


def in_bucket(endpoint: dict[str, Any], bucket: str, key: str) -> bytes:
    answer = s3_client(endpoint).get_object(Bucket=bucket, Key=f"{PREFIX}/{key}")
    return answer["Body"].read()


def forget_local_copies(client: falcon.testing.TestClient) -> None:
    """Empty this worker's cache of bodies: what a job needs must come from the bucket."""
    for copy in client.app.services.config.storage_dir.glob("*.body"):
        copy.unlink()


def test_a_body_is_in_the_bucket_and_downloads_whole_and_in_ranges(client, moto_endpoint,
                                                                   bucket):
    href = built(client, "base_images", {"base_image": {"template": fake_tdl()}})
    image_id = href.rsplit("/", 1)[1]
    body = in_bucket(moto_endpoint, bucket, f"{image_id}.body")
    assert len(body) == DISK_BYTES and body.startswith(b"FAKEOS f17jeos 17\n")
    forget_local_copies(client)  # served from the bucket, not from a local copy
    full = client.simulate_get(f"{href}/raw_image")
    assert full.status_code == 200
    assert int(full.headers["content-length"]) == DISK_BYTES
    assert full.content == body
    for header, first, last in [("bytes=1048570-1048585", 1048570, 1048585),
                                ("bytes=-10", DISK_BYTES - 10, DISK_BYTES - 1),
                                ("bytes=4194300-99999999", 4194300, DISK_BYTES - 1)]:
        part = client.simulate_get(f"{href}/raw_image", headers={"Range": header})
        assert part.status_code == 206, part.text
        assert part.headers["content-range"] == f"bytes {first}-{last}/{DISK_BYTES}"
        assert part.content == body[first:last + 1]
    assert client.simulate_get(f"{href}/raw_image",
                               headers={"Range": f"bytes={DISK_BYTES}-"}).status_code == 416
    head = client.simulate_head(f"{href}/raw_image")
    assert head.status_code == 200 and int(head.headers["content-length"]) == DISK_BYTES
    log = client.simulate_get(f"{href}/log").content
    assert log == in_bucket(moto_endpoint, bucket, f"{image_id}.log")
    assert b"== Storing the image body in s3://" in log
    assert log.rstrip().endswith(b"== COMPLETE")


@pytest.fixture
def redirecting(s3_config, imagefactory_plugins) -> Iterator[falcon.testing.TestClient]:
    app = create_app(replace(s3_config, raw_image_redirect=True), imagefactory_plugins)
    yield falcon.testing.TestClient(app)
    app.services.engine.shutdown(timeout=30)


def test_raw_image_redirects_to_a_presigned_url_when_configured(redirecting, moto_endpoint,
                                                                bucket):
    href = built(redirecting, "base_images", {"base_image": {"template": fake_tdl()}})
    body = in_bucket(moto_endpoint, bucket, f"{href.rsplit('/', 1)[1]}.body")
    answer = redirecting.simulate_get(f"{href}/raw_image")
    assert answer.status_code == 307
    location = answer.headers["location"]
    assert location.startswith(f"{moto_endpoint['endpoint_url']}/{bucket}/{PREFIX}/")
    assert moto_endpoint["secret_access_key"] not in location
    with urllib.request.urlopen(location, timeout=10) as download:
        assert download.read() == body
    ranged = urllib.request.Request(location, headers={"Range": "bytes=7-13"})
    with urllib.request.urlopen(ranged, timeout=10) as download:
        assert download.status == 206 and download.read() == body[7:14]
    head = redirecting.simulate_head(f"{href}/raw_image")  # a GET URL signs no HEAD: answered
    assert head.status_code == 200 and int(head.headers["content-length"]) == DISK_BYTES


def test_jobs_fetch_parent_bodies_that_are_only_in_the_bucket(client, moto_endpoint, bucket):
    base = built(client, "base_images", {"base_image": {"template": fake_tdl()}})
    base_id = base.rsplit("/", 1)[1]
    forget_local_copies(client)
    target = built(client, "target_images", {"target_image": {
        "base_image_id": base_id, "target": "fakecloud"}})
    target_id = target.rsplit("/", 1)[1]
    body = in_bucket(moto_endpoint, bucket, f"{target_id}.body")
    assert body.startswith(b"FAKEOS f17jeos 17\n")
    assert b"fake-cloud-agent" in body[1024 * 1024:1024 * 1024 + 64]  # its target content
    log = client.simulate_get(f"{target}/log").text
    assert f"== Fetching the body of base image {base_id} from s3://{bucket}/" in log
    forget_local_copies(client)
    pushed = built(client, "provider_images", {"provider_image": {
        "target_image_id": target_id, "provider": "p1", "credentials": SEED_CREDENTIALS}})
    identifier = client.simulate_get(pushed).json["provider_image"]["identifier_on_provider"]
    assert fake_cloud.CLOUD[identifier]["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_body_the_bucket_refuses_fails_the_build_saying_so(client, moto_endpoint, bucket,
                                                             caplog):
    caplog.set_level(logging.DEBUG)
    s3_client(moto_endpoint).delete_bucket(Bucket=bucket)
    href = post(client, "base_images", {"base_image": {"template": fake_tdl()}})
    image = wait_for_status(client, href)
    assert image["status"] == "FAILED"
    error = image["status_detail"]["error"]
    assert error.startswith(f"the image body could not be stored: s3://{bucket}/{PREFIX}/ at "
                            f"{moto_endpoint['endpoint_url']}: could not upload "), error
    assert "NoSuchBucket" in error
    assert not client.app.services.store.body_path(href.rsplit("/", 1)[1]).exists()
    secret = moto_endpoint["secret_access_key"]
    assert secret not in error and secret not in caplog.text
    assert secret not in repr(client.app.services.config)


def test_a_bucket_that_does_not_answer_stops_the_start(s3_config, imagefactory_plugins):
    config = replace(s3_config, storage_url="s3://no-such-bucket-here/imagefactory")
    with pytest.raises(InvalidRequest, match="'storage_url': s3://no-such-bucket-here/"):
        build_services(config, imagefactory_plugins)


def test_a_running_build_log_reaches_the_bucket_and_is_followed(client, moto_endpoint, bucket,
                                                                gate):
    href = post(client, "base_images", {"base_image": {"template": fake_tdl(),
                                                        "parameters": gate.parameter()}})
    image_id = href.rsplit("/", 1)[1]
    gate.wait_held(image_id)
    deadline = time.monotonic() + 10
    while b"Pretending to install" not in client.simulate_get(f"{href}/log").content:
        assert time.monotonic() < deadline, "the log of the running build never reached storage"
        time.sleep(0.1)
    assert client.simulate_get(href).json["base_image"]["status"] == "BUILDING"
    threading.Timer(0.5, gate.release, (image_id,)).start()
    followed = client.simulate_get(f"{href}/log", params={"follow": "true"}).content
    assert b"Pretending to install" in followed
    assert followed.rstrip().endswith(b"== COMPLETE")
    assert followed == in_bucket(moto_endpoint, bucket, f"{image_id}.log")
    assert not client.app.services.store.log_path(image_id).exists()  # the local copy is gone
