"""Model version services: numbers, stages and their history, aliases, tags, delete."""

import pytest

from portal.errors import InvalidParameter, NotFound, PermissionDenied
from registry import selectors, services
from registry.models import ModelAlias, Stage, StageTransition
from tests.registry.conftest import make_version


def stages(user, name="churn"):
    found = selectors.model_versions_for_user(user).filter(registered_model__name=name)
    return {v.version: v.current_stage for v in found}


# ---------------------------------------------------------------- numbers


def test_versions_are_numbered_from_one_per_model(alice, churn, model_dir_run):
    services.registered_model_create(actor=alice, name="other")
    assert [make_version(alice, "churn", model_dir_run).version for _ in range(3)] == [1, 2, 3]
    assert make_version(alice, "other", model_dir_run).version == 1


def test_a_deleted_versions_number_is_never_given_out_again(alice, churn, versions):
    services.model_version_delete(actor=alice, name="churn", version=3)
    assert make_version(alice, "churn", versions[0].run).version == 4
    services.model_version_delete(actor=alice, name="churn", version=4)
    services.model_version_delete(actor=alice, name="churn", version=1)
    assert make_version(alice, "churn", versions[0].run).version == 5


def test_a_version_records_its_run_source_and_resolved_location(alice, churn, model_dir_run):
    version = make_version(alice, "churn", model_dir_run, description="first", tags=[{"key": "k", "value": "v"}])
    assert version.run == model_dir_run and version.logged_model is None
    assert version.source == f"runs:/{model_dir_run.pk}/model"
    assert version.storage_location == f"{model_dir_run.artifact_uri}/model"
    assert version.current_stage == Stage.NONE and version.status == "READY" and version.owner == alice
    data = selectors.model_version_data_load([selectors.model_version_get_for_user(alice, "churn", 1)])[0]
    assert [(t.key, t.value) for t in data.tags] == [("k", "v")] and data.version.description == "first"


def test_creating_a_version_of_a_missing_model_is_not_found(alice, model_dir_run):
    with pytest.raises(NotFound):
        make_version(alice, "missing", model_dir_run)


def test_creating_a_version_touches_the_model(alice, churn, model_dir_run):
    before = churn.last_updated_timestamp
    version = make_version(alice, "churn", model_dir_run)
    assert selectors.registered_model_get_for_user(alice, "churn").last_updated_timestamp >= before
    assert version.registered_model.last_version_number == 1


@pytest.mark.parametrize("version", ["x", "0", "-1", "", "1.5"])
def test_a_malformed_version_number_is_invalid(alice, versions, version):
    with pytest.raises(InvalidParameter):
        selectors.model_version_get_for_user(alice, "churn", version)


def test_a_missing_version_is_not_found(alice, versions):
    with pytest.raises(NotFound):
        selectors.model_version_get_for_user(alice, "churn", 99)


# ---------------------------------------------------------------- stages


def test_transition_moves_the_version_and_records_who_did_it(alice, versions):
    version = services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="production").version
    assert version.current_stage == Stage.PRODUCTION
    [row] = selectors.stage_history_for_user(alice, "churn", 2)
    assert (row.from_stage, row.to_stage, row.actor, row.version_number) == ("None", "Production", alice, 2)
    assert row.timestamp > 0 and row.reason == ""


def test_transition_is_a_noop_when_already_in_the_stage(alice, versions):
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Staging")
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Staging")
    assert len(selectors.stage_history_for_user(alice, "churn", 1)) == 1


def test_archive_existing_archives_the_others_in_the_target_stage_only(alice, versions):
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Production")
    services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="Staging")
    services.model_version_transition_stage(
        actor=alice, name="churn", version=3, stage="Production", archive_existing_versions=True
    )
    assert stages(alice) == {1: "Archived", 2: "Staging", 3: "Production"}
    archived = StageTransition.objects.get(version_number=1, to_stage=Stage.ARCHIVED)
    assert archived.from_stage == "Production" and archived.actor == alice
    assert archived.reason == "archived when version 3 moved to Production"


def test_without_archive_existing_two_versions_may_share_a_stage(alice, versions):
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Production")
    services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="Production")
    assert stages(alice) == {1: "Production", 2: "Production", 3: "None"}


def test_archive_existing_still_archives_when_the_version_is_already_there(alice, versions):
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Production")
    services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="Production")
    services.model_version_transition_stage(
        actor=alice, name="churn", version=2, stage="Production", archive_existing_versions=True
    )
    assert stages(alice) == {1: "Archived", 2: "Production", 3: "None"}


def test_archive_existing_is_only_for_staging_and_production(alice, versions):
    with pytest.raises(InvalidParameter):
        services.model_version_transition_stage(
            actor=alice, name="churn", version=1, stage="Archived", archive_existing_versions=True
        )


@pytest.mark.parametrize("stage", ["Prod", "", "Deleted_Internal", None])
def test_an_unknown_stage_is_invalid(alice, versions, stage):
    with pytest.raises(InvalidParameter):
        services.model_version_transition_stage(actor=alice, name="churn", version=1, stage=stage)


def test_a_failed_transition_changes_nothing(alice, versions):
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Production")
    with pytest.raises(NotFound):
        services.model_version_transition_stage(
            actor=alice, name="churn", version=99, stage="Production", archive_existing_versions=True
        )
    assert stages(alice)[1] == "Production"


def test_the_model_history_lists_every_change_in_order_and_outlives_a_deleted_version(alice, versions):
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Staging")
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Production")
    services.model_version_transition_stage(
        actor=alice, name="churn", version=2, stage="Production", archive_existing_versions=True
    )
    services.model_version_delete(actor=alice, name="churn", version=1)
    history = [(h.version_number, h.from_stage, h.to_stage) for h in selectors.stage_history_for_user(alice, "churn")]
    assert history == [
        (1, "None", "Staging"),
        (1, "Staging", "Production"),
        (2, "None", "Production"),
        (1, "Production", "Archived"),
    ]


def test_latest_versions_are_per_stage(alice, versions):
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Production")
    services.model_version_transition_stage(actor=alice, name="churn", version=2, stage="Production")
    latest = selectors.latest_versions_for_user(alice, "churn")
    assert [(v.current_stage, v.version) for v in latest] == [("None", 3), ("Production", 2)]
    assert [v.version for v in selectors.latest_versions_for_user(alice, "churn", ["production"])] == [2]
    assert selectors.latest_versions_for_user(alice, "churn", ["Staging"]) == []


# ---------------------------------------------------------------- aliases


def test_an_alias_points_at_a_version_and_moves(alice, versions):
    services.alias_set(actor=alice, name="churn", alias="champion", version=1)
    services.alias_set(actor=alice, name="churn", alias="champion", version="2")
    services.alias_set(actor=alice, name="churn", alias="champion", version=2)  # idempotent
    assert selectors.model_version_get_by_alias_for_user(alice, "churn", "champion").version == 2
    assert ModelAlias.objects.count() == 1
    data = selectors.model_version_data_load([selectors.model_version_get_for_user(alice, "churn", 2)])[0]
    assert data.aliases == ["champion"]


def test_deleting_an_alias_makes_it_not_found(alice, versions):
    services.alias_set(actor=alice, name="churn", alias="champion", version=1)
    services.alias_delete(actor=alice, name="churn", alias="champion")
    services.alias_delete(actor=alice, name="churn", alias="champion")  # a retry is harmless
    with pytest.raises(NotFound):
        selectors.model_version_get_by_alias_for_user(alice, "churn", "champion")


def test_deleting_a_version_deletes_its_aliases(alice, versions):
    services.alias_set(actor=alice, name="churn", alias="champion", version=1)
    services.model_version_delete(actor=alice, name="churn", version=1)
    with pytest.raises(NotFound):
        selectors.model_version_get_by_alias_for_user(alice, "churn", "champion")


@pytest.mark.parametrize("alias", ["", "latest", "LATEST", "v1", "V12", "has space", "a.b", "x" * 256])
def test_reserved_and_malformed_aliases_are_invalid(alice, versions, alias):
    with pytest.raises(InvalidParameter):
        services.alias_set(actor=alice, name="churn", alias=alias, version=1)


def test_an_alias_to_a_missing_version_is_not_found(alice, versions):
    with pytest.raises(NotFound):
        services.alias_set(actor=alice, name="churn", alias="champion", version=42)


# ---------------------------------------------------------------- description, tags, delete


def test_version_description_and_tags_change(alice, versions):
    services.model_version_update(actor=alice, name="churn", version=1, description="## Notes")
    services.model_version_tag_set(actor=alice, name="churn", version=1, key="validated", value="yes")
    services.model_version_tag_set(actor=alice, name="churn", version=1, key="validated", value="no")
    services.model_version_tag_set(actor=alice, name="churn", version=1, key="gone", value="x")
    services.model_version_tag_delete(actor=alice, name="churn", version=1, key="gone")
    data = selectors.model_version_data_load([selectors.model_version_get_for_user(alice, "churn", 1)])[0]
    assert data.version.description == "## Notes"
    assert [(t.key, t.value) for t in data.tags] == [("validated", "no")]


def test_deleting_a_missing_version_is_not_found(alice, versions):
    with pytest.raises(NotFound):
        services.model_version_delete(actor=alice, name="churn", version=7)


def test_download_uri_is_the_resolved_location(alice, versions, model_dir_run):
    assert selectors.model_version_download_uri_for_user(alice, "churn", 1) == f"{model_dir_run.artifact_uri}/model"


# ---------------------------------------------------------------- access


def test_an_outsider_gets_permission_denied_on_every_version_write(alice, charlie, versions, model_dir_run):
    writes = [
        lambda: make_version(charlie, "churn", model_dir_run),
        lambda: services.model_version_transition_stage(actor=charlie, name="churn", version=1, stage="Production"),
        lambda: services.model_version_update(actor=charlie, name="churn", version=1, description="x"),
        lambda: services.model_version_tag_set(actor=charlie, name="churn", version=1, key="k", value="v"),
        lambda: services.model_version_tag_delete(actor=charlie, name="churn", version=1, key="k"),
        lambda: services.model_version_delete(actor=charlie, name="churn", version=1),
        lambda: services.alias_set(actor=charlie, name="churn", alias="mine", version=1),
        lambda: services.alias_delete(actor=charlie, name="churn", alias="mine"),
    ]
    for write in writes:
        with pytest.raises(PermissionDenied):
            write()
    assert stages(alice) == {1: "None", 2: "None", 3: "None"}


def test_an_outsider_may_read_versions(alice, charlie, versions):
    assert selectors.model_version_get_for_user(charlie, "churn", 1).version == 1
    assert [v.version for v in selectors.latest_versions_for_user(charlie, "churn")] == [3]


def test_the_creator_of_a_version_has_no_rights_of_their_own_on_it(alice, bob, churn, model_dir_run):
    from portal import permissions

    permissions.grant_create(actor=alice, root=churn, level="EDIT", user=bob)
    make_version(bob, "churn", model_dir_run)
    permissions.grant_revoke(actor=alice, root=churn, user=bob)

    with pytest.raises(PermissionDenied):
        services.model_version_update(actor=bob, name="churn", version=1, description="mine")
    with pytest.raises(PermissionDenied):
        services.model_version_transition_stage(actor=bob, name="churn", version=1, stage="Production")
    with pytest.raises(PermissionDenied):
        services.model_version_delete(actor=bob, name="churn", version=1)


def test_deleting_a_version_needs_manage_on_the_model(alice, bob, churn, versions):
    from portal import permissions

    permissions.grant_create(actor=alice, root=churn, level="EDIT", user=bob)

    services.model_version_update(actor=bob, name="churn", version=1, description="ok with EDIT")
    with pytest.raises(PermissionDenied):
        services.model_version_delete(actor=bob, name="churn", version=1)
    permissions.grant_update(actor=alice, root=churn, level="MANAGE", user=bob)
    services.model_version_delete(actor=bob, name="churn", version=1)


# ---------------------------------------------------------------- lineage


def test_lineage_links_a_version_to_its_run_experiment_params_and_metrics(alice, churn, experiment, run):
    from tests.registry.conftest import make_logged_model
    from tracking.services import runs as run_services

    run_services.run_log_batch(
        actor=alice,
        run_id=run.pk,
        params=[{"key": "C", "value": "1.0"}],
        metrics=[{"key": "accuracy", "value": 0.93, "timestamp": 1, "step": 0}],
    )
    logged = make_logged_model(alice, run)
    services.model_version_create(actor=alice, name="churn", source=f"models:/{logged.pk}", model_id=logged.pk)

    lineage = selectors.model_version_lineage_for_user(alice, "churn", 1)

    assert lineage.experiment == experiment
    assert lineage.run.run == run and lineage.logged_model.model == logged
    assert {p.key: p.value for p in lineage.run.params} == {"C": "1.0"}
    assert {m.key: m.value for m in lineage.run.metrics} == {"accuracy": 0.93}
