from django.contrib import admin
from django.urls import include, path, re_path

from portal import views
from portal.mlflow_http import unsupported_endpoint
from registry import views as registry_views

mlflow_patterns = [
    path("", include("tracking.mlflow_api")),
    path("", include("tracking.mlflow_artifacts_list")),
    path("", include("tracking.mlflow_logged_models")),
    path("", include("registry.mlflow_api")),
    path("", include("registry.databricks_api")),
    path("", include("portal.mlflow_auth")),
    path("", include("portal.mlflow_webhooks")),
]

mlflow_v3_patterns = [
    path("", include("tracking.mlflow_api_v3")),
    path("", include("portal.mlflow_auth")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", views.login_view, name="login"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("accounts/tokens/", views.token_list, name="token-list"),
    path("accounts/tokens/<int:token_id>/revoke", views.token_revoke, name="token-revoke"),
    path("requests/", registry_views.transition_request_list_page, name="transition-request-list-page"),
    path("requests/<int:request_id>/", registry_views.transition_request_page, name="transition-request-page"),
    path(
        "requests/<int:request_id>/<str:action>",
        registry_views.transition_request_decide_page,
        name="transition-request-decide-page",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.api_urls")),
    path("api/2.0/mlflow/", include(mlflow_patterns)),
    path("ajax-api/2.0/mlflow/", include(mlflow_patterns)),
    path("api/2.0/mlflow-artifacts/", include("tracking.mlflow_artifacts")),
    path("api/3.0/mlflow/", include(mlflow_v3_patterns)),
    path("ajax-api/3.0/mlflow/", include(mlflow_v3_patterns)),
    # Deny by default for the rest of the MLflow API: a clear MLflow error, never a page.
    re_path(r"^(?:ajax-)?api/[23]\.0/[\s\S]*$", unsupported_endpoint),
]
