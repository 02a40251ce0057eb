"""The native API's read-only registry resources: registered models and model versions.

Reads go through registry.selectors (narrowed to what the user may read; hidden is 404).
A registered model is addressed by its name (names never contain '/', see
registry.validation.model_name_validated), a version by its model's name and its number:
`model-versions/<name>/<version>/`. Lists are cursor-paginated on a unique key: models by
name, versions by id (creation order).
"""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal import routes
from portal.api import valid_input
from registry import selectors, services, validation
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from tracking.api import PrivateInputSerializer

_TAGS = serializers.DictField(child=serializers.CharField(), help_text="Tags by key.")


class RegisteredModelSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    tags = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "name",
            "description",
            "owner",
            "private",
            "creation_timestamp",
            "last_updated_timestamp",
            "tags",
            "aliases",
        ]

    @extend_schema_field(_TAGS)
    def get_tags(self, model):
        return {tag.key: tag.value for tag in model.tags.all()}

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField(), help_text="Version number by alias."))
    def get_aliases(self, model):
        return {alias.alias: alias.model_version.version for alias in model.aliases.all()}


_ALIASES = Prefetch("aliases", queryset=ModelAlias.objects.select_related("model_version").order_by("alias"))


@routes.route_rule(routes.API)
class RegisteredModelViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RegisteredModelSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    cursor_ordering = "name"

    def get_queryset(self):
        return (
            selectors.registered_models_for_user(self.request.user)
            .select_related("owner")
            .prefetch_related("tags", _ALIASES)
        )

    def get_object(self):
        return selectors.registered_model_get_for_user(self.request.user, self.kwargs["name"])

    @extend_schema(request=PrivateInputSerializer, responses=RegisteredModelSerializer)
    @action(detail=True, methods=["post"])
    def private(self, request, name=None):
        """Make the registered model private (only explicit grants reach it) or not. Needs MANAGE."""
        data = valid_input(PrivateInputSerializer, request.data)
        model = services.registered_model_set_private(actor=request.user, name=name, private=data["private"])
        return Response(self.get_serializer(selectors.registered_model_get_for_user(request.user, model.name)).data)


class ModelVersionSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="registered_model.name", help_text="The registered model's name.")
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    run = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The source run's id, if any.")
    tags = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "version",
            "source",
            "run",
            "logged_model",
            "run_link",
            "description",
            "current_stage",
            "status",
            "status_message",
            "owner",
            "creation_timestamp",
            "last_updated_timestamp",
            "tags",
            "aliases",
        ]

    @extend_schema_field(_TAGS)
    def get_tags(self, version):
        return {tag.key: tag.value for tag in version.tags.all()}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_aliases(self, version):
        return sorted(alias.alias for alias in version.aliases.all())


class ModelVersionListInputSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, help_text="Only the versions of the registered model of this name.")


def _versions_of(queryset, name: str | None):
    if name is None:
        return queryset
    return queryset.filter(registered_model__name=validation.model_name_for_lookup(name))


@routes.route_rule(routes.API)
class ModelVersionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Model versions, newest last. One version: `model-versions/<name>/<version>/`."""

    serializer_class = ModelVersionSerializer
    cursor_ordering = "id"

    def get_queryset(self):
        return (
            selectors.model_versions_for_user(self.request.user)
            .select_related("registered_model", "owner")
            .prefetch_related("tags", "aliases")
        )

    @extend_schema(parameters=[ModelVersionListInputSerializer])
    def list(self, request):
        query = valid_input(ModelVersionListInputSerializer, request.query_params)
        versions = _versions_of(self.get_queryset(), query.get("model"))
        return self.get_paginated_response(self.get_serializer(self.paginate_queryset(versions), many=True).data)


@routes.route_rule(routes.API)
class ModelVersionDetailView(generics.GenericAPIView):
    serializer_class = ModelVersionSerializer

    def get(self, request, name: str, version: int):
        found = selectors.model_version_get_for_user(request.user, name, version)
        return Response(self.get_serializer(found).data)
