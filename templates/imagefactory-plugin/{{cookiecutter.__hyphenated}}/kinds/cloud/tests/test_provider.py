"""The directory provider: which directories a request may name, pushes and deletes."""

import re
from pathlib import Path

import pytest
from imagefactory_core.plugin import BuildCancelled, BuildError, ImageKind
from imagefactory_core.testing import plugin_parameters

import {{ cookiecutter.__underscored }} as plugin
from {{ cookiecutter.__underscored }} import settings


def check(provider, parameters):
    plugin.imagefactory_check_provider(provider=provider, parameters=parameters)


def test_the_operators_directory_and_those_below_it_are_accepted(allowed, parameters):
    (allowed / "team").mkdir()
    check({"directory": str(allowed)}, parameters())
    check({"directory": f"{allowed}/team"}, parameters())
    check(f"{allowed}/team", parameters())


@pytest.mark.parametrize("provider", [
    {"directory": "/tmp"},
    {"directory": "relative/path"},
    {"directory": "/"},
    {"dir": "/tmp"},
    {"directory": ["/tmp"]},
    "",
])
def test_other_directories_are_refused(provider, parameters):
    with pytest.raises(BuildError, match="directory"):
        check(provider, parameters())


def test_dot_dot_and_links_cannot_leave_the_operators_directory(allowed, parameters, tmp_path):
    (allowed / "out").symlink_to(tmp_path)
    for escape in (f"{allowed}/../", f"{allowed}/out", f"{allowed}/out/provider/../x"):
        with pytest.raises(BuildError, match="not one pushes may use"):
            check({"directory": escape}, parameters())


def test_no_directory_is_allowed_until_the_operator_lists_one(allowed):
    where = f"plugins.{settings.PLUGIN_ID}.{settings.DIRECTORIES}"
    with pytest.raises(BuildError, match=re.escape(where)):
        check({"directory": str(allowed)}, plugin_parameters(plugin))


def push(new_context, image, body: Path, provider, parameters):
    ctx = new_context("provider-image")
    target = image(ImageKind.TARGET, body, properties={"disk_format": "qcow2"})
    result = plugin.imagefactory_push_image(ctx=ctx, target_image=target, provider=provider,
                                            parameters=parameters)
    return ctx, result


def test_a_push_copies_the_image_and_a_delete_removes_it(allowed, parameters, new_context,
                                                         image, raw_disk):
    provider = {"directory": str(allowed)}
    _, result = push(new_context, image, raw_disk, provider, parameters())
    pushed = allowed / result.identifier_on_provider
    assert result.identifier_on_provider == "provider-image.qcow2"
    assert result.provider_account_identifier == str(allowed.resolve())
    assert pushed.read_bytes() == raw_disk.read_bytes()
    assert [p.name for p in allowed.iterdir()] == [pushed.name]

    record = image(ImageKind.PROVIDER, Path("/nonexistent"),
                   identifier_on_provider=result.identifier_on_provider,
                   provider_account_identifier=result.provider_account_identifier)
    ctx = new_context("delete")
    plugin.imagefactory_delete_from_provider(ctx=ctx, provider_image=record, provider=provider,
                                             parameters=parameters())
    assert not pushed.exists()
    plugin.imagefactory_delete_from_provider(ctx=ctx, provider_image=record, provider=provider,
                                             parameters=parameters())
    assert "gone already" in ctx.lines[-1]


def test_a_push_never_replaces_a_file(allowed, parameters, new_context, image, raw_disk):
    (allowed / "provider-image.qcow2").write_text("someone else's")
    with pytest.raises(BuildError, match="exists already"):
        push(new_context, image, raw_disk, {"directory": str(allowed)}, parameters())
    assert (allowed / "provider-image.qcow2").read_text() == "someone else's"
    assert [p.name for p in allowed.iterdir()] == ["provider-image.qcow2"]


def test_a_cancelled_push_leaves_nothing(allowed, parameters, new_context, image, raw_disk):
    ctx = new_context("cancelled")
    ctx.cancel_event.set()
    target = image(ImageKind.TARGET, raw_disk, properties={"disk_format": "raw"})
    with pytest.raises(BuildCancelled):
        plugin.imagefactory_push_image(ctx=ctx, target_image=target,
                                       provider={"directory": str(allowed)},
                                       parameters=parameters())
    assert list(allowed.iterdir()) == []


def test_a_delete_must_name_the_directory_the_image_was_pushed_to(allowed, parameters,
                                                                 new_context, image):
    (allowed / "other").mkdir()
    record = image(ImageKind.PROVIDER, Path("/nonexistent"), identifier_on_provider="x.raw",
                   provider_account_identifier=str(allowed.resolve()))
    with pytest.raises(BuildError, match="pushed to"):
        plugin.imagefactory_delete_from_provider(
            ctx=new_context("delete"), provider_image=record,
            provider={"directory": f"{allowed}/other"}, parameters=parameters())
