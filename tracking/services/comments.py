"""Comments on experiments and runs. The rule is portal.annotations': anyone who may read
the experiment or run may comment on it; only the author edits a comment; the author or a
MANAGE holder of what it is about deletes one."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from portal import annotations
from portal.errors import InvalidParameter, NotFound
from tracking import selectors
from tracking.models import Comment


@transaction.atomic
def comment_add(
    *, actor: AbstractBaseUser, experiment_id: int | str | None = None, run_id: str | None = None, text: str
) -> Comment:
    """Comment on an experiment (`experiment_id`) or on a run (`run_id`), one of the two."""
    text = annotations.comment_text_validated(text)
    if (experiment_id is None) == (run_id is None):
        raise InvalidParameter("Name the experiment or the run to comment on (one of the two).")
    if run_id is not None:
        run = selectors.run_get_for_user(actor, run_id)
        experiment, subject = run.experiment, run
    else:
        run = None
        experiment = subject = selectors.experiment_get_for_user(actor, experiment_id)
    annotations.require_may_comment(actor, subject)
    now = timezone.now()
    return Comment.objects.create(
        experiment=experiment, run=run, author=actor, text=text, created_at=now, updated_at=now
    )


def _comment_for_write(actor: AbstractBaseUser, comment_id: int | str) -> Comment:
    """The comment, if `actor` may read it, with its row locked (only its own row: not its
    experiment's or run's). Call inside a transaction."""
    found = selectors.comment_get_for_user(actor, comment_id)
    comment = (
        Comment.objects.select_for_update(of=("self",))
        .select_related("experiment", "run")
        .filter(pk=found.pk)
        .first()
    )
    if comment is None:  # deleted in the meantime
        raise NotFound(f"Comment {comment_id} not found")
    if comment.run is not None:
        comment.run.experiment = comment.experiment
    return comment


@transaction.atomic
def comment_edit(*, actor: AbstractBaseUser, comment_id: int | str, text: str) -> Comment:
    """Replace a comment's text. Only its author may. The same text again changes nothing
    (updated_at stays, so the comment does not show as edited)."""
    text = annotations.comment_text_validated(text)
    comment = _comment_for_write(actor, comment_id)
    annotations.require_may_edit(actor, comment)
    if comment.text != text:
        comment.text = text
        comment.updated_at = timezone.now()
        comment.save(update_fields=["text", "updated_at"])
    return comment


@transaction.atomic
def comment_delete(*, actor: AbstractBaseUser, comment_id: int | str) -> None:
    """Delete a comment: its author may, and so may a MANAGE holder of what it is about."""
    comment = _comment_for_write(actor, comment_id)
    annotations.require_may_delete(actor, comment, comment.subject)
    comment.delete()
