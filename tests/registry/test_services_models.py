"""Registered model services and selectors, called directly."""

import pytest

from portal import permissions
from portal.errors import AlreadyExists, InvalidParameter, NotFound, PermissionDenied
from registry import selectors, services
from registry.models import Comment, ModelAlias, ModelVersion, RegisteredModel, StageTransition
from tests.registry.conftest import make_version


def test_create_makes_a_model_owned_by_its_creator(alice, bob):
    model = services.registered_model_create(
        actor=alice, name="churn", description="# Churn", tags=[{"key": "team", "value": "growth"}]
    )
    assert model.owner == alice and model.description == "# Churn"
    assert model.creation_timestamp == model.last_updated_timestamp > 0
    assert permissions.can(alice, permissions.MANAGE, model)
    assert not permissions.can(bob, permissions.EDIT, model)
    data = selectors.registered_model_data_load([model])[0]
    assert [(t.key, t.value) for t in data.tags] == [("team", "growth")]


def test_a_duplicate_name_is_resource_already_exists(alice, bob, churn):
    with pytest.raises(AlreadyExists):
        services.registered_model_create(actor=bob, name="churn")


@pytest.mark.parametrize("name", ["", "   ", "a/b", "a:b", "..", "a/../b", "x" * 257, "bad\x00name", None])
def test_invalid_names_are_refused(alice, name):
    with pytest.raises(InvalidParameter):
        services.registered_model_create(actor=alice, name=name)


def test_names_with_spaces_dots_and_unicode_are_fine(alice):
    for name in ("Churn model", "churn.v2", "모델-1", "a@b"):
        assert services.registered_model_create(actor=alice, name=name).name == name


def test_an_anonymous_user_cannot_create_models(db):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(InvalidParameter):
        services.registered_model_create(actor=AnonymousUser(), name="nope")


def test_get_of_a_missing_model_is_not_found(alice):
    with pytest.raises(NotFound):
        selectors.registered_model_get_for_user(alice, "missing")


def test_rename_keeps_versions_aliases_tags_and_history(alice, churn, versions):
    services.alias_set(actor=alice, name="churn", alias="champion", version=2)
    services.registered_model_tag_set(actor=alice, name="churn", key="team", value="growth")
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Staging")

    services.registered_model_rename(actor=alice, name="churn", new_name="attrition")

    with pytest.raises(NotFound):
        selectors.registered_model_get_for_user(alice, "churn")
    assert selectors.model_version_get_for_user(alice, "attrition", 3).version == 3
    assert selectors.model_version_get_by_alias_for_user(alice, "attrition", "champion").version == 2
    data = selectors.registered_model_data_load([selectors.registered_model_get_for_user(alice, "attrition")])[0]
    assert [t.key for t in data.tags] == ["team"]
    assert [(h.version_number, h.to_stage) for h in selectors.stage_history_for_user(alice, "attrition")] == [
        (1, "Staging")
    ]
    # The counter moved with the model: the next version is 4.
    assert make_version(alice, "attrition", versions[0].run).version == 4


def test_rename_to_a_taken_name_is_resource_already_exists(alice, churn):
    services.registered_model_create(actor=alice, name="other")
    with pytest.raises(AlreadyExists):
        services.registered_model_rename(actor=alice, name="churn", new_name="other")


def test_rename_to_an_invalid_name_is_invalid(alice, churn):
    with pytest.raises(InvalidParameter):
        services.registered_model_rename(actor=alice, name="churn", new_name="a/b")


def test_update_sets_the_markdown_description(alice, churn):
    model = services.registered_model_update(actor=alice, name="churn", description="**bold**\n\n- item")
    assert selectors.registered_model_get_for_user(alice, "churn").description == "**bold**\n\n- item"
    assert model.last_updated_timestamp >= model.creation_timestamp


def test_delete_removes_the_model_with_everything_on_it(alice, churn, versions):
    services.alias_set(actor=alice, name="churn", alias="champion", version=1)
    services.model_version_transition_stage(actor=alice, name="churn", version=1, stage="Production")
    services.comment_add(actor=alice, name="churn", text="looks good")

    services.registered_model_delete(actor=alice, name="churn")

    assert not RegisteredModel.objects.exists()
    assert not ModelVersion.objects.exists()
    assert not ModelAlias.objects.exists() and not StageTransition.objects.exists() and not Comment.objects.exists()


def test_deleting_a_missing_model_is_not_found(alice):
    with pytest.raises(NotFound):
        services.registered_model_delete(actor=alice, name="missing")


def test_a_deleted_name_can_be_used_again_and_numbers_start_over(alice, churn, versions):
    services.registered_model_delete(actor=alice, name="churn")
    services.registered_model_create(actor=alice, name="churn")
    assert make_version(alice, "churn", versions[0].run).version == 1


def test_tags_are_set_overwritten_and_deleted(alice, churn):
    services.registered_model_tag_set(actor=alice, name="churn", key="team", value="a")
    services.registered_model_tag_set(actor=alice, name="churn", key="team", value="b")
    data = selectors.registered_model_data_load([churn])[0]
    assert [(t.key, t.value) for t in data.tags] == [("team", "b")]
    services.registered_model_tag_delete(actor=alice, name="churn", key="team")
    services.registered_model_tag_delete(actor=alice, name="churn", key="team")  # a retry is harmless
    assert selectors.registered_model_data_load([churn])[0].tags == []


@pytest.mark.parametrize("key", ["", "../x", "bad!key", "x" * 251])
def test_invalid_tag_keys_are_refused(alice, churn, key):
    with pytest.raises(InvalidParameter):
        services.registered_model_tag_set(actor=alice, name="churn", key=key, value="v")


def test_an_outsider_may_read_but_not_change_the_model(alice, charlie, churn):
    assert selectors.registered_model_get_for_user(charlie, "churn") == churn
    for change in (
        lambda: services.registered_model_update(actor=charlie, name="churn", description="mine"),
        lambda: services.registered_model_rename(actor=charlie, name="churn", new_name="mine"),
        lambda: services.registered_model_tag_set(actor=charlie, name="churn", key="k", value="v"),
        lambda: services.registered_model_delete(actor=charlie, name="churn"),
    ):
        with pytest.raises(PermissionDenied):
            change()
    assert selectors.registered_model_get_for_user(alice, "churn").description == ""


def test_a_grant_of_edit_lets_a_colleague_change_the_model(alice, bob, churn):
    from guardian.shortcuts import assign_perm

    assign_perm("registry.change_registeredmodel", bob, churn)
    services.registered_model_update(actor=bob, name="churn", description="from bob")
    assert selectors.registered_model_get_for_user(alice, "churn").description == "from bob"


def test_a_superuser_may_change_any_model(root, churn):
    services.registered_model_update(actor=root, name="churn", description="admin")
    assert selectors.registered_model_get_for_user(root, "churn").description == "admin"


def test_owner_grants_live_in_the_direct_permission_table_and_go_with_the_model(alice, churn):
    from guardian.models import UserObjectPermission

    from registry.models import RegisteredModelUserObjectPermission

    grants = RegisteredModelUserObjectPermission.objects.filter(content_object=churn, user=alice)
    assert list(grants.values_list("permission__codename", flat=True)) == ["manage_registeredmodel"]
    assert not UserObjectPermission.objects.exists()
    services.registered_model_delete(actor=alice, name="churn")
    assert not RegisteredModelUserObjectPermission.objects.exists()
