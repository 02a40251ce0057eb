"""Comments on experiments and runs (tracking.services.comments), under portal.annotations'
rule: readers comment, only the author edits, the author or a MANAGE holder deletes.

alice owns the experiment; bob reads it (a READ grant); charlie has no grant, and with
PORTAL_DEFAULT_PERMISSION=NONE sees nothing of it."""

import pytest

from portal import permissions
from portal.errors import InvalidParameter, NotFound, PermissionDenied
from tests.conftest import make_user
from tests.factories import make_experiment, make_run
from tracking import selectors
from tracking.services import comments as services


@pytest.fixture(autouse=True)
def private_by_default(settings):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"


@pytest.fixture
def experiment(alice, bob):
    found = make_experiment(owner=alice, name="churn-training")
    permissions.grant_create(actor=alice, root=found, level="READ", user=bob)
    return found


@pytest.fixture
def run(alice, experiment):
    return make_run(owner=alice, experiment=experiment)


@pytest.fixture
def dora(experiment, alice):
    """A second reader of the experiment."""
    user = make_user("dora")
    permissions.grant_create(actor=alice, root=experiment, level="READ", user=user)
    return user


def texts(subject) -> list[str]:
    return [c.text for c in selectors.comments_on(subject)]


# ---------------------------------------------------------------- adding


def test_a_reader_may_comment_on_an_experiment_and_on_its_runs(bob, experiment, run):
    on_experiment = services.comment_add(actor=bob, experiment_id=experiment.pk, text="Which **split**?")
    on_run = services.comment_add(actor=bob, run_id=run.pk, text="Diverged at step 40.")

    assert on_experiment.author == bob and on_experiment.run is None
    assert on_run.run == run and on_run.experiment == experiment
    assert on_run.created_at == on_run.updated_at
    assert texts(experiment) == ["Which **split**?"]
    assert texts(run) == ["Diverged at step 40."]


def test_comments_are_listed_oldest_first(alice, bob, run):
    for author, text in [(alice, "one"), (bob, "two"), (alice, "three")]:
        services.comment_add(actor=author, run_id=run.pk, text=text)

    assert texts(run) == ["one", "two", "three"]


def test_an_outsider_cannot_comment_and_learns_nothing(charlie, experiment, run):
    with pytest.raises(NotFound):
        services.comment_add(actor=charlie, experiment_id=experiment.pk, text="hello")
    with pytest.raises(NotFound):
        services.comment_add(actor=charlie, run_id=run.pk, text="hello")
    assert texts(experiment) == [] and texts(run) == []


def test_commenting_on_a_missing_experiment_or_run_is_not_found(alice):
    with pytest.raises(NotFound):
        services.comment_add(actor=alice, experiment_id=987654, text="hello")
    with pytest.raises(NotFound):
        services.comment_add(actor=alice, run_id="0" * 32, text="hello")


@pytest.mark.parametrize("target", [{}, {"experiment_id": "1", "run_id": "0" * 32}])
def test_a_comment_is_on_an_experiment_or_a_run(alice, target):
    with pytest.raises(InvalidParameter):
        services.comment_add(actor=alice, text="hello", **target)


@pytest.mark.parametrize("text", ["", "   \n", None, "x" * 100_001])
def test_an_empty_or_huge_comment_is_invalid(alice, experiment, text):
    with pytest.raises(InvalidParameter):
        services.comment_add(actor=alice, experiment_id=experiment.pk, text=text)


def test_a_denied_user_cannot_comment(alice, bob, experiment):
    permissions.grant_update(actor=alice, root=experiment, level="DENY", user=bob)

    with pytest.raises(NotFound):
        services.comment_add(actor=bob, experiment_id=experiment.pk, text="hello")


# ---------------------------------------------------------------- editing


def test_the_author_edits_a_comment(bob, experiment):
    comment = services.comment_add(actor=bob, experiment_id=experiment.pk, text="first")

    edited = services.comment_edit(actor=bob, comment_id=comment.pk, text="second")

    assert edited.text == "second" and edited.updated_at > edited.created_at
    assert texts(experiment) == ["second"]


def test_editing_to_the_same_text_changes_nothing(bob, experiment):
    comment = services.comment_add(actor=bob, experiment_id=experiment.pk, text="same")

    edited = services.comment_edit(actor=bob, comment_id=comment.pk, text="same")

    assert edited.updated_at == comment.updated_at


def test_only_the_author_edits_not_even_a_manager_or_a_superuser(alice, bob, root, run):
    comment = services.comment_add(actor=bob, run_id=run.pk, text="mine")

    for other in (alice, root):
        with pytest.raises(PermissionDenied):
            services.comment_edit(actor=other, comment_id=comment.pk, text="theirs")
    assert texts(run) == ["mine"]


def test_an_outsider_cannot_edit_and_learns_nothing(bob, charlie, run):
    comment = services.comment_add(actor=bob, run_id=run.pk, text="mine")

    with pytest.raises(NotFound):
        services.comment_edit(actor=charlie, comment_id=comment.pk, text="theirs")


def test_an_author_who_lost_read_access_can_no_longer_edit(alice, bob, experiment):
    comment = services.comment_add(actor=bob, experiment_id=experiment.pk, text="mine")
    permissions.grant_revoke(actor=alice, root=experiment, user=bob)

    with pytest.raises(NotFound):
        services.comment_edit(actor=bob, comment_id=comment.pk, text="still mine?")


# ---------------------------------------------------------------- deleting


def test_the_author_deletes_a_comment(bob, run):
    comment = services.comment_add(actor=bob, run_id=run.pk, text="oops")

    services.comment_delete(actor=bob, comment_id=comment.pk)

    assert texts(run) == []


def test_a_manage_holder_deletes_anyones_comment(alice, bob, experiment, run):
    on_experiment = services.comment_add(actor=bob, experiment_id=experiment.pk, text="off topic")
    on_run = services.comment_add(actor=bob, run_id=run.pk, text="spam")

    services.comment_delete(actor=alice, comment_id=on_experiment.pk)
    services.comment_delete(actor=alice, comment_id=on_run.pk)

    assert texts(experiment) == [] and texts(run) == []


def test_a_superuser_deletes_anyones_comment(bob, root, run):
    comment = services.comment_add(actor=bob, run_id=run.pk, text="spam")

    services.comment_delete(actor=root, comment_id=comment.pk)

    assert texts(run) == []


def test_a_reader_who_is_not_the_author_cannot_delete(bob, dora, experiment, run):
    on_experiment = services.comment_add(actor=bob, experiment_id=experiment.pk, text="bob's view")
    on_run = services.comment_add(actor=bob, run_id=run.pk, text="bob's view")

    for comment in (on_experiment, on_run):
        with pytest.raises(PermissionDenied):
            services.comment_delete(actor=dora, comment_id=comment.pk)
    assert texts(experiment) == texts(run) == ["bob's view"]


def test_an_editor_is_not_a_moderator(alice, bob, dora, experiment):
    permissions.grant_update(actor=alice, root=experiment, level="EDIT", user=dora)
    comment = services.comment_add(actor=bob, experiment_id=experiment.pk, text="bob's view")

    with pytest.raises(PermissionDenied):
        services.comment_delete(actor=dora, comment_id=comment.pk)


def test_an_outsider_cannot_delete_and_learns_nothing(bob, charlie, run):
    comment = services.comment_add(actor=bob, run_id=run.pk, text="mine")

    with pytest.raises(NotFound):
        services.comment_delete(actor=charlie, comment_id=comment.pk)
    with pytest.raises(NotFound):
        services.comment_delete(actor=charlie, comment_id=987654)
    assert texts(run) == ["mine"]


def test_deleting_a_run_deletes_its_comments(alice, bob, run):
    comment = services.comment_add(actor=bob, run_id=run.pk, text="bye")

    run.delete()  # what the garbage collection of deleted runs does

    with pytest.raises(NotFound):
        selectors.comment_get_for_user(alice, comment.pk)


# ---------------------------------------------------------------- the Default experiment


def test_in_the_default_experiment_a_runs_creator_reads_and_moderates_its_comments(
    bob, charlie, root, default_experiment
):
    """bob's run in the Default experiment: bob reads it (and its comments) without reading
    the experiment, and holds MANAGE on it, so moderates its comments; charlie sees none."""
    run = make_run(owner=bob, experiment=default_experiment)
    comment = services.comment_add(actor=root, run_id=run.pk, text="from an admin")

    assert selectors.comment_get_for_user(bob, comment.pk) == comment
    with pytest.raises(NotFound):
        selectors.comment_get_for_user(charlie, comment.pk)
    with pytest.raises(NotFound):
        services.comment_add(actor=charlie, run_id=run.pk, text="hello")

    services.comment_delete(actor=bob, comment_id=comment.pk)
    assert texts(run) == []


def test_anyone_may_comment_on_the_default_experiment_itself(charlie, default_experiment):
    comment = services.comment_add(actor=charlie, experiment_id=default_experiment.pk, text="hello")

    assert texts(default_experiment) == ["hello"]
    with pytest.raises(PermissionDenied):
        services.comment_delete(actor=make_user("dora"), comment_id=comment.pk)
