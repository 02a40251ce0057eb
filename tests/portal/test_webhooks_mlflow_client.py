"""MLflow's webhook API with the unmodified mlflow client against a live portal: create,
get, list (paged), update, test and delete, and what a non-superuser and a model manager
get there. Deliveries go to a receiver on 127.0.0.1 that checks MLflow's signature."""

import pytest
import requests
from mlflow.entities.webhook import WebhookEvent, WebhookStatus
from mlflow.exceptions import MlflowException, RestException

from portal.models import Webhook, WebhookDelivery
from portal.webhooks import services
from registry import services as registry_services
from tests.portal.webhook_receiver import SECRET

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _settings(webhook_settings):
    return webhook_settings


@pytest.fixture
def admin_client(client_as, root):
    return client_as(root)


def error_code(exc: MlflowException) -> str:
    return exc.error_code


def test_the_client_creates_gets_lists_updates_tests_and_deletes_a_webhook(admin_client, receiver):
    created = admin_client.create_webhook(
        name="deployments",
        url=receiver.url,
        events=["model_version.created", WebhookEvent("model_version_alias", "created")],
        description="tell CI",
        secret=SECRET,
    )

    assert created.name == "deployments" and created.url == receiver.url
    assert [str(e) for e in created.events] == ["model_version.created", "model_version_alias.created"]
    assert created.status == WebhookStatus.ACTIVE and created.description == "tell CI"
    assert created.creation_timestamp > 0 and created.secret is None

    got = admin_client.get_webhook(created.webhook_id)
    assert (got.webhook_id, got.name, got.events) == (created.webhook_id, "deployments", created.events)

    page = admin_client.list_webhooks()
    assert [w.webhook_id for w in page] == [created.webhook_id] and not page.token

    updated = admin_client.update_webhook(
        created.webhook_id, name="deployments-v2", events=["model_version_tag.set"], status="DISABLED"
    )
    assert updated.name == "deployments-v2" and [str(e) for e in updated.events] == ["model_version_tag.set"]
    assert updated.status == WebhookStatus.DISABLED and updated.description == "tell CI"
    assert updated.last_updated_timestamp >= created.last_updated_timestamp

    result = admin_client.test_webhook(created.webhook_id)
    assert result.success and result.response_status == 200 and result.error_message is None
    [delivered] = receiver.received
    assert delivered.verified
    assert (delivered.json["entity"], delivered.json["action"]) == ("model_version_tag", "set")
    assert set(delivered.json["data"]) == {"name", "version", "key", "value"}

    admin_client.delete_webhook(created.webhook_id)
    with pytest.raises(RestException) as caught:
        admin_client.get_webhook(created.webhook_id)
    assert error_code(caught.value) == "RESOURCE_DOES_NOT_EXIST"
    assert list(admin_client.list_webhooks()) == []


def test_the_client_pages_through_webhooks_newest_first(admin_client, receiver):
    ids = [
        admin_client.create_webhook(name=f"hook-{n}", url=receiver.url, events=["model_version.created"]).webhook_id
        for n in range(3)
    ]

    seen, token = [], None
    while True:
        page = admin_client.list_webhooks(max_results=1, page_token=token)
        seen += [w.webhook_id for w in page]
        token = page.token
        if not token:
            break

    assert seen == ids[::-1]


def test_test_webhook_reports_a_failing_receiver(admin_client, receiver):
    created = admin_client.create_webhook(
        name="wrong-secret", url=receiver.url, events=["registered_model.created"], secret="not it"
    )

    result = admin_client.test_webhook(created.webhook_id, event="registered_model.created")

    assert not result.success and result.response_status == 401


def test_test_webhook_reports_a_refused_destination(admin_client, receiver, settings):
    created = admin_client.create_webhook(name="soon-refused", url=receiver.url, events=["registered_model.created"])
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = []

    result = admin_client.test_webhook(created.webhook_id)

    assert not result.success and result.response_status is None
    assert "https only" in result.error_message
    assert receiver.received == []


def test_a_registered_model_created_with_the_client_is_delivered(admin_client, client_as, alice, receiver):
    admin_client.create_webhook(name="models", url=receiver.url, events=["registered_model.created"], secret=SECRET)

    client_as(alice).create_registered_model("fraud", tags={"team": "risk"}, description="catches fraud")

    [delivered] = receiver.received
    assert delivered.verified
    assert delivered.json["data"] == {"name": "fraud", "tags": {"team": "risk"}, "description": "catches fraud"}
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_a_non_superuser_is_refused_a_global_webhook_and_pointed_to_the_native_api(client_as, alice, receiver):
    with pytest.raises(RestException) as caught:
        client_as(alice).create_webhook(name="mine", url=receiver.url, events=["model_version.created"])

    assert error_code(caught.value) == "PERMISSION_DENIED"
    assert "/api/v1/webhooks/" in str(caught.value)
    assert not Webhook.objects.exists()


def test_a_model_manager_sees_their_models_webhook_and_others_do_not(client_as, alice, bob, receiver):
    model = registry_services.registered_model_create(actor=alice, name="churn")
    webhook = services.webhook_create(
        actor=alice,
        name="churn-hook",
        url=receiver.url,
        events=["model_version.created"],
        secret=SECRET,
        registered_model_name="churn",
    )

    mine = client_as(alice)
    assert [w.webhook_id for w in mine.list_webhooks()] == [webhook.webhook_id]
    assert mine.update_webhook(webhook.webhook_id, description="by alice").description == "by alice"
    assert mine.test_webhook(webhook.webhook_id).success
    assert receiver.received[0].json["data"]["name"] == model.name

    theirs = client_as(bob)
    assert list(theirs.list_webhooks()) == []
    for call in (
        lambda: theirs.get_webhook(webhook.webhook_id),
        lambda: theirs.update_webhook(webhook.webhook_id, status="DISABLED"),
        lambda: theirs.delete_webhook(webhook.webhook_id),
        lambda: theirs.test_webhook(webhook.webhook_id),
    ):
        with pytest.raises(RestException) as caught:
            call()
        assert error_code(caught.value) == "RESOURCE_DOES_NOT_EXIST"
    webhook.refresh_from_db()
    assert webhook.status == "ACTIVE" and webhook.deleted_timestamp is None


def test_portal_events_are_hidden_from_the_client_and_kept_by_its_updates(admin_client, root, receiver):
    mixed = services.webhook_create(
        actor=root,
        name="mixed",
        url=receiver.url,
        events=["transition_request.created", "model_version.created"],
    )
    portal_only = services.webhook_create(
        actor=root, name="portal-only", url=receiver.url, events=["transition_request.approved"]
    )

    listed = list(admin_client.list_webhooks())
    assert [w.webhook_id for w in listed] == [mixed.webhook_id]
    assert [str(e) for e in listed[0].events] == ["model_version.created"]
    with pytest.raises(RestException) as caught:
        admin_client.get_webhook(portal_only.webhook_id)
    assert error_code(caught.value) == "RESOURCE_DOES_NOT_EXIST"
    assert f"/api/v1/webhooks/{portal_only.webhook_id}/" in str(caught.value)

    admin_client.update_webhook(mixed.webhook_id, events=["model_version_tag.deleted"])
    mixed.refresh_from_db()
    assert mixed.events == ["model_version_tag.deleted", "transition_request.created"]
    admin_client.delete_webhook(portal_only.webhook_id)  # deleting needs no parsing: allowed


def test_mlflow_errors_for_bad_input(admin_client, receiver):
    with pytest.raises(RestException) as caught:
        admin_client.create_webhook(name="bad name!", url=receiver.url, events=["model_version.created"])
    assert error_code(caught.value) == "INVALID_PARAMETER_VALUE"

    with pytest.raises(RestException) as caught:
        admin_client.create_webhook(name="prompts", url=receiver.url, events=["prompt.created"])
    assert error_code(caught.value) == "INVALID_PARAMETER_VALUE"

    with pytest.raises(RestException) as caught:
        admin_client.create_webhook(name="plain", url="ftp://example.com/", events=["model_version.created"])
    assert error_code(caught.value) == "INVALID_PARAMETER_VALUE"

    with pytest.raises(RestException) as caught:
        admin_client.list_webhooks(max_results=5000)
    assert error_code(caught.value) == "INVALID_PARAMETER_VALUE"


def test_the_raw_json_has_mlflows_field_names_and_no_secret(portal, root, receiver):
    session = portal.session(root)
    response = session.post(
        f"{portal.url}/api/2.0/mlflow/webhooks",
        json={
            "name": "raw",
            "url": receiver.url,
            "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
            "secret": SECRET,
            "status": "DISABLED",
        },
        timeout=30,
    )

    assert response.status_code == 200, response.text
    webhook = response.json()["webhook"]
    assert list(webhook) == [
        "webhook_id",
        "name",
        "url",
        "events",
        "status",
        "creation_timestamp",
        "last_updated_timestamp",
    ]
    assert webhook["events"] == [{"entity": "MODEL_VERSION", "action": "CREATED"}]
    assert webhook["status"] == "DISABLED"
    assert SECRET not in response.text
    listed = session.get(f"{portal.url}/ajax-api/2.0/mlflow/webhooks", timeout=30)
    assert SECRET not in listed.text and listed.json()["webhooks"][0]["webhook_id"] == webhook["webhook_id"]
    assert requests.get(f"{portal.url}/api/2.0/mlflow/webhooks", timeout=30).status_code == 401
