"""permissions.visible_rows: the same rows as visible(), in the shape of a search (issue 9).

visible_rows states the rule on each row's foreign key; visible correlates one EXISTS with
each row's root. Over every kind of grant, team default, denial, private root, the Default
experiment's own-runs rule and both defaults, the two must leave exactly the same rows for
everyone.
"""

import itertools

import pytest
from django.contrib.auth.models import AnonymousUser

from portal import permissions
from portal import services as portal_services
from registry import services as registry_services
from registry.models import ModelAlias, ModelVersion, RegisteredModelTag
from tests.conftest import make_user
from tests.factories import make_experiment, make_run
from tracking.models import LoggedModel, Run
from tracking.services import experiments as experiment_services
from tracking.services import logged_models as logged_model_services

pytestmark = pytest.mark.django_db

CAST = ("owner", "reader", "team_member", "denied", "team_denied", "defaulted", "default_denied", "outsider", "root")


@pytest.fixture
def world(default_experiment, root):
    users = {name: make_user(name) for name in CAST if name != "root"}
    users["root"] = root
    users["inactive"] = make_user("inactive", is_active=False)
    team, denied_team, defaulted, default_denied = (
        portal_services.team_create(actor=root, name=name) for name in ("team", "denied-team", "defaulted", "blocked")
    )
    for group, members in (
        (team, ["team_member", "team_denied", "denied"]),
        (denied_team, ["team_denied"]),
        (defaulted, ["defaulted"]),
        (default_denied, ["default_denied"]),
    ):
        for member in members:
            portal_services.team_member_add(actor=root, team_id=group.pk, username=member)
    for resource_type in ("experiment", "registered_model"):
        portal_services.team_default_set(actor=root, team_id=defaulted.pk, resource_type=resource_type, level="READ")
        portal_services.team_default_set(
            actor=root, team_id=default_denied.pk, resource_type=resource_type, level="DENY"
        )

    owner = users["owner"]
    roots = []
    for k in range(4):
        experiment = make_experiment(owner=owner, name=f"exp-{k}")
        model = registry_services.registered_model_create(actor=owner, name=f"model-{k}")
        roots += [experiment, model]
        if k == 1:
            experiment_services.experiment_set_private(actor=owner, experiment_id=str(experiment.pk), private=True)
            registry_services.registered_model_set_private(actor=owner, name=model.name, private=True)
        for root_object in (experiment, model):
            root_object.refresh_from_db()
            if k in (0, 1):
                permissions.grant_create(actor=owner, root=root_object, level="READ", user=users["reader"])
                permissions.grant_create(actor=owner, root=root_object, level="EDIT", team=team)
            if k == 2:
                permissions.grant_create(actor=owner, root=root_object, level="READ", team=team)
            if k in (0, 2):
                permissions.grant_create(actor=owner, root=root_object, level="DENY", user=users["denied"])
                permissions.grant_create(actor=owner, root=root_object, level="DENY", team=denied_team)
        for run_owner in ("owner", "team_member"):
            if k in (0, 1) or run_owner == "owner":
                make_run(owner=users[run_owner], experiment=experiment)
        logged_model_services.logged_model_create(actor=owner, experiment_id=str(experiment.pk), name=f"lm-{k}")
        versions = ModelVersion.objects.bulk_create(
            ModelVersion(
                registered_model=model, version=v, owner=owner, source=f"models:/m-{k}-{v}",
                storage_location=f"mlflow-artifacts:/models/{k}/{v}", creation_timestamp=v, last_updated_timestamp=v,
            )  # fmt: skip
            for v in (1, 2)
        )
        ModelAlias.objects.create(registered_model=model, alias="champion", model_version=versions[-1])
        RegisteredModelTag.objects.create(registered_model=model, key="k", value=str(k))
    # Everyone's own runs and logged models in the Default experiment; then one of them is denied it.
    for name in ("owner", "reader", "team_member", "denied", "outsider"):
        make_run(owner=users[name], experiment=default_experiment)
        logged_model_services.logged_model_create(
            actor=users[name], experiment_id=str(default_experiment.pk), name=f"default-{name}"
        )
    permissions.grant_create(actor=root, root=default_experiment, level="DENY", user=users["denied"])
    return users


QUERYSETS = {
    "versions": lambda: ModelVersion.objects.all(),
    "aliases": lambda: ModelAlias.objects.all(),
    "model tags": lambda: RegisteredModelTag.objects.all(),
    "runs": lambda: Run.objects.all(),
    "logged models": lambda: LoggedModel.objects.all(),
}


@pytest.mark.parametrize("default", ["NONE", "READ"])
@pytest.mark.parametrize("rows", sorted(QUERYSETS))
def test_visible_rows_leaves_the_rows_visible_leaves(world, settings, default, rows):
    settings.PORTAL_DEFAULT_PERMISSION = default
    queryset = QUERYSETS[rows]
    for user in itertools.chain(world.values(), [AnonymousUser()]):
        expected = set(permissions.visible(user, queryset()).values_list("pk", flat=True))

        assert set(permissions.visible_rows(user, queryset()).values_list("pk", flat=True)) == expected, user


def test_the_cast_sees_different_things(world, settings):
    """The world is not degenerate: the rules above leave each of them something different."""
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"
    seen = {
        frozenset(permissions.visible(user, ModelVersion.objects.all()).values_list("pk", flat=True))
        | frozenset(f"run-{pk}" for pk in permissions.visible(user, Run.objects.all()).values_list("pk", flat=True))
        for user in world.values()
    }
    assert len(seen) >= 7
