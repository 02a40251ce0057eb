"""The permission matrix's rows for comments (imported into test_permission_matrix.TABLE):
`<object>/comments/` and `<object>/comments/<comment_id>/` on the native API, for
experiments, runs, registered models, model versions and transition requests.

Who may do what (portal.annotations):
- reading an object's comments, and adding one, needs READ on the object;
- editing a comment is its author's alone, superusers included ("alice's comment": alice
  is in no column, so every reader is refused; "one's own comment": the caller wrote it);
- deleting one is its author's, or a MANAGE holder's of the object (moderation); in the
  Default experiment a run's creator holds MANAGE on their run, so moderates its comments.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from registry import services as registry_services
from registry.models import Comment as RegistryComment
from tests.portal.matrix import (
    DENIED,
    HIDDEN,
    LEVEL_OF_ROLE,
    NEEDS_MANAGE,
    NEEDS_READ,
    READ,
    SIGNED_IN,
    Call,
    Case,
    Need,
    Row,
)
from tracking.models import Comment as TrackingComment
from tracking.services import comments as tracking_comments

# Someone else's comment: nobody edits it but its author (alice), whatever their level.
AUTHOR_ALICE = Need(
    "its author only (alice; superusers neither)",
    lambda role: DENIED if LEVEL_OF_ROLE[role] >= READ else HIDDEN,
)


@dataclass(frozen=True)
class Kind:
    """One kind of object that takes comments."""

    label: str
    route: str  # the object's part of the route, as the URL configuration spells it
    build: Callable[[Any, tuple[str, ...]], Any]  # (world, roles) -> the object
    path: Callable[[Any], str]  # object -> its part of a request's path
    comment: Callable[[Any, Any, str], Any]  # (author, object, text) -> a new comment
    comments: Callable[[Any], Any]  # object -> a queryset of its comments


def _request(w, roles):
    """alice's pending request to move version 1 of a new model (the roles' grants) to Production."""
    version = w.version(roles)
    request, _ = registry_services.transition_request_create(
        actor=w.alice, name=version.registered_model.name, version=version.version, stage="Production"
    )
    return request


KINDS = [
    Kind(
        "experiment",
        "experiments/<int:experiment_id>",
        lambda w, roles: w.experiment(roles),
        lambda s: f"experiments/{s.pk}",
        lambda user, s, text: tracking_comments.comment_add(actor=user, experiment_id=s.pk, text=text),
        lambda s: TrackingComment.objects.filter(experiment=s, run=None),
    ),
    Kind(
        "run",
        "runs/<str:run_id>",
        lambda w, roles: w.run(roles),
        lambda s: f"runs/{s.pk}",
        lambda user, s, text: tracking_comments.comment_add(actor=user, run_id=s.pk, text=text),
        lambda s: TrackingComment.objects.filter(run=s),
    ),
    Kind(
        "registered model",
        "registered-models/<str:name>",
        lambda w, roles: w.registered_model(roles),
        lambda s: f"registered-models/{s.name}",
        lambda user, s, text: registry_services.comment_add(actor=user, name=s.name, text=text),
        lambda s: RegistryComment.objects.filter(registered_model=s, model_version=None, transition_request=None),
    ),
    Kind(
        "model version",
        "model-versions/<str:name>/<int:version>",
        lambda w, roles: w.version(roles),
        lambda s: f"model-versions/{s.registered_model.name}/{s.version}",
        lambda user, s, text: registry_services.comment_add(
            actor=user, name=s.registered_model.name, version=s.version, text=text
        ),
        lambda s: RegistryComment.objects.filter(model_version=s),
    ),
    Kind(
        "transition request",
        "transition-requests/<int:request_id>",
        _request,
        lambda s: f"transition-requests/{s.pk}",
        lambda user, s, text: registry_services.comment_add(actor=user, transition_request_id=s.pk, text=text),
        lambda s: RegistryComment.objects.filter(transition_request=s),
    ),
]


# ---------------------------------------------------------------- builders and calls


def _with_alices_comment(kind: Kind):
    def build(w, roles):
        found = kind.build(w, roles)
        return SimpleNamespace(obj=found, comment=kind.comment(w.alice, found, "alice's *view*"))

    return build


def _object_only(kind: Kind):
    def build(w, roles):
        return SimpleNamespace(obj=kind.build(w, roles), comment=None)

    return build


def _list_call(kind: Kind, body=None):
    def call(w, s, role, method):
        return Call(path=f"api/v1/{kind.path(s.obj)}/comments/", body=body)

    return call


def _comment_call(kind: Kind, body=None, *, own: bool = False):
    """A call to `s.comment`; with `own`, a comment the caller writes first (alice writes it
    for those who may not read the object: they must not learn it is there)."""

    def call(w, s, role, method):
        if own:
            user = w.user(role)
            author = user if user is not None and LEVEL_OF_ROLE[role] >= READ else w.alice
            s.comment = kind.comment(author, s.obj, "my *view*")
        return Call(path=f"api/v1/{kind.path(s.obj)}/comments/{s.comment.pk}/", body=body)

    return call


def _own_run_in_default(w, s, role, method):
    """The caller's own run in the Default experiment, where a superuser left a comment."""
    owner = w.user(role) or w.alice
    s.obj = w.run(experiment=w.default_experiment, owner=owner)
    s.comment = tracking_comments.comment_add(actor=w.root, run_id=s.obj.pk, text="from root")
    return Call(path=f"api/v1/runs/{s.obj.pk}/comments/{s.comment.pk}/")


def _lists_the_comment(w, s, role, response):
    if response.status_code == 200:
        body = response.json()
        assert [item["id"] for item in body["results"]] == [s.comment.pk], body
        assert body["results"][0]["html"] == "<p>alice's <em>view</em></p>\n", body


def _commented(kind: Kind):
    return lambda s: kind.comments(s.obj).exists()


def _edited(s) -> bool:
    return type(s.comment).objects.get(pk=s.comment.pk).text == "edited"


def _comment_gone(s) -> bool:
    return not type(s.comment).objects.filter(pk=s.comment.pk).exists()


def _rows(kind: Kind) -> list[Row]:
    where = f"/api/v1/{kind.route}/comments/"
    one = where + "<int:comment_id>/"
    alices = _with_alices_comment(kind)
    edit = {"text": "edited"}
    return [
        Row(
            ("GET",),
            where,
            [Case(f"{kind.label}'s comments", NEEDS_READ, alices, _list_call(kind), check=_lists_the_comment)],
        ),
        Row(
            ("POST",),
            where,
            [
                Case(
                    f"comment on a {kind.label}",
                    NEEDS_READ,
                    _object_only(kind),
                    _list_call(kind, {"text": "hello"}),
                    fresh=True,
                    ok=201,
                    effect=_commented(kind),
                )
            ],
        ),
        Row(("GET",), one, [Case("alice's comment", NEEDS_READ, alices, _comment_call(kind))]),
        Row(
            ("PATCH",),
            one,
            [
                Case("alice's comment", AUTHOR_ALICE, alices, _comment_call(kind, edit), fresh=True, effect=_edited),
                Case(
                    "one's own comment",
                    NEEDS_READ,
                    _object_only(kind),
                    _comment_call(kind, edit, own=True),
                    fresh=True,
                    effect=_edited,
                ),
            ],
        ),
        Row(
            ("DELETE",),
            one,
            [
                Case(
                    "alice's comment",
                    NEEDS_MANAGE,
                    alices,
                    _comment_call(kind),
                    fresh=True,
                    ok=204,
                    effect=_comment_gone,
                ),
                Case(
                    "one's own comment",
                    NEEDS_READ,
                    _object_only(kind),
                    _comment_call(kind, own=True),
                    fresh=True,
                    ok=204,
                    effect=_comment_gone,
                ),
                *(
                    [
                        Case(
                            "a comment on one's own run in the Default experiment",
                            SIGNED_IN,
                            lambda w, roles: SimpleNamespace(obj=None, comment=None),
                            _own_run_in_default,
                            fresh=True,
                            ok=204,
                            effect=_comment_gone,
                        )
                    ]
                    if kind.label == "run"
                    else []
                ),
            ],
        ),
    ]


COMMENT_ROWS = [row for kind in KINDS for row in _rows(kind)]
