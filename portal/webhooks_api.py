"""The native API's webhooks: /api/v1/webhooks/ and each webhook's deliveries and test.

Any event may be subscribed to here, the portal's own included, and a webhook may be
scoped to one registered model (`registered_model`, its name): its MANAGE holders then see
and change it. Webhooks without a model are global and belong to superusers. Those who may
not see a webhook get 404. The secret is write-only.
"""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal import routes
from portal.api import valid_input
from portal.models import Webhook, WebhookDelivery
from portal.webhooks import events as webhook_events
from portal.webhooks import selectors, services

NO_CONTENT = {204: None}
EVENT_CHOICES = [(event, event) for event in webhook_events.EVENTS]
_WEBHOOK_ID = OpenApiParameter("webhook_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The webhook's id.")


class WebhookSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="webhook_id", read_only=True, help_text="The webhook's id (MLflow's webhook_id).")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))
    registered_model = serializers.SerializerMethodField(
        help_text="The registered model it is scoped to; null: global."
    )
    creator = serializers.SlugRelatedField(slug_field="username", read_only=True)
    has_secret = serializers.BooleanField(
        read_only=True, help_text="Whether deliveries are signed (the secret is never shown)."
    )

    class Meta:
        model = Webhook
        fields = [
            "id",
            "name",
            "description",
            "url",
            "events",
            "status",
            "scope",
            "registered_model",
            "creator",
            "has_secret",
            "creation_timestamp",
            "last_updated_timestamp",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_registered_model(self, webhook):
        return webhook.registered_model.name if webhook.registered_model else None


class WebhookCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63, help_text="1-63 letters, digits, '.', '_' and '-' (MLflow's rule).")
    url = serializers.CharField(max_length=2048, help_text="https, or http to PORTAL_WEBHOOK_ALLOWED_NETWORKS.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES), allow_empty=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    secret = serializers.CharField(
        required=False, allow_blank=True, default="", write_only=True, help_text="Signs deliveries (HMAC-SHA256)."
    )
    status = serializers.ChoiceField(choices=Webhook.Status.choices, required=False, default=Webhook.Status.ACTIVE)
    registered_model = serializers.CharField(
        required=False,
        help_text="Scope it to this registered model (needs MANAGE on it); without it, a global webhook (superusers).",
    )


class WebhookUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63, required=False)
    url = serializers.CharField(max_length=2048, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES), allow_empty=False, required=False
    )
    description = serializers.CharField(required=False, allow_blank=True)
    secret = serializers.CharField(
        required=False, allow_blank=True, write_only=True, help_text='A new secret; "" removes it.'
    )
    status = serializers.ChoiceField(choices=Webhook.Status.choices, required=False)


class WebhookListQuerySerializer(serializers.Serializer):
    registered_model = serializers.CharField(required=False, help_text="Only the webhooks of this registered model.")
    scope = serializers.ChoiceField(choices=Webhook.Scope.choices, required=False)


class WebhookTestInputSerializer(serializers.Serializer):
    event = serializers.ChoiceField(
        choices=EVENT_CHOICES, required=False, help_text="The event to send an example of; default: the first."
    )


class WebhookTestResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    response_status = serializers.IntegerField(allow_null=True)
    response_body = serializers.CharField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    payload = serializers.SerializerMethodField(help_text="The body sent: entity, action, timestamp and data.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "delivery_id",
            "event",
            "status",
            "attempts",
            "response_status",
            "error",
            "duration_ms",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
            "completed_at",
            "attempt_log",
            "payload",
        ]

    @extend_schema_field(serializers.DictField())
    def get_payload(self, delivery):
        return json.loads(delivery.payload)


@routes.route_rule(routes.API)
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Webhooks, newest first: global ones (superusers) and those of the registered models
    one manages. Deliveries are signed as MLflow signs them (X-MLflow-Signature)."""

    serializer_class = WebhookSerializer
    lookup_field = "webhook_id"
    lookup_value_regex = "[^/]+"
    cursor_ordering = "-id"

    def get_queryset(self):
        return selectors.webhook_list_for_user(self.request.user)

    def get_object(self):
        return selectors.webhook_get_for_user(self.request.user, self.kwargs["webhook_id"])

    @extend_schema(parameters=[WebhookListQuerySerializer], responses=WebhookSerializer(many=True))
    def list(self, request):
        query = valid_input(WebhookListQuerySerializer, request.query_params)
        webhooks = self.get_queryset()
        if "registered_model" in query:
            webhooks = webhooks.filter(registered_model__name=query["registered_model"])
        if "scope" in query:
            webhooks = webhooks.filter(scope=query["scope"])
        return self.get_paginated_response(self.get_serializer(self.paginate_queryset(webhooks), many=True).data)

    @extend_schema(request=WebhookCreateInputSerializer, responses={201: WebhookSerializer})
    def create(self, request):
        data = valid_input(WebhookCreateInputSerializer, request.data)
        webhook = services.webhook_create(
            actor=request.user, registered_model_name=data.pop("registered_model", None), **data
        )
        return Response(self.get_serializer(webhook).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[_WEBHOOK_ID], responses=WebhookSerializer)
    def retrieve(self, request, webhook_id=None):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(parameters=[_WEBHOOK_ID], request=WebhookUpdateInputSerializer, responses=WebhookSerializer)
    def partial_update(self, request, webhook_id=None):
        data = valid_input(WebhookUpdateInputSerializer, request.data)
        webhook = services.webhook_update(actor=request.user, webhook_id=webhook_id, **data)
        return Response(self.get_serializer(webhook).data)

    @extend_schema(parameters=[_WEBHOOK_ID], responses=NO_CONTENT)
    def destroy(self, request, webhook_id=None):
        services.webhook_delete(actor=request.user, webhook_id=webhook_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[_WEBHOOK_ID],
        responses=WebhookDeliverySerializer(many=True),
        summary="The webhook's deliveries, newest first (also of a deleted webhook).",
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, webhook_id=None):
        deliveries = selectors.webhook_deliveries_for_user(request.user, webhook_id)
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(
        parameters=[_WEBHOOK_ID],
        request=WebhookTestInputSerializer,
        responses=WebhookTestResultSerializer,
        summary="Send an example delivery now and report the receiver's answer (not recorded).",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, webhook_id=None):
        data = valid_input(WebhookTestInputSerializer, request.data)
        result = services.webhook_test(actor=request.user, webhook_id=webhook_id, event=data.get("event"))
        return Response(WebhookTestResultSerializer(result).data)
