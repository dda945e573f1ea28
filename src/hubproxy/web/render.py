"""Rendering: the Jinja2 environment of the package's templates, sanitized Markdown, and the
small formatting helpers templates use.

Everything shown comes from users (cards, file names, commit messages, discussion comments), so
templates autoescape, and Markdown is rendered by markdown-it-py and then cleaned by nh3 (an
allow-list sanitizer): raw HTML in a card keeps its harmless tags and loses scripts, event
handlers and `javascript:` links.
"""

import datetime
import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nh3
import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from starlette.responses import HTMLResponse

from hubproxy.constants import URL_PREFIX_BY_REPO_TYPE
from hubproxy.hf_api.call import Call
from hubproxy.hub.cards import metadata_block
from hubproxy.naming import RepoRef

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# The metadata panel: front matter keys shown, in this order.
CARD_FIELDS = (
    "license", "base_model", "datasets", "language", "library_name", "pipeline_tag", "tags",
    "metrics",
)  # fmt: skip
# Links in rendered Markdown may only use these schemes (relative links are kept).
_URL_SCHEMES = {"http", "https", "mailto"}


@functools.cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


def markdown_html(text: str) -> str:
    """Markdown → HTML safe to embed in a page."""
    rendered = _markdown().render(text)
    return nh3.clean(rendered, url_schemes=_URL_SCHEMES, link_rel="noopener noreferrer nofollow")


def split_card(content: str) -> tuple[dict[str, Any], str]:
    """A card's front matter (a mapping; {} when absent or not YAML) and its Markdown body."""
    if metadata_block(content) is None:
        return {}, content
    lines = content.lstrip("\ufeff").splitlines()
    end = next(index for index in range(1, len(lines)) if lines[index].rstrip() in ("---", "..."))
    try:
        metadata = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError:
        metadata = None
    return (metadata if isinstance(metadata, dict) else {}), "\n".join(lines[end + 1 :])


def card_panel(metadata: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The metadata panel: (field, values as text) for the fields a card sets."""
    panel: list[tuple[str, list[str]]] = []
    for name in CARD_FIELDS:
        value = metadata.get(name)
        if value is None or value == "" or value == []:
            continue
        if name == "metrics" and isinstance(value, list):
            values = [str(item.get("name", item)) if isinstance(item, dict) else str(item)
                      for item in value]  # fmt: skip
        elif isinstance(value, list):
            values = [str(item) for item in value]
        else:
            values = [str(value)]
        panel.append((name, values))
    return panel


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def when(value: float | str | None) -> str:
    """A Unix time or ISO date as `YYYY-MM-DD HH:MM:SS` UTC."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def repo_url(ref: RepoRef) -> str:
    """The page of a repo, at huggingface.co's URL."""
    return f"/{URL_PREFIX_BY_REPO_TYPE[ref.repo_type]}{ref.repo_id}"


def quoted(value: str) -> str:
    """A revision or path for a URL: slashes kept between path segments, the rest encoded."""
    return quote(value, safe="/")


def revision_segment(value: str) -> str:
    """A revision as one URL segment (`refs/pr/1` → `refs%2Fpr%2F1`)."""
    return quote(value, safe="")


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=human_size, when=when, repo_url=repo_url, quoted=quoted, segment=revision_segment
    )
    return env


def page(call: Call, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of `template` for `call`: the signed-in principal and the form's CSRF token are
    in every page's context."""
    state = call.request.state
    body = (
        environment()
        .get_template(template)
        .render(
            principal=call.principal,
            csrf=getattr(state, "web_csrf", ""),
            path=call.request.url.path,
            **context,
        )
    )
    return HTMLResponse(body, status_code=status)
