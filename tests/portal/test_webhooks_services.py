"""Webhook services: configuration, who may do what, audit events, secrets at rest, emission."""

import json

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from portal import permissions, webhooks
from portal.errors import InvalidParameter, NotFound, PermissionDenied
from portal.models import AuditEvent, Webhook, WebhookDelivery
from portal.webhooks import selectors, services
from portal.webhooks.secrets import SecretUnreadable, secret_decrypt
from registry import services as registry_services
from tests.portal.webhook_receiver import SECRET

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/mlflow"


@pytest.fixture(autouse=True)
def _settings(webhook_settings):
    return webhook_settings


@pytest.fixture
def model(alice):
    return registry_services.registered_model_create(actor=alice, name="churn")


def model_webhook(actor, model, **extra):
    fields = {"name": "churn-hook", "url": URL, "events": ["model_version.created"], "secret": SECRET}
    return services.webhook_create(actor=actor, registered_model_name=model.name, **{**fields, **extra})


def global_webhook(actor, **extra):
    fields = {"name": "everything", "url": URL, "events": ["registered_model.created"], "secret": SECRET}
    return services.webhook_create(actor=actor, **{**fields, **extra})


# ---------------------------------------------------------------- creating


def test_a_superuser_creates_a_global_webhook(root):
    webhook = global_webhook(root, description="all models")

    assert webhook.scope == Webhook.Scope.GLOBAL and webhook.registered_model is None
    assert webhook.status == "ACTIVE" and webhook.description == "all models"
    assert len(webhook.webhook_id) == 36 and webhook.creation_timestamp == webhook.last_updated_timestamp


def test_a_non_superuser_cannot_create_a_global_webhook_and_is_pointed_to_the_native_api(alice):
    with pytest.raises(PermissionDenied) as caught:
        global_webhook(alice)

    assert "/api/v1/webhooks/" in caught.value.message
    assert not Webhook.objects.exists()


def test_a_model_manager_creates_a_webhook_for_that_model(alice, model):
    webhook = model_webhook(alice, model)

    assert webhook.scope == Webhook.Scope.REGISTERED_MODEL and webhook.registered_model == model
    assert webhook.creator == alice


def test_a_model_reader_cannot_create_a_webhook_for_it(alice, bob, model):
    permissions.grant_create(actor=alice, root=model, level="EDIT", user=bob)

    with pytest.raises(PermissionDenied):
        model_webhook(bob, model)


def test_a_model_the_user_cannot_read_is_reported_missing(alice, charlie, model, settings):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"

    with pytest.raises(NotFound):
        model_webhook(charlie, model)


@pytest.mark.parametrize("name", ["", "-starts-with-hyphen", "ends.", "has space", "x" * 64, "slash/name"])
def test_invalid_names_are_refused(root, name):
    with pytest.raises(InvalidParameter, match="Webhook name"):
        global_webhook(root, name=name)


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "non-empty"),
        ("ftp://hooks.example.com/", "scheme"),
        ("https:///no-host", "host"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://hooks.example.com:99999/", "Invalid webhook URL"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://10.1.2.3/hook", "private"),
        ("https://127.0.0.2/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[fd00:ec2::254]/", "metadata"),
        ("https://100.100.100.200/", "metadata"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("http://203.0.114.10/hook", "https"),
    ],
)
def test_invalid_urls_are_refused_with_a_clear_error(root, url, message):
    with pytest.raises(InvalidParameter, match=message):
        global_webhook(root, url=url)


def test_http_is_refused_when_no_network_is_allowed(root, settings):
    settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS = []

    with pytest.raises(InvalidParameter, match="use https"):
        global_webhook(root, url="http://hooks.example.com/")


def test_http_to_an_allowed_network_is_accepted(root):
    assert global_webhook(root, url="http://127.0.0.1:8080/hook").url == "http://127.0.0.1:8080/hook"


def test_events_must_be_known_and_not_empty(root):
    with pytest.raises(InvalidParameter, match="non-empty"):
        global_webhook(root, events=[])
    with pytest.raises(InvalidParameter, match="not sent by this server"):
        global_webhook(root, events=["prompt.created"])
    with pytest.raises(InvalidParameter, match="Invalid webhook event"):
        global_webhook(root, events=["model_version.exploded"])


def test_portal_events_may_be_subscribed_to(root):
    webhook = global_webhook(root, events=["transition_request.created", "model_version.stage_changed"])

    assert webhook.events == ["transition_request.created", "model_version.stage_changed"]


# ---------------------------------------------------------------- secrets


def test_the_secret_is_stored_encrypted(root):
    webhook = global_webhook(root)

    assert SECRET not in webhook.secret_encrypted
    assert secret_decrypt(webhook.secret_encrypted) == SECRET


def test_a_secret_from_another_secret_key_cannot_be_read(root, settings):
    webhook = global_webhook(root)
    settings.SECRET_KEY = "another key entirely, of sufficient length for Django"

    with pytest.raises(SecretUnreadable):
        secret_decrypt(webhook.secret_encrypted)


def test_an_old_secret_key_in_the_fallbacks_still_decrypts(root, settings):
    webhook = global_webhook(root)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a rotated key, also of sufficient length for Django"

    assert secret_decrypt(webhook.secret_encrypted) == SECRET


# ---------------------------------------------------------------- who sees what


def test_a_model_webhook_is_seen_by_its_managers_and_superusers_only(alice, bob, charlie, root, model):
    permissions.grant_create(actor=alice, root=model, level="EDIT", user=bob)
    webhook = model_webhook(alice, model)

    assert selectors.webhook_get_for_user(alice, webhook.webhook_id) == webhook
    assert selectors.webhook_get_for_user(root, webhook.webhook_id) == webhook
    for outsider in (bob, charlie):
        with pytest.raises(NotFound):
            selectors.webhook_get_for_user(outsider, webhook.webhook_id)
    assert list(selectors.webhook_list_for_user(bob)) == []


def test_a_new_manager_sees_the_webhook_and_a_demoted_one_does_not(alice, bob, model):
    webhook = model_webhook(alice, model)
    grant = permissions.grant_create(actor=alice, root=model, level="MANAGE", user=bob)

    assert list(selectors.webhook_list_for_user(bob)) == [webhook]
    permissions.grant_update(actor=alice, root=model, level="READ", user=grant.user)
    assert list(selectors.webhook_list_for_user(bob)) == []


def test_a_global_webhook_is_seen_by_superusers_only(alice, root):
    webhook = global_webhook(root)

    assert list(selectors.webhook_list_for_user(root)) == [webhook]
    assert list(selectors.webhook_list_for_user(alice)) == []
    with pytest.raises(NotFound):
        selectors.webhook_get_for_user(alice, webhook.webhook_id)


def test_a_denied_manager_does_not_see_the_webhook(alice, bob, model):
    webhook = model_webhook(alice, model)
    permissions.grant_create(actor=alice, root=model, level="MANAGE", user=bob)
    team = Group.objects.create(name="blocked")
    team.user_set.add(bob)
    permissions.grant_create(actor=alice, root=model, level="DENY", team=team)

    with pytest.raises(NotFound):
        selectors.webhook_get_for_user(bob, webhook.webhook_id)
    assert list(selectors.webhook_list_for_user(bob)) == []


def test_non_managers_cannot_update_test_or_delete_a_model_webhook(alice, bob, model):
    permissions.grant_create(actor=alice, root=model, level="EDIT", user=bob)
    webhook = model_webhook(alice, model)

    with pytest.raises(NotFound):
        services.webhook_update(actor=bob, webhook_id=webhook.webhook_id, status="DISABLED")
    with pytest.raises(NotFound):
        services.webhook_delete(actor=bob, webhook_id=webhook.webhook_id)
    with pytest.raises(NotFound):
        services.webhook_test(actor=bob, webhook_id=webhook.webhook_id)
    webhook.refresh_from_db()
    assert webhook.status == "ACTIVE" and webhook.deleted_timestamp is None


# ---------------------------------------------------------------- updating and deleting


def test_update_changes_only_what_is_given(alice, model):
    webhook = model_webhook(alice, model, description="before")

    updated = services.webhook_update(actor=alice, webhook_id=webhook.webhook_id, status="DISABLED", name="renamed")

    assert (updated.status, updated.name, updated.description, updated.url) == ("DISABLED", "renamed", "before", URL)
    assert updated.last_updated_timestamp >= webhook.last_updated_timestamp


def test_update_keeps_portal_events_when_asked(root):
    webhook = global_webhook(root, events=["model_version.created", "transition_request.created"])

    updated = services.webhook_update(
        actor=root, webhook_id=webhook.webhook_id, events=["model_version_tag.set"], keep_portal_events=True
    )

    assert updated.events == ["model_version_tag.set", "transition_request.created"]


def test_an_empty_secret_removes_it(root):
    webhook = global_webhook(root)

    updated = services.webhook_update(actor=root, webhook_id=webhook.webhook_id, secret="")

    assert not updated.has_secret


def test_a_deleted_webhook_is_gone_but_its_row_stays(root):
    webhook = global_webhook(root)

    services.webhook_delete(actor=root, webhook_id=webhook.webhook_id)

    with pytest.raises(NotFound):
        selectors.webhook_get_for_user(root, webhook.webhook_id)
    assert list(selectors.webhook_list_for_user(root)) == []
    assert selectors.webhook_get_for_user(root, webhook.webhook_id, include_deleted=True).deleted_timestamp


def test_deleting_twice_says_not_found(root):
    webhook = global_webhook(root)
    services.webhook_delete(actor=root, webhook_id=webhook.webhook_id)

    with pytest.raises(NotFound):
        services.webhook_delete(actor=root, webhook_id=webhook.webhook_id)


def test_a_model_webhook_whose_model_is_deleted_matches_nothing_and_never_becomes_global(alice, root, model):
    webhook = model_webhook(alice, model, events=["registered_model.created"])

    registry_services.registered_model_delete(actor=alice, name=model.name)
    webhook.refresh_from_db()

    assert webhook.scope == Webhook.Scope.REGISTERED_MODEL and webhook.registered_model is None
    assert list(selectors.webhook_list_for_user(root)) == []
    webhooks.emit("registered_model.created", {"name": "x", "tags": {}, "description": None})
    assert not WebhookDelivery.objects.exists()


# ---------------------------------------------------------------- audit


def audit_events(action):
    return list(AuditEvent.objects.filter(action=action, object_type="webhook"))


def test_create_update_and_delete_are_audited_without_the_secret(alice, model):
    webhook = model_webhook(alice, model)
    services.webhook_update(actor=alice, webhook_id=webhook.webhook_id, url=URL + "/v2", secret="another-secret")
    services.webhook_delete(actor=alice, webhook_id=webhook.webhook_id)

    created, updated, deleted = (
        audit_events("webhook.created"),
        audit_events("webhook.updated"),
        audit_events("webhook.deleted"),
    )
    assert len(created) == len(updated) == len(deleted) == 1
    assert created[0].after["url"] == URL and created[0].after["has_secret"] is True
    assert updated[0].before["url"] == URL and updated[0].after["url"] == URL + "/v2"
    assert updated[0].after["secret_changed"] is True
    assert deleted[0].before["name"] == "churn-hook"
    assert {e.actor_username for e in created + updated + deleted} == {"alice"}
    # The model's MANAGE holders may read them: they are filed under the model.
    assert {(e.resource_type, e.resource_id) for e in created + updated + deleted} == {
        ("registered_model", str(model.pk))
    }
    everything = json.dumps([[e.before, e.after] for e in AuditEvent.objects.all()])
    assert SECRET not in everything and "another-secret" not in everything


def test_an_update_that_changes_nothing_writes_nothing(root):
    webhook = global_webhook(root)

    services.webhook_update(actor=root, webhook_id=webhook.webhook_id, name=webhook.name, secret=SECRET)

    assert audit_events("webhook.updated") == []


def test_a_refused_create_is_not_audited(alice):
    with pytest.raises(PermissionDenied):
        global_webhook(alice)

    assert audit_events("webhook.created") == []


# ---------------------------------------------------------------- emission


def test_emit_records_a_delivery_for_each_subscribed_active_webhook(alice, root, model):
    everything = global_webhook(root, events=["model_version.created"])
    mine = model_webhook(alice, model)
    other_model = registry_services.registered_model_create(actor=alice, name="other")
    model_webhook(alice, other_model, name="other-hook")  # another model's
    global_webhook(root, name="tags-only", events=["model_version_tag.set"])  # another event
    disabled = global_webhook(root, name="disabled", events=["model_version.created"], status="DISABLED")

    webhooks.emit("model_version.created", {"name": "churn", "version": "1"}, registered_model=model)

    delivered = {d.webhook_id for d in WebhookDelivery.objects.all()}
    assert delivered == {everything.pk, mine.pk}
    assert disabled.pk not in delivered


def test_emit_without_a_model_reaches_global_webhooks_only(alice, root, model):
    everything = global_webhook(root, events=["model_version.created"])
    model_webhook(alice, model)

    webhooks.emit("model_version.created", {"name": "churn", "version": "1"})

    assert [d.webhook_id for d in WebhookDelivery.objects.all()] == [everything.pk]


def test_emit_writes_mlflows_body(root):
    global_webhook(root, events=["model_version_alias.deleted"])

    webhooks.emit("model_version_alias.deleted", {"name": "churn", "alias": "champion"})

    delivery = WebhookDelivery.objects.get()
    body = json.loads(delivery.payload)
    assert list(body) == ["entity", "action", "timestamp", "data"]
    assert (body["entity"], body["action"]) == ("model_version_alias", "deleted")
    assert body["timestamp"].endswith("+00:00")
    assert body["data"] == {"name": "churn", "alias": "champion"}
    assert delivery.status == "pending" and delivery.attempts == 0


def test_emit_refuses_an_unknown_event():
    with pytest.raises(ValueError):
        webhooks.emit("model_version.exploded", {})


def test_deliveries_are_queued_only_when_the_transaction_commits(root, django_capture_on_commit_callbacks):
    global_webhook(root, events=["model_version.created"])

    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            webhooks.emit("model_version.created", {"name": "churn", "version": "1"})
            assert WebhookDelivery.objects.count() == 1

    assert len(callbacks) == 1
    assert WebhookDelivery.objects.get().attempts == 0  # captured, not run


def test_a_rolled_back_change_leaves_no_delivery_and_queues_nothing(root, django_capture_on_commit_callbacks):
    global_webhook(root, events=["model_version.created"])

    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                webhooks.emit("model_version.created", {"name": "churn", "version": "1"})
                raise RuntimeError("the change failed")

    assert callbacks == []
    assert not WebhookDelivery.objects.exists()


def test_the_registry_emits_registered_model_created(root, alice, django_capture_on_commit_callbacks):
    global_webhook(root, events=["registered_model.created"])

    with django_capture_on_commit_callbacks():
        registry_services.registered_model_create(
            actor=alice, name="fraud", description="d", tags=[{"key": "team", "value": "risk"}]
        )

    body = json.loads(WebhookDelivery.objects.get().payload)
    assert body["data"] == {"name": "fraud", "tags": {"team": "risk"}, "description": "d"}
