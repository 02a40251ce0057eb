"""The permission matrix's rows for the approval workflow (imported into
test_permission_matrix.TABLE): transition requests, their decisions, a model's approval
policy, watching a model, and the request pages.

Who may do what (registry.services.requests, .policies, .watches):
- seeing a request (list, detail, its page) needs READ on its model; a hidden one is 404;
- asking for a change needs EDIT on the model;
- approving and rejecting need APPROVE on the model, a grant of its own that MANAGE does
  not imply (superusers hold it), and never on one's own request (the two-person rule,
  superusers included, unless the policy allows it);
- cancelling is the requester's (or a superuser's);
- retrying a failed request needs APPROVE (or a superuser);
- reading the policy needs READ, replacing it MANAGE; watching needs READ.

No role holds APPROVE unless a case grants it: "approvers" cases grant it to the edit role
(a user grant), the team role (a team grant to "editors") and the deny role (a user grant
beside their DENY, which must still hide the model from them). Requests are opened by alice
(the owner) for Production, which PORTAL_PROTECTED_STAGES protects by default.

The pages answer a refused decision with a redirect back to the request and an error
message (not 403): their cases expect 302 for every reader and check who changed the
request.
"""

from types import SimpleNamespace

from django.contrib.messages import get_messages

from portal import permissions
from registry import services as registry_services
from registry.models import ModelPolicy, ModelWatch, TransitionRequest
from registry.services import requests as request_services
from tests.portal.matrix import (
    DENIED,
    GRANTEES,
    HIDDEN,
    LEVEL_OF_ROLE,
    NEEDS_EDIT,
    NEEDS_MANAGE,
    NEEDS_READ,
    OK,
    READ,
    SIGNED_IN,
    Call,
    Case,
    ListCase,
    Need,
    Row,
)

State = TransitionRequest.State
# The roles an "approvers" case grants APPROVE on the model to ("deny" stays hidden: DENY wins).
APPROVERS = ("edit", "team", "deny")


def _readable(role: str) -> bool:
    return LEVEL_OF_ROLE[role] >= READ


def _decider_need(label: str, deciders: tuple[str, ...]) -> Need:
    """OK for superusers and `deciders`; refused (403) for the model's other readers; hidden otherwise."""

    def decide(role: str) -> str:
        if role == "superuser" or (role in deciders and _readable(role)):
            return OK
        return DENIED if _readable(role) else HIDDEN

    return Need(label, decide)


APPROVE_NOBODY = _decider_need("APPROVE (held by nobody here; MANAGE does not imply it)", ())
APPROVE_GRANTED = _decider_need("APPROVE (held by edit, team, and deny under DENY)", ("edit", "team"))
REQUESTER = _decider_need("the requester (alice) or a superuser", ())
OWN_REQUEST_CANCEL = _decider_need(
    "the requester: here the caller (readers only see it)", ("read", "edit", "manage", "team")
)
# One's own request: nobody may approve or reject it, superusers included (two-person rule).
TWO_PERSON = Need(
    "not one's own request (two-person rule, superusers too)", lambda role: DENIED if _readable(role) else HIDDEN
)
# The pages: READ reaches the decision; a refused one is an error message on the redirect.
PAGE_READ = Need(
    "READ to reach it (a refused decision is a message on the redirect)",
    lambda role: OK if _readable(role) else HIDDEN,
)
NO_SUCH_ACTION = Need("no such action: 404 for everyone", lambda role: HIDDEN)


# ---------------------------------------------------------------- builders


def _grant_approve(w, model, roles: tuple[str, ...], approvers: tuple[str, ...]) -> None:
    for role in roles:
        if role not in approvers:
            continue
        if role == "team":
            permissions.grant_create(actor=w.alice, root=model, level="APPROVE", team=w.editors)
        else:
            permissions.grant_create(actor=w.alice, root=model, level="APPROVE", user=w.users[role])


def _open(w, version, requester=None):
    """A pending request (to Production) for `version`, opened by `requester` (alice)."""
    request, created = registry_services.transition_request_create(
        actor=requester or w.alice,
        name=version.registered_model.name,
        version=version.version,
        stage="Production",
        comment="please",
    )
    assert created
    return request


def version_only(approvers: tuple[str, ...] = ()):
    """Version 1 of a new model (the roles' grants, APPROVE for those in `approvers`), no request yet."""

    def build(w, roles):
        version = w.version(roles)
        _grant_approve(w, version.registered_model, roles, approvers)
        return SimpleNamespace(version=version, model=version.registered_model, request=None)

    return build


def pending(approvers: tuple[str, ...] = ()):
    """alice's pending request to move version 1 to Production."""
    base = version_only(approvers)

    def build(w, roles):
        found = base(w, roles)
        found.request = _open(w, found.version)
        return found

    return build


def failed(approvers: tuple[str, ...] = ()):
    """alice's request, approved and then failed to apply (set directly: a failure needs a
    broken store)."""
    base = pending(approvers)

    def build(w, roles):
        found = base(w, roles)
        TransitionRequest.objects.filter(pk=found.request.pk).update(
            state=State.FAILED, state_reason="the matrix broke it"
        )
        return found

    return build


def own_request(w, s, role):
    """Open the request as the caller (alice for the anonymous caller). request_open skips
    the EDIT check transition_request_create makes: a reader may hold a request from when
    they could edit."""
    requester = w.user(role) or w.alice
    s.request, _ = request_services.request_open(
        actor=requester,
        model=s.model,
        version=s.version,
        action=TransitionRequest.Action.TRANSITION_STAGE,
        target="Production",
    )
    assert s.request.requester_id == requester.pk
    return s.request


def registered_model(w, roles):
    return w.registered_model(roles)


def universe(w):
    """(Once per test, shared by every list of requests.) M1: every grantee's grant, APPROVE
    for edit, team and deny, alice's pending request; M2: no grant, alice's pending request."""
    if not hasattr(w, "approvals_universe"):
        w.approvals_universe = SimpleNamespace(
            visible=pending(APPROVERS)(w, GRANTEES), hidden=pending()(w, ())
        )
    return w.approvals_universe


def shared_universe(w, roles):
    return universe(w)


# ---------------------------------------------------------------- calls


def native(suffix: str = "", body=None, *, own: bool = False):
    def call(w, s, role, method):
        request = own_request(w, s, role) if own else s.request
        return Call(path=f"api/v1/transition-requests/{request.pk}/{suffix}", body=body)

    return call


def page(suffix: str = "", *, own: bool = False):
    def call(w, s, role, method):
        request = own_request(w, s, role) if own else s.request
        if method == "GET":
            return Call(path=f"requests/{request.pk}/{suffix}")
        return Call(path=f"requests/{request.pk}/{suffix}", body={"comment": "from the page"}, form=True)

    return call


def model_path(suffix: str, body=None):
    def call(w, s, role, method):
        return Call(path=f"api/v1/registered-models/{s.name}/{suffix}", body=body)

    return call


def create_body(**target):
    def call(w, s, role, method):
        return Call(body={"model": s.model.name, "version": s.version.version, "comment": "please", **target})

    return call


def watch_then_delete(w, s, role, method):
    """The caller watches the model first (alice, for the anonymous caller)."""
    ModelWatch.objects.get_or_create(user=w.user(role) or w.alice, registered_model=s)
    return Call(path=f"api/v1/registered-models/{s.name}/watch/")


def native_page(extra=None):
    def call(w, u, role, method, cursor):
        return Call(query={**(extra or {}), "page_size": 1, **({"cursor": cursor} if cursor else {})})

    return call


def native_parse(data):
    from urllib.parse import parse_qs, urlparse

    following = data.get("next")
    cursor = parse_qs(urlparse(following).query)["cursor"][0] if following else None
    return [item["id"] for item in data["results"]], cursor


# ---------------------------------------------------------------- effects and checks


def _state(s) -> str:
    return TransitionRequest.objects.get(pk=s.request.pk).state


def state_is(state: str):
    return lambda s: _state(s) == state


def request_opened(s) -> bool:
    return TransitionRequest.objects.filter(model_version=s.version).exists()


def policy_replaced(model) -> bool:
    return ModelPolicy.objects.filter(registered_model=model, approvals_required=2).exists()


def watched(model) -> bool:
    return ModelWatch.objects.filter(registered_model=model).exists()


def unwatched(model) -> bool:
    return not watched(model)


def expected_all(w, u, role):
    if role == "superuser":
        return {u.visible.request.pk, u.hidden.request.pk}
    return {u.visible.request.pk} if _readable(role) else set()


def expected_to_decide(w, u, role):
    if role == "superuser":
        return {u.visible.request.pk, u.hidden.request.pk}
    return {u.visible.request.pk} if role in ("edit", "team") else set()


def expected_mine(w, u, role):
    return set()  # alice opened them all


def requested_by_caller(w, s, role, response):
    if response.status_code in (200, 201):
        data = response.json()
        assert data["requester"] == w.username(role), data
        assert data["state"] == State.PENDING, data


def says_two_person(w, s, role, response):
    if response.status_code == 403:
        assert "two-person" in response.content.decode(), response.content[:300]


def default_policy_shown(w, s, role, response):
    if response.status_code == 200:
        data = response.json()
        assert data["protected_stages"] == ["Production"] and data["approvals_required"] == 1, data


def request_page_buttons(w, s, role, response):
    """The detail page offers approve/reject to deciders only and cancel to superusers (alice asked)."""
    if response.status_code != 200:
        return
    content = response.content.decode()
    decider = role in ("edit", "team", "superuser")
    assert (f"/requests/{s.request.pk}/approve" in content) == decider, "approve button"
    assert (f"/requests/{s.request.pk}/cancel" in content) == (role == "superuser"), "cancel button"


def list_page_shows(w, s, role, response):
    """The list page shows what waits for the caller's decision, and nothing on a hidden model."""
    if response.status_code != 200:
        return
    content = response.content.decode()
    shown = {key for key, found in vars(s).items() if f'href="/requests/{found.request.pk}/"' in content}
    expected = {"visible", "hidden"} if role == "superuser" else ({"visible"} if role in ("edit", "team") else set())
    assert shown == expected, f"links to {sorted(shown)}"


def decided_on_page(final: str, deciders: tuple[str, ...]):
    """A page decision: back to the request's page, its state `final` exactly for `deciders`
    (and superusers), with a success message, else an error message and no change."""

    def check(w, s, role, response):
        if response.status_code != 302 or role == "anonymous":
            return
        assert response["Location"] == f"/requests/{s.request.pk}/", response["Location"]
        allowed = role == "superuser" or role in deciders
        # This request's messages only: a role's session keeps the earlier ones (nobody follows the redirect).
        levels = {m.level_tag for m in get_messages(response.wsgi_request)._queued_messages}
        state = _state(s)
        if allowed:
            assert state == final and levels == {"success"}, f"state {state}, messages {levels}"
        else:
            assert state != final and levels == {"error"}, f"state {state}, messages {levels}"

    return check


# ---------------------------------------------------------------- the rows

NATIVE = "/api/v1/transition-requests/"


def _decisions(suffix: str, final: str, *, native_door: bool) -> list[Case]:
    """approve/reject: nobody holds APPROVE; some roles do; one's own request."""
    if native_door:
        return [
            Case(
                f"{suffix} alice's request, nobody holding APPROVE",
                APPROVE_NOBODY,
                pending(),
                native(f"{suffix}/", {"comment": "ok"}),
                fresh=True,
                effect=state_is(final),
            ),
            Case(
                f"{suffix} alice's request, APPROVE for edit, team and deny",
                APPROVE_GRANTED,
                pending(APPROVERS),
                native(f"{suffix}/", {"comment": "ok"}),
                fresh=True,
                effect=state_is(final),
            ),
            Case(
                f"{suffix} one's own request, APPROVE for edit, team and deny",
                TWO_PERSON,
                version_only(APPROVERS),
                native(f"{suffix}/", {"comment": "ok"}, own=True),
                fresh=True,
                effect=state_is(final),
                check=says_two_person,
            ),
        ]
    return [
        Case(
            f"{suffix} alice's request on the page, nobody holding APPROVE",
            PAGE_READ,
            pending(),
            page(suffix),
            fresh=True,
            ok=302,
            check=decided_on_page(final, ()),
        ),
        Case(
            f"{suffix} alice's request on the page, APPROVE for edit, team and deny",
            PAGE_READ,
            pending(APPROVERS),
            page(suffix),
            fresh=True,
            ok=302,
            check=decided_on_page(final, ("edit", "team")),
        ),
    ]


APPROVAL_ROWS = [
    # ------------------------------------------------------------ native API: requests
    Row(
        ("GET",),
        NATIVE,
        [
            ListCase(
                "alice's requests on M1 (granted) and M2 (not)", universe, expected_all, native_page(), native_parse
            ),
            ListCase(
                "?to_decide=1: APPROVE on M1 for edit, team and deny",
                universe,
                expected_to_decide,
                native_page({"to_decide": "1"}),
                native_parse,
            ),
            ListCase(
                "?mine=1 (alice asked for all)", universe, expected_mine, native_page({"mine": "1"}), native_parse
            ),
        ],
    ),
    Row(
        ("POST",),
        NATIVE,
        [
            Case(
                "ask for Production",
                NEEDS_EDIT,
                version_only(),
                create_body(stage="Production", archive_existing_versions=True),
                fresh=True,
                ok=201,
                effect=request_opened,
                check=requested_by_caller,
            ),
            Case(
                "ask to delete the alias champion",
                NEEDS_EDIT,
                version_only(),
                create_body(alias="champion", delete_alias=True),
                fresh=True,
                ok=201,
                effect=request_opened,
                check=requested_by_caller,
            ),
        ],
    ),
    Row(("GET",), NATIVE + "<pk>/", [Case("alice's request", NEEDS_READ, pending(APPROVERS), native())]),
    Row(("POST",), NATIVE + "<pk>/approve/", _decisions("approve", State.APPROVED, native_door=True)),
    Row(("POST",), NATIVE + "<pk>/reject/", _decisions("reject", State.REJECTED, native_door=True)),
    Row(
        ("POST",),
        NATIVE + "<pk>/cancel/",
        [
            Case(
                "cancel alice's request",
                REQUESTER,
                pending(APPROVERS),
                native("cancel/", {"comment": "no"}),
                fresh=True,
                effect=state_is(State.CANCELLED),
            ),
            Case(
                "cancel one's own request",
                OWN_REQUEST_CANCEL,
                version_only(),
                native("cancel/", {"comment": "no"}, own=True),
                fresh=True,
                effect=state_is(State.CANCELLED),
            ),
        ],
    ),
    Row(
        ("POST",),
        NATIVE + "<pk>/retry/",
        [
            Case(
                "retry alice's failed request, nobody holding APPROVE",
                APPROVE_NOBODY,
                failed(),
                native("retry/", {}),
                fresh=True,
                effect=state_is(State.APPROVED),
            ),
            Case(
                "retry alice's failed request, APPROVE for edit, team and deny",
                APPROVE_GRANTED,
                failed(APPROVERS),
                native("retry/", {}),
                fresh=True,
                effect=state_is(State.APPROVED),
            ),
        ],
    ),
    # ------------------------------------------------------------ native API: a model's policy and watchers
    Row(
        ("GET",),
        "/api/v1/registered-models/<str:name>/policy/",
        [Case("the default policy", NEEDS_READ, registered_model, model_path("policy/"), check=default_policy_shown)],
    ),
    Row(
        ("PUT",),
        "/api/v1/registered-models/<str:name>/policy/",
        [
            Case(
                "replace it",
                NEEDS_MANAGE,
                registered_model,
                model_path(
                    "policy/",
                    {"protected_stages": ["Production"], "protected_aliases": ["champion"], "approvals_required": 2},
                ),
                fresh=True,
                effect=policy_replaced,
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/registered-models/<str:name>/watch/",
        [Case("am I watching", NEEDS_READ, registered_model, model_path("watch/"))],
    ),
    Row(
        ("POST",),
        "/api/v1/registered-models/<str:name>/watch/",
        [Case("watch", NEEDS_READ, registered_model, model_path("watch/"), fresh=True, effect=watched)],
    ),
    Row(
        ("DELETE",),
        "/api/v1/registered-models/<str:name>/watch/",
        [Case("stop watching", NEEDS_READ, registered_model, watch_then_delete, fresh=True, effect=unwatched)],
    ),
    # ------------------------------------------------------------ pages
    Row(
        ("GET",),
        "/requests/",
        [
            Case(
                "requests waiting for me (M1 granted, M2 not)",
                SIGNED_IN,
                shared_universe,
                lambda w, s, role, method: Call(),
                check=list_page_shows,
            )
        ],
    ),
    Row(
        ("GET",),
        "/requests/<int:request_id>/",
        [Case("alice's request", NEEDS_READ, pending(APPROVERS), page(), check=request_page_buttons)],
    ),
    Row(
        ("POST",),
        "/requests/<int:request_id>/<str:action>",
        [
            *_decisions("approve", State.APPROVED, native_door=False),
            *_decisions("reject", State.REJECTED, native_door=False),
            Case(
                "cancel alice's request on the page",
                PAGE_READ,
                pending(APPROVERS),
                page("cancel"),
                fresh=True,
                ok=302,
                check=decided_on_page(State.CANCELLED, ()),
            ),
            Case(
                "retry alice's failed request on the page, APPROVE for edit, team and deny",
                PAGE_READ,
                failed(APPROVERS),
                page("retry"),
                fresh=True,
                ok=302,
                check=decided_on_page(State.APPROVED, ("edit", "team")),
            ),
            Case("an action that does not exist", NO_SUCH_ACTION, pending(APPROVERS), page("frobnicate")),
        ],
    ),
]

# Paths to probe the pages' function views (their routes have parameters).
APPROVAL_PROBE_PATHS = {
    "/requests/<int:request_id>/": "/requests/999999/",
    "/requests/<int:request_id>/<str:action>": "/requests/999999/approve",
}
