"""Comments on the native API: `<object>/comments/` and `<object>/comments/<id>/` for
experiments, runs, registered models, model versions and transition requests.

The rules are tested on the services (tests/tracking/test_comments.py,
tests/registry/test_services_comments.py) and route by route in the permission matrix;
here: the wiring, the JSON, pages, and what each kind of object shows.

alice owns everything; bob reads it (READ grants); charlie has no grant, and with
PORTAL_DEFAULT_PERMISSION=NONE sees nothing.
"""

from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal import permissions
from portal.services import api_token_create
from registry import services as registry_services
from tests.conftest import make_user
from tests.factories import make_experiment, make_run
from tests.native_api import V1, all_pages, patch, post, signed_in
from tests.registry.conftest import make_version, upload
from tracking.services import comments as tracking_comments

KINDS = ["experiment", "run", "registered-model", "model-version", "transition-request"]


@pytest.fixture(autouse=True)
def private_by_default(settings):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"


@pytest.fixture
def world(alice, bob):
    """One object of each kind, all readable by bob, and how to reach each: its API path
    and a service call that comments on it."""
    experiment = make_experiment(owner=alice, name="churn-training")
    permissions.grant_create(actor=alice, root=experiment, level="READ", user=bob)
    run = make_run(owner=alice, experiment=experiment)
    upload(alice, run, "model/MLmodel")
    model = registry_services.registered_model_create(actor=alice, name="churn")
    permissions.grant_create(actor=alice, root=model, level="READ", user=bob)
    version = make_version(alice, "churn", run)
    request, _ = registry_services.transition_request_create(
        actor=alice, name="churn", version=version.version, stage="Staging"
    )
    return {
        "experiment": SimpleNamespace(
            obj=experiment,
            path=f"{V1}experiments/{experiment.pk}/comments/",
            add=lambda user, text: tracking_comments.comment_add(actor=user, experiment_id=experiment.pk, text=text),
        ),
        "run": SimpleNamespace(
            obj=run,
            path=f"{V1}runs/{run.pk}/comments/",
            add=lambda user, text: tracking_comments.comment_add(actor=user, run_id=run.pk, text=text),
        ),
        "registered-model": SimpleNamespace(
            obj=model,
            path=f"{V1}registered-models/churn/comments/",
            add=lambda user, text: registry_services.comment_add(actor=user, name="churn", text=text),
        ),
        "model-version": SimpleNamespace(
            obj=version,
            path=f"{V1}model-versions/churn/{version.version}/comments/",
            add=lambda user, text: registry_services.comment_add(
                actor=user, name="churn", version=version.version, text=text
            ),
        ),
        "transition-request": SimpleNamespace(
            obj=request,
            path=f"{V1}transition-requests/{request.pk}/comments/",
            add=lambda user, text: registry_services.comment_add(
                actor=user, transition_request_id=request.pk, text=text
            ),
        ),
    }


@pytest.fixture(params=KINDS)
def kind(request, world):
    return world[request.param]


def as_user(user) -> Client:
    return signed_in(Client(), user)


# ---------------------------------------------------------------- every kind


def test_a_reader_comments_and_gets_the_comment_back_with_201(bob, kind):
    response = post(as_user(bob), kind.path, {"text": "Why **this** threshold?\n<script>alert(1)</script>"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id", "author", "text", "html", "created_at", "updated_at", "edited", "can_edit", "can_delete",
    }
    assert body["author"] == "bob"
    assert body["text"] == "Why **this** threshold?\n<script>alert(1)</script>"
    assert body["html"] == "<p>Why <strong>this</strong> threshold?<br>\n&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    assert body["edited"] is False and body["can_edit"] is True and body["can_delete"] is True
    assert body["created_at"] == body["updated_at"]


def test_the_list_is_oldest_first_in_cursor_pages(alice, bob, kind):
    for number in range(5):
        kind.add(alice if number % 2 else bob, f"comment {number}")

    first = as_user(bob).get(kind.path, {"page_size": 2})
    every = all_pages(as_user(bob), kind.path + "?page_size=2")

    assert first.status_code == 200
    assert len(first.json()["results"]) == 2 and first.json()["next"]
    assert [c["text"] for c in every] == [f"comment {n}" for n in range(5)]
    assert [c["author"] for c in every] == ["bob", "alice", "bob", "alice", "bob"]


def test_one_comment_reads_as_in_the_list(bob, kind):
    comment = kind.add(bob, "*hello*")

    response = as_user(bob).get(f"{kind.path}{comment.pk}/")

    assert response.status_code == 200
    assert response.json() == as_user(bob).get(kind.path).json()["results"][0]
    assert response.json()["html"] == "<p><em>hello</em></p>\n"


def test_the_author_edits_and_the_comment_shows_as_edited(bob, kind):
    comment = kind.add(bob, "first")

    response = patch(as_user(bob), f"{kind.path}{comment.pk}/", {"text": "second"})

    assert response.status_code == 200, response.content
    assert response.json()["text"] == "second" and response.json()["edited"] is True
    assert as_user(bob).get(kind.path).json()["results"][0]["text"] == "second"


def test_someone_elses_comment_cannot_be_edited_even_by_its_manager(alice, bob, kind):
    comment = kind.add(bob, "mine")

    response = patch(as_user(alice), f"{kind.path}{comment.pk}/", {"text": "theirs"})

    assert response.status_code == 403
    assert as_user(bob).get(f"{kind.path}{comment.pk}/").json()["text"] == "mine"


def test_the_author_deletes_with_204(bob, kind):
    comment = kind.add(bob, "oops")

    response = as_user(bob).delete(f"{kind.path}{comment.pk}/")

    assert response.status_code == 204
    assert as_user(bob).get(kind.path).json()["results"] == []
    assert as_user(bob).get(f"{kind.path}{comment.pk}/").status_code == 404


def test_a_manage_holder_deletes_anyones_comment(alice, bob, kind):
    comment = kind.add(bob, "off topic")

    assert as_user(alice).delete(f"{kind.path}{comment.pk}/").status_code == 204


def test_a_reader_cannot_delete_someone_elses_comment(alice, bob, kind):
    comment = kind.add(alice, "alice's")

    assert as_user(bob).delete(f"{kind.path}{comment.pk}/").status_code == 403
    assert as_user(bob).get(f"{kind.path}{comment.pk}/").status_code == 200


def test_the_flags_say_what_the_caller_may_do(alice, bob, kind):
    kind.add(alice, "alice's")
    kind.add(bob, "bob's")

    as_bob = as_user(bob).get(kind.path).json()["results"]
    as_alice = as_user(alice).get(kind.path).json()["results"]

    assert [(c["can_edit"], c["can_delete"]) for c in as_bob] == [(False, False), (True, True)]
    # alice holds MANAGE: she moderates bob's comment, and still cannot edit it.
    assert [(c["can_edit"], c["can_delete"]) for c in as_alice] == [(True, True), (False, True)]


def test_an_outsider_gets_404_everywhere(charlie, bob, kind):
    comment = kind.add(bob, "secret")
    client = as_user(charlie)

    assert client.get(kind.path).status_code == 404
    assert post(client, kind.path, {"text": "hello"}).status_code == 404
    assert client.get(f"{kind.path}{comment.pk}/").status_code == 404
    assert patch(client, f"{kind.path}{comment.pk}/", {"text": "x"}).status_code == 404
    assert client.delete(f"{kind.path}{comment.pk}/").status_code == 404


def test_an_outsider_gets_404_even_with_an_invalid_body(charlie, kind):
    assert post(as_user(charlie), kind.path, {"text": ""}).status_code == 404


def test_anonymous_callers_get_401(bob, kind):
    comment = kind.add(bob, "hello")
    client = Client()

    assert client.get(kind.path).status_code == 401
    assert post(client, kind.path, {"text": "hello"}).status_code == 401
    assert client.delete(f"{kind.path}{comment.pk}/").status_code == 401


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "   "}, {"text": None}, {"text": "x" * 100_001}])
def test_a_comment_needs_some_text(bob, kind, body):
    response = post(as_user(bob), kind.path, body)

    assert response.status_code == 400, response.content
    assert as_user(bob).get(kind.path).json()["results"] == []


def test_a_missing_comment_is_404(bob, kind):
    assert as_user(bob).get(f"{kind.path}987654/").status_code == 404


# ---------------------------------------------------------------- what each object shows


def test_a_comment_is_only_reached_through_its_own_object(bob, world):
    """An id of another object's comment is 404 here: the path names the object."""
    on_run = world["run"].add(bob, "on the run")
    on_version = world["model-version"].add(bob, "on the version")

    assert as_user(bob).get(f"{world['experiment'].path}{on_run.pk}/").status_code == 404
    assert as_user(bob).delete(f"{world['registered-model'].path}{on_version.pk}/").status_code == 404
    assert as_user(bob).delete(f"{world['transition-request'].path}{on_version.pk}/").status_code == 404
    assert as_user(bob).get(f"{world['run'].path}{on_run.pk}/").status_code == 200


def test_an_experiments_comments_are_its_own_and_a_models_too(bob, world):
    for name in KINDS:
        world[name].add(bob, f"on the {name}")

    for name in KINDS:
        texts = [c["text"] for c in as_user(bob).get(world[name].path).json()["results"]]
        assert texts == [f"on the {name}"], name


def test_an_api_token_works_as_a_session_does(bob, world):
    token = api_token_create(user=bob, name="ci").raw
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    created = post(Client(), world["run"].path, {"text": "from CI"}, **headers)

    assert created.status_code == 201
    assert Client().get(world["run"].path, **headers).json()["results"][0]["author"] == "bob"


def test_a_session_write_needs_the_csrf_token(bob, world):
    client = signed_in(Client(enforce_csrf_checks=True), bob)

    assert post(client, world["experiment"].path, {"text": "hello"}).status_code == 403
    assert client.get(world["experiment"].path).status_code == 200


def test_a_deleted_authors_comments_stay_without_an_author(alice, bob, world):
    world["registered-model"].add(bob, "from a leaver")
    bob.delete()

    comment = as_user(alice).get(world["registered-model"].path).json()["results"][0]

    assert comment["author"] is None and comment["text"] == "from a leaver"
    assert comment["can_edit"] is False and comment["can_delete"] is True


def test_a_links_html_is_safe_to_show(bob, world):
    response = post(
        as_user(bob), world["run"].path, {"text": "[ok](https://example.com) [bad](javascript:alert(1))"}
    )

    assert response.json()["html"] == (
        '<p><a href="https://example.com" rel="noopener noreferrer nofollow">ok</a> [bad](javascript:alert(1))</p>\n'
    )


def test_a_page_of_comments_costs_the_same_queries_however_many_authors(alice, bob, world):
    def queries_for_a_page() -> int:
        client = as_user(bob)
        client.get(world["run"].path)  # the session is loaded and refreshed once
        with CaptureQueriesContext(connection) as captured:
            assert client.get(world["run"].path).status_code == 200
        return len(captured)

    world["run"].add(alice, "one")
    few = queries_for_a_page()
    for number in range(10):
        author = make_user(f"reader{number}")
        permissions.grant_create(actor=alice, root=world["experiment"].obj, level="READ", user=author)
        world["run"].add(author, f"comment {number}")

    assert queries_for_a_page() == few
