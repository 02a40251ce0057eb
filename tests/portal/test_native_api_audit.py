"""The native API's audit log (/api/v1/audit-events/): read-only, newest first, filtered.

Superusers read every event. Anyone else reads the history of one experiment or registered
model they MANAGE: readers who may not manage it get 403, those who may not read it 404,
and a query that names no such object 403.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal import permissions, services
from portal.models import AuditEvent
from registry import services as registry_services
from tests.factories import make_experiment
from tests.native_api import V1, all_pages, patch, post, put, signed_in
from tests.portal.helpers import bearer
from tracking.services.experiments import experiment_set_private

pytestmark = pytest.mark.django_db

EVENTS = V1 + "audit-events/"


@pytest.fixture
def model(alice):
    return registry_services.registered_model_create(actor=alice, name="churn")


@pytest.fixture
def experiment(alice):
    return make_experiment(owner=alice, name="churn-training")


@pytest.fixture
def team(root):
    return services.team_create(actor=root, name="ml")


def model_events_url(name: str = "churn", **extra) -> str:
    query = "&".join(
        f"{key}={value}" for key, value in {"object_type": "registered_model", "object": name, **extra}.items()
    )
    return f"{EVENTS}?{query}"


def actions(results) -> list[str]:
    return [event["action"] for event in results]


# ---------------------------------------------------------------- superusers


def test_a_superuser_lists_every_event_newest_first(client, root, alice, model, team):
    results = all_pages(signed_in(client, root), EVENTS)

    ids = [event["id"] for event in results]
    assert ids == sorted(ids, reverse=True)
    assert set(ids) == set(AuditEvent.objects.values_list("id", flat=True))
    assert {"team.created", "grant.created", "registered_model.created"} <= set(actions(results))


def test_an_event_shows_who_did_what_to_which_object(client, root, team):
    services.team_update(actor=root, team_id=team.pk, name="ml-platform")

    [event] = signed_in(client, root).get(EVENTS + "?action=team.updated").json()["results"]

    assert event == {
        "id": event["id"],
        "timestamp": event["timestamp"],
        "actor": "root",
        "actor_id": root.pk,
        "action": "team.updated",
        "object_type": "team",
        "object_id": str(team.pk),
        "object_name": "ml-platform",
        "resource_type": "",
        "resource_id": "",
        "before": {"name": "ml"},
        "after": {"name": "ml-platform"},
        "request_id": "",
        "client_address": None,
    }


def test_the_list_is_cursor_paginated(client, root, team):
    for name in ("a", "b", "c"):
        services.team_create(actor=root, name=name)

    first = signed_in(client, root).get(EVENTS + "?page_size=2").json()

    assert len(first["results"]) == 2 and first["next"]
    assert len(all_pages(client, EVENTS + "?page_size=2")) == AuditEvent.objects.count()


def test_a_superuser_filters_by_actor_action_and_object_type(client, root, alice, bob, experiment, team):
    permissions.grant_create(actor=alice, root=experiment, level="READ", user=bob)
    client = signed_in(client, root)

    by_alice = client.get(EVENTS + "?actor=alice").json()["results"]
    grants = client.get(EVENTS + "?object_type=grant&action=grant.created").json()["results"]

    assert actions(by_alice) == ["grant.created", "grant.created"]
    assert {event["object_type"] for event in grants} == {"grant"} and len(grants) == 2
    assert client.get(EVENTS + "?actor=nobody").json()["results"] == []


def test_a_superuser_names_an_object_by_id_or_by_name(client, root, team):
    services.team_update(actor=root, team_id=team.pk, description="d")
    client = signed_in(client, root)

    by_id = client.get(EVENTS + f"?object_type=team&object={team.pk}").json()["results"]
    by_name = client.get(EVENTS + "?object_type=team&object=ml").json()["results"]

    assert actions(by_id) == actions(by_name) == ["team.updated", "team.created"]


def test_a_superuser_reads_the_history_of_a_deleted_object_by_its_name(client, root, team):
    services.team_delete(actor=root, team_id=team.pk)

    results = signed_in(client, root).get(EVENTS + "?object_type=team&object=ml").json()["results"]

    assert actions(results) == ["team.deleted", "team.created"]


def test_since_and_until_bound_the_time(client, root, team):
    event = AuditEvent.objects.get(action="team.created")
    client = signed_in(client, root)
    at = event.timestamp
    later = (at + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    earlier = (at - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")

    assert actions(client.get(EVENTS + f"?since={earlier}&until={later}").json()["results"]) == ["team.created"]
    assert client.get(EVENTS + f"?since={later}").json()["results"] == []
    assert client.get(EVENTS + f"?until={earlier}").json()["results"] == []


@pytest.mark.parametrize("query", ["since=yesterday", "until=2024-13-01T00:00:00Z", "since=1700000000"])
def test_a_bad_time_is_400(client, root, query):
    response = signed_in(client, root).get(f"{EVENTS}?{query}")

    assert response.status_code == 400
    field = query.partition("=")[0]
    assert "Datetime has wrong format" in response.json()[field][0]


def test_since_after_until_is_400(client, root):
    now = timezone.now()
    response = signed_in(client, root).get(
        EVENTS, {"since": now.isoformat(), "until": (now - timedelta(days=1)).isoformat()}
    )

    assert response.status_code == 400
    assert response.json() == {"until": ["Must not be before since."]}


def test_a_superuser_sees_the_client_address(client, root):
    post(signed_in(client, root), V1 + "teams/", {"name": "ml"}, REMOTE_ADDR="10.1.2.3")

    [event] = client.get(EVENTS + "?action=team.created").json()["results"]

    assert event["client_address"] == "10.1.2.3"


# ---------------------------------------------------------------- MANAGE holders


def test_a_manager_of_a_model_reads_its_history_and_nothing_else(client, root, alice, bob, model, team):
    permissions.grant_create(actor=alice, root=model, level="READ", user=bob)
    registry_services.registered_model_create(actor=alice, name="other")

    results = all_pages(signed_in(client, alice), model_events_url())

    assert sorted(actions(results)) == ["grant.created", "grant.created", "registered_model.created"]
    assert results[0]["after"] == {"level": "READ", "user": "bob"}
    assert {(event["resource_type"], event["resource_id"]) for event in results} == {
        ("registered_model", str(model.pk))
    }


def test_a_manager_filters_the_history_of_a_model(client, alice, bob, model):
    permissions.grant_create(actor=alice, root=model, level="READ", user=bob)
    permissions.grant_revoke(actor=alice, root=model, user=bob)

    results = signed_in(client, alice).get(model_events_url(action="grant.revoked")).json()["results"]

    assert [event["before"] for event in results] == [{"level": "READ", "user": "bob"}]


def test_a_manager_of_an_experiment_names_it_by_id(client, alice, experiment):
    response = signed_in(client, alice).get(EVENTS + f"?object_type=experiment&object={experiment.pk}")

    assert response.status_code == 200
    assert actions(response.json()["results"]) == ["grant.created"]


def test_a_manager_does_not_see_client_addresses(client, alice, bob, model):
    signed_in(client, alice)
    post(
        client,
        V1 + "grants/",
        {"resource_type": "registered_model", "resource": "churn", "user": "bob", "level": "READ"},
        REMOTE_ADDR="10.9.9.9",
    )

    results = client.get(model_events_url()).json()["results"]

    assert results[0]["action"] == "grant.created"
    assert {event["client_address"] for event in results} == {None}
    assert AuditEvent.objects.filter(client_address="10.9.9.9").exists()


def test_a_token_reads_the_history_too(client, alice, model):
    token = services.api_token_create(user=alice, name="ci").raw

    response = client.get(model_events_url(), **bearer(token))

    assert response.status_code == 200


def test_a_reader_who_may_not_manage_gets_403(client, bob, model):
    # bob reads the model through PORTAL_DEFAULT_PERMISSION=READ, which does not show its history.
    response = signed_in(client, bob).get(model_events_url())

    assert response.status_code == 403


def test_an_outsider_of_a_private_experiment_gets_404(client, alice, charlie, experiment):
    experiment_set_private(actor=alice, experiment_id=str(experiment.pk), private=True)

    response = signed_in(client, charlie).get(EVENTS + f"?object_type=experiment&object={experiment.pk}")

    assert response.status_code == 404


def test_a_missing_model_is_404(client, alice):
    assert signed_in(client, alice).get(model_events_url("no-such-model")).status_code == 404


@pytest.mark.parametrize(
    "query",
    ["", "?action=grant.created", "?object_type=registered_model", "?object_type=user&object=alice", "?object=churn"],
)
def test_anyone_but_a_superuser_must_name_one_object_they_manage(client, alice, model, query):
    response = signed_in(client, alice).get(EVENTS + query)

    assert response.status_code == 403
    assert "object_type=registered_model&object=<registered model name>" in response.json()["detail"]


def test_an_anonymous_caller_gets_401(client):
    assert client.get(EVENTS).status_code == 401


# ---------------------------------------------------------------- one event


def model_event(model) -> AuditEvent:
    return AuditEvent.objects.filter(resource_type="registered_model", resource_id=str(model.pk)).first()


def test_a_manager_reads_one_event_of_their_model(client, alice, model):
    event = model_event(model)

    response = signed_in(client, alice).get(f"{EVENTS}{event.pk}/")

    assert response.status_code == 200
    assert response.json()["id"] == event.pk


def test_a_superuser_reads_any_event(client, root, team):
    event = AuditEvent.objects.get(action="team.created")

    assert signed_in(client, root).get(f"{EVENTS}{event.pk}/").json()["action"] == "team.created"


def test_a_reader_of_the_model_gets_403_for_one_of_its_events(client, bob, model):
    assert signed_in(client, bob).get(f"{EVENTS}{model_event(model).pk}/").status_code == 403


def test_an_outsider_gets_404_for_an_event_of_a_hidden_object(client, alice, charlie, experiment):
    experiment_set_private(actor=alice, experiment_id=str(experiment.pk), private=True)
    event = AuditEvent.objects.get(action="grant.created", resource_id=str(experiment.pk))

    assert signed_in(client, charlie).get(f"{EVENTS}{event.pk}/").status_code == 404


def test_an_event_about_no_object_is_404_for_anyone_but_a_superuser(client, alice, team):
    event = AuditEvent.objects.get(action="team.created")

    response = signed_in(client, alice).get(f"{EVENTS}{event.pk}/")

    assert response.status_code == 404
    assert response.json() == {"detail": f"Audit event {event.pk} not found."}


def test_a_missing_event_is_404(client, root):
    assert signed_in(client, root).get(f"{EVENTS}999999/").status_code == 404


# ---------------------------------------------------------------- read-only


def test_the_log_cannot_be_written_through_the_api(client, root, team):
    event = AuditEvent.objects.get(action="team.created")
    client = signed_in(client, root)

    assert post(client, EVENTS, {"action": "x"}).status_code == 405
    assert put(client, f"{EVENTS}{event.pk}/", {"action": "x"}).status_code == 405
    assert patch(client, f"{EVENTS}{event.pk}/", {"action": "x"}).status_code == 405
    assert client.delete(f"{EVENTS}{event.pk}/").status_code == 405
    assert AuditEvent.objects.get(pk=event.pk).action == "team.created"
