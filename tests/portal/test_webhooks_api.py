"""The native API's webhooks (/api/v1/webhooks/): wiring, shapes, and charlie gets 404."""

import pytest
from django.db import transaction

from portal import webhooks
from portal.webhooks import services
from registry import services as registry_services
from tests.native_api import V1, all_pages, patch, post, signed_in
from tests.portal.webhook_receiver import SECRET

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/in"


@pytest.fixture(autouse=True)
def _settings(webhook_settings):
    return webhook_settings


@pytest.fixture
def model(alice):
    return registry_services.registered_model_create(actor=alice, name="churn")


def create(client, **fields):
    body = {"name": "hook", "url": URL, "events": ["transition_request.created"], "secret": SECRET, **fields}
    return post(client, V1 + "webhooks/", body)


def test_a_model_manager_creates_a_webhook_for_any_event_and_never_sees_the_secret(client, alice, model):
    response = create(signed_in(client, alice), registered_model="churn", events=["transition_request.applied"])

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["registered_model"] == "churn" and body["scope"] == "registered_model"
    assert body["events"] == ["transition_request.applied"] and body["has_secret"] is True
    assert body["creator"] == "alice" and body["status"] == "ACTIVE"
    assert "secret" not in body and SECRET not in response.content.decode()
    again = client.get(V1 + f"webhooks/{body['id']}/")
    assert again.status_code == 200 and again.json() == body


def test_a_global_webhook_needs_a_superuser(client, alice, root):
    assert create(signed_in(client, alice)).status_code == 403
    assert create(signed_in(client, root)).status_code == 201


def test_a_model_reader_gets_403_and_an_outsider_404(client, alice, bob, charlie, model, settings):
    from portal import permissions

    permissions.grant_create(actor=alice, root=model, level="READ", user=bob)
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"

    assert create(signed_in(client, bob), registered_model="churn").status_code == 403
    assert create(signed_in(client, charlie), registered_model="churn").status_code == 404


def test_invalid_input_is_a_400(client, root):
    client = signed_in(client, root)

    assert create(client, events=["nope.created"]).status_code == 400
    assert create(client, url="ftp://x/").status_code == 400
    assert create(client, name="bad name").status_code == 400
    assert create(client, events=[]).status_code == 400


def test_charlie_gets_404_on_every_route_of_alices_webhook(client, alice, charlie, model):
    webhook = services.webhook_create(
        actor=alice, name="hook", url=URL, events=["model_version.created"], registered_model_name="churn"
    )
    client = signed_in(client, charlie)
    base = V1 + f"webhooks/{webhook.webhook_id}/"

    assert client.get(base).status_code == 404
    assert patch(client, base, {"status": "DISABLED"}).status_code == 404
    assert client.delete(base).status_code == 404
    assert client.get(base + "deliveries/").status_code == 404
    assert post(client, base + "test/", {}).status_code == 404
    assert all_pages(client, V1 + "webhooks/") == []


def test_update_and_delete(client, alice, model):
    webhook = services.webhook_create(
        actor=alice, name="hook", url=URL, events=["model_version.created"], registered_model_name="churn"
    )
    client = signed_in(client, alice)
    base = V1 + f"webhooks/{webhook.webhook_id}/"

    response = patch(client, base, {"status": "DISABLED", "events": ["model_version.stage_changed"], "secret": ""})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "DISABLED" and response.json()["has_secret"] is False
    assert response.json()["events"] == ["model_version.stage_changed"]
    assert client.delete(base).status_code == 204
    assert client.get(base).status_code == 404


def test_the_list_filters_by_model_and_scope(client, alice, root, model):
    other = registry_services.registered_model_create(actor=alice, name="other")
    mine = services.webhook_create(
        actor=alice, name="a", url=URL, events=["model_version.created"], registered_model_name="churn"
    )
    services.webhook_create(
        actor=alice, name="b", url=URL, events=["model_version.created"], registered_model_name=other.name
    )
    everything = services.webhook_create(actor=root, name="c", url=URL, events=["model_version.created"])
    client = signed_in(client, root)

    assert [w["id"] for w in all_pages(client, V1 + "webhooks/?registered_model=churn")] == [mine.webhook_id]
    assert [w["id"] for w in all_pages(client, V1 + "webhooks/?scope=global")] == [everything.webhook_id]
    assert len(all_pages(client, V1 + "webhooks/?page_size=1")) == 3


def test_deliveries_are_listed_newest_first_also_after_the_webhook_is_deleted(
    client,
    alice,
    model,
    receiver,
    django_capture_on_commit_callbacks,
):
    webhook = services.webhook_create(
        actor=alice,
        name="hook",
        url=receiver.url,
        events=["model_version.created"],
        secret=SECRET,
        registered_model_name="churn",
    )
    for version in ("1", "2"):
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                webhooks.emit("model_version.created", {"name": "churn", "version": version}, registered_model=model)
    services.webhook_delete(actor=alice, webhook_id=webhook.webhook_id)
    client = signed_in(client, alice)

    deliveries = all_pages(client, V1 + f"webhooks/{webhook.webhook_id}/deliveries/?page_size=1")

    assert [d["payload"]["data"]["version"] for d in deliveries] == ["2", "1"]
    assert {d["status"] for d in deliveries} == {"succeeded"}
    assert deliveries[0]["response_status"] == 200 and deliveries[0]["attempts"] == 1
    assert set(deliveries[0]) >= {"delivery_id", "event", "error", "duration_ms", "attempt_log", "created_at"}


def test_the_test_action_sends_an_example_of_a_portal_event(client, root, receiver):
    webhook = services.webhook_create(
        actor=root, name="hook", url=receiver.url, events=["transition_request.approved"], secret=SECRET
    )
    client = signed_in(client, root)

    response = post(client, V1 + f"webhooks/{webhook.webhook_id}/test/", {})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "success": True,
        "response_status": 200,
        "response_body": '{"received": true}',
        "error_message": None,
    }
    [got] = receiver.received
    assert got.verified and (got.json["entity"], got.json["action"]) == ("transition_request", "approved")
    assert got.json["data"]["state"] == "approved"
