"""The native API's comment routes, the same for every kind of object that takes comments:

    GET    <object>/comments/                 the object's comments, oldest first (cursor pages)
    POST   <object>/comments/                 {text}: add one (anyone who may read the object)
    GET    <object>/comments/<comment_id>/
    PATCH  <object>/comments/<comment_id>/    {text}: its author only
    DELETE <object>/comments/<comment_id>/    its author, or a MANAGE holder of the object

Each app declares its routes (tracking.comments_api, registry.comments_api) by saying how
to fetch the object for the caller (`get_subject`, through a selector: hidden is 404) and
how to add a comment to it; the rest goes through the app's `comments_on` selector and its
`comment_edit` / `comment_delete` services, which state the rule (portal.annotations).
"""

from functools import cached_property
from types import ModuleType
from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, status
from rest_framework.response import Response

from portal import annotations
from portal.api import valid_input
from portal.errors import NotFound


class CommentSerializer(serializers.Serializer):
    """A comment as the caller sees it. The serializer's context holds `subject` (the object
    commented on) and `request`; whether the caller moderates it is asked once per response."""

    id = serializers.IntegerField(read_only=True)
    author = serializers.SerializerMethodField(help_text="The author's username; null once the user is deleted.")
    text = serializers.CharField(help_text="The comment as written (Markdown).")
    html = serializers.SerializerMethodField(
        help_text="The text rendered from Markdown and sanitised: safe to put into a page as is."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    edited = serializers.SerializerMethodField(help_text="Whether the text was changed after it was posted.")
    can_edit = serializers.SerializerMethodField(help_text="Whether the caller may edit it (its author only).")
    can_delete = serializers.SerializerMethodField(
        help_text="Whether the caller may delete it (its author, or a MANAGE holder of the object)."
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_author(self, comment) -> str | None:
        return comment.author.get_username() if comment.author_id is not None else None

    @extend_schema_field(serializers.CharField())
    def get_html(self, comment) -> str:
        return annotations.markdown_render(comment.text)

    @extend_schema_field(serializers.BooleanField())
    def get_edited(self, comment) -> bool:
        return comment.updated_at != comment.created_at

    @extend_schema_field(serializers.BooleanField())
    def get_can_edit(self, comment) -> bool:
        return annotations.may_edit(self.context["request"].user, comment)

    @extend_schema_field(serializers.BooleanField())
    def get_can_delete(self, comment) -> bool:
        user = self.context["request"].user
        if annotations.is_author(user, comment):
            return True
        if "moderates" not in self.context:
            self.context["moderates"] = annotations.may_moderate(user, self.context["subject"])
        return self.context["moderates"]


class CommentTextInputSerializer(serializers.Serializer):
    # Kept as written: trailing spaces and blank lines mean something in Markdown.
    text = serializers.CharField(
        trim_whitespace=False,
        max_length=annotations.MAX_COMMENT_LENGTH,
        help_text="Markdown; raw HTML is shown as text.",
    )


class _CommentRoute(generics.GenericAPIView):
    """What both comment routes share. Subclasses set `comment_selectors` and
    `comment_services` (the app's modules) and define `get_subject`."""

    serializer_class = CommentSerializer
    comment_selectors: ModuleType
    comment_services: ModuleType

    def get_subject(self) -> Model:
        """The object the route names, fetched for the caller (NotFound when hidden)."""
        raise NotImplementedError

    @cached_property
    def subject(self) -> Model:
        return self.get_subject()

    def comments(self) -> QuerySet:
        return self.comment_selectors.comments_on(self.subject)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        # The schema generator builds serializers without a request: no object then.
        if getattr(self, "swagger_fake_view", False):
            return context
        return {**context, "subject": self.subject}


class CommentsView(mixins.ListModelMixin, _CommentRoute):
    """Subclasses also define `comment_add(subject, text)`."""

    cursor_ordering = "id"  # creation order

    def get_queryset(self) -> QuerySet:
        return self.comments()

    def comment_add(self, subject: Model, text: str) -> Model:
        raise NotImplementedError

    def get(self, request, *args, **kwargs):
        return self.list(request)

    @extend_schema(request=CommentTextInputSerializer, responses={201: CommentSerializer})
    def post(self, request, *args, **kwargs):
        subject = self.subject  # first: a hidden object is 404 whatever the body
        data = valid_input(CommentTextInputSerializer, request.data)
        comment = self.comment_add(subject, data["text"])
        return Response(self.get_serializer(comment).data, status=status.HTTP_201_CREATED)


class CommentView(_CommentRoute):
    lookup_url_kwarg = "comment_id"

    def get_object(self) -> Model:
        comment_id = self.kwargs["comment_id"]
        found = self.comments().filter(pk=comment_id).first()
        if found is None:
            raise NotFound(f"Comment {comment_id} not found")
        return found

    def get(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=CommentTextInputSerializer, responses=CommentSerializer)
    def patch(self, request, *args, **kwargs):
        found = self.get_object()
        data = valid_input(CommentTextInputSerializer, request.data)
        comment = self.comment_services.comment_edit(actor=request.user, comment_id=found.pk, text=data["text"])
        return Response(self.get_serializer(comment).data)

    @extend_schema(responses={204: None})
    def delete(self, request, *args, **kwargs):
        found = self.get_object()
        self.comment_services.comment_delete(actor=request.user, comment_id=found.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
