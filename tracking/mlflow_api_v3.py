"""MLflow door, API 3.0 paths."""

urlpatterns: list = []
