"""The permission matrix: every route of the URL configuration, for every kind of caller.

The table below has one row per (methods, route) the URL configuration serves; a route
mounted under several MLflow prefixes (the /ajax-api/ mirrors, 2.0 and 3.0) is one row and
runs on every mount. `test_every_served_route_has_a_row` walks the URL configuration, so
a new route without a row fails, and a row whose route is gone fails too.

Columns (see tests/portal/matrix.py): anonymous; signed in without a grant; READ; EDIT;
MANAGE; DENY over a team READ; only a team's EDIT; superuser. PORTAL_DEFAULT_PERMISSION is
NONE, so "signed in without a grant" really has nothing. Each row's cases say what right
the route needs on which object; the expected statuses follow from it (MLflow door and
native API: 401 anonymous, 404 hidden, 403 readable but not allowed, 2xx allowed; pages:
302 to the login page when anonymous).

The rules are the issue's, as portal/permissions.py states them: READ < USE < EDIT < MANAGE;
deletes and grants need MANAGE; artifact uploads EDIT, artifact deletes MANAGE; runs and
logged models are created with EDIT on the experiment, or in the Default experiment by any
signed-in user it does not deny; anyone signed in may create a registered model; a
registered model's readers read its versions' files without any grant on the experiment.
"""

from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.files.storage import storages
from django.test import Client

from portal import permissions
from portal import services as portal_services
from portal.models import ApiToken, AuditEvent
from registry import services as registry_services
from tests.conftest import PASSWORD, make_user
from tests.portal.matrix import (
    ADD_TO_DEFAULT,
    GRANTEES,
    LEVEL_OF_ROLE,
    MLFLOW_MOUNTS,
    NEEDS_EDIT,
    NEEDS_MANAGE,
    NEEDS_READ,
    NOBODY_ELSE_HIDDEN,
    PROBED_METHODS,
    PUBLIC,
    READ,
    ROLES,
    SIGNED_IN,
    SUPERUSER,
    SUPERUSER_ELSE_HIDDEN,
    Call,
    Case,
    ListCase,
    Row,
    World,
    declared_methods,
    model_root,
    run_root,
    run_row,
    served_routes,
)
from tests.portal.matrix_approvals import APPROVAL_PROBE_PATHS, APPROVAL_ROWS
from tests.portal.matrix_comments import COMMENT_ROWS
from tests.portal.matrix_databricks import DATABRICKS_ROWS
from tests.portal.matrix_webhooks import WEBHOOK_ROWS
from tracking.models import LoggedModel, Run
from tracking.services import experiments as experiment_services
from tracking.services import runs as run_services

pytestmark = pytest.mark.django_db

# Never part of the matrix, and why.
EXCLUDED_PREFIXES = {
    # Django's admin runs its own staff check on every view (routes.ADMIN_SITE), and its
    # pages are Django's, not the portal's.
    "/admin/": "Django admin",
}
EXCLUDED_ROUTES = {
    # Public by nature (anyone must reach them to sign in or out); they guard nothing.
    "/accounts/login/": "login page",
    "/accounts/logout/": "logout page",
}

STRONG_PASSWORD = "a new and rather long passphrase 7"


@pytest.fixture(autouse=True)
def private_by_default(settings):
    settings.PORTAL_DEFAULT_PERMISSION = "NONE"


@pytest.fixture
def world(default_experiment):
    return World(default_experiment)


# ---------------------------------------------------------------- small builders and calls


def params(make):
    """A call whose parameters go to the query string for GET and to a JSON body otherwise."""

    def call(w, s, role, method):
        data = make(w, s, role)
        return Call(query=data) if method == "GET" else Call(body=data)

    return call


def at(path_of, make=None, *, form=False):
    """A call to a path with parameters (logged-models/<id>, artifacts/<path>, ...)."""

    def call(w, s, role, method):
        data = make(w, s, role) if make else None
        if method == "GET":
            return Call(path=path_of(w, s, role), query=data)
        return Call(path=path_of(w, s, role), body=data, form=form)

    return call


def fixed(data=None):
    return params(lambda w, s, role: dict(data or {}))


def experiment(w, roles):
    return w.experiment(roles)


def experiment_with_tag(w, roles):
    return w.experiment(roles, tag=True)


def deleted_experiment(w, roles):
    found = w.experiment(roles)
    experiment_services.experiment_delete(actor=w.alice, experiment_id=str(found.pk))
    return found


def run(w, roles):
    return w.run(roles)


def run_with_tag(w, roles):
    return w.run(roles, tag=True)


def run_with_metric(w, roles):
    return w.run(roles, metric=True)


def run_with_file(w, roles):
    return w.run(roles, file=True)


def deleted_run(w, roles):
    found = w.run(roles)
    run_services.run_delete(actor=w.alice, run_id=found.pk)
    return found


def run_and_model(w, roles):
    found = w.run(roles)
    return SimpleNamespace(run=found, model=w.logged_model(run=found))


def logged_model(w, roles):
    return w.logged_model(roles, file=True)


def registered_model(w, roles):
    return w.registered_model(roles)


def version(w, roles):
    return w.version(roles)


def version_via_model_only(w, roles):
    """A version whose source experiment grants nothing: only the model's grants apply."""
    return w.version(roles, experiment_roles=())


def logged_model_version_via_model_only(w, roles):
    """Version 1 of a new registered model (the roles' grants) from a logged model in an
    experiment that grants nothing (MLflow 3's `models:/<model_id>` source)."""
    found = w.logged_model((), file=True)
    model = w.registered_model(roles)
    return registry_services.model_version_create(
        actor=w.alice, name=model.name, source=f"models:/{found.pk}", model_id=found.pk
    )


def default_experiment_for(w, roles):
    return w.grant_default_experiment(roles)


def nothing(w, roles):
    return None


def readable_and_hidden_runs(w, roles):
    return SimpleNamespace(readable=w.run(roles, metric=True), hidden=w.run((), metric=True))


def reloaded(obj):
    return type(obj).objects.filter(pk=obj.pk).first()


def gone(obj) -> bool:
    return reloaded(obj) is None


def stage_is(value):
    return lambda obj: reloaded(obj).lifecycle_stage == value


def renamed(obj) -> bool:
    return reloaded(obj).name.startswith("renamed")


def tag_gone(obj) -> bool:
    return not reloaded(obj).tags.filter(key="k").exists()


def made_private(obj) -> bool:
    return reloaded(obj).private


def alias_gone(found) -> bool:
    return not found.registered_model.aliases.filter(alias="champion").exists()


def stored(path_of):
    """Is the artifact at `path_of(subject)` in the store?"""
    return lambda s: storages["artifacts"].exists(path_of(s))


def version_path(found) -> str:
    return found.storage_location.removeprefix("mlflow-artifacts:/")


def exp_id(w, s, role):
    return {"experiment_id": str(s.pk)}


def run_id(w, s, role):
    return {"run_id": s.pk, "run_uuid": s.pk}


def model_name(w, s, role):
    return {"name": s.name}


def version_key(w, s, role):
    return {"name": s.registered_model.name, "version": str(s.version)}


def fresh_user(w):
    return make_user(w.unique("user"))


def own_password(w, s, role):
    """The role's own password change, from a known current password. Resetting it ends
    the role's session, so the next request signs in again."""
    user = w.user(role)
    if user is not None:
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
        w.forget_session(role)
    return {"username": "{me}", "password": STRONG_PASSWORD, "current_password": PASSWORD}


def session_ended(w, s, role, response):
    # A password change ends the sessions signed in with the old one: sign in again next time.
    w.forget_session(role)


def team_with_grant(w, s, role):
    team = w.team()
    return permissions.grant_create(actor=w.alice, root=s, level="READ", team=team)


def team_with_default(w, s, role):
    team = w.team()
    row = portal_services.team_default_set(actor=w.root, team_id=team.pk, resource_type="experiment", level="READ")
    return team, row


def team_with_zed(w):
    team = w.team()
    portal_services.team_member_add(actor=w.root, team_id=team.pk, username="zed")
    return team


def user_grant(w, s, role):
    """A READ grant on `s` for a new user (so a grant to revoke or change is always there)."""
    return permissions.grant_create(actor=w.alice, root=s, level="READ", user=fresh_user(w))


def token_of(w, role):
    """A new token of `role` ("alice" for alice; the anonymous caller gets alice's too)."""
    user = w.alice if role in ("alice", "anonymous") else w.user(role)
    return portal_services.api_token_create(user=user, name="fresh").token


def team_with_admin_zed(w):
    team = w.team()
    portal_services.team_admin_set(actor=w.root, team_id=team.pk, username="zed", is_admin=True)
    return team


def experiment_with_grant(w, roles):
    found = w.experiment(roles)
    return SimpleNamespace(
        experiment=found, grant=permissions.grant_create(actor=w.alice, root=found, level="READ", user=w.zed)
    )


# ---------------------------------------------------------------- lists


def list_universe_tracking(w):
    """Experiments A (every grantee's grant) and B (none), a run in each, alice's run in the
    Default experiment, and each signed-in role's own run there; a logged model from each run."""
    a, b = w.experiment(GRANTEES), w.experiment(())
    runs = {"a": w.run(experiment=a, metric=True), "b": w.run(experiment=b, metric=True)}
    runs["default"] = w.run(experiment=w.default_experiment, metric=True)
    own = {role: w.run(experiment=w.default_experiment, owner=w.user(role)) for role in ROLES if role != "anonymous"}
    models = {key: w.logged_model(run=found) for key, found in runs.items()}
    own_models = {role: w.logged_model(run=found, owner=w.user(role)) for role, found in own.items()}
    return SimpleNamespace(a=a, b=b, runs=runs, own=own, models=models, own_models=own_models)


def readable(role) -> bool:
    return LEVEL_OF_ROLE[role] >= READ


def expected_experiments(w, u, role):
    if role == "superuser":
        return {"0", str(u.a.pk), str(u.b.pk)}
    return {"0", str(u.a.pk)} if readable(role) else {"0"}


def expected_runs(w, u, role):
    if role == "superuser":
        return {r.pk for r in [*u.runs.values(), *u.own.values()]}
    return {u.own[role].pk} | ({u.runs["a"].pk} if readable(role) else set())


def expected_logged_models(w, u, role):
    if role == "superuser":
        return {m.pk for m in [*u.models.values(), *u.own_models.values()]}
    return {u.own_models[role].pk} | ({u.models["a"].pk} if readable(role) else set())


def list_universe_registry(w):
    """Registered model M1 (every grantee's grant) with versions 1 and 2, M2 (no grant) with version 1."""
    v1 = w.version(GRANTEES)
    v2 = registry_services.model_version_create(
        actor=w.alice, name=v1.registered_model.name, source=v1.source, run_id=v1.run_id
    )
    hidden = w.version(())
    return SimpleNamespace(m1=v1.registered_model, m2=hidden.registered_model, versions=[v1, v2], hidden=hidden)


def expected_models(w, u, role):
    if role == "superuser":
        return {u.m1.name, u.m2.name}
    return {u.m1.name} if readable(role) else set()


def visible_versions(u, role):
    if role == "superuser":
        return [*u.versions, u.hidden]
    return list(u.versions) if readable(role) else []


def expected_versions(w, u, role):
    return {v.pk for v in visible_versions(u, role)}


def expected_version_keys(w, u, role):
    # The MLflow door names a version by its model's name and its number.
    return {(v.registered_model.name, str(v.version)) for v in visible_versions(u, role)}


def mlflow_page(make):
    """One page of an MLflow search: max_results 1 and the page token."""

    def call(w, u, role, method, token):
        data = {**make(w, u), "max_results": 1}
        if token:
            data["page_token"] = token
        return Call(query=data) if method == "GET" else Call(body=data)

    return call


def mlflow_parse(key, id_of):
    return lambda data: ([id_of(item) for item in data.get(key, [])], data.get("next_page_token"))


def native_page(w, u, role, method, cursor):
    return Call(query={"page_size": 1, **({"cursor": cursor} if cursor else {})})


def native_parse(id_of):
    def parse(data):
        following = data.get("next")
        cursor = parse_qs(urlparse(following).query)["cursor"][0] if following else None
        return [id_of(item) for item in data["results"]], cursor

    return parse


EXPERIMENT_SEARCH = ListCase(
    "experiments A (granted) and B (not), and the Default experiment",
    list_universe_tracking,
    expected_experiments,
    mlflow_page(lambda w, u: {}),
    mlflow_parse("experiments", lambda item: item["experiment_id"]),
)

RUN_SEARCH = ListCase(
    "runs in A, B, and others' and one's own in the Default experiment",
    list_universe_tracking,
    expected_runs,
    mlflow_page(lambda w, u: {"experiment_ids": [str(u.a.pk), str(u.b.pk), "0"]}),
    mlflow_parse("runs", lambda item: item["info"]["run_id"]),
)

LOGGED_MODEL_SEARCH = ListCase(
    "logged models in A, B, and others' and one's own in the Default experiment",
    list_universe_tracking,
    expected_logged_models,
    mlflow_page(lambda w, u: {"experiment_ids": [str(u.a.pk), str(u.b.pk), "0"]}),
    mlflow_parse("models", lambda item: item["info"]["model_id"]),
)

REGISTERED_MODEL_SEARCH = ListCase(
    "registered models M1 (granted) and M2 (not)",
    list_universe_registry,
    expected_models,
    mlflow_page(lambda w, u: {}),
    mlflow_parse("registered_models", lambda item: item["name"]),
)

MODEL_VERSION_SEARCH = ListCase(
    "versions of M1 (granted) and M2 (not)",
    list_universe_registry,
    expected_version_keys,
    mlflow_page(lambda w, u: {}),
    mlflow_parse("model_versions", lambda item: (item["name"], item["version"])),
)


def native_list(name, build, expected, id_of):
    return ListCase(name, build, expected, native_page, native_parse(id_of))


def expected_own_tokens(w, u, role):
    return set(ApiToken.objects.filter(user=w.user(role)).values_list("pk", flat=True))


def tokens_universe(w):
    portal_services.api_token_create(user=w.alice, name="alices")
    return None


# ---------------------------------------------------------------- checks


def team_grants(w, roles):
    """The team "editors" holds EDIT on experiment V (besides every grantee's grant there)
    and READ on experiment H, which nobody else may read."""
    visible_one = w.experiment(roles)
    hidden_one = w.experiment(())
    permissions.grant_create(actor=w.alice, root=hidden_one, level="READ", team=w.editors)
    return SimpleNamespace(visible=visible_one, hidden=hidden_one)


def shows_only_readable_grants(role_of):
    """A role's permissions list only grants on objects the caller may read."""

    def check(w, s, role, response):
        if response.status_code != 200:
            return
        patterns = {p["resource_pattern"] for p in role_of(w, response.json())["permissions"]}
        assert (str(s.visible.pk) in patterns) == (LEVEL_OF_ROLE[role] >= READ), patterns
        assert (str(s.hidden.pk) in patterns) == (role in ("team", "superuser")), patterns

    return check


def editors_role(w, data):
    return next(r for r in data["roles"] if r["id"] == w.editors.pk)


def users_roles_only_for_self(w, s, role, response):
    if response.status_code != 200:
        return
    for entry in response.json()["users"]:
        if role != "superuser" and entry["username"] != w.username(role):
            assert entry["roles"] == [], entry


def email_only_for_admins(w, s, role, response):
    if response.status_code == 200:
        assert (response.json()["email"] is not None) == (role == "superuser"), response.json()


def default_run(w, roles, **extra):
    return w.run(experiment=w.grant_default_experiment(roles), **extra)


def revoke_page_call(whose):
    def call(w, s, role, method):
        user = w.alice if whose == "other" else w.user(role)
        token = portal_services.api_token_create(user=user or w.alice, name="to revoke").token
        w.last_token = token
        return Call(path=f"accounts/tokens/{token.pk}/revoke", body={}, form=True)

    return call


def revoke_page_check(expected_for_role):
    def check(w, s, role, response):
        w.last_token.refresh_from_db()
        revoked = w.last_token.revoked_at is not None
        assert revoked == expected_for_role(role), f"token revoked: {revoked}"

    return check


# ---------------------------------------------------------------- the table

ARTIFACTS = "api/2.0/mlflow-artifacts/"
ANY_METHOD = PROBED_METHODS

TABLE = [
    # ------------------------------------------------------------ pages
    Row(("GET",), "/", [Case("home page", SIGNED_IN, nothing, fixed())]),
    Row(("GET",), "/healthz", [Case("health check", PUBLIC, nothing, fixed())]),
    Row(("GET",), "/accounts/tokens/", [Case("my tokens", SIGNED_IN, nothing, fixed())]),
    Row(
        ("POST",),
        "/accounts/tokens/",
        [
            Case("create a token", SIGNED_IN, nothing, lambda w, s, role, m: Call(body={"name": "page"}, form=True)),
        ],
    ),
    Row(
        ("POST",),
        "/accounts/tokens/<int:token_id>/revoke",
        [
            Case(
                "revoke my own token",
                SIGNED_IN,
                nothing,
                revoke_page_call("own"),
                ok=302,
                check=revoke_page_check(lambda role: role != "anonymous"),
            ),
            Case(
                "revoke someone else's token (own objects only)",
                SIGNED_IN,
                nothing,
                revoke_page_call("other"),
                ok=302,
                check=revoke_page_check(lambda role: False),
            ),
        ],
    ),
    # ------------------------------------------------------------ experiments
    Row(
        ("POST",),
        "/api/2.0/mlflow/experiments/create",
        [
            Case("create", SIGNED_IN, nothing, params(lambda w, s, role: {"name": w.unique("new")})),
        ],
    ),
    Row(("GET",), "/api/2.0/mlflow/experiments/get", [Case("experiment", NEEDS_READ, experiment, params(exp_id))]),
    Row(
        ("GET",),
        "/api/2.0/mlflow/experiments/get-by-name",
        [
            Case("experiment", NEEDS_READ, experiment, params(lambda w, s, role: {"experiment_name": s.name})),
        ],
    ),
    Row(("GET", "POST"), "/api/2.0/mlflow/experiments/search", [EXPERIMENT_SEARCH]),
    Row(("GET",), "/api/2.0/mlflow/experiments/list", [EXPERIMENT_SEARCH]),
    Row(
        ("POST",),
        "/api/2.0/mlflow/experiments/update",
        [
            Case(
                "rename",
                NEEDS_EDIT,
                experiment,
                params(lambda w, s, role: {**exp_id(w, s, role), "new_name": w.unique("renamed")}),
                fresh=True,
                effect=renamed,
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/experiments/delete",
        [
            Case("delete", NEEDS_MANAGE, experiment, params(exp_id), fresh=True, effect=stage_is("deleted")),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/experiments/restore",
        [
            Case("restore", NEEDS_MANAGE, deleted_experiment, params(exp_id), fresh=True, effect=stage_is("active")),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/experiments/set-experiment-tag",
        [
            Case(
                "set a tag",
                NEEDS_EDIT,
                experiment,
                params(lambda w, s, role: {**exp_id(w, s, role), "key": "k", "value": "v"}),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/experiments/delete-experiment-tag",
        [
            Case(
                "delete a tag",
                NEEDS_EDIT,
                experiment_with_tag,
                params(lambda w, s, role: {**exp_id(w, s, role), "key": "k"}),
                fresh=True,
                effect=tag_gone,
            ),
        ],
    ),
    # ------------------------------------------------------------ runs
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/create",
        [
            Case("in an experiment", NEEDS_EDIT, experiment, params(exp_id)),
            Case(
                "in the Default experiment",
                ADD_TO_DEFAULT,
                default_experiment_for,
                params(lambda w, s, role: {"experiment_id": "0"}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/runs/get",
        [
            Case("run", NEEDS_READ, run, params(run_id)),
            # Someone else's run in the Default experiment: its grants decide, as anywhere else.
            Case("alice's run in the Default experiment", NEEDS_READ, default_run, params(run_id)),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/update",
        [
            Case("finish", NEEDS_EDIT, run, params(lambda w, s, role: {**run_id(w, s, role), "status": "FINISHED"})),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/delete",
        [
            Case("delete", NEEDS_MANAGE, run, params(run_id), fresh=True, effect=stage_is("deleted")),
            Case(
                "alice's run in the Default experiment",
                NEEDS_MANAGE,
                default_run,
                params(run_id),
                fresh=True,
                effect=stage_is("deleted"),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/restore",
        [
            Case("restore", NEEDS_MANAGE, deleted_run, params(run_id), fresh=True, effect=stage_is("active")),
        ],
    ),
    Row(("GET", "POST"), "/api/2.0/mlflow/runs/search", [RUN_SEARCH]),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/log-metric",
        [
            Case(
                "log a metric",
                NEEDS_EDIT,
                run,
                params(lambda w, s, role: {**run_id(w, s, role), "key": "m", "value": 1.0, "timestamp": 1, "step": 0}),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/log-parameter",
        [
            Case(
                "log a param",
                NEEDS_EDIT,
                run,
                params(lambda w, s, role: {**run_id(w, s, role), "key": "p", "value": "1"}),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/set-tag",
        [
            Case(
                "set a tag",
                NEEDS_EDIT,
                run,
                params(lambda w, s, role: {**run_id(w, s, role), "key": "k", "value": "v"}),
            ),
            Case(
                "on alice's run in the Default experiment",
                NEEDS_EDIT,
                default_run,
                params(lambda w, s, role: {**run_id(w, s, role), "key": "k", "value": "v"}),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/delete-tag",
        [
            Case(
                "delete a tag",
                NEEDS_EDIT,
                run_with_tag,
                params(lambda w, s, role: {**run_id(w, s, role), "key": "k"}),
                fresh=True,
                effect=tag_gone,
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/log-batch",
        [
            Case(
                "log a batch",
                NEEDS_EDIT,
                run,
                params(
                    lambda w, s, role: {
                        **run_id(w, s, role),
                        "metrics": [{"key": "m", "value": 2.0, "timestamp": 2, "step": 1}],
                        "params": [{"key": "p", "value": "1"}],
                        "tags": [{"key": "k", "value": "v"}],
                    }
                ),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/log-inputs",
        [
            Case(
                "log a dataset",
                NEEDS_EDIT,
                run,
                params(
                    lambda w, s, role: {
                        **run_id(w, s, role),
                        "datasets": [{"dataset": {"name": "d", "digest": "x", "source_type": "local", "source": "s"}}],
                    }
                ),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/runs/outputs",
        [
            Case(
                "link a logged model of the experiment",
                NEEDS_EDIT,
                run_and_model,
                params(lambda w, s, role: {"run_id": s.run.pk, "models": [{"model_id": s.model.pk, "step": 0}]}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/metrics/get-history",
        [
            Case(
                "history",
                NEEDS_READ,
                run_with_metric,
                params(lambda w, s, role: {**run_id(w, s, role), "metric_key": "m"}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/metrics/get-history-bulk-interval",
        [
            Case(
                "readable runs",
                NEEDS_READ,
                readable_and_hidden_runs,
                params(lambda w, s, role: {"run_ids": [s.readable.pk], "metric_key": "m"}),
            ),
            # Objects the role may not read are never in the answer: naming one refuses the whole request.
            Case(
                "a hidden run among readable ones",
                SUPERUSER_ELSE_HIDDEN,
                readable_and_hidden_runs,
                params(lambda w, s, role: {"run_ids": [s.readable.pk, s.hidden.pk], "metric_key": "m"}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/artifacts/list",
        [
            Case(
                "a run's artifacts",
                NEEDS_READ,
                run_with_file,
                params(lambda w, s, role: {**run_id(w, s, role), "path": "dir"}),
            ),
        ],
    ),
    # ------------------------------------------------------------ logged models
    Row(
        ("POST",),
        "/api/2.0/mlflow/logged-models",
        [
            Case(
                "in an experiment",
                NEEDS_EDIT,
                experiment,
                params(lambda w, s, role: {**exp_id(w, s, role), "name": "m"}),
            ),
            Case(
                "from a run of the experiment",
                NEEDS_EDIT,
                run,
                params(lambda w, s, role: {"experiment_id": str(s.experiment_id), "name": "m", "source_run_id": s.pk}),
            ),
            Case(
                "in the Default experiment",
                ADD_TO_DEFAULT,
                default_experiment_for,
                params(lambda w, s, role: {"experiment_id": "0", "name": "m"}),
            ),
        ],
    ),
    Row(("POST",), "/api/2.0/mlflow/logged-models/search", [LOGGED_MODEL_SEARCH]),
    Row(
        ("GET",),
        "/api/2.0/mlflow/logged-models/<str:model_id>",
        [
            Case("logged model", NEEDS_READ, logged_model, at(lambda w, s, role: f"logged-models/{s.pk}")),
            Case(
                "alice's logged model in the Default experiment",
                NEEDS_READ,
                lambda w, roles: w.logged_model(run=default_run(w, roles)),
                at(lambda w, s, role: f"logged-models/{s.pk}"),
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/2.0/mlflow/logged-models/<str:model_id>",
        [
            Case(
                "finalize",
                NEEDS_EDIT,
                logged_model,
                at(
                    lambda w, s, role: f"logged-models/{s.pk}", lambda w, s, role: {"model_id": s.pk, "status": "READY"}
                ),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/logged-models/<str:model_id>",
        [
            Case(
                "delete",
                NEEDS_MANAGE,
                logged_model,
                at(lambda w, s, role: f"logged-models/{s.pk}"),
                fresh=True,
                effect=stage_is("deleted"),
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/2.0/mlflow/logged-models/<str:model_id>/tags",
        [
            Case(
                "set tags",
                NEEDS_EDIT,
                logged_model,
                at(
                    lambda w, s, role: f"logged-models/{s.pk}/tags",
                    lambda w, s, role: {"tags": [{"key": "k", "value": "v"}]},
                ),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/logged-models/<str:model_id>/tags/<path:tag_key>",
        [
            Case(
                "delete a tag",
                NEEDS_EDIT,
                logged_model,
                at(lambda w, s, role: f"logged-models/{s.pk}/tags/k"),
                fresh=True,
                effect=tag_gone,
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/logged-models/<str:model_id>/params",
        [
            Case(
                "log params",
                NEEDS_EDIT,
                logged_model,
                at(
                    lambda w, s, role: f"logged-models/{s.pk}/params",
                    lambda w, s, role: {"params": [{"key": "p", "value": "1"}]},
                ),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/logged-models/<str:model_id>/artifacts/directories",
        [
            Case(
                "list its files",
                NEEDS_READ,
                logged_model,
                at(lambda w, s, role: f"logged-models/{s.pk}/artifacts/directories"),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/logged-models/<str:model_id>/artifacts/files",
        [
            Case(
                "download a file",
                NEEDS_READ,
                logged_model,
                at(
                    lambda w, s, role: f"logged-models/{s.pk}/artifacts/files",
                    lambda w, s, role: {"artifact_file_path": "MLmodel"},
                ),
            ),
        ],
    ),
    # ------------------------------------------------------------ registered models
    Row(
        ("POST",),
        "/api/2.0/mlflow/registered-models/create",
        [
            Case("create", SIGNED_IN, nothing, params(lambda w, s, role: {"name": w.unique("new-model")})),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/registered-models/get",
        [
            Case("registered model", NEEDS_READ, registered_model, params(model_name)),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/registered-models/rename",
        [
            Case(
                "rename",
                NEEDS_EDIT,
                registered_model,
                params(lambda w, s, role: {"name": s.name, "new_name": w.unique("renamed")}),
                fresh=True,
                effect=renamed,
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/2.0/mlflow/registered-models/update",
        [
            Case(
                "describe",
                NEEDS_EDIT,
                registered_model,
                params(lambda w, s, role: {"name": s.name, "description": "d"}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/registered-models/delete",
        [
            Case("delete", NEEDS_MANAGE, registered_model, params(model_name), fresh=True, effect=gone),
        ],
    ),
    Row(("GET",), "/api/2.0/mlflow/registered-models/search", [REGISTERED_MODEL_SEARCH]),
    Row(
        ("POST",),
        "/api/2.0/mlflow/registered-models/set-tag",
        [
            Case(
                "set a tag",
                NEEDS_EDIT,
                registered_model,
                params(lambda w, s, role: {"name": s.name, "key": "k", "value": "v"}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/registered-models/delete-tag",
        [
            Case(
                "delete a tag",
                NEEDS_EDIT,
                registered_model,
                params(lambda w, s, role: {"name": s.name, "key": "k"}),
                fresh=True,
                effect=tag_gone,
            ),
        ],
    ),
    Row(
        ("GET", "POST"),
        "/api/2.0/mlflow/registered-models/get-latest-versions",
        [
            Case("latest versions", NEEDS_READ, version, params(lambda w, s, role: {"name": s.registered_model.name})),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/registered-models/alias",
        [
            Case(
                "set an alias",
                NEEDS_EDIT,
                version,
                params(lambda w, s, role: {**version_key(w, s, role), "alias": "prod"}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/registered-models/alias",
        [
            Case(
                "version by alias",
                NEEDS_READ,
                version,
                params(lambda w, s, role: {"name": s.registered_model.name, "alias": "champion"}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/registered-models/alias",
        [
            Case(
                "delete an alias",
                NEEDS_EDIT,
                version,
                params(lambda w, s, role: {"name": s.registered_model.name, "alias": "champion"}),
                fresh=True,
                effect=alias_gone,
            ),
        ],
    ),
    # ------------------------------------------------------------ model versions
    Row(
        ("POST",),
        "/api/2.0/mlflow/model-versions/create",
        [
            # The roles' grants are on the model and on the source run's experiment: EDIT on
            # the model is what limits (READ on the source is checked in the cross-object tests).
            Case(
                "register a run's model",
                NEEDS_EDIT,
                version,
                params(lambda w, s, role: {"name": s.registered_model.name, "source": s.source, "run_id": s.run_id}),
            ),
        ],
    ),
    Row(("GET",), "/api/2.0/mlflow/model-versions/get", [Case("version", NEEDS_READ, version, params(version_key))]),
    Row(
        ("PATCH",),
        "/api/2.0/mlflow/model-versions/update",
        [
            Case(
                "describe",
                NEEDS_EDIT,
                version,
                params(lambda w, s, role: {**version_key(w, s, role), "description": "d"}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/model-versions/delete",
        [
            Case("delete", NEEDS_MANAGE, version, params(version_key), fresh=True, effect=gone),
        ],
    ),
    Row(("GET",), "/api/2.0/mlflow/model-versions/search", [MODEL_VERSION_SEARCH]),
    Row(
        ("POST",),
        "/api/2.0/mlflow/model-versions/transition-stage",
        [
            Case(
                "to Staging",
                NEEDS_EDIT,
                version,
                params(
                    lambda w, s, role: {
                        **version_key(w, s, role),
                        "stage": "Staging",
                        "archive_existing_versions": False,
                    }
                ),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/model-versions/get-download-uri",
        [
            Case("where its files are", NEEDS_READ, version, params(version_key)),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/model-versions/set-tag",
        [
            Case(
                "set a tag",
                NEEDS_EDIT,
                version,
                params(lambda w, s, role: {**version_key(w, s, role), "key": "k", "value": "v"}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/model-versions/delete-tag",
        [
            Case(
                "delete a tag",
                NEEDS_EDIT,
                version,
                params(lambda w, s, role: {**version_key(w, s, role), "key": "k"}),
                fresh=True,
                effect=tag_gone,
            ),
        ],
    ),
    # ------------------------------------------------------------ the artifact proxy
    Row(
        ("GET",),
        "/api/2.0/mlflow-artifacts/artifacts",
        [
            Case(
                "a run's directory",
                NEEDS_READ,
                run_with_file,
                params(lambda w, s, role: {"path": run_root(s) + "/dir"}),
            ),
            Case(
                "a logged model's files", NEEDS_READ, logged_model, params(lambda w, s, role: {"path": model_root(s)})
            ),
            Case(
                "a version's files, read through its registered model",
                NEEDS_READ,
                version_via_model_only,
                params(lambda w, s, role: {"path": version_path(s)}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow-artifacts/artifacts/<artifact_path>",
        [
            Case(
                "a run's file",
                NEEDS_READ,
                run_with_file,
                at(lambda w, s, role: f"{ARTIFACTS}artifacts/{run_root(s)}/dir/file.txt"),
            ),
            Case(
                "a file of alice's run in the Default experiment",
                NEEDS_READ,
                lambda w, roles: default_run(w, roles, file=True),
                at(lambda w, s, role: f"{ARTIFACTS}artifacts/{run_root(s)}/dir/file.txt"),
            ),
            Case(
                "a logged model's file",
                NEEDS_READ,
                logged_model,
                at(lambda w, s, role: f"{ARTIFACTS}artifacts/{model_root(s)}/MLmodel"),
            ),
            Case(
                "a version's file, read through its registered model",
                NEEDS_READ,
                version_via_model_only,
                at(lambda w, s, role: f"{ARTIFACTS}artifacts/{version_path(s)}/MLmodel"),
            ),
            Case(
                "a logged model's file, read through the registered model of a version made from it",
                NEEDS_READ,
                logged_model_version_via_model_only,
                at(lambda w, s, role: f"{ARTIFACTS}artifacts/{version_path(s)}/MLmodel"),
            ),
        ],
    ),
    Row(
        ("PUT",),
        "/api/2.0/mlflow-artifacts/artifacts/<artifact_path>",
        [
            Case(
                "into a run",
                NEEDS_EDIT,
                run,
                lambda w, s, role, m: Call(path=f"{ARTIFACTS}artifacts/{run_root(s)}/up.txt", body=b"data"),
                fresh=True,
                effect=stored(lambda s: f"{run_root(s)}/up.txt"),
            ),
            Case(
                "into a logged model",
                NEEDS_EDIT,
                logged_model,
                lambda w, s, role, m: Call(path=f"{ARTIFACTS}artifacts/{model_root(s)}/up.txt", body=b"data"),
                fresh=True,
                effect=stored(lambda s: f"{model_root(s)}/up.txt"),
            ),
            # Reading through a registered model opens no write: only the experiment's grants do.
            Case(
                "into a version's files, with grants on the registered model only",
                SUPERUSER_ELSE_HIDDEN,
                version_via_model_only,
                lambda w, s, role, m: Call(path=f"{ARTIFACTS}artifacts/{version_path(s)}/up.txt", body=b"data"),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow-artifacts/artifacts/<artifact_path>",
        [
            Case(
                "a run's file",
                NEEDS_MANAGE,
                run_with_file,
                at(lambda w, s, role: f"{ARTIFACTS}artifacts/{run_root(s)}/dir/file.txt"),
                fresh=True,
                effect=lambda s: not stored(lambda s: f"{run_root(s)}/dir/file.txt")(s),
            ),
            Case(
                "a logged model's file",
                NEEDS_MANAGE,
                logged_model,
                at(lambda w, s, role: f"{ARTIFACTS}artifacts/{model_root(s)}/MLmodel"),
                fresh=True,
                effect=lambda s: not stored(lambda s: f"{model_root(s)}/MLmodel")(s),
            ),
        ],
    ),
    # Multipart and presigned transfers are off: any signed-in caller hears so (501), nothing more.
    Row(
        ("POST",),
        "/api/2.0/mlflow-artifacts/mpu/create/<artifact_path>",
        [
            Case("not supported", SIGNED_IN, nothing, at(lambda w, s, role: f"{ARTIFACTS}mpu/create/1/x"), ok=501),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow-artifacts/mpu/complete/<artifact_path>",
        [
            Case("not supported", SIGNED_IN, nothing, at(lambda w, s, role: f"{ARTIFACTS}mpu/complete/1/x"), ok=501),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow-artifacts/mpu/abort/<artifact_path>",
        [
            Case("not supported", SIGNED_IN, nothing, at(lambda w, s, role: f"{ARTIFACTS}mpu/abort/1/x"), ok=501),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow-artifacts/presigned/<artifact_path>",
        [
            Case("not supported", SIGNED_IN, nothing, at(lambda w, s, role: f"{ARTIFACTS}presigned/1/x"), ok=501),
        ],
    ),
    Row(("GET",), "/api/3.0/mlflow/server-info", [Case("capabilities", PUBLIC, nothing, fixed())]),
    # Everything else under the MLflow prefixes: a clear MLflow error for anyone, never a page.
    Row(
        ANY_METHOD,
        "/(?:ajax-)?api/[23]\\.0/[\\s\\S]*",
        [
            Case(
                "unsupported endpoint",
                PUBLIC,
                nothing,
                at(lambda w, s, role: "api/2.0/mlflow/no-such-endpoint"),
                ok=404,
            ),
        ],
    ),
    # ------------------------------------------------------------ MLflow's auth API: users
    Row(
        ("POST",),
        "/api/2.0/mlflow/users/create",
        [
            Case(
                "create a user",
                SUPERUSER,
                nothing,
                params(lambda w, s, role: {"username": w.unique("user"), "password": STRONG_PASSWORD}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/users/get",
        [
            Case("my account", SIGNED_IN, nothing, fixed({"username": "{me}"})),
            Case("someone else's account", SUPERUSER, nothing, fixed({"username": "zed"})),
        ],
    ),
    Row(("GET",), "/api/2.0/mlflow/users/current", [Case("who am I", SIGNED_IN, nothing, fixed())]),
    Row(
        ("GET",),
        "/api/2.0/mlflow/users/list",
        [
            Case(
                "accounts (others' roles for superusers only)",
                SIGNED_IN,
                nothing,
                fixed(),
                check=users_roles_only_for_self,
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/2.0/mlflow/users/update-password",
        [
            Case("my own, with the current one", SIGNED_IN, nothing, params(own_password)),
            Case(
                "someone else's",
                SUPERUSER,
                nothing,
                params(lambda w, s, role: {"username": fresh_user(w).username, "password": STRONG_PASSWORD}),
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/2.0/mlflow/users/update-admin",
        [
            Case(
                "promote",
                SUPERUSER,
                nothing,
                params(lambda w, s, role: {"username": fresh_user(w).username, "is_admin": True}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/users/delete",
        [
            Case("delete a user", SUPERUSER, nothing, params(lambda w, s, role: {"username": fresh_user(w).username})),
        ],
    ),
    Row(("GET",), "/api/2.0/mlflow/users/current/permissions", [Case("my grants", SIGNED_IN, nothing, fixed())]),
    Row(
        ("POST",),
        "/api/2.0/mlflow/users/permissions/grant",
        [
            Case(
                "on an experiment",
                NEEDS_MANAGE,
                experiment,
                params(
                    lambda w, s, role: {
                        "username": fresh_user(w).username,
                        "resource_type": "experiment",
                        "resource_id": str(s.pk),
                        "permission": "READ",
                    }
                ),
            ),
            Case(
                "on a registered model",
                NEEDS_MANAGE,
                registered_model,
                params(
                    lambda w, s, role: {
                        "username": fresh_user(w).username,
                        "resource_type": "registered_model",
                        "resource_id": s.name,
                        "permission": "READ",
                    }
                ),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/users/permissions/revoke",
        [
            Case(
                "on an experiment",
                NEEDS_MANAGE,
                experiment,
                params(
                    lambda w, s, role: {
                        "username": user_grant(w, s, role).user.username,
                        "resource_type": "experiment",
                        "resource_id": str(s.pk),
                    }
                ),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/users/permissions/get",
        [
            Case(
                "my own level",
                SIGNED_IN,
                experiment,
                params(
                    lambda w, s, role: {"username": "{me}", "resource_type": "experiment", "resource_id": str(s.pk)}
                ),
            ),
            Case(
                "someone else's level",
                NEEDS_MANAGE,
                experiment,
                params(lambda w, s, role: {"username": "zed", "resource_type": "experiment", "resource_id": str(s.pk)}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/users/permissions/list",
        [
            Case("my grants", SIGNED_IN, nothing, fixed({"username": "{me}"})),
            Case("someone else's grants", SUPERUSER, nothing, fixed({"username": "zed"})),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/users/roles/list",
        [
            Case("my roles", SIGNED_IN, nothing, fixed({"username": "{me}"})),
            Case("someone else's roles", SUPERUSER, nothing, fixed({"username": "zed"})),
        ],
    ),
    # ------------------------------------------------------------ MLflow's auth API: roles (teams)
    Row(
        ("POST",),
        "/api/2.0/mlflow/roles/create",
        [
            Case(
                "create",
                SUPERUSER,
                nothing,
                params(lambda w, s, role: {"workspace": "default", "name": w.unique("role")}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/roles/get",
        [
            Case(
                "a role, with grants on readable objects only",
                SIGNED_IN,
                team_grants,
                params(lambda w, s, role: {"role_id": str(w.editors.pk)}),
                check=shows_only_readable_grants(lambda w, data: data["role"]),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/roles/list",
        [
            Case(
                "roles, with grants on readable objects only",
                SIGNED_IN,
                team_grants,
                fixed(),
                check=shows_only_readable_grants(editors_role),
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/2.0/mlflow/roles/update",
        [
            Case(
                "rename",
                SUPERUSER,
                nothing,
                params(lambda w, s, role: {"role_id": w.team().pk, "name": w.unique("role")}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/roles/delete",
        [
            Case("delete", SUPERUSER, nothing, params(lambda w, s, role: {"role_id": w.team().pk})),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/roles/permissions/add",
        [
            Case(
                "on an experiment",
                NEEDS_MANAGE,
                experiment,
                params(
                    lambda w, s, role: {
                        "role_id": w.team().pk,
                        "resource_type": "experiment",
                        "resource_pattern": str(s.pk),
                        "permission": "READ",
                    }
                ),
            ),
            Case(
                "on every experiment ('*')",
                SUPERUSER,
                nothing,
                params(
                    lambda w, s, role: {
                        "role_id": w.team().pk,
                        "resource_type": "experiment",
                        "resource_pattern": "*",
                        "permission": "READ",
                    }
                ),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/roles/permissions/remove",
        [
            Case(
                "on an experiment",
                NEEDS_MANAGE,
                experiment,
                params(lambda w, s, role: {"role_permission_id": team_with_grant(w, s, role).id}),
            ),
            Case(
                "on every experiment ('*')",
                SUPERUSER,
                nothing,
                params(
                    lambda w, s, role: {
                        "role_permission_id": permissions.team_default_id(team_with_default(w, s, role)[1])
                    }
                ),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/roles/permissions/list",
        [
            Case(
                "a role's permissions, on readable objects only",
                SIGNED_IN,
                team_grants,
                params(lambda w, s, role: {"role_id": str(w.editors.pk)}),
                check=shows_only_readable_grants(lambda w, data: {"permissions": data["role_permissions"]}),
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/2.0/mlflow/roles/permissions/update",
        [
            Case(
                "on an experiment",
                NEEDS_MANAGE,
                experiment,
                params(lambda w, s, role: {"role_permission_id": team_with_grant(w, s, role).id, "permission": "EDIT"}),
            ),
            Case(
                "on every experiment ('*')",
                SUPERUSER,
                nothing,
                params(
                    lambda w, s, role: {
                        "role_permission_id": permissions.team_default_id(team_with_default(w, s, role)[1]),
                        "permission": "EDIT",
                    }
                ),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/2.0/mlflow/roles/assign",
        [
            Case(
                "add a member",
                SUPERUSER,
                nothing,
                params(lambda w, s, role: {"role_id": w.team().pk, "username": "zed"}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/2.0/mlflow/roles/unassign",
        [
            Case(
                "remove a member",
                SUPERUSER,
                nothing,
                params(lambda w, s, role: {"role_id": team_with_zed(w).pk, "username": "zed"}),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/2.0/mlflow/roles/users/list",
        [
            Case("a role's members", SIGNED_IN, nothing, params(lambda w, s, role: {"role_id": str(w.editors.pk)})),
        ],
    ),
    # ------------------------------------------------------------ native API: who, what
    Row(("GET",), "/api/v1/", [Case("the API root", SIGNED_IN, nothing, fixed())]),
    Row(("GET",), "/api/v1/me/", [Case("who am I", SIGNED_IN, nothing, fixed())]),
    Row(("GET",), "/api/v1/schema/", [Case("the OpenAPI schema", SIGNED_IN, nothing, fixed())]),
    Row(("GET",), "/api/v1/docs/", [Case("the docs page", SIGNED_IN, nothing, fixed())]),
    # ------------------------------------------------------------ native API: users
    Row(("GET",), "/api/v1/users/", [Case("accounts", SIGNED_IN, nothing, fixed())]),
    Row(
        ("POST",),
        "/api/v1/users/",
        [
            Case(
                "create a user",
                SUPERUSER,
                nothing,
                params(lambda w, s, role: {"username": w.unique("user"), "password": STRONG_PASSWORD}),
                ok=201,
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/users/<username>/",
        [
            Case(
                "an account (its email for administrators)",
                SIGNED_IN,
                nothing,
                at(lambda w, s, role: "api/v1/users/zed/"),
                check=email_only_for_admins,
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/v1/users/<username>/",
        [
            Case(
                "promote",
                SUPERUSER,
                nothing,
                at(
                    lambda w, s, role: f"api/v1/users/{fresh_user(w).username}/",
                    lambda w, s, role: {"is_superuser": True},
                ),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/v1/users/<username>/",
        [
            Case(
                "delete a user",
                SUPERUSER,
                nothing,
                at(lambda w, s, role: f"api/v1/users/{fresh_user(w).username}/"),
                ok=204,
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/v1/users/<username>/password/",
        [
            Case(
                "my own, with the current one",
                SIGNED_IN,
                nothing,
                lambda w, s, role, m: Call(
                    path=f"api/v1/users/{w.username(role) or 'zed'}/password/", body=own_password(w, s, role)
                ),
                ok=204,
                check=session_ended,
            ),
            Case(
                "someone else's",
                SUPERUSER,
                nothing,
                at(
                    lambda w, s, role: f"api/v1/users/{fresh_user(w).username}/password/",
                    lambda w, s, role: {"password": STRONG_PASSWORD},
                ),
                ok=204,
            ),
        ],
    ),
    # ------------------------------------------------------------ native API: teams
    Row(("GET",), "/api/v1/teams/", [Case("teams", SIGNED_IN, nothing, fixed())]),
    Row(
        ("POST",),
        "/api/v1/teams/",
        [
            Case("create", SUPERUSER, nothing, params(lambda w, s, role: {"name": w.unique("team")}), ok=201),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/teams/<pk>/",
        [
            Case("a team", SIGNED_IN, nothing, at(lambda w, s, role: f"api/v1/teams/{w.editors.pk}/")),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/v1/teams/<pk>/",
        [
            Case(
                "describe",
                SUPERUSER,
                nothing,
                lambda w, s, role, m: Call(path=f"api/v1/teams/{w.team().pk}/", body={"description": "d"}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/v1/teams/<pk>/",
        [
            Case("delete", SUPERUSER, nothing, at(lambda w, s, role: f"api/v1/teams/{w.team().pk}/"), ok=204),
        ],
    ),
    Row(
        ("POST",),
        "/api/v1/teams/<pk>/members/",
        [
            Case(
                "add a member",
                SUPERUSER,
                nothing,
                lambda w, s, role, m: Call(path=f"api/v1/teams/{w.team().pk}/members/", body={"username": "zed"}),
                ok=204,
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/v1/teams/<pk>/members/<username>/",
        [
            Case(
                "remove a member",
                SUPERUSER,
                nothing,
                at(lambda w, s, role: f"api/v1/teams/{team_with_zed(w).pk}/members/zed/"),
                ok=204,
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/v1/teams/<pk>/admins/",
        [
            Case(
                "make a team admin",
                SUPERUSER,
                nothing,
                lambda w, s, role, m: Call(path=f"api/v1/teams/{w.team().pk}/admins/", body={"username": "zed"}),
                ok=204,
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/v1/teams/<pk>/admins/<username>/",
        [
            Case(
                "take a team admin's role away",
                SUPERUSER,
                nothing,
                at(lambda w, s, role: f"api/v1/teams/{team_with_admin_zed(w).pk}/admins/zed/"),
                ok=204,
            ),
        ],
    ),
    Row(
        ("PUT",),
        "/api/v1/teams/<pk>/defaults/<resource_type>/",
        [
            Case(
                "set a default",
                SUPERUSER,
                nothing,
                lambda w, s, role, m: Call(
                    path=f"api/v1/teams/{w.team().pk}/defaults/experiment/", body={"level": "READ"}
                ),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/v1/teams/<pk>/defaults/<resource_type>/",
        [
            Case(
                "remove a default",
                SUPERUSER,
                nothing,
                at(lambda w, s, role: f"api/v1/teams/{team_with_default(w, s, role)[0].pk}/defaults/experiment/"),
                ok=204,
            ),
        ],
    ),
    # ------------------------------------------------------------ native API: my tokens (own objects only)
    Row(
        ("GET",),
        "/api/v1/tokens/",
        [
            ListCase(
                "my tokens and alice's",
                tokens_universe,
                expected_own_tokens,
                native_page,
                native_parse(lambda item: item["id"]),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/v1/tokens/",
        [
            Case("create (with a session)", SIGNED_IN, nothing, fixed({"name": "api"}), ok=201),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/tokens/<pk>/",
        [
            Case("my token", SIGNED_IN, nothing, at(lambda w, s, role: f"api/v1/tokens/{token_of(w, role).pk}/")),
            Case(
                "someone else's token",
                NOBODY_ELSE_HIDDEN,
                nothing,
                at(lambda w, s, role: f"api/v1/tokens/{token_of(w, 'alice').pk}/"),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/v1/tokens/<pk>/revoke/",
        [
            Case(
                "my token", SIGNED_IN, nothing, at(lambda w, s, role: f"api/v1/tokens/{token_of(w, role).pk}/revoke/")
            ),
            Case(
                "someone else's token",
                NOBODY_ELSE_HIDDEN,
                nothing,
                at(lambda w, s, role: f"api/v1/tokens/{token_of(w, 'alice').pk}/revoke/"),
            ),
        ],
    ),
    # ------------------------------------------------------------ native API: grants
    Row(
        ("GET",),
        "/api/v1/grants/",
        [
            Case(
                "grants on an experiment",
                NEEDS_MANAGE,
                experiment,
                params(lambda w, s, role: {"resource_type": "experiment", "resource": str(s.pk)}),
            ),
            Case(
                "grants on a registered model",
                NEEDS_MANAGE,
                registered_model,
                params(lambda w, s, role: {"resource_type": "registered_model", "resource": s.name}),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/v1/grants/",
        [
            Case(
                "on an experiment",
                NEEDS_MANAGE,
                experiment,
                params(
                    lambda w, s, role: {
                        "resource_type": "experiment",
                        "resource": str(s.pk),
                        "user": fresh_user(w).username,
                        "level": "READ",
                    }
                ),
                ok=201,
            ),
            Case(
                "on a registered model",
                NEEDS_MANAGE,
                registered_model,
                params(
                    lambda w, s, role: {
                        "resource_type": "registered_model",
                        "resource": s.name,
                        "user": fresh_user(w).username,
                        "level": "READ",
                    }
                ),
                ok=201,
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/grants/<pk>/",
        [
            Case(
                "a grant on an experiment",
                NEEDS_MANAGE,
                experiment_with_grant,
                at(lambda w, s, role: f"api/v1/grants/{s.grant.id}/"),
            ),
        ],
    ),
    Row(
        ("PATCH",),
        "/api/v1/grants/<pk>/",
        [
            Case(
                "change its level",
                NEEDS_MANAGE,
                experiment,
                lambda w, s, role, m: Call(path=f"api/v1/grants/{user_grant(w, s, role).id}/", body={"level": "EDIT"}),
            ),
        ],
    ),
    Row(
        ("DELETE",),
        "/api/v1/grants/<pk>/",
        [
            Case(
                "revoke",
                NEEDS_MANAGE,
                experiment,
                at(lambda w, s, role: f"api/v1/grants/{user_grant(w, s, role).id}/"),
                ok=204,
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/grants/holders/",
        [
            Case(
                "who can see an experiment",
                NEEDS_MANAGE,
                experiment,
                params(lambda w, s, role: {"resource_type": "experiment", "resource": str(s.pk)}),
            ),
        ],
    ),
    # ------------------------------------------------------------ native API: the audit log
    # Superusers read it all; others the history of an object they MANAGE, named in the query.
    Row(
        ("GET",),
        "/api/v1/audit-events/",
        [
            Case(
                "the history of a registered model",
                NEEDS_MANAGE,
                registered_model,
                params(lambda w, s, role: {"object_type": "registered_model", "object": s.name}),
            ),
            Case(
                "the history of an experiment",
                NEEDS_MANAGE,
                experiment,
                params(lambda w, s, role: {"object_type": "experiment", "object": str(s.pk)}),
            ),
            Case("the whole log", SUPERUSER, nothing, fixed()),
            Case("the history of a team", SUPERUSER, nothing, fixed({"object_type": "team", "object": "readers"})),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/audit-events/<pk>/",
        [
            Case(
                "an event of a registered model",
                NEEDS_MANAGE,
                registered_model,
                at(
                    lambda w, s, role: "api/v1/audit-events/{}/".format(
                        AuditEvent.objects.filter(resource_type="registered_model", resource_id=str(s.pk)).first().pk
                    )
                ),
            ),
            Case(
                "an event about a team",
                SUPERUSER_ELSE_HIDDEN,
                nothing,
                at(
                    lambda w, s, role: "api/v1/audit-events/{}/".format(
                        AuditEvent.objects.get(action="team.created", object_id=str(w.readers.pk)).pk
                    )
                ),
            ),
        ],
    ),
    # ------------------------------------------------------------ native API: tracking and registry (read only)
    Row(
        ("GET",),
        "/api/v1/experiments/",
        [
            native_list(
                "experiments A (granted) and B (not), and the Default experiment",
                list_universe_tracking,
                expected_experiments,
                lambda item: str(item["id"]),
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/experiments/<pk>/",
        [
            Case("experiment", NEEDS_READ, experiment, at(lambda w, s, role: f"api/v1/experiments/{s.pk}/")),
        ],
    ),
    Row(
        ("POST",),
        "/api/v1/experiments/<pk>/private/",
        [
            # Who may see it is decided by its managers.
            Case(
                "make it private",
                NEEDS_MANAGE,
                experiment,
                at(lambda w, s, role: f"api/v1/experiments/{s.pk}/private/", lambda w, s, role: {"private": True}),
                fresh=True,
                effect=made_private,
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/runs/",
        [
            native_list(
                "runs in A, B, and others' and one's own in the Default experiment",
                list_universe_tracking,
                expected_runs,
                lambda item: item["id"],
            ),
        ],
    ),
    Row(("GET",), "/api/v1/runs/<pk>/", [Case("run", NEEDS_READ, run, at(lambda w, s, role: f"api/v1/runs/{s.pk}/"))]),
    Row(
        ("GET",),
        "/api/v1/logged-models/",
        [
            native_list(
                "logged models in A, B, and others' and one's own in the Default experiment",
                list_universe_tracking,
                expected_logged_models,
                lambda item: item["id"],
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/logged-models/<pk>/",
        [
            Case("logged model", NEEDS_READ, logged_model, at(lambda w, s, role: f"api/v1/logged-models/{s.pk}/")),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/registered-models/",
        [
            native_list(
                "registered models M1 (granted) and M2 (not)",
                list_universe_registry,
                expected_models,
                lambda item: item["name"],
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/registered-models/<name>/",
        [
            Case(
                "registered model",
                NEEDS_READ,
                registered_model,
                at(lambda w, s, role: f"api/v1/registered-models/{s.name}/"),
            ),
        ],
    ),
    Row(
        ("POST",),
        "/api/v1/registered-models/<name>/private/",
        [
            Case(
                "make it private",
                NEEDS_MANAGE,
                registered_model,
                at(
                    lambda w, s, role: f"api/v1/registered-models/{s.name}/private/",
                    lambda w, s, role: {"private": True},
                ),
                fresh=True,
                effect=made_private,
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/model-versions/",
        [
            native_list(
                "versions of M1 (granted) and M2 (not)",
                list_universe_registry,
                expected_versions,
                lambda item: item["id"],
            ),
        ],
    ),
    Row(
        ("GET",),
        "/api/v1/model-versions/<str:name>/<int:version>/",
        [
            Case(
                "version",
                NEEDS_READ,
                version,
                at(lambda w, s, role: f"api/v1/model-versions/{s.registered_model.name}/{s.version}/"),
            ),
        ],
    ),
    # ------------------------------------------------------------ webhooks (both doors; see matrix_webhooks)
    *WEBHOOK_ROWS,
    # ---- approval workflow (native API requests, policy, watch; /requests/ pages; see matrix_approvals)
    *APPROVAL_ROWS,
    # ---- comments on experiments, runs, models, versions and requests (native API; see matrix_comments)
    *COMMENT_ROWS,
    # ---- Databricks' approval API on the MLflow door (requests, comments; see matrix_databricks)
    *DATABRICKS_ROWS,
]


# ---------------------------------------------------------------- the tests


def table_pairs() -> dict[tuple[str, str], Row]:
    pairs = {}
    for row in TABLE:
        for method in row.methods:
            assert (method, row.route) not in pairs, f"two rows for {method} {row.route}"
            pairs[(method, row.route)] = row
    return pairs


def excluded(key: str) -> bool:
    return key in EXCLUDED_ROUTES or any(key.startswith(prefix) for prefix in EXCLUDED_PREFIXES)


# Paths to probe function views whose route has parameters.
PROBE_PATHS = {
    "/accounts/tokens/<int:token_id>/revoke": "/accounts/tokens/999999/revoke",
    "/(?:ajax-)?api/[23]\\.0/[\\s\\S]*": "/api/2.0/mlflow/no-such-endpoint",
    # ---- approval workflow
    **APPROVAL_PROBE_PATHS,
}


def probe_methods(client: Client, path: str) -> tuple[str, ...]:
    """The methods a plain function view serves: those not answered with 405."""
    return tuple(m for m in PROBED_METHODS if client.generic(m, path).status_code != 405)


def test_every_served_route_has_a_row(world):
    """A new route, or a new method on a route, fails here until the table has its row."""
    pairs = table_pairs()
    served = set()
    superuser = world.client("superuser", session=True)
    for key, route in served_routes().items():
        if excluded(key):
            continue
        methods = declared_methods(route.view)
        if methods is None:
            # A plain function view says nothing about its methods: ask it.
            methods = probe_methods(superuser, PROBE_PATHS.get(key, key))
        served |= {(method, key) for method in methods}

    missing = sorted(served - set(pairs))
    stale = sorted(set(pairs) - served)
    assert not missing, "served (method, route) pairs without a row in the matrix:\n" + "\n".join(
        f"  {m} {r}" for m, r in missing
    )
    assert not stale, "rows for (method, route) pairs no longer served:\n" + "\n".join(f"  {m} {r}" for m, r in stale)


def test_the_walk_folds_the_mlflow_mirrors_into_one_row():
    routes = served_routes()

    assert [m.prefix for m in routes["/api/2.0/mlflow/runs/get"].mounts] == list(MLFLOW_MOUNTS[:2])
    assert [m.prefix for m in routes["/api/2.0/mlflow/users/create"].mounts] == list(MLFLOW_MOUNTS)
    assert [m.prefix for m in routes["/api/3.0/mlflow/server-info"].mounts] == list(MLFLOW_MOUNTS[2:])


@pytest.mark.parametrize("row", TABLE, ids=lambda row: f"{'|'.join(row.methods)} {row.route}")
def test_the_matrix(world, row):
    routes = served_routes()
    if row.route not in routes:
        pytest.fail(f"{row.route} is not served (see test_every_served_route_has_a_row)")
    failures, sent = run_row(world, row, routes[row.route])
    assert not failures, f"{len(failures)} of {sent} requests disagree with the rules:\n" + "\n".join(failures)
    assert sent, "no request was sent"


# ---------------------------------------------------------------- ids a request carries
# Each id in a request is checked for the right it implies on its own object, not only the
# object the request addresses. The service-level rules are in test_permissions.py; these
# go through the MLflow door. The actor is "no_grant" (nora) unless said otherwise.


def mlflow_post(world, role, path, body):
    return world.client(role, session=False).post(
        f"/api/2.0/mlflow/{path}",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.tokens[role]}",
    )


def refused(response, status=404, code="RESOURCE_DOES_NOT_EXIST"):
    assert response.status_code == status, response.content
    assert response.json()["error_code"] == code, response.content
    return True


def test_a_logged_model_cannot_claim_another_users_run_in_the_default_experiment_as_its_source(world):
    theirs = world.run(experiment=world.default_experiment, owner=world.alice)

    response = mlflow_post(
        world, "no_grant", "logged-models", {"experiment_id": "0", "name": "model", "source_run_id": theirs.pk}
    )

    assert refused(response)
    assert not LoggedModel.objects.filter(owner=world.users["no_grant"]).exists()


def test_log_batch_cannot_attach_a_metric_to_another_users_logged_model(world):
    mine = world.run(experiment=world.default_experiment, owner=world.users["no_grant"])
    theirs = world.logged_model(experiment=world.default_experiment, owner=world.alice)

    response = mlflow_post(
        world,
        "no_grant",
        "runs/log-batch",
        {"run_id": mine.pk, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0, "model_id": theirs.pk}]},
    )

    assert refused(response)
    assert not mine.latest_metrics.exists()


def test_run_outputs_cannot_link_another_users_logged_model(world):
    mine = world.run(experiment=world.default_experiment, owner=world.users["no_grant"])
    theirs = world.logged_model(experiment=world.default_experiment, owner=world.alice)

    response = mlflow_post(
        world, "no_grant", "runs/outputs", {"run_id": mine.pk, "models": [{"model_id": theirs.pk, "step": 0}]}
    )

    assert refused(response)
    assert not mine.model_outputs.exists()


def test_run_outputs_cannot_link_a_readable_but_not_editable_logged_model(world):
    experiment = world.experiment(("edit",))
    mine = world.run(experiment=experiment, owner=world.users["edit"])
    # The same experiment, but the model's owner turns the editor into a reader of it.
    theirs = world.logged_model(experiment=experiment, owner=world.alice)
    permissions.grant_update(actor=world.alice, root=experiment, level="READ", user=world.users["edit"])

    response = mlflow_post(world, "edit", "runs/outputs", {"run_id": mine.pk, "models": [{"model_id": theirs.pk}]})

    assert refused(response, 403, "PERMISSION_DENIED")
    assert not mine.model_outputs.exists()


def test_log_inputs_cannot_name_a_logged_model_the_user_cannot_read(world):
    mine = world.run(experiment=world.default_experiment, owner=world.users["no_grant"])
    hidden = world.logged_model(())

    response = mlflow_post(
        world, "no_grant", "runs/log-inputs", {"run_id": mine.pk, "models": [{"model_id": hidden.pk}]}
    )

    assert refused(response)
    assert not mine.model_inputs.exists()


def test_a_new_run_cannot_name_a_parent_run_the_user_cannot_read(world):
    hidden = world.run(())

    response = mlflow_post(
        world,
        "no_grant",
        "runs/create",
        {"experiment_id": "0", "tags": [{"key": "mlflow.parentRunId", "value": hidden.pk}]},
    )

    assert refused(response)
    assert not Run.objects.filter(owner=world.users["no_grant"]).exists()


def test_registering_a_version_needs_read_on_its_source_run_not_only_edit_on_the_model(world):
    hidden = world.run((), model_dir=True)
    model = world.registered_model(("edit",))

    def register(run_id):
        return mlflow_post(
            world,
            "edit",
            "model-versions/create",
            {"name": model.name, "source": f"runs:/{run_id}/model", "run_id": run_id},
        )

    response = register(hidden.pk)
    missing = register("0" * 32)

    # As MLflow answers a source it cannot use: 400, and the same words as for a missing run.
    assert refused(response, 400, "INVALID_PARAMETER_VALUE")
    assert response.json()["message"].replace(hidden.pk, "<id>") == missing.json()["message"].replace("0" * 32, "<id>")
    assert not model.versions.exists()


def test_use_reads_as_read_does_and_writes_nothing(world):
    reader = world.users["no_grant"]
    found = world.run((), tag=True)
    permissions.grant_create(actor=world.alice, root=found.experiment, level="USE", user=reader)
    client = world.client("no_grant", session=False)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {world.tokens['no_grant']}"}

    assert client.get("/api/2.0/mlflow/runs/get", {"run_id": found.pk}, **headers).status_code == 200
    response = mlflow_post(world, "no_grant", "runs/set-tag", {"run_id": found.pk, "key": "k", "value": "new"})
    assert refused(response, 403, "PERMISSION_DENIED")
    response = mlflow_post(world, "no_grant", "runs/search", {"experiment_ids": [str(found.experiment_id)]})
    assert [r["info"]["run_id"] for r in response.json()["runs"]] == [found.pk]
