"""The native API's comments on experiments and runs (see portal.annotations_api):

    /api/v1/experiments/<experiment_id>/comments/[<comment_id>/]
    /api/v1/runs/<run_id>/comments/[<comment_id>/]

An experiment's comments are its own, not its runs'.
"""

from portal import routes
from portal.annotations_api import CommentsView, CommentView
from tracking import selectors
from tracking.services import comments as comment_services


class _OnExperiment:
    comment_selectors = selectors
    comment_services = comment_services

    def get_subject(self):
        return selectors.experiment_get_for_user(self.request.user, self.kwargs["experiment_id"])

    def comment_add(self, subject, text):
        return comment_services.comment_add(actor=self.request.user, experiment_id=subject.pk, text=text)


class _OnRun:
    comment_selectors = selectors
    comment_services = comment_services

    def get_subject(self):
        return selectors.run_get_for_user(self.request.user, self.kwargs["run_id"])

    def comment_add(self, subject, text):
        return comment_services.comment_add(actor=self.request.user, run_id=subject.pk, text=text)


@routes.route_rule(routes.API)
class ExperimentCommentsView(_OnExperiment, CommentsView):
    """An experiment's comments, oldest first. Anyone who may read the experiment may add one."""


@routes.route_rule(routes.API)
class ExperimentCommentView(_OnExperiment, CommentView):
    """One comment on an experiment. Its author edits it; its author or a MANAGE holder deletes it."""


@routes.route_rule(routes.API)
class RunCommentsView(_OnRun, CommentsView):
    """A run's comments, oldest first. Anyone who may read the run may add one."""


@routes.route_rule(routes.API)
class RunCommentView(_OnRun, CommentView):
    """One comment on a run. Its author edits it; its author or a MANAGE holder of the run deletes it."""
