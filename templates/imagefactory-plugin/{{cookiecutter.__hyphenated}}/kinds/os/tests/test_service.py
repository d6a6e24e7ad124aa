"""A build through imagefactory's REST API, as a client makes it: the installed plugin is
chosen by the template's OS and the image completes with its manifest."""

from imagefactory_core.plugin import parse_icicle
from imagefactory_core.testing import wait_for_status


def test_a_base_image_built_through_the_api_completes(imagefactory_client, template_text):
    files = "<files><file name='/etc/motd'>hello</file></files>"
    answer = imagefactory_client.simulate_post(
        "/imagefactory/base_images",
        json={"base_image": {"template": template_text(files)}})
    assert answer.status_code == 202, answer.text
    href = "/imagefactory/base_images/" + answer.json["base_image"]["id"]
    image = wait_for_status(imagefactory_client, href)
    assert image["status"] == "COMPLETE", image["status_detail"]
    assert [name for name, _ in parse_icicle(image["icicle"])] == ["/etc/os-release",
                                                                   "/etc/motd"]
