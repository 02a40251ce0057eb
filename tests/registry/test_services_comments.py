"""Comments on registered models and versions."""

import pytest

from portal.errors import InvalidParameter, NotFound, PermissionDenied
from registry import selectors, services


def test_anyone_who_can_read_the_model_may_comment_on_it_and_its_versions(alice, charlie, versions):
    on_model = services.comment_add(actor=charlie, name="churn", text="Why **this** threshold?")
    on_version = services.comment_add(actor=alice, name="churn", version=2, text="Validated on Q3 data.")
    assert on_model.author == charlie and on_model.model_version is None
    assert on_version.model_version.version == 2 and on_version.created_at == on_version.updated_at
    assert [c.text for c in selectors.comments_for_user(alice, "churn")] == ["Why **this** threshold?"]
    assert [c.text for c in selectors.comments_for_user(alice, "churn", 2)] == ["Validated on Q3 data."]
    assert selectors.comments_for_user(alice, "churn", 1) == []


@pytest.mark.parametrize("text", ["", "   \n", None, "x" * 100_001])
def test_an_empty_or_huge_comment_is_invalid(alice, churn, text):
    with pytest.raises(InvalidParameter):
        services.comment_add(actor=alice, name="churn", text=text)


def test_commenting_on_a_missing_model_or_version_is_not_found(alice, churn):
    with pytest.raises(NotFound):
        services.comment_add(actor=alice, name="missing", text="hello")
    with pytest.raises(NotFound):
        services.comment_add(actor=alice, name="churn", version=5, text="hello")


def test_the_author_may_edit_a_comment(alice, churn):
    comment = services.comment_add(actor=alice, name="churn", text="first")
    edited = services.comment_edit(actor=alice, comment_id=comment.pk, text="second")
    assert edited.text == "second" and edited.updated_at >= edited.created_at
    assert selectors.comments_for_user(alice, "churn")[0].text == "second"


def test_nobody_else_may_edit_a_comment_not_even_a_superuser(alice, bob, root, churn):
    comment = services.comment_add(actor=alice, name="churn", text="mine")
    for other in (bob, root):
        with pytest.raises(PermissionDenied):
            services.comment_edit(actor=other, comment_id=comment.pk, text="theirs")
    assert selectors.comments_for_user(alice, "churn")[0].text == "mine"


def test_the_author_may_delete_a_comment(alice, churn):
    comment = services.comment_add(actor=alice, name="churn", text="oops")
    services.comment_delete(actor=alice, comment_id=comment.pk)
    assert selectors.comments_for_user(alice, "churn") == []


def test_a_reader_may_not_delete_another_users_comment(alice, bob, charlie, churn):
    comment = services.comment_add(actor=bob, name="churn", text="bob's view")
    with pytest.raises(PermissionDenied):
        services.comment_delete(actor=charlie, comment_id=comment.pk)
    assert len(selectors.comments_for_user(alice, "churn")) == 1


def test_a_manager_of_the_model_may_delete_any_comment_on_it(alice, bob, churn):
    comment = services.comment_add(actor=bob, name="churn", text="off topic")
    services.comment_delete(actor=alice, comment_id=comment.pk)
    assert selectors.comments_for_user(alice, "churn") == []


def test_a_superuser_may_delete_any_comment(bob, root, churn):
    comment = services.comment_add(actor=bob, name="churn", text="spam")
    services.comment_delete(actor=root, comment_id=comment.pk)
    assert selectors.comments_for_user(root, "churn") == []


def test_editing_or_deleting_a_missing_comment_is_not_found(alice, churn):
    with pytest.raises(NotFound):
        services.comment_edit(actor=alice, comment_id=12345, text="x")
    with pytest.raises(NotFound):
        services.comment_delete(actor=alice, comment_id=12345)


def test_comments_on_a_version_go_when_the_version_is_deleted(alice, versions):
    services.comment_add(actor=alice, name="churn", version=1, text="about v1")
    services.model_version_delete(actor=alice, name="churn", version=1)
    with pytest.raises(NotFound):
        selectors.comments_for_user(alice, "churn", 1)
