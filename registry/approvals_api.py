"""The native API of the approval workflow: transition requests, their decisions, a
model's approval policy, and watching a model.

    GET  /api/v1/transition-requests/?state=&model=&version=&mine=1&to_decide=1
    POST /api/v1/transition-requests/            {model, version, stage | alias, delete_alias,
                                                  archive_existing_versions, comment}
    GET  /api/v1/transition-requests/<id>/
    POST /api/v1/transition-requests/<id>/approve|reject|cancel|retry/   {comment}
    GET|PUT /api/v1/registered-models/<name>/policy/
    GET|POST|DELETE /api/v1/registered-models/<name>/watch/

Everything goes through registry.services and registry.selectors: a request on a model
the caller may not read is 404, a decision the caller may not take is 403 with the reason,
a decision the request's state does not allow is 409.
"""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal import permissions, routes
from portal.api import valid_input
from registry import notifications, selectors, services
from registry.models import Approval, TransitionRequest
from registry.services import policies, watches
from registry.services.policies import available_actions


class DecisionSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Approval
        fields = ["reviewer", "decision", "comment", "timestamp"]


class TransitionRequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", help_text="The registered model's name.")
    version = serializers.IntegerField(source="version_number")
    stage = serializers.SerializerMethodField()
    alias = serializers.SerializerMethodField()
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decisions = serializers.SerializerMethodField()
    approvals_required = serializers.SerializerMethodField()
    available_actions = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = TransitionRequest
        fields = [
            "id", "model", "version", "action", "target", "stage", "alias", "from_stage",
            "archive_existing_versions", "comment", "state", "state_reason", "requester", "decisions",
            "approvals_required", "available_actions", "creation_timestamp", "last_updated_timestamp",
            "applied_timestamp", "url",
        ]
        extra_kwargs = {"from_stage": {"help_text": "The version's stage (or the alias's version) when asked."}}

    def _per_model(self, key: str, request: TransitionRequest, read):
        """`read(model)` once per model of the page (policies and the caller's access)."""
        cache = self.context.setdefault(key, {})
        if request.registered_model_id not in cache:
            cache[request.registered_model_id] = read(request.registered_model)
        return cache[request.registered_model_id]

    def _policy(self, request: TransitionRequest) -> policies.Policy:
        return self._per_model("policies", request, policies.policy_for)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_stage(self, request):
        return request.target if request.action == TransitionRequest.Action.TRANSITION_STAGE else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_alias(self, request):
        return request.target if request.action != TransitionRequest.Action.TRANSITION_STAGE else None

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, request):
        return DecisionSerializer(sorted(request.decisions.all(), key=lambda d: d.pk), many=True).data

    @extend_schema_field(serializers.IntegerField())
    def get_approvals_required(self, request):
        return self._policy(request).approvals_required

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_available_actions(self, request):
        user = self.context["request"].user
        access = self._per_model("access", request, lambda model: permissions.root_access(user, model))
        return available_actions(user, request, self._policy(request), access)

    @extend_schema_field(serializers.URLField())
    def get_url(self, request):
        return notifications.request_page_url(request)


class TransitionRequestCreateSerializer(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField(min_value=1)
    stage = serializers.CharField(required=False, help_text="The stage to move the version to.")
    alias = serializers.CharField(required=False, help_text="The alias to point at the version (or to delete).")
    delete_alias = serializers.BooleanField(default=False, help_text="With alias: remove it from the version.")
    archive_existing_versions = serializers.BooleanField(default=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, data):
        if ("stage" in data) == ("alias" in data):
            raise serializers.ValidationError("Give exactly one of stage and alias.")
        if data["delete_alias"] and "alias" not in data:
            raise serializers.ValidationError({"delete_alias": "delete_alias goes with alias."})
        return data


class TransitionRequestListInputSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=TransitionRequest.State.choices, required=False)
    model = serializers.CharField(required=False, help_text="Only requests on the registered model of this name.")
    version = serializers.IntegerField(required=False, min_value=1, help_text="With model: only this version's.")
    mine = serializers.BooleanField(required=False, default=False, help_text="Only the requests I made.")
    to_decide = serializers.BooleanField(
        required=False, default=False, help_text="Only pending requests I may approve or reject now."
    )

    def validate(self, data):
        if "version" in data and "model" not in data:
            raise serializers.ValidationError({"version": "version goes with model."})
        return data


class CommentInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


@routes.route_rule(routes.API)
class TransitionRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Transition requests on the models the caller may read, newest first."""

    serializer_class = TransitionRequestSerializer
    cursor_ordering = "-id"

    def get_queryset(self):
        return selectors.transition_requests_visible(self.request.user)

    def get_object(self):
        return selectors.transition_request_get_for_user(self.request.user, self.kwargs["pk"])

    @extend_schema(parameters=[TransitionRequestListInputSerializer])
    def list(self, request):
        query = valid_input(TransitionRequestListInputSerializer, request.query_params)
        rows = selectors.transition_requests_for_user(
            request.user,
            state=query.get("state"),
            model_name=query.get("model"),
            version=query.get("version"),
            mine=query["mine"],
        )
        if query["to_decide"]:
            pending = rows.filter(state=TransitionRequest.State.PENDING)
            rows = rows.filter(pk__in=[r.pk for r in policies.to_decide(request.user, pending)])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=TransitionRequestCreateSerializer, responses={201: TransitionRequestSerializer,
                                                                         200: TransitionRequestSerializer})
    def create(self, request):
        """Ask for a change (protected target or not). Asking again for the same target and
        version returns the open request (200) instead of opening another (201)."""
        data = valid_input(TransitionRequestCreateSerializer, request.data)
        found, created = services.transition_request_create(
            actor=request.user, name=data["model"], version=data["version"], stage=data.get("stage"),
            alias=data.get("alias"), delete_alias=data["delete_alias"],
            archive_existing_versions=data["archive_existing_versions"], comment=data["comment"],
        )
        found = selectors.transition_request_get_for_user(request.user, found.pk)
        return Response(self.get_serializer(found).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _decide(self, request, pk, what: str):
        data = valid_input(CommentInputSerializer, request.data)
        services.DECISIONS[what](actor=request.user, request_id=int(pk), comment=data["comment"])
        return Response(self.get_serializer(selectors.transition_request_get_for_user(request.user, pk)).data)

    @extend_schema(request=CommentInputSerializer, responses=TransitionRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve (APPROVE on the model, within the policy's approvers; never one's own request
        unless the policy allows). Reaching the required approvals applies the change."""
        return self._decide(request, pk, "approve")

    @extend_schema(request=CommentInputSerializer, responses=TransitionRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject a pending request (whoever may approve it)."""
        return self._decide(request, pk, "reject")

    @extend_schema(request=CommentInputSerializer, responses=TransitionRequestSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Withdraw one's own request before it is applied."""
        return self._decide(request, pk, "cancel")

    @extend_schema(request=CommentInputSerializer, responses=TransitionRequestSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Send a failed request back to be applied (an approver)."""
        return self._decide(request, pk, "retry")


class ApproverSetSerializer(serializers.Serializer):
    users = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    teams = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class PolicySerializer(serializers.Serializer):
    registered_model = serializers.CharField(read_only=True)
    protected_stages = serializers.ListField(child=serializers.CharField())
    protected_aliases = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    approvals_required = serializers.IntegerField(required=False, default=1)
    requester_may_approve = serializers.BooleanField(required=False, default=False)
    approvers = serializers.DictField(
        child=ApproverSetSerializer(), required=False, default=dict,
        help_text='Who may decide each protected target beyond "holds APPROVE": '
        '{"stage:Production": {"users": [...], "teams": [...]}, "alias:champion": {...}}.',
    )


@routes.route_rule(routes.API)
class PolicyView(generics.GenericAPIView):
    """A registered model's approval policy. Readers of the model may read it; MANAGE edits it."""

    serializer_class = PolicySerializer

    def get(self, request, name: str):
        model, policy = services.policy_get_for_user(request.user, name)
        return Response(policies.policy_as_dict(model, policy))

    def put(self, request, name: str):
        data = valid_input(PolicySerializer, request.data)
        model, policy = services.policy_update(actor=request.user, name=name, **data)
        return Response(policies.policy_as_dict(model, policy))


class WatchSerializer(serializers.Serializer):
    registered_model = serializers.CharField(read_only=True)
    watching = serializers.BooleanField(read_only=True)


@routes.route_rule(routes.API)
class WatchView(generics.GenericAPIView):
    """Whether the caller watches the model (is emailed when a change is applied to it);
    POST starts watching, DELETE stops."""

    serializer_class = WatchSerializer

    def _answer(self, model):
        return Response({"registered_model": model.name, "watching": watches.is_watching(self.request.user, model)})

    def get(self, request, name: str):
        return self._answer(selectors.registered_model_get_for_user(request.user, name))

    @extend_schema(request=None)
    def post(self, request, name: str):
        return self._answer(services.model_watch_set(actor=request.user, name=name, watching=True))

    def delete(self, request, name: str):
        return self._answer(services.model_watch_set(actor=request.user, name=name, watching=False))
