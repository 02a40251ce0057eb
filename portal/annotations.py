"""Annotations: the comment rule both apps follow, and how a comment's Markdown is shown.

tracking (experiments, runs) and registry (registered models, versions, transition
requests) each keep their own Comment model and services; the rule is stated once, here:

- anyone who may READ the object may comment on it;
- only the author edits a comment (nobody puts words in someone else's mouth);
- the author, or a MANAGE holder of the object, deletes one (moderation);
- the text is Markdown: not blank, at most MAX_COMMENT_LENGTH characters.

A comment is stored as its author wrote it and rendered on every read (`markdown_render`),
so a stricter sanitiser applies to old comments too. Rendering is two layers deep:
markdown-it with raw HTML off (a `<script>` in the text stays text), then nh3 keeps only
the tags Markdown produces, http(s)/mailto URLs and no event or style attributes, so a
bug in either layer alone does not put script into a page.
"""

from __future__ import annotations

from typing import Any

import nh3
from markdown_it import MarkdownIt

from portal import permissions
from portal.errors import InvalidParameter, PermissionDenied

MAX_COMMENT_LENGTH = 100_000


# ---------------------------------------------------------------- the rule


def comment_text_validated(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter("A comment needs some text.")
    if len(text) > MAX_COMMENT_LENGTH:
        raise InvalidParameter(f"A comment may be at most {MAX_COMMENT_LENGTH} characters long, not {len(text)}.")
    return text


def require_may_comment(user: permissions.User, obj: Any) -> None:
    """Raise unless `user` may comment on `obj`: READ on it (NotFound otherwise, as for a
    missing object). Callers fetch `obj` through a selector for `user` first."""
    if not permissions.is_active_user(user):
        raise PermissionDenied("Only a signed-in user can comment.")
    permissions.require(user, permissions.READ, obj)


def is_author(user: permissions.User, comment: Any) -> bool:
    return permissions.is_active_user(user) and comment.author_id is not None and comment.author_id == user.pk


def may_edit(user: permissions.User, comment: Any) -> bool:
    return is_author(user, comment)


def may_moderate(user: permissions.User, obj: Any) -> bool:
    """May `user` delete anyone's comments on `obj`? MANAGE on it."""
    return permissions.can(user, permissions.MANAGE, obj)


def may_delete(user: permissions.User, comment: Any, obj: Any, *, moderates: bool | None = None) -> bool:
    """The author may, and so may a moderator of `obj` (the object commented on). A list
    passes `moderates` (may_moderate, asked once) rather than asking for every comment."""
    if is_author(user, comment):
        return True
    return may_moderate(user, obj) if moderates is None else moderates


def require_may_edit(user: permissions.User, comment: Any) -> None:
    if not may_edit(user, comment):
        raise PermissionDenied("Only the author of a comment may edit it.")


def require_may_delete(user: permissions.User, comment: Any, obj: Any) -> None:
    if not may_delete(user, comment, obj):
        raise PermissionDenied(
            f"Only the author of a comment (or a manager of the {obj._meta.verbose_name}) may delete it."
        )


# ---------------------------------------------------------------- Markdown

# CommonMark with raw HTML off, plus GitHub's tables and strikethrough; a line break in a
# comment is a line break, as on GitHub. markdown-it also refuses javascript:, vbscript:,
# file: and most data: URLs itself; nh3 below is the second, stricter word on URLs.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])

_ALIGN = {"text-align:left", "text-align:center", "text-align:right"}
# Exactly what the Markdown above can produce, and nothing else.
_CLEANER = nh3.Cleaner(
    tags={
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li", "pre", "code",
        "em", "strong", "s", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
    },
    clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript", "textarea"},
    attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}},
    # Table column alignment is the only style markdown-it writes; any other value goes.
    tag_attribute_values={"th": {"style": _ALIGN}, "td": {"style": _ALIGN}},
    # An image from elsewhere must not learn which portal page it was shown on.
    set_tag_attribute_values={"img": {"referrerpolicy": "no-referrer", "loading": "lazy"}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def markdown_render(text: str) -> str:
    """`text` (Markdown) as HTML that is safe to put into a page as is."""
    return html_sanitised(_MARKDOWN.render(text or ""))


def html_sanitised(html: str) -> str:
    """`html` reduced to what Markdown produces: the second layer of markdown_render."""
    return _CLEANER.clean(html)
