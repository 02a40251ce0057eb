"""MLflow door: see portal/mlflow_http.py for the plumbing."""

urlpatterns: list = []
