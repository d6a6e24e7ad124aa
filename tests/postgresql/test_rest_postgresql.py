"""The REST contract's main flows with the store on PostgreSQL: the seed document's examples,
cascades, deletes, target images made from target images, unknown and misplaced ids, and a
stop and restart, each test on a fresh database (`database_url`). The tests are the REST
suite's own (tests/rest; those that read no records stay there), imported here with fixtures
that point the app at PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import pytest
from imagefactory_core.api.app import create_app
from imagefactory_core.config import Config
from imagefactory_core.plugins import PluginHost, load_plugins
from imagefactory_core.testing import make_config

from tests.plugins import fake_cloud, fake_os, fake_package
from tests.rest.conftest import fake_tdl
from tests.rest.test_derived_targets import (  # noqa: F401 (fixtures and tests, collected here)
    source,
    test_a_derived_image_of_a_fakepackage_image_is_refused,
    test_nested_post_makes_a_target_image_of_the_target_image,
    test_the_source_is_kept_while_a_derived_image_waits_for_it,
    test_top_level_post_names_the_source_in_the_body,
)
from tests.rest.test_engine import (  # noqa: F401
    fake_plugins,
    test_a_repeated_delete_of_a_queued_provider_delete_still_deletes_it,
    test_base_failing_while_a_nested_target_waits_fails_it,
    test_delete_of_a_base_with_a_target_in_progress_is_409,
    test_delete_of_a_building_image_kills_its_command_and_ends_deleted,
    test_delete_of_a_pending_image_ends_deleted_without_building,
    test_deleting_a_queued_push_never_pushes_it,
    test_failing_base_fails_the_waiting_target_and_provider_naming_the_parent,
    test_percent_complete_is_monotone_and_100_at_complete,
    test_provider_image_fails_on_bad_credentials_with_the_plugins_message,
    test_provider_request_with_a_template_builds_base_and_target_first,
    test_stop_fails_running_builds_and_restart_requeues_queued_ones,
    test_target_on_a_building_base_waits_pending_then_completes,
    test_target_request_with_a_template_builds_the_base_first,
)
from tests.rest.test_malformed import (  # noqa: F401
    chain,
    test_id_under_the_wrong_parent_or_kind_is_404,
    test_unknown_id_is_404,
)
from tests.rest.test_seed_examples import (  # noqa: F401
    test_api_information,
    test_base_image_creation_json,
    test_image_deletion_of_provider_image,
    test_image_inspection_lists_children,
    test_listing_images_has_the_seed_shape,
    test_provider_image_creation_form_on_doubly_nested_path,
    test_target_image_creation_xml_on_nested_path,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def imagefactory_config(tmp_path: Path, postgresql_url: str) -> Config:
    return make_config(tmp_path, outbound_allow=["127.0.0.1"], database_url=postgresql_url)


@pytest.fixture
def imagefactory_plugins() -> PluginHost:
    return load_plugins(discover=False, extra=[("FakeOS", fake_os), ("FakeCloud", fake_cloud),
                                               ("FakePackage", fake_package)])


@pytest.fixture
def client(imagefactory_client: falcon.testing.TestClient) -> falcon.testing.TestClient:
    return imagefactory_client


@pytest.fixture
def storage(imagefactory_config: Config) -> Path:
    return imagefactory_config.storage_dir


@pytest.fixture
def apps(tmp_path: Path, postgresql_url: str) -> Iterator[Callable[..., falcon.App]]:
    """Apps on one PostgreSQL database (and, unless given another root, one state
    directory); every engine is stopped at the end."""
    made: list[falcon.App] = []

    def make(root: Path | None = None, **overrides: Any) -> falcon.App:
        app = create_app(make_config(root or tmp_path, database_url=postgresql_url,
                                     **overrides), fake_plugins())
        made.append(app)
        return app

    yield make
    for app in made:
        app.services.engine.shutdown(timeout=20)


def test_an_id_holding_a_nul_character_is_404(client):
    created = client.simulate_post("/imagefactory/base_images",
                                   json={"base_image": {"template": fake_tdl()}})
    assert created.status_code == 202, created.text
    image_id = created.json["base_image"]["id"]
    for path in (f"/imagefactory/base_images/{image_id}%00",
                 "/imagefactory/base_images/%00",
                 "/imagefactory/base_images/%00/target_images"):
        answer = client.simulate_get(path)
        assert answer.status_code == 404, (path, answer.text)
