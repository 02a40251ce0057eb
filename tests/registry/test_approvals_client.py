"""The issue's acceptance flow, as people would do it: a data scientist promotes with the
unmodified mlflow client, which answers PERMISSION_DENIED naming the request; a reviewer
approves through the native API; the change is applied; `models:/churn/Production` loads
the new version; the requester was emailed and the audit log shows every step."""

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import RestException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from portal import permissions
from portal.models import AuditEvent
from registry import selectors
from registry.models import TransitionRequest
from tests.portal.webhook_receiver import SECRET

pytestmark = [pytest.mark.governed, pytest.mark.usefixtures("eager_tasks")]

REQUIREMENTS = ["scikit-learn", "numpy", "pandas"]


@pytest.fixture
def registered(portal):
    X, y = load_iris(return_X_y=True, as_frame=True)
    classifier = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.set_experiment(experiment_id=portal.client().create_experiment("approvals"))
    with mlflow.start_run():
        mlflow.sklearn.log_model(classifier, name="model", registered_model_name="churn", pip_requirements=REQUIREMENTS)
    return classifier, X


WEBHOOK_EVENTS = [
    "transition_request.created", "transition_request.approved", "transition_request.applied",
    "model_version.stage_changed",
]


def test_promotion_through_a_request_approved_by_a_reviewer(
    portal, client_as, registered, alice, bob, mailoutbox, webhook_settings, receiver
):
    classifier, X = registered
    model = selectors.registered_model_get_for_user(alice, "churn")
    permissions.grant_create(actor=alice, root=model, level="APPROVE", user=bob)
    # The model's manager subscribes a receiver to the governance events (native API: the
    # mlflow client only knows MLflow's own event names).
    hook = portal.session(alice).post(
        f"{portal.url}/api/v1/webhooks/",
        json={"name": "deploys", "url": receiver.url, "events": WEBHOOK_EVENTS, "secret": SECRET,
              "registered_model": "churn"},
    )
    assert hook.status_code == 201, hook.content

    with pytest.raises(RestException) as refused:
        client_as(alice).transition_model_version_stage("churn", 1, "Production")
    request = TransitionRequest.objects.get()
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert f"transition request {request.pk}" in refused.value.message
    assert f"/requests/{request.pk}/" in refused.value.message
    assert request.state == "pending" and request.requester == alice
    assert [m.to for m in mailoutbox] == [["bob@example.com"]]  # the approver hears of it

    # the requester cannot approve their own request, whatever door they use
    own = portal.session(alice).post(f"{portal.url}/api/v1/transition-requests/{request.pk}/approve/", json={})
    assert own.status_code == 403 and "two-person" in own.json()["detail"]

    listed = portal.session(bob).get(f"{portal.url}/api/v1/transition-requests/?state=pending&model=churn&to_decide=1")
    assert [r["id"] for r in listed.json()["results"]] == [request.pk]
    approved = portal.session(bob).post(
        f"{portal.url}/api/v1/transition-requests/{request.pk}/approve/", json={"comment": "metrics look right"}
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == "applied"

    assert client_as(alice).get_model_version("churn", 1).current_stage == "Production"
    loaded = mlflow.pyfunc.load_model("models:/churn/Production")
    assert np.array_equal(np.asarray(loaded.predict(X)), classifier.predict(X))

    to_alice = [m for m in mailoutbox if m.to == ["alice@example.com"]]
    assert any("approved" in m.subject for m in to_alice) and any("Applied" in m.subject for m in to_alice)

    deliveries = [(r.json["entity"], r.json["action"], r.verified) for r in receiver.received]
    assert deliveries == [
        ("transition_request", "created", True),
        ("transition_request", "approved", True),
        ("model_version", "stage_changed", True),
        ("transition_request", "applied", True),
    ]
    assert receiver.received[-1].json["data"]["id"] == str(request.pk)

    steps = list(
        AuditEvent.objects.filter(resource_type="registered_model", resource_id=str(model.pk))
        .order_by("id")
        .values_list("action", "actor_username")
    )
    assert [s for s in steps if s[0].startswith(("transition_request", "model_version.stage"))] == [
        ("transition_request.created", "alice"),
        ("transition_request.approval_added", "bob"),
        ("transition_request.approved", "bob"),
        ("model_version.stage_changed", ""),
        ("transition_request.applied", ""),
    ]


def test_a_protected_alias_through_the_mlflow_client(portal, client_as, registered, alice, bob):
    from registry import services

    services.policy_update(actor=alice, name="churn", protected_stages=["Production"], protected_aliases=["champion"])
    client = client_as(alice)
    client.set_registered_model_alias("churn", "candidate", 1)  # unprotected: at once
    assert client.get_model_version_by_alias("churn", "candidate").version == "1"
    with pytest.raises(RestException) as refused:
        client.set_registered_model_alias("churn", "champion", 1)
    assert refused.value.error_code == "PERMISSION_DENIED" and "transition request" in refused.value.message
    with pytest.raises(RestException) as missing:
        client.get_model_version_by_alias("churn", "champion")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
