"""The native API's account resources: who am I, users, teams, API tokens, grants, who
holds access to an object, and the audit log.

Views parse their input with a small serializer, call one service or selector, and
serialize what it returns; the rules (who may change what) are the services' and
portal.permissions'. Errors are domain errors, turned into DRF responses by
portal.api.exception_handler.
"""

from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.models import Group
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import permissions, routes, selectors, services
from portal.api import ListCursorPagination, PasswordOrSession, valid_input
from portal.models import ApiToken, AuditEvent, TeamDefaultGrant

User = get_user_model()

RESOURCE_TYPES = TeamDefaultGrant.ResourceType.choices
# A level a grantee holds (APPROVE is on or off beside it, so it is granted and revoked, not set).
LEVELS = TeamDefaultGrant.Level.choices
USERNAME_REGEX = r"[\w.@+-]+"  # Django's UnicodeUsernameValidator

NO_CONTENT = {204: None}


# ---------------------------------------------------------------- me


class MembershipSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    is_admin = serializers.BooleanField(help_text="Whether I am an admin of this team (I may change its members).")


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="user.pk")
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    first_name = serializers.CharField(source="user.first_name")
    last_name = serializers.CharField(source="user.last_name")
    is_superuser = serializers.BooleanField(source="user.is_superuser")
    teams = MembershipSerializer(many=True)


@routes.route_rule(routes.API)
class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="Who am I: my account and my teams.")
    def get(self, request):
        teams = selectors.memberships_of(request.user)
        return Response(MeSerializer({"user": request.user, "teams": teams}).data)


# ---------------------------------------------------------------- users


class UserSerializer(serializers.ModelSerializer):
    email = serializers.SerializerMethodField(help_text="Shown to administrators and to the user themself; else null.")

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "email", "is_superuser", "is_active"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_email(self, user):
        viewer = self.context["request"].user
        return user.email if viewer.is_superuser or viewer.pk == user.pk else None


class UserCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    is_superuser = serializers.BooleanField(required=False, default=False)


class UserUpdateInputSerializer(serializers.Serializer):
    is_superuser = serializers.BooleanField(help_text="Make the user an administrator (superuser and staff), or not.")


class PasswordInputSerializer(serializers.Serializer):
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    current_password = serializers.CharField(
        write_only=True, required=False, style={"input_type": "password"}, help_text="Required for one's own password."
    )


@routes.route_rule(routes.API)
class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Accounts. Any signed-in user may list and read them (emails only for administrators);
    administrators create, promote and delete them."""

    serializer_class = UserSerializer
    lookup_field = "username"
    lookup_value_regex = USERNAME_REGEX
    cursor_ordering = "username"

    def get_queryset(self):
        return selectors.user_list()

    @extend_schema(request=UserCreateInputSerializer, responses={201: UserSerializer})
    def create(self, request):
        data = valid_input(UserCreateInputSerializer, request.data)
        user = services.user_create(actor=request.user, **data)
        return Response(self.get_serializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UserUpdateInputSerializer, responses=UserSerializer)
    def partial_update(self, request, username=None):
        data = valid_input(UserUpdateInputSerializer, request.data)
        user = services.user_update_admin(actor=request.user, username=username, is_admin=data["is_superuser"])
        return Response(self.get_serializer(user).data)

    @extend_schema(responses=NO_CONTENT)
    def destroy(self, request, username=None):
        services.user_delete(actor=request.user, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PasswordInputSerializer, responses=NO_CONTENT)
    @action(detail=True, methods=["post"])
    def password(self, request, username=None):
        """Set a password: one's own (with the current one), or anyone's for an administrator."""
        data = valid_input(PasswordInputSerializer, request.data)
        user = services.user_password_change(
            actor=request.user,
            username=username,
            password=data["password"],
            current_password=data.get("current_password"),
        )
        if user.pk == request.user.pk and request.auth is None:
            # One's own password, changed in a signed-in session: keep that session (others end).
            update_session_auth_hash(request._request, user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- teams


class TeamDefaultSerializer(serializers.ModelSerializer):
    class Meta:
        model = TeamDefaultGrant
        fields = ["resource_type", "level"]


class TeamSerializer(serializers.ModelSerializer):
    description = serializers.SerializerMethodField()
    members = serializers.SerializerMethodField(help_text="Usernames of the team's members.")
    admins = serializers.SerializerMethodField(help_text="Usernames of the members who may change its members.")
    defaults = TeamDefaultSerializer(
        source="default_grants",
        many=True,
        read_only=True,
        help_text="The team's level on every object of a type (not on private ones, unless DENY).",
    )

    class Meta:
        model = Group
        fields = ["id", "name", "description", "members", "admins", "defaults"]

    def get_description(self, team) -> str:
        profile = getattr(team, "team", None)  # groups made in the Django admin may have none yet
        return profile.description if profile else ""

    def get_members(self, team) -> list[str]:
        return [user.username for user in team.user_set.all()]

    def get_admins(self, team) -> list[str]:
        profile = getattr(team, "team", None)
        return [user.username for user in profile.admins.all()] if profile else []


class TeamCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class TeamUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class UsernameInputSerializer(serializers.Serializer):
    username = serializers.CharField()


class TeamDefaultInputSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=LEVELS)


@routes.route_rule(routes.API)
class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Teams (Django groups). Any signed-in user may list and read them; administrators
    create, change and delete them, choose their admins and set their defaults; a team's
    admins may add and remove its members."""

    serializer_class = TeamSerializer
    lookup_value_regex = "[0-9]+"
    cursor_ordering = "name"

    def get_queryset(self):
        return selectors.team_list()

    @extend_schema(request=TeamCreateInputSerializer, responses={201: TeamSerializer})
    def create(self, request):
        data = valid_input(TeamCreateInputSerializer, request.data)
        team = services.team_create(actor=request.user, **data)
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamUpdateInputSerializer, responses=TeamSerializer)
    def partial_update(self, request, pk=None):
        data = valid_input(TeamUpdateInputSerializer, request.data)
        team = services.team_update(actor=request.user, team_id=pk, **data)
        return Response(TeamSerializer(team).data)

    @extend_schema(responses=NO_CONTENT)
    def destroy(self, request, pk=None):
        services.team_delete(actor=request.user, team_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=UsernameInputSerializer, responses=NO_CONTENT, summary="Add a member.")
    @action(detail=True, methods=["post"])
    def members(self, request, pk=None):
        data = valid_input(UsernameInputSerializer, request.data)
        services.team_member_add(actor=request.user, team_id=pk, username=data["username"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=NO_CONTENT, summary="Remove a member (and their team admin role).")
    @action(detail=True, methods=["delete"], url_path=rf"members/(?P<username>{USERNAME_REGEX})")
    def member_remove(self, request, pk=None, username=None):
        services.team_member_remove(actor=request.user, team_id=pk, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=UsernameInputSerializer, responses=NO_CONTENT, summary="Make a user a team admin.")
    @action(detail=True, methods=["post"])
    def admins(self, request, pk=None):
        data = valid_input(UsernameInputSerializer, request.data)
        services.team_admin_set(actor=request.user, team_id=pk, username=data["username"], is_admin=True)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=NO_CONTENT, summary="Take a team admin's role away (they stay a member).")
    @action(detail=True, methods=["delete"], url_path=rf"admins/(?P<username>{USERNAME_REGEX})")
    def admin_remove(self, request, pk=None, username=None):
        services.team_admin_set(actor=request.user, team_id=pk, username=username, is_admin=False)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["PUT"],
        request=TeamDefaultInputSerializer,
        responses=TeamDefaultSerializer,
        summary="Set the team's level on every object of a type.",
    )
    @extend_schema(methods=["DELETE"], responses=NO_CONTENT, summary="Remove the team's default on a type.")
    @action(
        detail=True,
        methods=["put", "delete"],
        url_path=r"defaults/(?P<resource_type>experiment|registered_model)",
    )
    def defaults(self, request, pk=None, resource_type=None):
        if request.method == "DELETE":
            row = selectors.team_default_get(team_id=int(pk), resource_type=resource_type)
            services.team_default_remove(actor=request.user, row_id=row.pk)
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = valid_input(TeamDefaultInputSerializer, request.data)
        row = services.team_default_set(actor=request.user, team_id=pk, resource_type=resource_type, **data)
        return Response(TeamDefaultSerializer(row).data)


# ---------------------------------------------------------------- API tokens


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"]


class ApiTokenCreatedSerializer(serializers.Serializer):
    """A token just created (services.CreatedToken): the only answer that holds the token."""

    id = serializers.IntegerField(source="token.pk")
    name = serializers.CharField(source="token.name")
    prefix = serializers.CharField(source="token.prefix")
    created_at = serializers.DateTimeField(source="token.created_at")
    token = serializers.CharField(source="raw", help_text="The token itself: shown this once, never stored.")


class ApiTokenCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


@routes.route_rule(routes.API)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """My personal API tokens (newest first). Only a digest of each is stored.

    Creating one needs a password or a session, not another token: a leaked token must not
    be able to mint tokens that outlive its revocation."""

    serializer_class = ApiTokenSerializer
    lookup_value_regex = "[0-9]+"
    cursor_ordering = "-id"

    def get_queryset(self):
        return selectors.api_tokens_of(self.request.user)

    def get_permissions(self):
        if self.action == "create":
            return [IsAuthenticated(), PasswordOrSession()]
        return super().get_permissions()

    @extend_schema(request=ApiTokenCreateInputSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request):
        data = valid_input(ApiTokenCreateInputSerializer, request.data)
        created = services.api_token_create(user=request.user, **data)
        return Response(ApiTokenCreatedSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke one of my tokens (idempotent: revoking again keeps the first time)."""
        token = services.api_token_revoke(user=request.user, token_id=int(pk))
        return Response(ApiTokenSerializer(token).data)


# ---------------------------------------------------------------- grants


class GrantSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Unique across experiment and registered model grants.")
    resource_type = serializers.CharField()
    resource = serializers.CharField(help_text="An experiment's id or a registered model's name.")
    level = serializers.CharField(help_text="READ, USE, EDIT, MANAGE, DENY or APPROVE.")
    user = serializers.CharField(source="user.username", allow_null=True, help_text="The grantee, if a user.")
    team = serializers.IntegerField(source="team.pk", allow_null=True, help_text="The grantee's id, if a team.")
    team_name = serializers.CharField(source="team.name", allow_null=True)


class ResourceQuerySerializer(serializers.Serializer):
    resource_type = serializers.ChoiceField(choices=RESOURCE_TYPES)
    resource = serializers.CharField(help_text="An experiment's id, or a registered model's name.")


class GrantCreateInputSerializer(ResourceQuerySerializer):
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), required=False, help_text="A username."
    )
    team = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all(), required=False, help_text="A team id.")
    level = serializers.ChoiceField(choices=permissions.GRANT_LEVELS)

    def validate(self, attrs):
        if ("user" in attrs) == ("team" in attrs):
            raise serializers.ValidationError("Give exactly one of user or team.")
        return attrs


class GrantUpdateInputSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=LEVELS)


class HolderSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["everyone", "team", "user"])
    name = serializers.CharField()
    level = serializers.CharField(help_text="Effective level: NONE, READ, USE, EDIT, MANAGE or DENY.")
    approve = serializers.BooleanField()
    sources = serializers.ListField(
        child=serializers.CharField(),
        help_text='Where it comes from: "grant", "team:<name>", "team default", "default", "private", "superuser".',
    )


_HOLDER_ORDER = {"everyone": 0, "team": 1, "user": 2}
_GRANT_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


@routes.route_rule(routes.API)
class GrantViewSet(viewsets.GenericViewSet):
    """Grants on experiments and registered models, for those who may MANAGE the object
    (and superusers). Readers who may not manage it get 403; those who may not read it, 404."""

    pagination_class = ListCursorPagination
    serializer_class = GrantSerializer
    lookup_value_regex = "[0-9]+"

    def cursor_key(self, item):
        if isinstance(item, permissions.Holder):
            return (_HOLDER_ORDER[item.kind], item.name)
        return item.id

    @extend_schema(parameters=[ResourceQuerySerializer], responses=GrantSerializer(many=True))
    def list(self, request):
        query = valid_input(ResourceQuerySerializer, request.query_params)
        grants = selectors.grants_for_user(request.user, **query)
        return self.get_paginated_response(GrantSerializer(self.paginate_queryset(grants), many=True).data)

    @extend_schema(request=GrantCreateInputSerializer, responses={201: GrantSerializer})
    def create(self, request):
        data = valid_input(GrantCreateInputSerializer, request.data)
        root = permissions.resource_get(request.user, data.pop("resource_type"), data.pop("resource"))
        grant = permissions.grant_create(actor=request.user, root=root, **data)
        return Response(GrantSerializer(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[_GRANT_ID], responses=GrantSerializer)
    def retrieve(self, request, pk=None):
        return Response(GrantSerializer(selectors.grant_get_for_user(request.user, int(pk))).data)

    @extend_schema(parameters=[_GRANT_ID], request=GrantUpdateInputSerializer, responses=GrantSerializer)
    def partial_update(self, request, pk=None):
        data = valid_input(GrantUpdateInputSerializer, request.data)
        grant = selectors.grant_get_for_user(request.user, int(pk))
        if grant.level == permissions.APPROVE_LEVEL:
            raise serializers.ValidationError({"level": "An APPROVE grant has no level: revoke it instead."})
        grant = permissions.grant_update(
            actor=request.user, root=grant.root, level=data["level"], user=grant.user, team=grant.team
        )
        return Response(GrantSerializer(grant).data)

    @extend_schema(parameters=[_GRANT_ID], responses=NO_CONTENT)
    def destroy(self, request, pk=None):
        grant = selectors.grant_get_for_user(request.user, int(pk))
        permissions.grant_revoke(
            actor=request.user,
            root=grant.root,
            user=grant.user,
            team=grant.team,
            approve=grant.level == permissions.APPROVE_LEVEL,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[ResourceQuerySerializer],
        responses=HolderSerializer(many=True),
        summary="Who can see this: every user and team with access to an object, their level and its sources.",
    )
    @action(detail=False, methods=["get"])
    def holders(self, request):
        query = valid_input(ResourceQuerySerializer, request.query_params)
        holders = selectors.holders_for_user(request.user, **query)
        return self.get_paginated_response(HolderSerializer(self.paginate_queryset(holders), many=True).data)


# ---------------------------------------------------------------- the audit log


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_username", help_text="Username of who did it; empty for the system.")
    before = serializers.JSONField(allow_null=True, help_text="What changed, as it was (null on creation).")
    after = serializers.JSONField(allow_null=True, help_text="What changed, as it became (null on deletion).")
    client_address = serializers.SerializerMethodField(help_text="Shown to administrators only; else null.")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "timestamp",
            "actor",
            "actor_id",
            "action",
            "object_type",
            "object_id",
            "object_name",
            "resource_type",
            "resource_id",
            "before",
            "after",
            "request_id",
            "client_address",
        ]

    @extend_schema_field(serializers.IPAddressField(allow_null=True))
    def get_client_address(self, event):
        # Where a colleague works from is not the business of every manager of a model.
        return event.client_address if self.context["request"].user.is_superuser else None


class AuditEventQuerySerializer(serializers.Serializer):
    actor = serializers.CharField(required=False, help_text="Only events by this username.")
    object_type = serializers.CharField(
        required=False,
        help_text="user, team, team_default, grant, token, experiment, registered_model, model_version, ...",
    )
    object = serializers.CharField(
        required=False,
        help_text=(
            "An object's id or readable name. With object_type experiment (its id) or registered_model "
            "(its name): that object's whole history, the events about everything under it included. "
            "Required, with one of those two types, for anyone but an administrator."
        ),
    )
    action = serializers.CharField(required=False, help_text="Only this action, e.g. grant.created.")
    since = serializers.DateTimeField(required=False, help_text="ISO 8601; events at or after it.")
    until = serializers.DateTimeField(required=False, help_text="ISO 8601; events at or before it.")

    def validate(self, attrs):
        if "since" in attrs and "until" in attrs and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "Must not be before since."})
        return attrs


@routes.route_rule(routes.API)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The append-only audit log, newest first: who changed what, when, before and after.

    Administrators read every event. Anyone else reads the history of one experiment or
    registered model they MANAGE (object_type and object): 403 for other queries and for
    objects they may only read, 404 for objects they may not read."""

    serializer_class = AuditEventSerializer
    lookup_value_regex = "[0-9]+"
    cursor_ordering = "-id"

    @extend_schema(parameters=[AuditEventQuerySerializer], responses=AuditEventSerializer(many=True))
    def list(self, request):
        query = valid_input(AuditEventQuerySerializer, request.query_params)
        events = selectors.audit_events_for_user(request.user, **query)
        return self.get_paginated_response(self.get_serializer(self.paginate_queryset(events), many=True).data)

    @extend_schema(parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)])
    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(selectors.audit_event_get_for_user(request.user, int(pk))).data)
