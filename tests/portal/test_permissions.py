"""The access module: levels, teams, DENY, defaults, private objects, the last manager,
the Default experiment, and visible() in SQL. Data is built through the real services."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal import permissions
from portal import services as portal_services
from portal.errors import AlreadyExists, Conflict, InvalidParameter, NotFound, PermissionDenied
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.models import RegisteredModel, RegisteredModelUserObjectPermission
from tests.factories import make_experiment, make_run
from tracking import selectors as tracking_selectors
from tracking.models import Experiment, ExperimentUserObjectPermission, Run
from tracking.services import experiments as experiment_services
from tracking.services import runs as run_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_by_default(settings):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"


@pytest.fixture
def exp(alice):
    return make_experiment(owner=alice, name="alices")


@pytest.fixture
def team(root, bob):
    team = portal_services.team_create(actor=root, name="ml")
    portal_services.team_member_add(actor=root, team_id=team.pk, username="bob")
    return team


def visible_experiments(user):
    return set(tracking_selectors.experiments_for_user(user).values_list("name", flat=True))


# ---------------------------------------------------------------- the creator's grant


def test_the_creator_gets_manage_as_one_ordinary_grant(alice, exp):
    rows = ExperimentUserObjectPermission.objects.filter(content_object=exp, user=alice)

    assert list(rows.values_list("permission__codename", flat=True)) == ["manage_experiment"]
    assert permissions.level_of(alice, exp) == "MANAGE"


def test_the_creator_of_a_registered_model_gets_manage_but_not_approve(alice):
    model = registry_services.registered_model_create(actor=alice, name="churn")

    assert permissions.can(alice, permissions.MANAGE, model)
    assert not permissions.can(alice, permissions.APPROVE, model)


def test_grant_owner_costs_three_queries(alice, bob):
    model = RegisteredModel.objects.create(name="a", creation_timestamp=0, last_updated_timestamp=0)
    permissions.grant_owner(model, bob)  # warms the content-type cache
    other = RegisteredModel.objects.create(name="b", creation_timestamp=0, last_updated_timestamp=0)
    with CaptureQueriesContext(connection) as queries:
        permissions.grant_owner(other, bob)
    assert len(queries) == 3  # the permission, the grant, its audit event
    assert RegisteredModelUserObjectPermission.objects.filter(user=bob).count() == 2


# ---------------------------------------------------------------- levels


def test_with_the_default_read_everyone_reads_but_only_grantees_write(alice, bob, exp):
    assert permissions.can(bob, permissions.READ, exp)
    assert not permissions.can(bob, permissions.EDIT, exp)
    with pytest.raises(PermissionDenied):
        experiment_services.experiment_tag_set(actor=bob, experiment_id=str(exp.pk), key="k", value="v")


def test_a_higher_level_includes_the_lower_ones(alice, bob, exp):
    permissions.grant_create(actor=alice, root=exp, level="EDIT", user=bob)

    assert permissions.can(bob, permissions.READ, exp)
    assert permissions.can(bob, permissions.USE, exp)
    assert permissions.can(bob, permissions.EDIT, exp)
    assert not permissions.can(bob, permissions.MANAGE, exp)


def test_deleting_an_experiment_and_its_runs_needs_manage(alice, bob, exp):
    run = make_run(owner=alice, experiment=exp)
    permissions.grant_create(actor=alice, root=exp, level="EDIT", user=bob)

    with pytest.raises(PermissionDenied):
        run_services.run_delete(actor=bob, run_id=run.pk)
    with pytest.raises(PermissionDenied):
        experiment_services.experiment_delete(actor=bob, experiment_id=str(exp.pk))
    permissions.grant_update(actor=alice, root=exp, level="MANAGE", user=bob)
    run_services.run_delete(actor=bob, run_id=run.pk)
    experiment_services.experiment_delete(actor=bob, experiment_id=str(exp.pk))


def test_a_run_creator_has_no_rights_of_their_own_outside_the_default_experiment(alice, bob, exp):
    permissions.grant_create(actor=alice, root=exp, level="EDIT", user=bob)
    run = make_run(owner=bob, experiment=exp)
    permissions.grant_revoke(actor=alice, root=exp, user=bob)

    with pytest.raises(PermissionDenied):
        run_services.run_set_tag(actor=bob, run_id=run.pk, key="k", value="v")


def test_a_second_level_grant_to_the_same_grantee_already_exists(alice, bob, exp):
    permissions.grant_create(actor=alice, root=exp, level="READ", user=bob)

    with pytest.raises(AlreadyExists):
        permissions.grant_create(actor=alice, root=exp, level="EDIT", user=bob)


def test_no_permissions_is_an_alias_of_deny_and_unknown_levels_are_refused(alice, bob, exp):
    grant = permissions.grant_create(actor=alice, root=exp, level="no_permissions", user=bob)

    assert grant.level == "DENY"
    with pytest.raises(InvalidParameter):
        permissions.grant_create(actor=alice, root=exp, level="OWNER", user=bob)


def test_approve_is_only_a_registered_model_grant(alice, bob, exp):
    with pytest.raises(InvalidParameter):
        permissions.grant_create(actor=alice, root=exp, level="APPROVE", user=bob)


def test_approve_is_separate_from_the_level(alice, bob):
    model = registry_services.registered_model_create(actor=alice, name="churn")
    permissions.grant_create(actor=alice, root=model, level="APPROVE", user=bob)

    assert permissions.can(bob, permissions.APPROVE, model)
    assert not permissions.can(bob, permissions.EDIT, model)
    permissions.grant_create(actor=alice, root=model, level="EDIT", user=bob)
    permissions.grant_revoke(actor=alice, root=model, user=bob, approve=True)
    assert not permissions.can(bob, permissions.APPROVE, model)
    assert permissions.can(bob, permissions.EDIT, model)


def test_only_a_manager_grants_and_an_outsider_cannot_tell_the_object_exists(alice, bob, charlie, exp, settings):
    with pytest.raises(PermissionDenied):
        permissions.grant_create(actor=bob, root=exp, level="READ", user=charlie)
    exp_private = make_experiment(owner=alice, name="hidden")
    exp_private = experiment_services.experiment_set_private(
        actor=alice, experiment_id=str(exp_private.pk), private=True
    )
    with pytest.raises(NotFound):
        permissions.grant_create(actor=bob, root=exp_private, level="READ", user=charlie)


# ---------------------------------------------------------------- teams, deny


def test_a_team_grant_reaches_its_members(alice, bob, charlie, exp, team, private_by_default):
    permissions.grant_create(actor=alice, root=exp, level="EDIT", team=team)

    assert permissions.can(bob, permissions.EDIT, exp)
    assert not permissions.can(charlie, permissions.READ, exp)
    assert visible_experiments(bob) >= {"alices"}
    assert "alices" not in visible_experiments(charlie)


def test_a_user_deny_beats_their_teams_manage(alice, bob, exp, team):
    permissions.grant_create(actor=alice, root=exp, level="MANAGE", team=team)
    permissions.grant_create(actor=alice, root=exp, level="DENY", user=bob)

    assert not permissions.can(bob, permissions.READ, exp)
    assert "alices" not in visible_experiments(bob)


def test_a_team_deny_beats_a_users_own_grant_and_the_default(alice, bob, exp, team):
    permissions.grant_create(actor=alice, root=exp, level="EDIT", user=bob)
    permissions.grant_create(actor=alice, root=exp, level="DENY", team=team)

    assert not permissions.can(bob, permissions.READ, exp)
    with pytest.raises(NotFound):
        tracking_selectors.experiment_get_for_user(bob, exp.pk)


def test_a_team_default_reaches_every_object_of_the_type_but_not_private_ones(
    root, alice, bob, charlie, exp, team, private_by_default
):
    hidden = make_experiment(owner=alice, name="hidden")
    hidden = experiment_services.experiment_set_private(actor=alice, experiment_id=str(hidden.pk), private=True)
    portal_services.team_default_set(actor=root, team_id=team.pk, resource_type="experiment", level="READ")

    assert visible_experiments(bob) == {"Default", "alices"}
    assert permissions.can(bob, permissions.READ, exp)
    assert not permissions.can(bob, permissions.READ, hidden)
    assert "alices" not in visible_experiments(charlie)


def test_a_team_default_deny_hides_everything_of_the_type(root, alice, bob, exp, team):
    portal_services.team_default_set(actor=root, team_id=team.pk, resource_type="experiment", level="DENY")

    assert not permissions.can(bob, permissions.READ, exp)
    assert "alices" not in visible_experiments(bob)


def test_a_revoke_takes_effect_on_the_next_check(alice, bob, exp, team, private_by_default):
    grant = permissions.grant_create(actor=alice, root=exp, level="READ", team=team)
    assert permissions.can(bob, permissions.READ, exp)

    permissions.grant_revoke(actor=alice, root=exp, team=grant.team)

    assert not permissions.can(bob, permissions.READ, exp)
    assert "alices" not in visible_experiments(bob)


def test_leaving_a_team_takes_its_grants_away(root, alice, bob, exp, team, private_by_default):
    permissions.grant_create(actor=alice, root=exp, level="READ", team=team)
    portal_services.team_member_remove(actor=root, team_id=team.pk, username="bob")

    assert not permissions.can(bob, permissions.READ, exp)


def test_a_team_admin_manages_members_but_not_the_team(root, bob, charlie, team):
    portal_services.team_admin_set(actor=root, team_id=team.pk, username="bob", is_admin=True)

    portal_services.team_member_add(actor=bob, team_id=team.pk, username="charlie")
    assert charlie.groups.filter(pk=team.pk).exists()
    with pytest.raises(PermissionDenied):
        portal_services.team_update(actor=bob, team_id=team.pk, name="renamed")
    with pytest.raises(PermissionDenied):
        portal_services.team_member_add(actor=charlie, team_id=team.pk, username="root")


# ---------------------------------------------------------------- default and private


def test_with_the_default_none_only_grantees_and_superusers_see_an_experiment(
    alice, bob, root, exp, private_by_default
):
    assert "alices" not in visible_experiments(bob)
    assert "alices" in visible_experiments(root)
    with pytest.raises(NotFound):
        tracking_selectors.experiment_get_for_user(bob, exp.pk)


def test_a_private_object_is_hidden_from_non_grantees_whatever_the_default(alice, bob, exp):
    experiment_services.experiment_set_private(actor=alice, experiment_id=str(exp.pk), private=True)

    assert "alices" not in visible_experiments(bob)
    permissions.grant_create(actor=alice, root=exp, level="READ", user=bob)
    assert "alices" in visible_experiments(bob)


def test_making_an_object_private_needs_manage(alice, bob, exp):
    permissions.grant_create(actor=alice, root=exp, level="EDIT", user=bob)

    with pytest.raises(PermissionDenied):
        experiment_services.experiment_set_private(actor=bob, experiment_id=str(exp.pk), private=True)


def test_search_counts_and_pages_never_include_hidden_rows(alice, bob, private_by_default):
    for i in range(6):
        experiment = make_experiment(owner=alice, name=f"e{i}")
        if i % 2 == 0:
            permissions.grant_create(actor=alice, root=experiment, level="READ", user=bob)
    seen, token = [], None
    while True:
        page = tracking_selectors.experiment_search_for_user(bob, max_results=1, page_token=token, view_type="ALL")
        seen += [e.name for e in page.experiments]
        token = page.next_page_token
        if not token:
            break

    assert sorted(seen) == ["Default", "e0", "e2", "e4"] or sorted(seen) == ["e0", "e2", "e4"]
    assert tracking_selectors.experiments_for_user(bob).filter(name__startswith="e").count() == 3


# ---------------------------------------------------------------- the last manager


def test_the_last_manage_grant_cannot_be_removed_or_lowered(alice, bob, exp):
    with pytest.raises(Conflict):
        permissions.grant_revoke(actor=alice, root=exp, user=alice)
    with pytest.raises(Conflict):
        permissions.grant_update(actor=alice, root=exp, level="READ", user=alice)

    permissions.grant_create(actor=alice, root=exp, level="MANAGE", user=bob)
    permissions.grant_revoke(actor=alice, root=exp, user=alice)
    assert not permissions.can(alice, permissions.EDIT, exp)


def test_a_team_manage_grant_counts_as_a_manager(alice, exp, team):
    permissions.grant_create(actor=alice, root=exp, level="MANAGE", team=team)

    permissions.grant_revoke(actor=alice, root=exp, user=alice)
    with pytest.raises(Conflict):
        permissions.grant_revoke(actor=portal_services.user_get("bob"), root=exp, team=team)


def test_a_superuser_may_remove_the_last_manager(root, alice, exp):
    permissions.grant_revoke(actor=root, root=exp, user=alice)

    assert not permissions.can(alice, permissions.MANAGE, exp)


# ---------------------------------------------------------------- the Default experiment


def test_in_the_default_experiment_each_run_is_seen_by_its_creator_grantees_and_superusers(
    alice, bob, charlie, root, default_experiment, private_by_default
):
    run = run_services.run_create(actor=bob, experiment_id="0")
    permissions.grant_create(actor=root, root=default_experiment, level="READ", user=charlie)

    assert permissions.can(bob, permissions.MANAGE, run)
    assert permissions.can(charlie, permissions.READ, run)
    assert not permissions.can(charlie, permissions.EDIT, run)
    assert permissions.can(root, permissions.READ, run)
    assert not permissions.can(alice, permissions.READ, run)
    assert permissions.can(alice, permissions.READ, default_experiment)  # the experiment itself
    with pytest.raises(NotFound):
        tracking_selectors.run_get_for_user(alice, run.pk)
    page = tracking_selectors.run_search_for_user(alice, experiment_ids=["0"])
    assert page.runs == []
    own = run_services.run_create(actor=alice, experiment_id="0")
    page = tracking_selectors.run_search_for_user(alice, experiment_ids=["0"])
    assert [d.run.pk for d in page.runs] == [own.pk]
    assert set(tracking_selectors.runs_for_user(alice).values_list("pk", flat=True)) == {own.pk}
    page = tracking_selectors.run_search_for_user(charlie, experiment_ids=["0"])
    assert {d.run.pk for d in page.runs} == {run.pk, own.pk}


def test_with_the_default_read_everyone_reads_the_default_experiments_runs(alice, bob, default_experiment):
    run = run_services.run_create(actor=bob, experiment_id="0")

    assert permissions.can(alice, permissions.READ, run)
    assert not permissions.can(alice, permissions.EDIT, run)


def test_a_user_denied_the_default_experiment_cannot_add_runs_to_it(root, bob, default_experiment):
    permissions.grant_create(actor=root, root=default_experiment, level="DENY", user=bob)

    with pytest.raises(NotFound):
        run_services.run_create(actor=bob, experiment_id="0")


# ---------------------------------------------------------------- visible() in SQL


def test_visible_uses_subqueries_not_joins_or_distinct(bob):
    sql = str(tracking_selectors.runs_for_user(bob).query).upper()

    assert "DISTINCT" not in sql
    assert " JOIN " not in sql.split("WHERE")[0]


def test_visible_locks_rows_on_every_database(alice, bob, exp):
    from django.db import transaction

    run = make_run(owner=alice, experiment=exp)
    permissions.grant_create(actor=alice, root=exp, level="EDIT", user=bob)
    with transaction.atomic():
        locked = tracking_selectors.run_lock_for_user(bob, run.pk)
    assert locked.pk == run.pk


def test_a_page_of_runs_costs_the_same_number_of_queries_for_one_run_or_many(alice, bob, exp, team):
    permissions.grant_create(actor=alice, root=exp, level="READ", team=team)
    for _ in range(3):
        make_run(owner=alice, experiment=exp)
    with CaptureQueriesContext(connection) as few:
        tracking_selectors.run_search_for_user(bob, experiment_ids=[str(exp.pk)], max_results=1)
    for _ in range(20):
        make_run(owner=alice, experiment=exp)
    with CaptureQueriesContext(connection) as many:
        tracking_selectors.run_search_for_user(bob, experiment_ids=[str(exp.pk)], max_results=100)

    assert len(many) == len(few)


def test_bulk_interval_asks_about_permissions_once_for_many_runs(alice, bob, exp):
    runs = [make_run(owner=alice, experiment=exp) for _ in range(12)]
    for run in runs:
        run_services.run_log_metric(actor=alice, run_id=run.pk, metric={"key": "m", "value": 1.0, "timestamp": 1, "step": 0})
    with CaptureQueriesContext(connection) as queries:
        points = tracking_selectors.metric_history_bulk_interval_for_user(
            bob, run_ids=[r.pk for r in runs], key="m", max_results=10
        )

    assert len(points) == 12
    permission_queries = [q for q in queries if "objectpermission" in q["sql"].lower()]
    assert len(permission_queries) == 1


def test_bulk_interval_over_a_hidden_run_is_not_found(alice, bob, exp, private_by_default):
    run = make_run(owner=alice, experiment=exp)

    with pytest.raises(NotFound):
        tracking_selectors.metric_history_bulk_interval_for_user(bob, run_ids=[run.pk], key="m")


# ---------------------------------------------------------------- registry


def test_a_registered_models_readers_load_its_versions_without_the_experiment(alice, bob, private_by_default):
    from tests.registry.conftest import make_version, upload

    experiment = make_experiment(owner=alice, name="secret")
    run = make_run(owner=alice, experiment=experiment)
    upload(alice, run, "model/MLmodel")
    model = registry_services.registered_model_create(actor=alice, name="shared")
    make_version(alice, "shared", run)
    permissions.grant_create(actor=alice, root=model, level="READ", user=bob)
    from tracking.services import artifacts as artifact_services

    location = registry_selectors.model_version_download_uri_for_user(bob, "shared", 1)
    path = location.removeprefix("mlflow-artifacts:/")

    assert [e.path for e in artifact_services.artifact_list(user=bob, path=path)] == ["MLmodel"]
    with artifact_services.artifact_open(user=bob, path=f"{path}/MLmodel").file as handle:
        assert handle.read() == b"flavors: {}\n"
    with pytest.raises(NotFound):
        tracking_selectors.run_get_for_user(bob, run.pk)
    with pytest.raises(NotFound):
        artifact_services.artifact_upload(
            user=bob, path=f"{path}/evil", content=__import__("io").BytesIO(b"x"), expected_size=1
        )


def test_a_name_held_by_a_hidden_object_already_exists_without_naming_its_holder(alice, bob, private_by_default):
    make_experiment(owner=alice, name="taken")
    registry_services.registered_model_create(actor=alice, name="taken-model")

    with pytest.raises(AlreadyExists) as experiment_error:
        experiment_services.experiment_create(actor=bob, name="taken")
    with pytest.raises(AlreadyExists) as model_error:
        registry_services.registered_model_create(actor=bob, name="taken-model")
    assert "alice" not in experiment_error.value.message
    assert "alice" not in model_error.value.message


# ---------------------------------------------------------------- who can see this


def test_holders_list_users_teams_and_where_their_level_comes_from(alice, bob, charlie, root, exp, team):
    permissions.grant_create(actor=alice, root=exp, level="EDIT", team=team)
    permissions.grant_create(actor=alice, root=exp, level="DENY", user=charlie)
    holders = {(h.kind, h.name): h for h in permissions.holders_of(exp)}

    assert holders[("everyone", "signed-in users")].level == "READ"
    assert holders[("team", "ml")].level == "EDIT"
    assert holders[("user", "alice")].level == "MANAGE"
    assert holders[("user", "bob")].level == "EDIT"
    assert holders[("user", "bob")].sources == ["team:ml"]
    assert holders[("user", "charlie")].level == "DENY"
    assert holders[("user", "root")].sources == ["superuser"]


def test_deleting_a_team_removes_its_grants(root, alice, bob, exp, team, private_by_default):
    permissions.grant_create(actor=alice, root=exp, level="READ", team=team)
    portal_services.team_delete(actor=root, team_id=team.pk)

    assert not Group.objects.filter(name="ml").exists()
    assert not permissions.can(bob, permissions.READ, exp)


def test_experiment_zero_is_default(default_experiment):
    assert Experiment.objects.get(pk=0).is_open_to_all
    assert Run.access_creator == "owner"


def test_a_team_reader_pages_through_exactly_the_runs_the_grant_shows(alice, bob, exp, team, private_by_default):
    other = make_experiment(owner=alice, name="hidden")
    shown = {run_services.run_create(actor=alice, experiment_id=str(exp.pk), start_time=i).pk for i in range(7)}
    for i in range(5):
        run_services.run_create(actor=alice, experiment_id=str(other.pk), start_time=i)
    permissions.grant_create(actor=alice, root=exp, level="READ", team=team)

    seen, token = [], None
    while True:
        page = tracking_selectors.run_search_for_user(
            bob, experiment_ids=[str(exp.pk), str(other.pk)], order_by=["attributes.start_time ASC"], max_results=2, page_token=token
        )
        seen += [data.run.pk for data in page.runs]
        token = page.next_page_token
        if token is None:
            break
        with pytest.raises(InvalidParameter, match="another search"):
            tracking_selectors.run_search_for_user(bob, experiment_ids=[str(exp.pk)], max_results=2, page_token=token)
    assert len(seen) == len(set(seen)) and set(seen) == shown
