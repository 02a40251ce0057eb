"""Domain errors raised by services and selectors.

Each door turns them into its own protocol: MLflow error codes on the MLflow API, DRF
responses on the native API, messages on pages. Services never import a door.
"""


class PortalError(Exception):
    """Base class. `mlflow_code` and `http_status` are what the MLflow door answers."""

    mlflow_code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidParameter(PortalError):
    mlflow_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class NotFound(PortalError):
    mlflow_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class AlreadyExists(PortalError):
    mlflow_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 400


class PermissionDenied(PortalError):
    mlflow_code = "PERMISSION_DENIED"
    http_status = 403


class Unauthenticated(PortalError):
    mlflow_code = "UNAUTHENTICATED"
    http_status = 401


class Conflict(PortalError):
    """A state change that the object's current state does not allow."""

    mlflow_code = "INVALID_STATE"
    http_status = 400
