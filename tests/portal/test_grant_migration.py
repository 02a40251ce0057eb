"""Existing data keeps working after the migration to grant levels: a creator's three old
rows (view, change, manage) become one MANAGE grant, and an owner without any row gets one."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission

from portal import permissions
from registry.models import RegisteredModel, RegisteredModelUserObjectPermission
from tracking.models import Experiment, ExperimentGroupObjectPermission, ExperimentUserObjectPermission

pytestmark = pytest.mark.django_db

tracking_migration = importlib.import_module("tracking.migrations.0003_grant_levels_private")
registry_migration = importlib.import_module("registry.migrations.0002_grant_levels_private")


def _old_style_rows(table, root, codenames, **principal):
    for codename in codenames:
        permission = Permission.objects.get(codename=codename)
        table.objects.create(permission=permission, content_object=root, **principal)


def test_old_owner_rows_collapse_to_one_manage_grant(alice, bob):
    experiment = Experiment.objects.create(
        name="old", owner=alice, artifact_location="mlflow-artifacts:/old", creation_time=0, last_update_time=0
    )
    _old_style_rows(
        ExperimentUserObjectPermission, experiment, ["view_experiment", "change_experiment", "manage_experiment"], user=alice
    )
    _old_style_rows(ExperimentUserObjectPermission, experiment, ["view_experiment", "change_experiment"], user=bob)

    tracking_migration.collapse_to_levels(apps, None)

    rows = ExperimentUserObjectPermission.objects.filter(content_object=experiment)
    assert sorted(rows.values_list("user__username", "permission__codename")) == [
        ("alice", "manage_experiment"),
        ("bob", "change_experiment"),
    ]
    assert permissions.level_of(alice, experiment) == "MANAGE"
    assert permissions.level_of(bob, experiment) == "EDIT"


def test_team_rows_collapse_too_and_approve_rows_stay(alice, root):
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="old-team")
    model = RegisteredModel.objects.create(name="old", owner=alice, creation_timestamp=0, last_updated_timestamp=0)
    _old_style_rows(
        RegisteredModelUserObjectPermission,
        model,
        ["view_registeredmodel", "manage_registeredmodel", "approve_transition"],
        user=alice,
    )

    registry_migration.collapse_to_levels(apps, None)

    codenames = set(
        RegisteredModelUserObjectPermission.objects.filter(content_object=model).values_list(
            "permission__codename", flat=True
        )
    )
    assert codenames == {"manage_registeredmodel", "approve_transition"}
    assert not ExperimentGroupObjectPermission.objects.filter(group=team).exists()


def test_an_owner_left_without_a_grant_gets_manage(alice):
    experiment = Experiment.objects.create(
        name="orphan", owner=alice, artifact_location="mlflow-artifacts:/orphan", creation_time=0, last_update_time=0
    )

    tracking_migration.collapse_to_levels(apps, None)

    assert permissions.level_of(alice, experiment) == "MANAGE"
