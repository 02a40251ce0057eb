"""The native API's read-only tracking resources: experiments, runs and logged models.

Every list and detail goes through tracking.selectors, which narrow to what the user may
read: a hidden object is a 404, exactly like a missing one. Lists are cursor-paginated on
the primary key (a unique, stable order: a run's is its 32-hex id, not its start time).
"""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal import routes
from portal.api import valid_input
from portal.numbers import double_json
from tracking import selectors
from tracking.models import Experiment, LoggedModel, Run
from tracking.services import experiments as experiment_services

VIEW_TYPES = ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]

_TAGS = serializers.DictField(child=serializers.CharField(), help_text="Tags by key.")


class ExperimentSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = [
            "id",
            "name",
            "artifact_location",
            "lifecycle_stage",
            "owner",
            "private",
            "creation_time",
            "last_update_time",
            "tags",
        ]

    @extend_schema_field(_TAGS)
    def get_tags(self, experiment):
        return {tag.key: tag.value for tag in experiment.tags.all()}


class PrivateInputSerializer(serializers.Serializer):
    private = serializers.BooleanField(help_text="True: signed-in users without a grant get nothing here.")


class ListInputSerializer(serializers.Serializer):
    view_type = serializers.ChoiceField(
        choices=VIEW_TYPES, default="ACTIVE_ONLY", help_text="Active objects (the default), deleted ones, or both."
    )


class ExperimentChildListInputSerializer(ListInputSerializer):
    experiment = serializers.IntegerField(required=False, min_value=0, help_text="Only those of this experiment.")


@routes.route_rule(routes.API)
class ExperimentViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ExperimentSerializer
    lookup_value_regex = "[0-9]+"
    cursor_ordering = "id"

    def get_queryset(self):
        return selectors.experiments_for_user(self.request.user).select_related("owner").prefetch_related("tags")

    @extend_schema(parameters=[ListInputSerializer])
    def list(self, request):
        query = valid_input(ListInputSerializer, request.query_params)
        experiments = selectors.view_type_filter(self.get_queryset(), query["view_type"])
        return self.get_paginated_response(self.get_serializer(self.paginate_queryset(experiments), many=True).data)

    def get_object(self):
        return selectors.experiment_get_for_user(self.request.user, self.kwargs["pk"])

    @extend_schema(request=PrivateInputSerializer, responses=ExperimentSerializer)
    @action(detail=True, methods=["post"])
    def private(self, request, pk=None):
        """Make the experiment private (only explicit grants reach it) or not. Needs MANAGE."""
        data = valid_input(PrivateInputSerializer, request.data)
        experiment = experiment_services.experiment_set_private(
            actor=request.user, experiment_id=pk, private=data["private"]
        )
        return Response(self.get_serializer(experiment).data)


class RunSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "experiment",
            "name",
            "status",
            "start_time",
            "end_time",
            "lifecycle_stage",
            "artifact_uri",
            "owner",
            "user_id",
        ]


class MetricSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.SerializerMethodField()
    timestamp = serializers.IntegerField()
    step = serializers.IntegerField()

    @extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]})
    def get_value(self, metric):
        return "NaN" if metric.is_nan else double_json(metric.value)


class RunDetailSerializer(RunSerializer):
    params = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField(help_text="The latest value of each metric.")

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "params", "tags", "metrics"]

    @extend_schema_field(serializers.DictField(child=serializers.CharField(), help_text="Params by key."))
    def get_params(self, run):
        return dict(run.params.order_by("key").values_list("key", "value"))

    @extend_schema_field(_TAGS)
    def get_tags(self, run):
        return dict(run.tags.order_by("key").values_list("key", "value"))

    @extend_schema_field(MetricSerializer(many=True))
    def get_metrics(self, run):
        return MetricSerializer(run.latest_metrics.order_by("key"), many=True).data


@routes.route_rule(routes.API)
class RunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs, light in lists; a run's detail adds its params, tags and latest metrics."""

    lookup_value_regex = "[0-9a-f]{32}"
    cursor_ordering = "id"

    def get_serializer_class(self):
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    def get_queryset(self):
        return selectors.runs_for_user(self.request.user).select_related("owner")

    @extend_schema(parameters=[ExperimentChildListInputSerializer])
    def list(self, request):
        query = valid_input(ExperimentChildListInputSerializer, request.query_params)
        runs = _in_experiment(selectors.view_type_filter(self.get_queryset(), query["view_type"]), query)
        return self.get_paginated_response(self.get_serializer(self.paginate_queryset(runs), many=True).data)

    def get_object(self):
        return selectors.run_get_for_user(self.request.user, self.kwargs["pk"])


class LoggedModelSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = LoggedModel
        fields = [
            "id",
            "experiment",
            "name",
            "source_run",
            "model_type",
            "artifact_location",
            "status",
            "lifecycle_stage",
            "owner",
            "creation_timestamp_ms",
            "last_updated_timestamp_ms",
        ]


@routes.route_rule(routes.API)
class LoggedModelViewSet(viewsets.ReadOnlyModelViewSet):
    """MLflow 3 logged models (`m-<32 hex>`)."""

    serializer_class = LoggedModelSerializer
    lookup_value_regex = "m-[0-9a-f]{32}"
    cursor_ordering = "id"

    def get_queryset(self):
        return selectors.logged_models_for_user(self.request.user).select_related("owner")

    @extend_schema(parameters=[ExperimentChildListInputSerializer])
    def list(self, request):
        query = valid_input(ExperimentChildListInputSerializer, request.query_params)
        models = _in_experiment(selectors.view_type_filter(self.get_queryset(), query["view_type"]), query)
        return self.get_paginated_response(self.get_serializer(self.paginate_queryset(models), many=True).data)

    def get_object(self):
        # As runs: a deleted one is still found by its id (its lifecycle_stage says so).
        return selectors.logged_model_get_for_user(self.request.user, self.kwargs["pk"], allow_deleted=True)


def _in_experiment(queryset, query: dict):
    if "experiment" in query:
        return queryset.filter(experiment_id=query["experiment"])
    return queryset
