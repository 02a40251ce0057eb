import pytest
from django.urls import resolve

from portal.mlflow_http import unsupported_endpoint
from tests.portal.helpers import API_PATH, API_URL
from tests.portal.webhook_receiver import receiver, webhook_settings  # noqa: F401 (the webhook tests' fixtures)


@pytest.fixture
def api_url(default_experiment):
    """The URL of an authenticated MLflow route; skips the test while that route is not served."""
    if resolve(API_PATH).func is unsupported_endpoint:
        pytest.skip(f"GET {API_PATH} is not served yet (ENDPOINT_NOT_FOUND)")
    return API_URL
