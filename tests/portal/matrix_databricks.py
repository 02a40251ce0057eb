"""The permission matrix's rows for Databricks' approval API on the MLflow door (imported
into test_permission_matrix.TABLE): transition-requests/create|approve|reject|delete|list
and comments/create|update|delete (registry/databricks_api.py).

The rules are the services' (registry.services.requests, .comments):
- listing a version's requests and commenting on it need READ on its model;
- asking for a stage needs EDIT;
- approving and rejecting need APPROVE (no role holds it unless an "approvers" case grants
  it to edit, team and deny; superusers hold it), never on one's own request;
- deleting (cancelling) a request is its requester's, or a superuser's;
- editing a comment is its author's alone (superusers neither); deleting one its author's
  or a MANAGE holder's.
Requests are alice's (the owner), to Staging, addressed as Databricks does: by version,
stage and creator.
"""

from types import SimpleNamespace

from portal import permissions
from registry import services as registry_services
from registry.models import Comment, TransitionRequest
from registry.services import requests as request_services
from tests.portal.matrix import (
    DENIED,
    HIDDEN,
    LEVEL_OF_ROLE,
    NEEDS_EDIT,
    NEEDS_MANAGE,
    NEEDS_READ,
    OK,
    READ,
    Call,
    Case,
    Need,
    Row,
)

State = TransitionRequest.State
STAGE = "Staging"
# The roles an "approvers" case grants APPROVE on the model to ("deny" stays hidden: DENY wins).
APPROVERS = ("edit", "team", "deny")


def _readable(role: str) -> bool:
    return LEVEL_OF_ROLE[role] >= READ


def _only(label: str, allowed: tuple[str, ...]) -> Need:
    """OK for `allowed` (among the model's readers); refused for the other readers; hidden otherwise."""

    def decide(role: str) -> str:
        if _readable(role):
            return OK if role in allowed else DENIED
        return HIDDEN

    return Need(label, decide)


APPROVE_NOBODY = _only("APPROVE (held by nobody here but the superuser)", ("superuser",))
APPROVE_GRANTED = _only("APPROVE (held by edit, team, and deny under DENY)", ("superuser", "edit", "team"))
TWO_PERSON = _only("not one's own request (two-person rule, superusers too)", ())
REQUESTER = _only("the requester (alice) or a superuser", ("superuser",))
OWN_REQUEST = _only("the requester: here the caller", ("read", "edit", "manage", "team", "superuser"))
AUTHOR_ALICE = _only("its author only (alice; superusers neither)", ())
OWN_COMMENT = _only("its author: here the caller", ("read", "edit", "manage", "team", "superuser"))


# ---------------------------------------------------------------- builders


def version_only(approvers: tuple[str, ...] = ()):
    """Version 1 of a new model (the roles' grants; APPROVE for those in `approvers`)."""

    def build(w, roles):
        version = w.version(roles)
        model = version.registered_model
        for role in roles:
            if role not in approvers:
                continue
            if role == "team":
                permissions.grant_create(actor=w.alice, root=model, level="APPROVE", team=w.editors)
            else:
                permissions.grant_create(actor=w.alice, root=model, level="APPROVE", user=w.users[role])
        return SimpleNamespace(version=version, request=None, comment=None)

    return build


def pending(approvers: tuple[str, ...] = ()):
    """alice's pending request to move version 1 to Staging."""
    base = version_only(approvers)

    def build(w, roles):
        found = base(w, roles)
        found.request, _ = registry_services.transition_request_create(
            actor=w.alice, name=found.version.registered_model.name, version=found.version.version, stage=STAGE
        )
        return found

    return build


def with_alices_comment(w, roles):
    found = version_only()(w, roles)
    found.comment = registry_services.comment_add(
        actor=w.alice, name=found.version.registered_model.name, version=found.version.version, text="alice's"
    )
    return found


# ---------------------------------------------------------------- calls


def _key(s) -> dict:
    return {"name": s.version.registered_model.name, "version": str(s.version.version)}


def body(**extra):
    return lambda w, s, role, method: Call(body={**_key(s), **extra})


def query(**extra):
    return lambda w, s, role, method: Call(query={**_key(s), **extra})


def _own_request(w, s, role) -> None:
    """The caller's own request (alice's for the anonymous caller). request_open skips the
    EDIT check: a reader may hold a request from when they could edit."""
    requester = w.user(role) or w.alice
    s.request, _ = request_services.request_open(
        actor=requester, model=s.version.registered_model, version=s.version,
        action=TransitionRequest.Action.TRANSITION_STAGE, target=STAGE,
    )


def decide_own(w, s, role, method):
    _own_request(w, s, role)
    return Call(body={**_key(s), "stage": STAGE, "archive_existing_versions": False})


def delete_own(w, s, role, method):
    _own_request(w, s, role)
    return Call(query={**_key(s), "stage": STAGE, "creator": "{me}"})


def comment_call(text=None, *, own: bool = False):
    """A call naming `s.comment` by id; with `own`, a comment the caller writes first (alice
    writes it for those who may not read the version)."""

    def call(w, s, role, method):
        if own:
            user = w.user(role)
            author = user if user is not None and _readable(role) else w.alice
            s.comment = registry_services.comment_add(
                actor=author, name=s.version.registered_model.name, version=s.version.version, text="mine"
            )
        data = {"id": str(s.comment.pk)}
        return Call(body={**data, "comment": text}) if text is not None else Call(query=data)

    return call


# ---------------------------------------------------------------- effects and checks


def _state(s) -> str:
    return TransitionRequest.objects.get(pk=s.request.pk).state


def decided(s) -> bool:
    return _state(s) != State.PENDING


def cancelled(s) -> bool:
    return _state(s) == State.CANCELLED


def request_opened(s) -> bool:
    return TransitionRequest.objects.filter(model_version=s.version).exists()


def edited(s) -> bool:
    return Comment.objects.get(pk=s.comment.pk).text == "edited"


def comment_gone(s) -> bool:
    return not Comment.objects.filter(pk=s.comment.pk).exists()


def lists_alices_request(w, s, role, response):
    if response.status_code == 200:
        found = response.json()["requests"]
        assert [(r["to_stage"], r["user_id"]) for r in found] == [(STAGE, "alice")], found


# ---------------------------------------------------------------- the rows

API = "/api/2.0/mlflow/"
DECIDE = {"stage": STAGE, "archive_existing_versions": False, "comment": "from the matrix"}

DATABRICKS_ROWS = [
    Row(
        ("POST",),
        API + "transition-requests/create",
        [
            Case(
                "ask to move version 1 to Staging",
                NEEDS_EDIT,
                version_only(),
                body(stage=STAGE, comment="please"),
                fresh=True,
                effect=request_opened,
            ),
        ],
    ),
    *[
        Row(
            ("POST",),
            API + f"transition-requests/{verb}",
            [
                Case("alice's request", APPROVE_NOBODY, pending(), body(**DECIDE), fresh=True, effect=decided),
                Case(
                    "alice's request, approvers",
                    APPROVE_GRANTED,
                    pending(APPROVERS),
                    body(**DECIDE),
                    fresh=True,
                    effect=decided,
                ),
                Case("one's own request", TWO_PERSON, version_only(APPROVERS), decide_own, fresh=True, effect=decided),
            ],
        )
        for verb in ("approve", "reject")
    ],
    Row(
        ("DELETE",),
        API + "transition-requests/delete",
        [
            Case(
                "alice's request",
                REQUESTER,
                pending(),
                query(stage=STAGE, creator="alice"),
                fresh=True,
                effect=cancelled,
            ),
            Case("one's own request", OWN_REQUEST, version_only(), delete_own, fresh=True, effect=cancelled),
        ],
    ),
    Row(
        ("GET",),
        API + "transition-requests/list",
        [Case("a version's open requests", NEEDS_READ, pending(), query(), check=lists_alices_request)],
    ),
    Row(
        ("POST",),
        API + "comments/create",
        [Case("comment on a version", NEEDS_READ, version_only(), body(comment="hello"))],
    ),
    Row(
        ("PATCH",),
        API + "comments/update",
        [
            Case("alice's comment", AUTHOR_ALICE, with_alices_comment, comment_call("edited"), fresh=True,
                 effect=edited),
            Case("one's own comment", OWN_COMMENT, version_only(), comment_call("edited", own=True), fresh=True,
                 effect=edited),
        ],
    ),
    Row(
        ("DELETE",),
        API + "comments/delete",
        [
            Case("alice's comment", NEEDS_MANAGE, with_alices_comment, comment_call(), fresh=True,
                 effect=comment_gone),
            Case("one's own comment", OWN_COMMENT, version_only(), comment_call(own=True), fresh=True,
                 effect=comment_gone),
        ],
    ),
]
