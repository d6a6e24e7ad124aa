"""Target images: real qemu-img conversions, checked against the raw disk they came from."""

import subprocess

import pytest
from imagefactory_core.plugin import ImageKind, ParameterError, parse_template

import {{ cookiecutter.__underscored }} as plugin
from {{ cookiecutter.__underscored }} import settings

TEMPLATE = parse_template("""<template><name>t</name><os><name>AnyOS</name><version>1</version>
  <arch>x86_64</arch><install type='url'><url>http://example.org/</url></install></os>
</template>""")


@pytest.mark.parametrize("disk_format", settings.FORMATS)
def test_the_target_image_is_the_base_disk_in_the_chosen_format(raw_disk, parameters,
                                                                 new_context, image,
                                                                 disk_format):
    ctx = new_context("target")
    result = plugin.imagefactory_create_target_image(
        ctx=ctx, template=TEMPLATE, base_image=image(ImageKind.BASE, raw_disk),
        source_disk=raw_disk, target=settings.TARGET.name,
        parameters=parameters(**{settings.FORMAT: disk_format.upper()}))
    assert result.properties == {"disk_format": disk_format,
                                 "virtual_size": raw_disk.stat().st_size}
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", disk_format, str(raw_disk),
                    str(ctx.body_path)], check=True, capture_output=True)
    assert ctx.reports[-1][0] == 100


def test_qcow2_is_the_default(parameters):
    assert parameters()[settings.FORMAT] == "qcow2"


def test_a_format_qemu_img_is_not_asked_for_is_refused(parameters):
    with pytest.raises(ParameterError, match="one of qcow2, vmdk, raw"):
        parameters(**{settings.FORMAT: "vdi"})
