"""MLflow door for MLflow's basic-auth API: users, per-user grants, and roles as teams.

Scripts written for `mlflow.server.get_app_client("basic-auth", tracking_uri=...)` (the
client's AuthServiceClient) manage the portal's accounts and grants unchanged. Paths,
methods and JSON shapes are MLflow's (mlflow/server/auth/routes.py, entities.py); every
rule is the services': portal.services, portal.permissions, portal.selectors.

How MLflow's words map onto the portal:
- A role is a team (a Django group; role id = group id), in the one workspace "default".
- A role permission on a resource id is a team grant on that object; on "*" it is the
  team's default for every object of the type. Its id is the grant's id.
- A role assignment is a team membership (id = the auth_user_groups row id).
- Levels are MLflow's; NO_PERMISSIONS is read as DENY. An effective level is answered as
  DENY when a deny applies and NO_PERMISSIONS when nothing grants access.
"""

from typing import Any

from django.http import HttpRequest
from django.urls import path

from portal import permissions, selectors, services
from portal.errors import InvalidParameter, NotFound
from portal.mlflow_http import Params, mlflow_endpoint

Json = dict[str, Any]

WORKSPACE = "default"
# Grants the MLflow API may give: the levels and DENY (APPROVE is the portal's own).
MLFLOW_LEVELS = (*permissions.LEVELS, permissions.DENY)
NO_PERMISSIONS = "NO_PERMISSIONS"


# ---------------------------------------------------------------- JSON


def _user_json(user) -> Json:
    return {"id": user.pk, "username": user.get_username(), "is_admin": bool(user.is_superuser)}


def _user_with_grants_json(user, grants: list[permissions.Grant]) -> Json:
    """MLflow's User.to_json; before MLflow 3 it carried the user's own grants, and older
    clients still read them."""
    result = _user_json(user)
    result["experiment_permissions"] = [
        {"experiment_id": g.resource, "user_id": user.pk, "permission": g.level}
        for g in grants
        if g.resource_type == "experiment"
    ]
    result["registered_model_permissions"] = [
        {"workspace": WORKSPACE, "name": g.resource, "user_id": user.pk, "permission": g.level}
        for g in grants
        if g.resource_type == "registered_model"
    ]
    return result


def _role_permission_json(p: selectors.TeamPermission) -> Json:
    return {
        "id": p.id,
        "role_id": p.team_id,
        "resource_type": p.resource_type,
        "resource_pattern": p.resource_pattern,
        "permission": p.level,
    }


def _role_json(team, description: str | None, role_permissions: list[selectors.TeamPermission]) -> Json:
    return {
        "id": team.pk,
        "name": team.name,
        "workspace": WORKSPACE,
        "description": description or None,
        "permissions": [_role_permission_json(p) for p in role_permissions],
    }


def _roles_json(request: HttpRequest, teams: list) -> list[Json]:
    descriptions = selectors.team_descriptions(teams)
    by_team = selectors.team_permissions_for_user(request.user, teams)
    return [_role_json(team, descriptions.get(team.pk), by_team[team.pk]) for team in teams]


def _assignment_json(membership) -> Json:
    return {"id": membership.pk, "user_id": membership.user_id, "role_id": membership.group_id}


def _permission_row_json(role_id, role_name: str, p: selectors.TeamPermission | permissions.Grant) -> Json:
    if isinstance(p, permissions.Grant):
        resource_type, pattern, level = p.resource_type, p.resource, p.level
    else:
        resource_type, pattern, level = p.resource_type, p.resource_pattern, p.level
    return {
        "role_id": role_id,
        "role_name": role_name,
        "workspace": WORKSPACE,
        "resource_type": resource_type,
        "resource_pattern": pattern,
        "permission": level,
    }


def _user_permissions_json(found: selectors.UserPermissions) -> Json:
    """MLflow's users/permissions/list answer. Direct grants appear under MLflow's name for a
    user's own grants (the synthetic role "__user_<id>__"), with no role id: they have none."""
    user = found.user
    rows = [_permission_row_json(None, f"__user_{user.pk}__", grant) for grant in found.direct]
    for team, team_permissions in found.teams:
        rows += [_permission_row_json(team.pk, team.name, p) for p in team_permissions]
    return {"is_admin": bool(user.is_superuser), "permissions": rows}


# ---------------------------------------------------------------- parameters


def _workspace(name: str | None) -> str:
    if name != WORKSPACE:
        raise NotFound(f"Workspace '{name}' not found: this server has one workspace, '{WORKSPACE}'.")
    return name


def _resource_type(params: Params) -> str:
    resource_type = params.str("resource_type", required=True)
    permissions.root_model(resource_type)  # INVALID_PARAMETER_VALUE for types the portal has not
    return resource_type


def _level(params: Params) -> str:
    return permissions.level_parse(params.str("permission", required=True), allowed=MLFLOW_LEVELS)


def _resource_id(params: Params) -> str:
    resource_id = params.str("resource_id", required=True)
    if resource_id.strip() == selectors.EVERY_OBJECT:
        raise InvalidParameter(
            "Per-user grants on '*' are not supported: add a role permission on '*' to a role instead."
        )
    return resource_id


# ---------------------------------------------------------------- users


def create_user(request: HttpRequest, params: Params) -> Json:
    user = services.user_create(
        actor=request.user,
        username=params.str("username", required=True),
        password=params.str("password", required=True),
    )
    return {"user": _user_with_grants_json(user, [])}


def get_user(request: HttpRequest, params: Params) -> Json:
    user = selectors.user_get_for_user(request.user, params.str("username", required=True))
    return {"user": _user_with_grants_json(user, selectors.user_grants_for_user(request.user, user))}


def get_current_user(request: HttpRequest, params: Params) -> Json:
    # The portal accepts HTTP Basic on every API door, so a Basic-only UI feature works here.
    return {"user": _user_json(request.user), "is_basic_auth": True}


def list_users(request: HttpRequest, params: Params) -> Json:
    listed = selectors.user_list_for_user(request.user)
    teams = {team.pk: team for _, user_teams in listed for team in user_teams}
    roles = {role["id"]: role for role in _roles_json(request, list(teams.values()))}
    return {
        "users": [{**_user_json(user), "roles": [roles[team.pk] for team in user_teams]} for user, user_teams in listed]
    }


def update_user_password(request: HttpRequest, params: Params) -> Json:
    services.user_password_change(
        actor=request.user,
        username=params.str("username", required=True),
        password=params.str("password", required=True),
        current_password=params.str("current_password"),
    )
    return {}


def update_user_admin(request: HttpRequest, params: Params) -> Json:
    if not params.has("is_admin"):
        raise InvalidParameter("Missing value for required parameter 'is_admin'.")
    services.user_update_admin(
        actor=request.user, username=params.str("username", required=True), is_admin=params.bool("is_admin")
    )
    return {}


def delete_user(request: HttpRequest, params: Params) -> Json:
    services.user_delete(actor=request.user, username=params.str("username", required=True))
    return {}


# ---------------------------------------------------------------- per-user grants


def grant_user_permission(request: HttpRequest, params: Params) -> Json:
    resource_type = _resource_type(params)
    level = _level(params)
    root = permissions.resource_get(request.user, resource_type, _resource_id(params))
    user = services.user_get(params.str("username", required=True))
    permissions.grant_create(actor=request.user, root=root, level=level, user=user)
    return {}


def revoke_user_permission(request: HttpRequest, params: Params) -> Json:
    resource_type = _resource_type(params)
    root = permissions.resource_get(request.user, resource_type, _resource_id(params))
    user = services.user_get(params.str("username", required=True))
    permissions.grant_revoke(actor=request.user, root=root, user=user)
    return {}


def get_user_permission(request: HttpRequest, params: Params) -> Json:
    """MLflow's GetUserPermissionResult: `allowed` is MLflow's can_use (USE or more)."""
    found = selectors.user_level_get_for_user(
        request.user,
        username=params.str("username", required=True),
        resource_type=_resource_type(params),
        resource_id=_resource_id(params),
    )
    if found is None or found.level == permissions.NONE:
        level = permissions.DENY if found is not None and found.denied else NO_PERMISSIONS
        return {"allowed": False, "permission": level}
    return {"allowed": found.level in ("USE", "EDIT", "MANAGE"), "permission": found.level}


def list_user_permissions(request: HttpRequest, params: Params) -> Json:
    found = selectors.user_permissions_for_user(request.user, params.str("username", required=True))
    return _user_permissions_json(found)


def list_current_user_permissions(request: HttpRequest, params: Params) -> Json:
    return _user_permissions_json(selectors.user_permissions_for_user(request.user, request.user.get_username()))


# ---------------------------------------------------------------- roles (teams)


def _role_response(request: HttpRequest, team) -> Json:
    return {"role": _roles_json(request, [team])[0]}


def create_role(request: HttpRequest, params: Params) -> Json:
    _workspace(params.str("workspace", required=True))
    team = services.team_create(
        actor=request.user, name=params.str("name", required=True), description=params.str("description") or ""
    )
    return _role_response(request, team)


def get_role(request: HttpRequest, params: Params) -> Json:
    return _role_response(request, services.team_get(params.int("role_id", required=True)))


def list_roles(request: HttpRequest, params: Params) -> Json:
    """Roles of the named workspaces; with none named (MLflow's list_all_roles), of every
    workspace: here both are the roles of "default"."""
    for name in params.str_list("workspace"):
        _workspace(name)
    return {"roles": _roles_json(request, selectors.teams_by_name())}


def update_role(request: HttpRequest, params: Params) -> Json:
    name = params.str("name")
    description = params.str("description")
    if name is None and description is None:
        raise InvalidParameter("At least one of 'name' or 'description' must be provided to update a role.")
    team = services.team_update(
        actor=request.user, team_id=params.int("role_id", required=True), name=name, description=description
    )
    return _role_response(request, team)


def delete_role(request: HttpRequest, params: Params) -> Json:
    services.team_delete(actor=request.user, team_id=params.int("role_id", required=True))
    return {}


def add_role_permission(request: HttpRequest, params: Params) -> Json:
    team = services.team_get(params.int("role_id", required=True))
    resource_type = _resource_type(params)
    level = _level(params)
    pattern = params.str("resource_pattern", required=True)
    if pattern.strip() == selectors.EVERY_OBJECT:
        row = services.team_default_add(actor=request.user, team_id=team.pk, resource_type=resource_type, level=level)
        added = selectors.team_permission_from_default(row)
    else:
        root = permissions.resource_get(request.user, resource_type, pattern)
        grant = permissions.grant_create(actor=request.user, root=root, level=level, team=team)
        added = selectors.team_permission_from_grant(grant)
    return {"role_permission": _role_permission_json(added)}


def remove_role_permission(request: HttpRequest, params: Params) -> Json:
    found = selectors.team_permission_get_for_user(request.user, params.int("role_permission_id", required=True))
    if isinstance(found, permissions.Grant):
        permissions.grant_revoke(
            actor=request.user, root=found.root, team=found.team, approve=found.level == permissions.APPROVE_LEVEL
        )
    else:
        services.team_default_remove(actor=request.user, row_id=found.pk)
    return {}


def list_role_permissions(request: HttpRequest, params: Params) -> Json:
    team = services.team_get(params.int("role_id", required=True))
    found = selectors.team_permissions_for_user(request.user, [team])[team.pk]
    return {"role_permissions": [_role_permission_json(p) for p in found]}


def update_role_permission(request: HttpRequest, params: Params) -> Json:
    found = selectors.team_permission_get_for_user(request.user, params.int("role_permission_id", required=True))
    level = _level(params)
    if isinstance(found, permissions.Grant):
        if found.level == permissions.APPROVE_LEVEL:
            raise InvalidParameter("An APPROVE grant has no level to change: remove it instead.")
        grant = permissions.grant_update(actor=request.user, root=found.root, level=level, team=found.team)
        updated = selectors.team_permission_from_grant(grant)
    else:
        row = services.team_default_set(
            actor=request.user, team_id=found.team_id, resource_type=found.resource_type, level=level
        )
        updated = selectors.team_permission_from_default(row)
    return {"role_permission": _role_permission_json(updated)}


def assign_role(request: HttpRequest, params: Params) -> Json:
    membership = services.team_member_add(
        actor=request.user,
        team_id=params.int("role_id", required=True),
        username=params.str("username", required=True),
    )
    return {"assignment": _assignment_json(membership)}


def unassign_role(request: HttpRequest, params: Params) -> Json:
    services.team_member_remove(
        actor=request.user,
        team_id=params.int("role_id", required=True),
        username=params.str("username", required=True),
    )
    return {}


def list_user_roles(request: HttpRequest, params: Params) -> Json:
    user = selectors.user_get_for_user(request.user, params.str("username", required=True))
    return {"roles": _roles_json(request, selectors.teams_of(user))}


def list_role_users(request: HttpRequest, params: Params) -> Json:
    team = services.team_get(params.int("role_id", required=True))
    return {"assignments": [_assignment_json(m) for m in selectors.team_members(team)]}


# Served under /api/2.0/mlflow/, /api/3.0/mlflow/ and their /ajax-api/ mirrors. MLflow
# puts the user endpoints under 2.0 and the rest under 3.0; each answers under both here.
urlpatterns = [
    path("users/create", mlflow_endpoint({"POST": create_user})),
    path("users/get", mlflow_endpoint({"GET": get_user})),
    path("users/current", mlflow_endpoint({"GET": get_current_user})),
    path("users/list", mlflow_endpoint({"GET": list_users})),
    path("users/update-password", mlflow_endpoint({"PATCH": update_user_password})),
    path("users/update-admin", mlflow_endpoint({"PATCH": update_user_admin})),
    path("users/delete", mlflow_endpoint({"DELETE": delete_user})),
    path("users/current/permissions", mlflow_endpoint({"GET": list_current_user_permissions})),
    path("users/permissions/grant", mlflow_endpoint({"POST": grant_user_permission})),
    path("users/permissions/revoke", mlflow_endpoint({"POST": revoke_user_permission})),
    path("users/permissions/get", mlflow_endpoint({"GET": get_user_permission})),
    path("users/permissions/list", mlflow_endpoint({"GET": list_user_permissions})),
    path("users/roles/list", mlflow_endpoint({"GET": list_user_roles})),
    path("roles/create", mlflow_endpoint({"POST": create_role})),
    path("roles/get", mlflow_endpoint({"GET": get_role})),
    path("roles/list", mlflow_endpoint({"GET": list_roles})),
    path("roles/update", mlflow_endpoint({"PATCH": update_role})),
    path("roles/delete", mlflow_endpoint({"DELETE": delete_role})),
    path("roles/permissions/add", mlflow_endpoint({"POST": add_role_permission})),
    path("roles/permissions/remove", mlflow_endpoint({"DELETE": remove_role_permission})),
    path("roles/permissions/list", mlflow_endpoint({"GET": list_role_permissions})),
    path("roles/permissions/update", mlflow_endpoint({"PATCH": update_role_permission})),
    path("roles/assign", mlflow_endpoint({"POST": assign_role})),
    path("roles/unassign", mlflow_endpoint({"DELETE": unassign_role})),
    path("roles/users/list", mlflow_endpoint({"GET": list_role_users})),
]
