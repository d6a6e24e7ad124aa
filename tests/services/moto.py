"""Session fixtures that run a real moto server (``moto[server]``) on 127.0.0.1.

Tests talk to it over HTTP exactly as they would to AWS: boto3 clients with ``endpoint_url``.
Three flavours, each its own subprocess on a free port, killed when the session ends:

* ``moto_endpoint``: stock ``python -m moto.server``. Its EBS direct API answers StartSnapshot with
  ``BlockSize`` 512, and its RegisterImage records only the AMI's name and description (it invents
  a 15 GiB ``/dev/sda1`` mapping of its own and drops architecture, root device, boot mode, ENA).
* ``moto_endpoint_aws_blocks``: moto started through `serve_like_aws` below, which changes two
  things before serving. (1) EBS snapshots get AWS's real block size, 524288 bytes: with stock
  moto's 512-byte blocks, pushing a real multi-hundred-MB Debian image takes about a million
  PutSnapshotBlock requests, so end-to-end tests and benchmarks would measure moto, not us.
  (2) RegisterImage keeps what AWS keeps (architecture, root device name, the block device
  mappings with their snapshot, boot mode, ENA, virtualization type) and, like AWS, refuses to
  delete a snapshot an AMI still uses. Everything else is stock moto.
* ``moto_endpoint_iam``: stock moto that enforces IAM authentication (moto's
  ``INITIAL_NO_AUTH_ACTION_COUNT`` mechanism, switched on through ``/moto-api/reset-auth`` once an
  administrator user exists). Any other key is rejected the way AWS rejects it.

Every fixture yields a dict: ``endpoint_url``, ``region``, ``access_key``, ``secret_access_key``
(dummy ones, or the IAM administrator's for ``moto_endpoint_iam``), ``account_id`` and
``ebs_block_size``. The keys ``access_key``/``secret_access_key`` match the seed's
``<ec2_credentials>`` so a test can build credentials from them directly.

Not implemented by moto 5.2.5 (HTTP 500): ImportSnapshot, ImportImage and
DescribeImportSnapshotTasks; tests of the S3 import path stub those calls only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
STOCK_EBS_BLOCK_SIZE = 512
AWS_EBS_BLOCK_SIZE = 524288
DUMMY_ACCESS_KEY = "AKIAIMAGEFACTORYTEST"
DUMMY_SECRET_KEY = "imagefactory-test-secret-not-a-real-key"
REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer within {READY_TIMEOUT:.0f} s:\n"
                       f"{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def running_moto(log_dir: Path, *, like_aws: bool = False) -> Iterator[dict[str, Any]]:
    """Run a moto server on a free 127.0.0.1 port for the duration of the block.

    `like_aws` starts it through `serve_like_aws` (AWS block size, faithful RegisterImage).
    Also used by ``bench/push_ec2``.
    """
    port = free_port()
    module = ["tests.services.moto"] if like_aws else ["moto.server"]
    argv = [sys.executable, "-m", *module, "-H", "127.0.0.1", "-p", str(port)]
    log = log_dir / f"moto-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, proc, log)
        yield {
            "endpoint_url": url,
            "region": REGION,
            "access_key": DUMMY_ACCESS_KEY,
            "secret_access_key": DUMMY_SECRET_KEY,
            "account_id": ACCOUNT_ID,
            "ebs_block_size": AWS_EBS_BLOCK_SIZE if like_aws else STOCK_EBS_BLOCK_SIZE,
            "pid": proc.pid,  # bench/push_ec2 reads the server's CPU time
        }
    finally:
        _stop(proc)


def _enforce_iam(endpoint: dict[str, Any]) -> dict[str, Any]:
    """Create an administrator user on a fresh moto, then make moto check every signature."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint["endpoint_url"], region_name=REGION,
                       aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY)
    iam.create_user(UserName="imagefactory-admin")
    iam.put_user_policy(UserName="imagefactory-admin", PolicyName="everything",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                            {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="imagefactory-admin")["AccessKey"]
    request = urllib.request.Request(f"{endpoint['endpoint_url']}/moto-api/reset-auth",
                                     data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10):
        pass
    return {**endpoint, "access_key": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"]}


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Stock moto server (EBS BlockSize 512, minimal RegisterImage); see the module docstring."""
    with running_moto(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def moto_endpoint_aws_blocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto with AWS's 524288-byte EBS blocks and a RegisterImage that keeps what AWS keeps.

    Stock moto's 512-byte blocks make pushing a real multi-hundred-MB Debian image take about a
    million requests; this is the flavour for end-to-end tests and benchmarks.
    """
    with running_moto(tmp_path_factory.mktemp("moto-aws"), like_aws=True) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def moto_endpoint_iam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Stock moto enforcing IAM: only the yielded administrator keys (or users they create) work."""
    with running_moto(tmp_path_factory.mktemp("moto-iam")) as endpoint:
        yield _enforce_iam(endpoint)


# -- the wrapper behind moto_endpoint_aws_blocks ------------------------------------------------
def serve_like_aws(argv: list[str]) -> None:
    """Serve moto with AWS's EBS block size and an AWS-faithful RegisterImage (see above)."""
    from moto import server
    from moto.core.responses import ActionResult
    from moto.ebs.models import EBSSnapshot
    from moto.ec2.models.amis import Ami
    from moto.ec2.responses.amis import AmisResponse

    stock_snapshot_init = EBSSnapshot.__init__

    def snapshot_init(self: EBSSnapshot, *args: Any, **kwargs: Any) -> None:
        stock_snapshot_init(self, *args, **kwargs)
        self.block_size = AWS_EBS_BLOCK_SIZE

    stock_mappings = Ami.block_device_mappings.fget
    assert stock_mappings is not None

    def block_device_mappings(self: Ami) -> list[dict[str, Any]]:
        return getattr(self, "registered_mappings", None) or stock_mappings(self)

    def register_image(self: AmisResponse) -> ActionResult:
        self.error_on_dryrun()
        image = self.ec2_backend.register_image(self._get_param("Name"),
                                                self._get_param("Description", ""))
        # moto invents a 15 GiB snapshot for every new AMI; AWS uses the mappings it is given.
        self.ec2_backend.snapshots.pop(image.ebs_snapshot.id, None)
        mappings = []
        for given in self._get_param("BlockDeviceMappings", []):
            ebs = dict(given.get("Ebs") or {})
            snapshot_id = ebs.get("SnapshotId")
            if snapshot_id:
                snapshot = self.ec2_backend.get_snapshot(snapshot_id)  # raises NotFound as AWS
                snapshot.from_ami = image.id  # AWS refuses DeleteSnapshot while the AMI exists
                ebs.setdefault("VolumeSize", snapshot.volume.size)
            ebs.setdefault("DeleteOnTermination", True)
            ebs.setdefault("Encrypted", False)
            mappings.append({"DeviceName": given["DeviceName"], "Ebs": ebs})
        image.registered_mappings = mappings
        image.architecture = self._get_param("Architecture", "x86_64")
        image.root_device_name = self._get_param("RootDeviceName", "/dev/sda1")
        image.root_device_type = "ebs"
        image.virtualization_type = self._get_param("VirtualizationType", "paravirtual")
        image.boot_mode = self._get_param("BootMode")
        image.ena_support = self._get_param("EnaSupport", False)
        return ActionResult({"ImageId": image.id})

    EBSSnapshot.__init__ = snapshot_init  # type: ignore[method-assign]
    Ami.block_device_mappings = property(block_device_mappings)  # type: ignore[method-assign,assignment]
    AmisResponse.register_image = register_image  # type: ignore[method-assign]
    server.main(argv)


if __name__ == "__main__":
    serve_like_aws(sys.argv[1:])
