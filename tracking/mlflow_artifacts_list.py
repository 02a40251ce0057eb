"""MLflow door: GET /api/2.0/mlflow/artifacts/list."""

urlpatterns: list = []
