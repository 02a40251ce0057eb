"""Small helpers for the portal tests: Authorization headers, fresh passwords."""

import base64
import secrets

# An MLflow route guarded by the AUTHENTICATED rule, as the mlflow client calls it.
API_PATH = "/api/2.0/mlflow/experiments/get"
API_URL = f"{API_PATH}?experiment_id=0"


def bearer(raw_token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}


def basic(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {encoded}"}


def fresh_password(user) -> str:
    """Give `user` a password no other test uses.

    Verified Basic credentials are cached under a hash of username and password; with a
    shared cache (REDIS_URL, several xdist workers) a fixed password would let tests see
    each other's entries.
    """
    password = secrets.token_urlsafe(16)
    user.set_password(password)
    user.save(update_fields=["password"])
    return password
