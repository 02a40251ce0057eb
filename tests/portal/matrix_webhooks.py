"""The permission matrix's rows for webhooks (imported into test_permission_matrix.TABLE).

A global webhook is a superuser's: others cannot create one (403) and do not see one (404).
A webhook scoped to a registered model is its MANAGE holders': everyone else, readers and
editors of the model included, is told it does not exist (404); creating one for a model
needs MANAGE on it (403 for those who may read the model, 404 for the others).

Webhook URLs point at https://localhost/: accepted when saved (a host name), refused at
delivery (loopback, no allowed network in the matrix), so a test request never leaves the
machine and needs no DNS.
"""

from types import SimpleNamespace

from portal.models import Webhook
from portal.webhooks import services as webhook_services
from tests.portal.matrix import (
    GRANTEES,
    HIDDEN,
    LEVEL_OF_ROLE,
    MANAGE,
    NEEDS_MANAGE,
    OK,
    SUPERUSER,
    SUPERUSER_ELSE_HIDDEN,
    Call,
    Case,
    ListCase,
    Need,
    Row,
)

URL = "https://localhost/hook"
# Seeing and changing a model's webhook: MANAGE; less is the same as nothing (hidden).
MANAGE_ELSE_HIDDEN = Need(
    "MANAGE on the model, hidden from the others", lambda role: OK if LEVEL_OF_ROLE[role] >= MANAGE else HIDDEN
)


def _webhook(w, registered_model=None, **extra):
    actor = w.alice if registered_model is not None else w.root
    return webhook_services.webhook_create(
        actor=actor,
        name=w.unique("hook"),
        url=URL,
        events=["model_version.created"],
        registered_model_name=registered_model.name if registered_model is not None else None,
        **extra,
    )


def model_webhook(w, roles):
    return _webhook(w, w.registered_model(roles))


def global_webhook(w, roles):
    return _webhook(w)


def reloaded(webhook):
    return Webhook.objects.get(pk=webhook.pk)


def described(webhook) -> bool:
    return reloaded(webhook).description == "changed"


def deleted(webhook) -> bool:
    return reloaded(webhook).deleted_timestamp is not None


def universe(w):
    """A global webhook, one on a model every grantee holds a grant on, one on a model nobody does."""
    return SimpleNamespace(
        g=_webhook(w), a=_webhook(w, w.registered_model(GRANTEES)), b=_webhook(w, w.registered_model(()))
    )


def expected(w, u, role):
    if role == "superuser":
        return {u.g.webhook_id, u.a.webhook_id, u.b.webhook_id}
    return {u.a.webhook_id} if LEVEL_OF_ROLE[role] >= MANAGE else set()


def mlflow_page(w, u, role, method, token):
    return Call(query={"max_results": 1, **({"page_token": token} if token else {})})


def mlflow_parse(data):
    return [item["webhook_id"] for item in data.get("webhooks", [])], data.get("next_page_token")


def native_page(w, u, role, method, cursor):
    return Call(query={"page_size": 1, **({"cursor": cursor} if cursor else {})})


def native_parse(data):
    from urllib.parse import parse_qs, urlparse

    following = data.get("next")
    cursor = parse_qs(urlparse(following).query)["cursor"][0] if following else None
    return [item["id"] for item in data["results"]], cursor


def mlflow_at(suffix="", body=None):
    def call(w, s, role, method):
        return Call(path=f"webhooks/{s.webhook_id}{suffix}", body=body)

    return call


def native_at(suffix="", body=None):
    def call(w, s, role, method):
        return Call(path=f"api/v1/webhooks/{s.webhook_id}/{suffix}", body=body)

    return call


def nothing(w, roles):
    return None


def registered_model(w, roles):
    return w.registered_model(roles)


def create_body(scoped: bool, *, mlflow: bool):
    def call(w, s, role, method):
        body = {"name": w.unique("new-hook"), "url": URL}
        if mlflow:
            body["events"] = [{"entity": "MODEL_VERSION", "action": "CREATED"}]
        else:
            body["events"] = ["model_version.created", "transition_request.created"]
        if scoped:
            body["registered_model"] = s.name
        return Call(body=body)

    return call


def per_scope(name, call, **options):
    """The same request on a model's webhook and on a global one."""
    return [
        Case(f"{name} a model's webhook", MANAGE_ELSE_HIDDEN, model_webhook, call, **options),
        Case(f"{name} a global webhook", SUPERUSER_ELSE_HIDDEN, global_webhook, call, **options),
    ]


MLFLOW = "/api/2.0/mlflow/webhooks"
NATIVE = "/api/v1/webhooks/"

WEBHOOK_ROWS = [
    # ------------------------------------------------------------ MLflow door
    Row(
        ("POST",),
        MLFLOW,
        [Case("create (global: MLflow's webhooks have no model)", SUPERUSER, nothing, create_body(False, mlflow=True))],
    ),
    Row(
        ("GET",),
        MLFLOW,
        [ListCase("a global webhook and two models' webhooks", universe, expected, mlflow_page, mlflow_parse)],
    ),
    Row(("GET",), MLFLOW + "/<str:webhook_id>", per_scope("read", mlflow_at())),
    Row(
        ("PATCH",),
        MLFLOW + "/<str:webhook_id>",
        per_scope("describe", mlflow_at(body={"description": "changed"}), fresh=True, effect=described),
    ),
    Row(("DELETE",), MLFLOW + "/<str:webhook_id>", per_scope("delete", mlflow_at(), fresh=True, effect=deleted)),
    Row(("POST",), MLFLOW + "/<str:webhook_id>/test", per_scope("test", mlflow_at("/test", body={}))),
    # ------------------------------------------------------------ native API
    Row(
        ("GET",),
        NATIVE,
        [ListCase("a global webhook and two models' webhooks", universe, expected, native_page, native_parse)],
    ),
    Row(
        ("POST",),
        NATIVE,
        [
            Case("create a global webhook", SUPERUSER, nothing, create_body(False, mlflow=False), ok=201),
            Case("create a model's webhook", NEEDS_MANAGE, registered_model, create_body(True, mlflow=False), ok=201),
        ],
    ),
    Row(("GET",), NATIVE + "<webhook_id>/", per_scope("read", native_at())),
    Row(
        ("PATCH",),
        NATIVE + "<webhook_id>/",
        per_scope("describe", native_at(body={"description": "changed"}), fresh=True, effect=described),
    ),
    Row(("DELETE",), NATIVE + "<webhook_id>/", per_scope("delete", native_at(), fresh=True, effect=deleted, ok=204)),
    Row(("GET",), NATIVE + "<webhook_id>/deliveries/", per_scope("deliveries of", native_at("deliveries/"))),
    Row(("POST",), NATIVE + "<webhook_id>/test/", per_scope("test", native_at("test/", body={}))),
]
