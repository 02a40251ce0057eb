"""mlportal settings.

One file, driven by environment variables. With no environment at all the portal runs
on the embedded default: SQLite under var/, artifacts on the filesystem under
var/artifacts, Celery tasks executed eagerly, an in-process cache.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- env parsers


def env_str(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (Docker secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value not in ("True", "False"):
        raise ImproperlyConfigured(f"{name} must be True or False, not {value!r}")
    return value == "True"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# ---------------------------------------------------------------- core

DEBUG = env_bool("DEBUG", default=False)
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if env_str("DATABASE_URL"):
        # A shared database means several processes, maybe on several hosts: they must
        # share one key, so it has to be given.
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set")
    # The embedded default keeps a random key in var/ so sessions survive restarts and
    # no key is ever committed to the repository.
    import secrets

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    except FileExistsError:
        pass
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from /static/ (no CDN)
    "guardian",
    "portal",
    "tracking",
    "registry",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.AuditContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.ApiAuthenticationMiddleware",
    "portal.middleware.RouteRuleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------- database

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "portal.sqlite3",
            "OPTIONS": {
                # WAL lets readers run while one writer commits; IMMEDIATE transactions
                # take the write lock up front, so concurrent writers queue on
                # busy_timeout instead of failing with "database is locked" on upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA foreign_keys=ON;"
                    "PRAGMA temp_store=MEMORY;"
                    "PRAGMA cache_size=-65536;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- auth, guardian

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # guardian: anonymous users get nothing

# What a signed-in user may do on an experiment or registered model with no grant of their own
# (MLflow's default_permission): READ (the default), USE, EDIT, MANAGE, or NONE for a
# private-by-default portal. Private objects and explicit DENY grants ignore it.
PORTAL_DEFAULT_PERMISSION = env_str("PORTAL_DEFAULT_PERMISSION", "READ").strip().upper()
if PORTAL_DEFAULT_PERMISSION not in ("NONE", "READ", "USE", "EDIT", "MANAGE"):
    raise ImproperlyConfigured(
        f"PORTAL_DEFAULT_PERMISSION must be NONE, READ, USE, EDIT or MANAGE, not {PORTAL_DEFAULT_PERMISSION!r}"
    )

# The approval workflow (registry.services.policies): the stages a registered model protects
# until its MANAGE holders set a policy of their own. Moving a version into or out of a
# protected stage opens a transition request that others approve. Empty: nothing protected.
PORTAL_PROTECTED_STAGES = env_list("PORTAL_PROTECTED_STAGES", ["Production"])
_STAGES = {"staging": "Staging", "production": "Production", "archived": "Archived"}
if any(stage.lower() not in _STAGES for stage in PORTAL_PROTECTED_STAGES):
    raise ImproperlyConfigured(
        f"PORTAL_PROTECTED_STAGES may list Staging, Production and Archived, not {PORTAL_PROTECTED_STAGES!r}"
    )
PORTAL_PROTECTED_STAGES = [_STAGES[stage.lower()] for stage in PORTAL_PROTECTED_STAGES]

# How long a verified HTTP Basic credential is trusted without re-running the password
# hasher. The cache entry is also bound to the user's current password hash and active
# flag, so a password change or deactivation takes effect at once.
BASIC_AUTH_CACHE_SECONDS = env_int("BASIC_AUTH_CACHE_SECONDS", 300)

# ---------------------------------------------------------------- DRF

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.HeaderAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: /api/v1/docs/ is the interactive page. Parsing JSON only also means a
    # cross-site form (which cannot send application/json without a CORS preflight) never
    # reaches a view, even from a browser that remembers Basic credentials.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.CursorPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "mlportal API",
    "DESCRIPTION": (
        "The portal's own REST API. Authenticate with a personal API token (Bearer), HTTP Basic, "
        "or a signed-in session (writes then need the CSRF token). Lists are cursor-paginated."
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Several fields share a name ("status", "level") with different choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "GrantLevelEnum": "portal.permissions.GRANT_LEVELS",
        "LevelEnum": "portal.models.TeamDefaultGrant.Level",
        "RunStatusEnum": "tracking.models.RunStatus",
        "LoggedModelStatusEnum": "tracking.models.LoggedModelStatus",
        "ModelVersionStatusEnum": "registry.models.ModelVersionStatus",
        "WebhookStatusEnum": "portal.models.Webhook.Status",
        "WebhookDeliveryStatusEnum": "portal.models.WebhookDelivery.Status",
        "WebhookEventEnum": "portal.webhooks.events.EVENTS",
    },
    # The docs page loads Swagger UI from drf-spectacular-sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# ---------------------------------------------------------------- Celery, cache

REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# A task is redelivered if its worker did not acknowledge it within this long (Redis). It
# must be longer than any task runs (the apply task's hard limit is 150 s), or a slow task
# would run twice; applying is idempotent, so twice would be harmless, only wasteful.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Approved requests not applied after this many seconds are re-queued by the sweep.
PORTAL_APPLY_SWEEP_AFTER_SECONDS = env_int("PORTAL_APPLY_SWEEP_AFTER_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "transition-requests-sweep": {
        "task": "registry.tasks.transition_requests_sweep",
        "schedule": float(env_int("PORTAL_APPLY_SWEEP_INTERVAL_SECONDS", 60)),
    },
}

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ---------------------------------------------------------------- webhooks (portal.webhooks)

# Deliveries go to public addresses over HTTPS only. Addresses inside these networks
# (comma-separated CIDRs, e.g. "10.1.2.0/24,127.0.0.1/32") are allowed too, over HTTP as
# well, even if private or loopback. Cloud metadata addresses are refused whatever is listed.
PORTAL_WEBHOOK_ALLOWED_NETWORKS = env_list("PORTAL_WEBHOOK_ALLOWED_NETWORKS", [])
for _network in PORTAL_WEBHOOK_ALLOWED_NETWORKS:
    try:
        import ipaddress

        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"PORTAL_WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a CIDR network") from None
PORTAL_WEBHOOK_CONNECT_TIMEOUT = env_int("PORTAL_WEBHOOK_CONNECT_TIMEOUT", 3)  # seconds
PORTAL_WEBHOOK_READ_TIMEOUT = env_int("PORTAL_WEBHOOK_READ_TIMEOUT", 10)  # seconds
# A failed delivery (network error, 408, 429, 5xx) is tried again after BASE, 2*BASE,
# 4*BASE, ... seconds, up to MAX_ATTEMPTS attempts in all.
PORTAL_WEBHOOK_MAX_ATTEMPTS = env_int("PORTAL_WEBHOOK_MAX_ATTEMPTS", 5)
PORTAL_WEBHOOK_RETRY_BASE_SECONDS = env_int("PORTAL_WEBHOOK_RETRY_BASE_SECONDS", 30)
# Re-queues deliveries whose retry is due, or that no worker took (a broker outage at commit).
CELERY_BEAT_SCHEDULE["webhook-deliveries-sweep"] = {
    "task": "portal.tasks.webhook_deliveries_sweep",
    "schedule": float(env_int("PORTAL_WEBHOOK_SWEEP_INTERVAL_SECONDS", 60)),
}

# ---------------------------------------------------------------- storage

MEDIA_ROOT = Path(env_str("ARTIFACT_ROOT", str(VAR_DIR / "artifacts")))
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    ARTIFACT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "location": env_str("AWS_LOCATION", "artifacts"),
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
            # django-storages buffers each object it opens; spill to disk past 8 MB so a large
            # artifact download streams instead of sitting in memory.
            "max_memory_size": 8 * 1024 * 1024,
        },
    }
else:
    ARTIFACT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": None},
    }

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "artifacts": ARTIFACT_STORAGE,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Artifact uploads stream from the request body; Django's form-size cap does not apply.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024 * 1024)

# ---------------------------------------------------------------- security

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG and env_bool("PORTAL_HTTPS", default=False):
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds the whole domain and its subdomains to HTTPS in browsers, well
        # beyond this portal: the operator opts in with SECURE_HSTS_PRELOAD=True, so its
        # absence is a decision, not an oversight for `check --deploy` to report.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# ---------------------------------------------------------------- i18n

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------- email

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "mlportal@localhost")
# SMTP, when EMAIL_BACKEND is django.core.mail.backends.smtp.EmailBackend.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)

# ---------------------------------------------------------------- logging

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
