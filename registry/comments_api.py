"""The native API's comments on registered models, versions and transition requests (see
portal.annotations_api):

    /api/v1/registered-models/<name>/comments/[<comment_id>/]
    /api/v1/model-versions/<name>/<version>/comments/[<comment_id>/]
    /api/v1/transition-requests/<request_id>/comments/[<comment_id>/]

A model's comments are its own, not its versions' or its requests'.
"""

from portal import routes
from portal.annotations_api import CommentsView, CommentView
from registry import selectors
from registry.services import comments as comment_services


class _OnModel:
    comment_selectors = selectors
    comment_services = comment_services

    def get_subject(self):
        return selectors.registered_model_get_for_user(self.request.user, self.kwargs["name"])

    def comment_add(self, subject, text):
        return comment_services.comment_add(actor=self.request.user, name=subject.name, text=text)


class _OnVersion:
    comment_selectors = selectors
    comment_services = comment_services

    def get_subject(self):
        return selectors.model_version_get_for_user(self.request.user, self.kwargs["name"], self.kwargs["version"])

    def comment_add(self, subject, text):
        return comment_services.comment_add(
            actor=self.request.user, name=subject.registered_model.name, version=subject.version, text=text
        )


class _OnRequest:
    comment_selectors = selectors
    comment_services = comment_services

    def get_subject(self):
        return selectors.transition_request_get_for_user(self.request.user, self.kwargs["request_id"])

    def comment_add(self, subject, text):
        return comment_services.comment_add(actor=self.request.user, transition_request_id=subject.pk, text=text)


@routes.route_rule(routes.API)
class RegisteredModelCommentsView(_OnModel, CommentsView):
    """A registered model's own comments, oldest first. Anyone who may read the model may add one."""


@routes.route_rule(routes.API)
class RegisteredModelCommentView(_OnModel, CommentView):
    """One comment on a registered model. Its author edits it; its author or a MANAGE holder deletes it."""


@routes.route_rule(routes.API)
class ModelVersionCommentsView(_OnVersion, CommentsView):
    """A model version's comments, oldest first. Anyone who may read the model may add one."""


@routes.route_rule(routes.API)
class ModelVersionCommentView(_OnVersion, CommentView):
    """One comment on a model version. Its author edits it; its author or a MANAGE holder of the model deletes it."""


@routes.route_rule(routes.API)
class TransitionRequestCommentsView(_OnRequest, CommentsView):
    """A transition request's comments, oldest first. Anyone who may read the model may add one."""


@routes.route_rule(routes.API)
class TransitionRequestCommentView(_OnRequest, CommentView):
    """One comment on a transition request. Its author edits it; its author or a MANAGE holder of the model
    deletes it."""
