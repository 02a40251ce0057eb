"""The native API, /api/v1/ (namespace "api-v1"): one router for the resources, plus
who-am-I, one model version by name and number, the OpenAPI schema and its docs page.

Every view here declares routes.API: DRF authenticates (token, Basic, session with CSRF)
and the view's permission classes decide, then services and selectors check objects.
"""

from django.urls import include, path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import routers

from portal import api_views, routes, webhooks_api
from portal.api import HeaderAuthentication
from registry import api as registry_api
from registry import approvals_api
from registry import comments_api as registry_comments
from tracking import api as tracking_api
from tracking import comments_api as tracking_comments

app_name = "api-v1"


@routes.route_rule(routes.API)
class ApiRootView(routers.APIRootView):
    """The list of the native API's resources."""


class ApiRouter(routers.DefaultRouter):
    """DefaultRouter without format suffixes (JSON is the only format, and a suffix would
    make `registered-models/model.json/` ambiguous), whose root also links to the routes
    declared beside it (`root_links`: name in the root -> URL name)."""

    include_format_suffixes = False
    APIRootView = ApiRootView

    def __init__(self, *, root_links: dict[str, str] | None = None):
        super().__init__()
        self.root_links = root_links or {}

    def get_api_root_view(self, api_urls=None):
        list_name = self.routes[0].name
        links = {prefix: list_name.format(basename=basename) for prefix, _, basename in self.registry}
        return self.APIRootView.as_view(api_root_dict={**self.root_links, **links})


class HeaderAuthenticationScheme(OpenApiAuthenticationExtension):
    """How the schema describes portal.api.HeaderAuthentication: two schemes, either works."""

    target_class = HeaderAuthentication
    name = ["tokenAuth", "basicAuth"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "A personal API token (POST /api/v1/tokens/)."},
            {"type": "http", "scheme": "basic", "description": "Username and password."},
        ]


@routes.route_rule(routes.API)
class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 schema: YAML by default, JSON with ?format=json or Accept: application/json."""


@routes.route_rule(routes.API)
class DocsView(SpectacularSwaggerView):
    """Swagger UI over the schema, from drf-spectacular-sidecar's static files (no CDN)."""


router = ApiRouter(root_links={"me": "me", "schema": "schema", "docs": "docs"})
router.register("users", api_views.UserViewSet, basename="user")
router.register("teams", api_views.TeamViewSet, basename="team")
router.register("tokens", api_views.ApiTokenViewSet, basename="token")
router.register("grants", api_views.GrantViewSet, basename="grant")
router.register("webhooks", webhooks_api.WebhookViewSet, basename="webhook")
router.register("audit-events", api_views.AuditEventViewSet, basename="audit-event")
router.register("experiments", tracking_api.ExperimentViewSet, basename="experiment")
router.register("runs", tracking_api.RunViewSet, basename="run")
router.register("logged-models", tracking_api.LoggedModelViewSet, basename="logged-model")
router.register("registered-models", registry_api.RegisteredModelViewSet, basename="registered-model")
router.register("model-versions", registry_api.ModelVersionViewSet, basename="model-version")
router.register("transition-requests", approvals_api.TransitionRequestViewSet, basename="transition-request")

urlpatterns = [
    path("me/", api_views.MeView.as_view(), name="me"),
    path(
        "model-versions/<str:name>/<int:version>/",
        registry_api.ModelVersionDetailView.as_view(),
        name="model-version-detail",
    ),
    path("registered-models/<str:name>/policy/", approvals_api.PolicyView.as_view(), name="registered-model-policy"),
    path("registered-models/<str:name>/watch/", approvals_api.WatchView.as_view(), name="registered-model-watch"),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="api-v1:schema"), name="docs"),
    # Comments on five kinds of object (portal.annotations_api): the list, and one comment.
    path(
        "experiments/<int:experiment_id>/comments/",
        tracking_comments.ExperimentCommentsView.as_view(),
        name="experiment-comments",
    ),
    path(
        "experiments/<int:experiment_id>/comments/<int:comment_id>/",
        tracking_comments.ExperimentCommentView.as_view(),
        name="experiment-comment",
    ),
    path("runs/<str:run_id>/comments/", tracking_comments.RunCommentsView.as_view(), name="run-comments"),
    path(
        "runs/<str:run_id>/comments/<int:comment_id>/",
        tracking_comments.RunCommentView.as_view(),
        name="run-comment",
    ),
    path(
        "registered-models/<str:name>/comments/",
        registry_comments.RegisteredModelCommentsView.as_view(),
        name="registered-model-comments",
    ),
    path(
        "registered-models/<str:name>/comments/<int:comment_id>/",
        registry_comments.RegisteredModelCommentView.as_view(),
        name="registered-model-comment",
    ),
    path(
        "model-versions/<str:name>/<int:version>/comments/",
        registry_comments.ModelVersionCommentsView.as_view(),
        name="model-version-comments",
    ),
    path(
        "model-versions/<str:name>/<int:version>/comments/<int:comment_id>/",
        registry_comments.ModelVersionCommentView.as_view(),
        name="model-version-comment",
    ),
    path(
        "transition-requests/<int:request_id>/comments/",
        registry_comments.TransitionRequestCommentsView.as_view(),
        name="transition-request-comments",
    ),
    path(
        "transition-requests/<int:request_id>/comments/<int:comment_id>/",
        registry_comments.TransitionRequestCommentView.as_view(),
        name="transition-request-comment",
    ),
    path("", include(router.urls)),
]
