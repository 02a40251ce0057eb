from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"

    def ready(self) -> None:
        from registry.selectors import version_files_readable
        from tracking.services.artifacts import artifact_read_through_register

        # The files behind a version are readable through its registered model.
        artifact_read_through_register(version_files_readable)
