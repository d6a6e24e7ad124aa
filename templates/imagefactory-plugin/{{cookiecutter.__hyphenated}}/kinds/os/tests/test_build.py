"""Real builds through the hook: what the image holds, its manifest, and what is refused."""

import base64
import hashlib
import subprocess

import pytest
from imagefactory_core.plugin import BuildError, ParameterError, parse_icicle

from {{ cookiecutter.__underscored }}.settings import LABEL, MAX_DISK_MIB, OS_NAME

MOTD = "Welcome to a test image\n"
BLOB = b"\x00\x01binary"
FILES = f"""<files>
  <file name='/etc/motd'>{MOTD}</file>
  <file name='/usr/share/data/blob.bin' type='base64'>{base64.b64encode(BLOB).decode()}</file>
</files>"""


def test_the_image_is_an_ext4_file_system_holding_the_templates_files(build, template_text,
                                                                       image_file):
    ctx, result = build(template_text(FILES, version="2.1"))
    assert image_file(ctx.body_path, "/etc/motd").decode() == MOTD
    assert image_file(ctx.body_path, "/usr/share/data/blob.bin") == BLOB
    os_release = image_file(ctx.body_path, "/etc/os-release").decode()
    assert 'VERSION_ID="2.1"' in os_release and f"ID={OS_NAME}" in os_release
    assert ctx.body_path.stat().st_size == 16 * 1024 * 1024
    label = subprocess.run(["e2label", str(ctx.body_path)], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert label == OS_NAME[:16]
    assert result.properties["disk_format"] == "raw"
    assert ctx.reports[-1][0] == 100


def test_the_manifest_lists_every_file_with_its_digest(build, template_text):
    _, result = build(template_text(FILES))
    listed = dict(parse_icicle(result.icicle))
    assert list(listed) == ["/etc/os-release", "/etc/motd", "/usr/share/data/blob.bin"]
    digest = hashlib.sha256(MOTD.encode()).hexdigest()
    assert listed["/etc/motd"] == f"{len(MOTD)} bytes, sha256 {digest}"


def test_the_label_and_size_come_from_the_request_and_the_template(build, template_text):
    ctx, result = build(template_text("<disk><size>32M</size></disk>"),
                        **{LABEL: "my-label"})
    assert ctx.body_path.stat().st_size == 32 * 1024 * 1024
    assert result.properties["label"] == "my-label"


def test_a_label_that_mkfs_could_not_take_is_refused_before_the_build(build, template_text):
    with pytest.raises(ParameterError, match=LABEL):
        build(template_text(), **{LABEL: "a label; with spaces"})


def test_a_disk_larger_than_the_operator_allows_is_refused(build, template_text):
    with pytest.raises(BuildError, match="at most 64 MiB"):
        build(template_text("<disk><size>1G</size></disk>"), config={MAX_DISK_MIB: 64})


def test_files_that_do_not_fit_say_what_to_change(build, template_text):
    big = base64.b64encode(bytes(range(256)) * 4 * 700).decode()  # 700 KiB
    files = f"<files><file name='/big' type='base64'>{big}</file></files>"
    with pytest.raises(BuildError, match="make <disk><size> larger"):
        build(template_text(files + "<disk><size>512K</size></disk>"))


@pytest.mark.parametrize(("body", "refused"), [
    ("<packages><package name='less'/></packages>", "packages"),
    ("<commands><command name='c'>true</command></commands>", "commands"),
    ("<files><file name='/f' type='url'>http://example.org/f</file></files>", "type='url'"),
])
def test_what_this_os_cannot_do_is_refused_not_ignored(build, template_text, body, refused):
    with pytest.raises(BuildError, match=refused):
        build(template_text(body))

