"""The access module's owner grants: what grant_owner writes and that guardian reads it back."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import permissions
from registry.models import RegisteredModel, RegisteredModelUserObjectPermission
from tests.factories import make_experiment
from tracking.models import ExperimentUserObjectPermission

pytestmark = pytest.mark.django_db

OWNER_CODENAMES = {"view", "change", "manage"}


def _registered_model(name="churn"):
    return RegisteredModel.objects.create(name=name, creation_timestamp=0, last_updated_timestamp=0)


def test_grant_owner_gives_read_edit_and_manage_that_guardian_sees(alice, bob):
    model = _registered_model()

    permissions.grant_owner(model, bob)

    codenames = set(
        RegisteredModelUserObjectPermission.objects.filter(content_object=model, user=bob).values_list(
            "permission__codename", flat=True
        )
    )
    assert codenames == {f"{c}_registeredmodel" for c in OWNER_CODENAMES}
    for codename in codenames:
        assert bob.has_perm(f"registry.{codename}", model)
    assert not alice.has_perm("registry.change_registeredmodel", model)
    assert permissions.can(bob, permissions.MANAGE, model)
    assert not permissions.can(alice, permissions.MANAGE, model)


def test_grant_owner_on_an_experiment_uses_its_own_table(alice):
    experiment = make_experiment(owner=alice, name="grants")
    ExperimentUserObjectPermission.objects.all().delete()

    permissions.grant_owner(experiment, alice)

    codenames = set(
        ExperimentUserObjectPermission.objects.filter(content_object=experiment, user=alice).values_list(
            "permission__codename", flat=True
        )
    )
    assert codenames == {f"{c}_experiment" for c in OWNER_CODENAMES}


def test_granting_twice_changes_nothing(bob):
    model = _registered_model()
    permissions.grant_owner(model, bob)
    permissions.grant_owner(model, bob)
    assert RegisteredModelUserObjectPermission.objects.filter(content_object=model, user=bob).count() == 3


def test_an_inactive_user_gets_no_grants(bob):
    bob.is_active = False
    bob.save()
    model = _registered_model()
    permissions.grant_owner(model, bob)
    assert not RegisteredModelUserObjectPermission.objects.exists()


def test_grant_owner_costs_two_queries(bob):
    model = _registered_model()
    permissions.grant_owner(model, bob)  # warms the content-type cache
    other = _registered_model("other")
    with CaptureQueriesContext(connection) as queries:
        permissions.grant_owner(other, bob)
    assert len(queries) == 2
