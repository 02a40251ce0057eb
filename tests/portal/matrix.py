"""The machinery of the permission matrix (tests/portal/test_permission_matrix.py).

- `served_routes()` walks the URL configuration and expands every view into the HTTP
  methods it serves: MLflow views by their `mlflow_handlers`, DRF viewsets by their
  actions, class views by their handlers. Plain function views (pages) declare no methods,
  so the coverage test probes them (405 means "not served").
- A route mounted under several MLflow prefixes (/api/2.0/mlflow/, /ajax-api/2.0/mlflow/,
  /api/3.0/mlflow/, /ajax-api/3.0/mlflow/) is one row of the table, named by its first
  mount; every case runs on every mount.
- `World` is the cast (one user per role, two teams, tokens) and builds the objects a case
  needs through the real services, with each role's grant on them.
- `Need` turns the right a route needs into the outcome each role must get; `expected_status`
  turns an outcome into the status of the door (MLflow, native API, page).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from portal import permissions
from portal import services as portal_services
from registry import services as registry_services
from tests.conftest import PASSWORD, make_user
from tests.factories import make_experiment, make_run
from tracking.models import Experiment
from tracking.services import artifacts as artifact_services
from tracking.services import experiments as experiment_services
from tracking.services import logged_models as logged_model_services
from tracking.services import runs as run_services

# ---------------------------------------------------------------- roles

# The columns. "deny" holds a user DENY grant and is in a team with READ; "team" has no
# grant of their own, only their team's EDIT.
ROLES = ("anonymous", "no_grant", "read", "edit", "manage", "deny", "team", "superuser")
# The roles that hold a grant on the objects a case builds.
GRANTEES = ("read", "edit", "manage", "deny", "team")
USERNAMES = {
    "no_grant": "nora",
    "read": "reed",
    "edit": "eddie",
    "manage": "manny",
    "deny": "dan",
    "team": "tess",
    "superuser": "root",
}
# Each role's level on the objects built for it (None: not signed in; 9: superuser).
LEVEL_OF_ROLE = {
    "anonymous": None,
    "no_grant": 0,
    "read": 1,
    "edit": 3,
    "manage": 4,
    "deny": 0,
    "team": 3,
    "superuser": 9,
}
READ, EDIT, MANAGE = 1, 3, 4

OK, UNAUTHENTICATED, HIDDEN, DENIED = "ok", "unauthenticated", "hidden", "denied"


@dataclass(frozen=True)
class Need:
    """What a route needs; `outcome(role)` is what each role must get."""

    label: str
    decide: Callable[[str], str]

    def outcome(self, role: str) -> str:
        return UNAUTHENTICATED if role == "anonymous" and self.label != "public" else self.decide(role)

    def __repr__(self) -> str:
        return self.label


def _level(minimum: int) -> Callable[[str], str]:
    def decide(role: str) -> str:
        level = LEVEL_OF_ROLE[role]
        if level >= minimum:
            return OK
        return DENIED if level >= READ else HIDDEN

    return decide


PUBLIC = Need("public", lambda role: OK)
SIGNED_IN = Need("any signed-in user", lambda role: OK)
SUPERUSER = Need("superuser only", lambda role: OK if role == "superuser" else DENIED)
NEEDS_READ = Need("READ", _level(READ))
NEEDS_EDIT = Need("EDIT", _level(EDIT))
NEEDS_MANAGE = Need("MANAGE", _level(MANAGE))
# The Default experiment takes runs and logged models from every signed-in user it does not deny.
ADD_TO_DEFAULT = Need("signed in, not denied the Default experiment", lambda role: HIDDEN if role == "deny" else OK)
# Objects nobody but a superuser may touch here, and that the others may not even see.
SUPERUSER_ELSE_HIDDEN = Need("superuser only, hidden from others", lambda role: OK if role == "superuser" else HIDDEN)
# Someone else's own object (an API token): hidden from everyone, superusers included.
NOBODY_ELSE_HIDDEN = Need("its owner only (not the caller)", lambda role: HIDDEN)


def door_of(path: str) -> str:
    if path.startswith("/api/v1/"):
        return "native"
    if path.startswith(("/api/", "/ajax-api/")):
        return "mlflow"
    return "page"


_STATUS = {
    UNAUTHENTICATED: {"mlflow": 401, "native": 401, "page": 302},
    HIDDEN: {"mlflow": 404, "native": 404, "page": 404},
    DENIED: {"mlflow": 403, "native": 403, "page": 403},
}
MLFLOW_CODES = {UNAUTHENTICATED: "UNAUTHENTICATED", HIDDEN: "RESOURCE_DOES_NOT_EXIST", DENIED: "PERMISSION_DENIED"}


def expected_status(door: str, outcome: str, ok: int) -> int:
    return ok if outcome == OK else _STATUS[outcome][door]


# ---------------------------------------------------------------- the URL configuration

MLFLOW_MOUNTS = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/3.0/mlflow/", "/ajax-api/3.0/mlflow/")
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
NON_SERVED_METHODS = ("OPTIONS", "HEAD", "TRACE")
PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def normalize(route: str) -> str:
    """A walked route in path() spelling: regex anchors dropped, named groups as <name>."""
    route = _NAMED_GROUP.sub(r"<\1>", route)
    route = route.replace("^", "").replace("\\Z", "")
    return "/" + (route[:-1] if route.endswith("$") and not route.endswith("\\$") else route)


def walk(patterns, prefix: str = "", namespace: str = ""):
    """(route, view, namespace) for every URLPattern, through includes."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from walk(entry.url_patterns, route, inner)
        elif isinstance(entry, URLPattern):
            yield route, entry.callback, namespace


@dataclass
class Mount:
    prefix: str  # "/api/2.0/mlflow/", or "/" for a route mounted once
    view: Any


@dataclass
class ServedRoute:
    key: str  # the route as the table names it: "/api/2.0/mlflow/runs/get"
    suffix: str  # the part after the mount prefix: "runs/get"
    view: Any
    namespace: str
    mounts: list[Mount] = field(default_factory=list)


def declared_methods(view: Any) -> tuple[str, ...] | None:
    """The methods a view serves, if it says; None for a plain function view."""
    handlers = getattr(view, "mlflow_handlers", None)
    if handlers is not None:
        return tuple(sorted(handlers))
    actions = getattr(view, "actions", None)
    if actions:
        # DRF adds "head" to a viewset's actions the first time it serves a GET: leave it out,
        # so the list does not depend on which tests ran before.
        return tuple(sorted(method.upper() for method in actions if method != "head"))
    view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if view_class is not None:
        return tuple(
            sorted(
                name.upper()
                for name in view_class.http_method_names
                if name.upper() not in NON_SERVED_METHODS and hasattr(view_class, name)
            )
        )
    return None


def served_routes() -> dict[str, ServedRoute]:
    """Every route of the URL configuration by table key, MLflow mirrors folded into one."""
    found: dict[str, ServedRoute] = {}
    for raw, view, namespace in walk(get_resolver().url_patterns):
        path = normalize(raw)
        prefix = next((m for m in MLFLOW_MOUNTS if path.startswith(m)), "/")
        suffix = path[len(prefix) :]
        # Rows are keyed by the route under its first MLflow mount, so mirrors share one row.
        canonical = next((m for m in MLFLOW_MOUNTS if prefix != "/" and _same_view(found, m + suffix, view)), prefix)
        key = canonical + suffix
        entry = found.setdefault(key, ServedRoute(key, suffix, view, namespace))
        entry.mounts.append(Mount(prefix, view))
    return found


def _same_view(found: dict[str, ServedRoute], key: str, view: Any) -> bool:
    return key in found and found[key].view is view


# ---------------------------------------------------------------- requests


@dataclass
class Call:
    """One request of a case. `path` is relative to the mount prefix (None: the route's own
    path, for routes without parameters); `query` goes to the query string; `body` is JSON
    (a dict), raw bytes, or a form (with form=True)."""

    path: str | None = None
    query: dict[str, Any] | None = None
    body: Any = None
    form: bool = False


def request_path(mount: Mount, route: ServedRoute, call: Call) -> str:
    return mount.prefix + (call.path if call.path is not None else route.suffix)


# ---------------------------------------------------------------- the world


class World:
    """The cast, their tokens and sessions, and builders of objects with each role's grant.

    Objects are owned by alice (who holds MANAGE as their creator and is in no column).
    `grant(root, roles)` gives each role in `roles` its level: read READ, edit EDIT,
    manage MANAGE, deny a user DENY plus their team "readers" READ, team their team
    "editors" EDIT.
    """

    def __init__(self, default_experiment: Experiment):
        user_model = get_user_model()
        self.default_experiment = default_experiment
        self.alice = make_user("alice")
        self.zed = make_user("zed")  # a bystander: grants and memberships are made for him
        self.users: dict[str, Any] = {role: make_user(name) for role, name in USERNAMES.items() if role != "superuser"}
        self.root = self.users["superuser"] = user_model.objects.create_superuser(
            username="root", password=PASSWORD, email="root@example.com"
        )
        self.readers = portal_services.team_create(actor=self.root, name="readers")
        portal_services.team_member_add(actor=self.root, team_id=self.readers.pk, username="dan")
        self.editors = portal_services.team_create(actor=self.root, name="editors")
        portal_services.team_member_add(actor=self.root, team_id=self.editors.pk, username="tess")
        self.tokens = {
            role: portal_services.api_token_create(user=user, name="matrix").raw for role, user in self.users.items()
        }
        self._sessions: dict[str, Client] = {}
        self._counter = itertools.count(1)
        self._default_granted: set[str] = set()

    # ---------------------------------------------------------------- helpers

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self._counter)}"

    def user(self, role: str) -> Any:
        return self.users.get(role)

    def username(self, role: str) -> str:
        return USERNAMES.get(role, "")

    def client(self, role: str, *, session: bool) -> Client:
        """A session client signed in as `role` (pages, native API), or a cookie-less one."""
        if not session or role == "anonymous":
            return self._sessions.setdefault("", Client())
        if role not in self._sessions:
            client = Client()
            client.force_login(self.users[role])
            self._sessions[role] = client
        return self._sessions[role]

    def superuser_headers(self) -> list[str]:
        """A superuser's Authorization headers: a Bearer token and HTTP Basic."""
        basic = base64.b64encode(f"root:{PASSWORD}".encode()).decode()
        return [f"Bearer {self.tokens['superuser']}", f"Basic {basic}"]

    def forget_session(self, role: str) -> None:
        """Sign `role` in again on its next request (a password change ends its session)."""
        self._sessions.pop(role, None)
        if role in self.users:
            self.users[role].refresh_from_db()  # the session is bound to the current password

    def grant(self, root: Any, roles: tuple[str, ...], *, actor: Any = None) -> None:
        actor = actor or self.alice
        for role in roles:
            if role in ("read", "edit", "manage"):
                level = {"read": "READ", "edit": "EDIT", "manage": "MANAGE"}[role]
                permissions.grant_create(actor=actor, root=root, level=level, user=self.users[role])
            elif role == "deny":
                permissions.grant_create(actor=actor, root=root, level="DENY", user=self.users["deny"])
                permissions.grant_create(actor=actor, root=root, level="READ", team=self.readers)
            elif role == "team":
                permissions.grant_create(actor=actor, root=root, level="EDIT", team=self.editors)

    def grant_default_experiment(self, roles: tuple[str, ...]) -> Experiment:
        """Each role's grant on the Default experiment (once per test: it is one object)."""
        missing = tuple(role for role in roles if role not in self._default_granted)
        self.grant(self.default_experiment, missing, actor=self.root)
        self._default_granted.update(missing)
        return self.default_experiment

    # ---------------------------------------------------------------- builders

    def experiment(self, roles: tuple[str, ...], *, tag: bool = False) -> Experiment:
        experiment = make_experiment(owner=self.alice, name=self.unique("experiment"))
        self.grant(experiment, roles)
        if tag:
            experiment_services.experiment_tag_set(
                actor=self.alice, experiment_id=str(experiment.pk), key="k", value="v"
            )
        return experiment

    def run(
        self,
        roles: tuple[str, ...] = (),
        *,
        experiment: Experiment | None = None,
        owner: Any = None,
        tag: bool = False,
        metric: bool = False,
        file: bool = False,
        model_dir: bool = False,
    ):
        owner = owner or self.alice
        experiment = experiment or self.experiment(roles)
        run = make_run(owner=owner, experiment=experiment)
        if tag or metric:
            run_services.run_log_batch(
                actor=owner,
                run_id=run.pk,
                metrics=[{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}] if metric else [],
                tags=[{"key": "k", "value": "v"}] if tag else [],
            )
        if file:
            self.upload(owner, run_root(run) + "/dir/file.txt")
        if model_dir:
            self.upload(owner, run_root(run) + "/model/MLmodel")
        return run

    def upload(self, user: Any, path: str, content: bytes = b"flavors: {}\n") -> None:
        artifact_services.artifact_upload(user=user, path=path, content=io.BytesIO(content), expected_size=len(content))

    def logged_model(self, roles: tuple[str, ...] = (), *, run=None, experiment=None, owner=None, file: bool = False):
        """A READY logged model (tag k=v) from `run` (a new one in a new experiment by default)."""
        owner = owner or self.alice
        if run is None:
            run = self.run(roles, experiment=experiment, owner=owner)
        model = logged_model_services.logged_model_create(
            actor=owner,
            experiment_id=str(run.experiment_id),
            name="model",
            source_run_id=run.pk,
            tags=[{"key": "k", "value": "v"}],
        )
        model = logged_model_services.logged_model_finalize(actor=owner, model_id=model.pk, status="READY")
        if file:
            self.upload(owner, model_root(model) + "/MLmodel")
        return model

    def registered_model(self, roles: tuple[str, ...] = ()):
        model = registry_services.registered_model_create(
            actor=self.alice, name=self.unique("model"), tags=[{"key": "k", "value": "v"}]
        )
        self.grant(model, roles)
        return model

    def version(self, roles: tuple[str, ...] = (), *, experiment_roles: tuple[str, ...] | None = None):
        """Version 1 of a new registered model (alias "champion", tag k=v), from a run's
        classic model directory. The roles' grants go on the model and, unless
        `experiment_roles` says otherwise, on the source run's experiment."""
        run = self.run(roles if experiment_roles is None else experiment_roles, model_dir=True)
        model = self.registered_model(roles)
        version = registry_services.model_version_create(
            actor=self.alice,
            name=model.name,
            source=f"runs:/{run.pk}/model",
            run_id=run.pk,
            tags=[{"key": "k", "value": "v"}],
        )
        registry_services.alias_set(actor=self.alice, name=model.name, alias="champion", version=version.version)
        return version

    def team(self):
        return portal_services.team_create(actor=self.root, name=self.unique("team"))


def run_root(run) -> str:
    """The artifact-proxy path of a run's artifact root."""
    return run.artifact_uri.removeprefix("mlflow-artifacts:/")


def model_root(model) -> str:
    return model.artifact_location.removeprefix("mlflow-artifacts:/")


# ---------------------------------------------------------------- sending


def send(world: World, role: str, method: str, path: str, call: Call, *, authorization: str | None = None):
    """Send one request as `role`: a Bearer token on the MLflow door, a session elsewhere.

    `authorization` sends that Authorization header instead (pages must ignore it)."""
    door = door_of(path)
    client = world.client(role, session=door != "mlflow")
    headers = {}
    if authorization:
        headers["HTTP_AUTHORIZATION"] = authorization
    elif door == "mlflow" and role != "anonymous":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {world.tokens[role]}"
    query = {
        key: value.replace("{me}", world.username(role)) if isinstance(value, str) else value
        for key, value in (call.query or {}).items()
    }
    full = path + ("?" + urlencode(query, doseq=True) if query else "")
    body, content_type = b"", "application/octet-stream"
    if isinstance(call.body, bytes):
        body = call.body
    elif call.form:
        body, content_type = urlencode(call.body or {}).encode(), "application/x-www-form-urlencoded"
    elif call.body is not None or (door == "mlflow" and method != "GET"):
        text = json.dumps(call.body or {}).replace("{me}", world.username(role))
        body, content_type = text.encode(), "application/json"
    return client.generic(method, full, data=body, content_type=content_type, **headers)


def error_code(response) -> str | None:
    try:
        return response.json().get("error_code")
    except (ValueError, AttributeError):
        return None


# ---------------------------------------------------------------- the table's rows

Subject = Any
CallMaker = Callable[[World, Subject, str, str], Call]  # (world, subject, role, method) -> Call


@dataclass
class Case:
    """One way to call a route: what it needs, how to build its objects and its request.

    `build(world, roles)` makes the objects, with the grants of `roles`. A case that changes
    state (`fresh`) gets new objects for every request, built with the acting role's grant
    only; the others share one set of objects, built once with every grantee's grant.
    `call` makes the request (it may prepare cheap things, e.g. a new user to grant to).
    `check(world, subject, role, response)` adds assertions about the outcome.
    """

    name: str
    needs: Need
    build: Callable[[World, tuple[str, ...]], Subject]
    call: CallMaker
    fresh: bool = False
    ok: int = 200
    check: Callable[[World, Subject, str, Any], None] | None = None
    # For a fresh case: did the request's change happen? It must exactly when allowed.
    effect: Callable[[Subject], bool] | None = None


@dataclass
class ListCase:
    """A list or search: each role pages through it one item at a time and must see exactly
    the objects it may read, each once.

    `build(world)` makes the objects (readable ones with every grantee's grant, hidden ones
    without); `expected(world, universe, role)` is the set of ids the role must see;
    `call(world, universe, role, method, page_token)` makes one page's request; `parse(json)`
    gives (ids on the page, next page token or None)."""

    name: str
    build: Callable[[World], Subject]
    expected: Callable[[World, Subject, str], set]
    call: Callable[[World, Subject, str, str, str | None], Call]
    parse: Callable[[dict], tuple[list, str | None]]
    needs: Need = SIGNED_IN


@dataclass
class Row:
    methods: tuple[str, ...]
    route: str
    cases: list[Case | ListCase]


# ---------------------------------------------------------------- running a row


def _describe(response) -> str:
    body = response.content[:300].decode("utf-8", "replace") if not response.streaming else "<stream>"
    return f"{response.status_code} {body}"


def _outcome_failure(door: str, outcome: str, ok: int, response) -> str | None:
    expected = expected_status(door, outcome, ok)
    if response.status_code != expected:
        return f"expected {expected} ({outcome}), got {_describe(response)}"
    if door == "mlflow" and outcome != OK and error_code(response) != MLFLOW_CODES[outcome]:
        return f"expected error_code {MLFLOW_CODES[outcome]}, got {_describe(response)}"
    if door == "page" and outcome == UNAUTHENTICATED and not response["Location"].startswith("/accounts/login/"):
        return f"expected a redirect to the login page, got {response['Location']}"
    return None


def run_row(
    world: World, row: Row, route: ServedRoute, *, mirror_roles: tuple[str, ...] = ROLES
) -> tuple[list[str], int]:
    """Run every case of `row` for every method, mount and role. Returns (failures, requests)."""
    from django.urls import resolve

    failures: list[str] = []
    sent = 0
    for case in row.cases:
        # A list's objects are only read: one set serves every method and mount (a second
        # set would show up in the first one's pages).
        universe = case.build(world) if isinstance(case, ListCase) else None
        for method in row.methods:
            for number, mount in enumerate(route.mounts):
                roles = ROLES if number == 0 else mirror_roles
                if isinstance(case, ListCase):
                    for role in roles:
                        problems, count = _run_list(world, case, route, mount, method, role, universe)
                        failures += problems
                        sent += count
                    continue
                shared = None if case.fresh else case.build(world, GRANTEES)
                for role in roles:
                    subject = case.build(world, (role,) if role in GRANTEES else ()) if case.fresh else shared
                    call = case.call(world, subject, role, method)
                    path = request_path(mount, route, call)
                    where = f"{method} {path} as {role} [{case.name}; needs {case.needs!r}]"
                    if resolve(path).func is not mount.view:
                        failures.append(f"{where}: the path does not reach the route under test")
                        continue
                    door = door_of(path)
                    outcome = case.needs.outcome(role)
                    response = send(world, role, method, path, call)
                    sent += 1
                    problem = _outcome_failure(door, outcome, case.ok, response)
                    if problem is None and case.effect is not None and case.effect(subject) != (outcome == OK):
                        problem = (
                            "refused, yet its change happened" if outcome != OK else "allowed, yet nothing changed"
                        )
                    if problem is None and case.check is not None:
                        try:
                            case.check(world, subject, role, response)
                        except AssertionError as exc:
                            problem = f"check failed: {exc}"
                    if problem is None and door == "page" and role == "anonymous":
                        # Tokens and Basic open the API doors only: on a page they sign nobody in.
                        for header in world.superuser_headers():
                            again = send(
                                world, role, method, path, case.call(world, subject, role, method), authorization=header
                            )
                            sent += 1
                            problem = _outcome_failure(door, outcome, case.ok, again)
                            if problem:
                                problem = f"with a superuser's {header.split()[0]} credentials: {problem}"
                                break
                    if problem:
                        failures.append(f"{where}: {problem}")
    return failures, sent


def _run_list(world, case: ListCase, route, mount, method, role, universe) -> tuple[list[str], int]:
    where = f"{method} {mount.prefix}{route.suffix} as {role} [{case.name}]"
    door = door_of(mount.prefix + route.suffix)
    outcome = case.needs.outcome(role)
    token = None
    seen: list = []
    sent = 0
    while True:
        call = case.call(world, universe, role, method, token)
        response = send(world, role, method, request_path(mount, route, call), call)
        sent += 1
        if outcome != OK:
            problem = _outcome_failure(door, outcome, 200, response)
            return ([f"{where}: {problem}"] if problem else []), sent
        if response.status_code != 200:
            return [f"{where}: page {sent}: expected 200, got {_describe(response)}"], sent
        ids, token = case.parse(response.json())
        if len(ids) > 1:
            return [f"{where}: page {sent} holds {len(ids)} items, asked for one"], sent
        seen += ids
        if not token:
            break
        if sent > 50:
            return [f"{where}: still more pages after {sent}"], sent
    expected = case.expected(world, universe, role)
    problems = []
    if len(seen) != len(set(seen)):
        problems.append(f"{where}: an item came twice across pages: {seen}")
    if set(seen) != expected:
        leaked = set(seen) - expected
        missing = expected - set(seen)
        problems.append(f"{where}: leaked {sorted(map(str, leaked))}, missing {sorted(map(str, missing))}")
    return problems, sent
