"""Fixtures for the ec2 plugin's tests: small synthetic disks, target image records, build
contexts and boto3 clients for the moto servers of ``tests/services/moto.py``.

Every push uses a fresh provider image id, and checks look things up by that id's tag, so tests
can share one moto server per session.

The plugin is configured as an operator would to reach moto on 127.0.0.1: every moto server
started is listed in the plugin's ``endpoints``, and the build contexts' outbound policy allows
127.0.0.1 (``outbound_allow``).
"""

from __future__ import annotations

import os
import random
import subprocess
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
import imagefactory_ec2
import pytest
from botocore.client import BaseClient
from imagefactory_core.plugin import ImageKind, ImageView, OSSpec, Template
from imagefactory_core.testing import RecordingBuildContext, make_build_context, plugin_parameters

MIB = 1024 * 1024
OUTBOUND_ALLOW = ("127.0.0.1",)
TEMPLATE_XML = """<template>
  <name>ec2 plugin test</name>
  <description>A synthetic disk pushed by the ec2 plugin's tests</description>
  <os><name>Debian</name><version>12</version><arch>{arch}</arch>
    <install type="url"><url>http://deb.debian.org/debian</url></install></os>
</template>"""


def make_template(arch: str = "x86_64") -> Template:
    return Template(xml=TEMPLATE_XML.format(arch=arch), name="ec2 plugin test",
                    description="A synthetic disk pushed by the ec2 plugin's tests",
                    os=OSSpec(name="Debian", version="12", arch=arch, install_type="url",
                              install_url="http://deb.debian.org/debian"))


def write_disk(path: Path, size: int, pieces: list[tuple[int, bytes]], *,
               partitions: str | None = None, boot_code: bool = False) -> Path:
    """A sparse raw disk of `size` bytes: an optional partition table (sfdisk script), optional
    BIOS boot code in the MBR, and `pieces` of data written at their offsets; the rest holes."""
    with open(path, "wb") as disk:
        disk.truncate(size)
    if partitions:
        subprocess.run(["sfdisk", "--quiet", str(path)], input=partitions.encode(), check=True,
                       capture_output=True)
    with open(path, "r+b") as disk:
        if boot_code:
            disk.write(b"\xeb\x63\x90" + bytes(range(1, 256)) + bytes(range(1, 182)))
        for offset, data in pieces:
            disk.seek(offset)
            disk.write(data)
    return path


class Kit:
    """Helpers shared by the tests (a fixture, since conftest modules cannot be imported)."""

    def __init__(self, tmp_path: Path, endpoints: list[str]):
        self.tmp_path = tmp_path
        self.endpoints = endpoints
        self.rng = random.Random(4)

    @staticmethod
    def template(arch: str = "x86_64") -> Template:
        return make_template(arch)

    def data(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def disk(self, name: str = "disk.raw") -> Path:
        """32 MiB + 15 sectors (so AWS's last 512 KiB block is partial), GPT with an ESP and MBR
        boot code (a BIOS+UEFI disk), random data at unaligned offsets, an allocated run of
        zeros, and data in the very last bytes."""
        size = 32 * MIB + 15 * 512
        return write_disk(self.tmp_path / name, size, [
            (1 * MIB + 123, self.data(300 * 1024)),
            (9 * MIB, self.data(700 * 1024)),
            (20 * MIB, bytes(600 * 1024)),  # data extent, but zeros: must not be sent
            (27 * MIB + 511, self.data(2)),  # two bytes straddling two 512-byte blocks
            (size - 100, self.data(100)),
        ], partitions="label: gpt\nsize=8MiB, type=U\ntype=L\n", boot_code=True)

    def target(self, disk: Path, *, template_xml: str | None = TEMPLATE_XML.format(
            arch="x86_64")) -> ImageView:
        return ImageView(
            id=f"target-{uuid.uuid4()}", kind=ImageKind.TARGET, template=template_xml,
            body_path=disk, base_image_id=f"base-{uuid.uuid4()}", target="ec2")

    def provider_image(self, image_id: str, result: Any) -> ImageView:
        """The record the core would store after a successful push."""
        return ImageView(
            id=image_id, kind=ImageKind.PROVIDER, body_path=self.tmp_path / "none",
            target="ec2", provider="ec2",
            identifier_on_provider=result.identifier_on_provider,
            provider_account_identifier=result.provider_account_identifier,
            properties=dict(result.properties))

    def parameters(self, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """The plugin's parameters as the core resolves them for a request with `request`,
        the moto servers being the operator's `endpoints`."""
        return plugin_parameters(imagefactory_ec2, request, {"endpoints": self.endpoints})

    def ctx(self, outbound_allow: tuple[str, ...] = OUTBOUND_ALLOW) -> RecordingBuildContext:
        image_id = f"provider-{uuid.uuid4()}"
        return make_build_context(self.tmp_path / image_id, image_id,
                                  outbound_allow=outbound_allow)

    @staticmethod
    def provider(endpoint: Mapping[str, Any]) -> dict[str, Any]:
        return {"region": endpoint["region"], "endpoint_url": endpoint["endpoint_url"]}

    @staticmethod
    def xml_credentials(endpoint: Mapping[str, Any]) -> dict[str, Any]:
        """What the core makes of the seed's <provider_credentials> XML (text not stripped)."""
        return {"ec2_credentials": {
            "account_number": "\n   1234-5678-9012   \n",
            "access_key": f"\n  {endpoint['access_key']}\n  ",
            "secret_access_key": f"  {endpoint['secret_access_key']}\n",
            "certificate": "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----",
            "key": "-----BEGIN PRIVATE KEY-----\nMIIC\n-----END PRIVATE KEY-----",
        }}

    @staticmethod
    def json_credentials(endpoint: Mapping[str, Any]) -> dict[str, Any]:
        return {"access_key": endpoint["access_key"],
                "secret_access_key": endpoint["secret_access_key"]}

    @staticmethod
    def client(endpoint: Mapping[str, Any], service: str, **keys: str) -> BaseClient:
        return boto3.client(
            service, endpoint_url=endpoint["endpoint_url"], region_name=endpoint["region"],
            aws_access_key_id=keys.get("access_key", endpoint["access_key"]),
            aws_secret_access_key=keys.get("secret_access_key", endpoint["secret_access_key"]))

    @staticmethod
    def nonzero_blocks(path: Path, block_size: int) -> dict[int, bytes]:
        """Every block of the file that is not all zeros, read the naive way (a reference)."""
        blocks = {}
        with open(path, "rb") as disk:
            index = 0
            while block := disk.read(block_size):
                block = block.ljust(block_size, b"\0")
                if block.count(0) != block_size:
                    blocks[index] = block
                index += 1
        return blocks

    @staticmethod
    def snapshot_blocks(ebs: BaseClient, snapshot_id: str) -> dict[int, bytes]:
        listed: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"SnapshotId": snapshot_id}
        while True:
            page = ebs.list_snapshot_blocks(**kwargs)
            listed += page["Blocks"]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return {b["BlockIndex"]: ebs.get_snapshot_block(
            SnapshotId=snapshot_id, BlockIndex=b["BlockIndex"],
            BlockToken=b["BlockToken"])["BlockData"].read() for b in listed}

    @staticmethod
    def tagged_snapshots(ec2: BaseClient, image_id: str) -> list[dict[str, Any]]:
        return ec2.describe_snapshots(Filters=[
            {"Name": "tag:imagefactory:provider_image_id", "Values": [image_id]}])["Snapshots"]

    @staticmethod
    def assert_progress_monotone(ctx: RecordingBuildContext) -> None:
        percents = [percent for percent, _ in ctx.reports]
        assert percents, "no progress reported"
        assert percents == sorted(percents), percents
        assert percents[-1] == 100


@pytest.fixture(scope="session")
def operator_endpoints() -> list[str]:
    """The URLs of the moto servers started so far: the plugin configuration's `endpoints`."""
    return []


@pytest.fixture(scope="session")
def moto_endpoint(moto_endpoint: dict[str, Any],
                  operator_endpoints: list[str]) -> dict[str, Any]:
    operator_endpoints.append(moto_endpoint["endpoint_url"])
    return moto_endpoint


@pytest.fixture(scope="session")
def moto_endpoint_aws_blocks(moto_endpoint_aws_blocks: dict[str, Any],
                             operator_endpoints: list[str]) -> dict[str, Any]:
    operator_endpoints.append(moto_endpoint_aws_blocks["endpoint_url"])
    return moto_endpoint_aws_blocks


@pytest.fixture(scope="session")
def moto_endpoint_iam(moto_endpoint_iam: dict[str, Any],
                      operator_endpoints: list[str]) -> dict[str, Any]:
    operator_endpoints.append(moto_endpoint_iam["endpoint_url"])
    return moto_endpoint_iam


@pytest.fixture
def kit(tmp_path: Path, operator_endpoints: list[str]) -> Kit:
    return Kit(tmp_path, operator_endpoints)


@pytest.fixture(params=["moto_endpoint", "moto_endpoint_aws_blocks"])
def any_moto(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Each test using this runs on stock moto (512-byte blocks) and on the AWS-like one."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def on_progress() -> Callable[[RecordingBuildContext, Callable[[int], None]], None]:
    """Call a function with every percent a context reports (while still recording it)."""
    def attach(ctx: RecordingBuildContext, call: Callable[[int], None]) -> None:
        record = ctx.progress_sink

        def sink(percent: int, activity: str | None) -> None:
            record(percent, activity)
            call(percent)

        ctx.progress_sink = sink
    return attach


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may reach AWS: without an endpoint, boto3 would."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: fails fast
