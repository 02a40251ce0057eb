"""Comments on registered models, versions and transition requests.

The rule is portal.annotations' (tracking's comments follow it too): anyone who may read
the object may comment; only the author edits a comment (nobody puts words in someone
else's mouth); the author or a MANAGE holder of the model deletes one (moderation).
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from portal import annotations
from portal.errors import InvalidParameter
from registry import selectors
from registry.models import Comment


@transaction.atomic
def comment_add(
    *,
    actor: AbstractBaseUser,
    name: str | None = None,
    version: int | str | None = None,
    text: str,
    transition_request_id: int | None = None,
) -> Comment:
    """Comment on a model, one of its versions, or a transition request (`transition_request_id`)."""
    text = annotations.comment_text_validated(text)
    request = None
    if transition_request_id is not None:
        request = selectors.transition_request_get_for_user(actor, transition_request_id)
        model, target = request.registered_model, None
    else:
        if name is None:
            raise InvalidParameter("Name the registered model to comment on.")
        model = selectors.registered_model_get_for_user(actor, name)
        target = selectors.model_version_get_for_user(actor, name, version) if version is not None else None
    annotations.require_may_comment(actor, request or target or model)
    now = timezone.now()
    return Comment.objects.create(
        registered_model=model, model_version=target, transition_request=request, author=actor, text=text,
        created_at=now, updated_at=now,
    )


def _comment_for_write(actor: AbstractBaseUser, comment_id: int) -> Comment:
    comment = selectors.comment_get_for_user(actor, comment_id)
    # Lock the comment's row only, not its model's.
    return Comment.objects.select_for_update(of=("self",)).select_related("registered_model").get(pk=comment.pk)


def comment_may_edit(actor: AbstractBaseUser, comment: Comment) -> bool:
    """May `actor` (who can read `comment`) edit it? Its author only."""
    return annotations.may_edit(actor, comment)


def comment_may_delete(actor: AbstractBaseUser, comment: Comment) -> bool:
    """May `actor` (who can read `comment`) delete it? Its author, or a MANAGE holder of the model."""
    # A version's and a request's MANAGE holders are their model's.
    return annotations.may_delete(actor, comment, comment.registered_model)


@transaction.atomic
def comment_edit(*, actor: AbstractBaseUser, comment_id: int, text: str) -> Comment:
    """Replace a comment's text. Only its author may."""
    text = annotations.comment_text_validated(text)
    comment = _comment_for_write(actor, comment_id)
    annotations.require_may_edit(actor, comment)
    if comment.text != text:
        comment.text = text
        comment.updated_at = timezone.now()
        comment.save(update_fields=["text", "updated_at"])
    return comment


@transaction.atomic
def comment_delete(*, actor: AbstractBaseUser, comment_id: int) -> None:
    """Delete a comment: its author may, and so may a MANAGE holder of the model."""
    comment = _comment_for_write(actor, comment_id)
    annotations.require_may_delete(actor, comment, comment.registered_model)
    comment.delete()
