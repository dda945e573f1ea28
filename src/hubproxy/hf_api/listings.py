"""Search over hosted repos the Hub way: `filter`, `sort`, `direction` and `cardData` of
`list_models` & co. (hf-protocol.md §4.3), on the summaries `hosted.list_repos` has already
limited to what the caller may read.

A repo's tags are what huggingface.co derives from its card (`card_tags`): the card's own
`tags`, `base_model:<id>` (and `base_model:<relation>:<id>`), `dataset:<id>`, `license:<id>`,
the library and the pipeline tag. A `filter` value matches a tag exactly; every value given
must match.
"""

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from hubproxy.constants import RepoType
from hubproxy.errors import BadRequest
from hubproxy.hf_api.model_cards import metadata_at
from hubproxy.hub.cards import strings
from hubproxy.hub.repos import DEFAULT_BRANCH
from hubproxy.naming import RepoRef
from hubproxy.stores import RepoStore

# `sort` values and the summary field each sorts on.
SORT_FIELDS = {"lastModified": "lastModified", "createdAt": "createdAt", "id": "id"}
_TRUE = frozenset({"1", "true"})


@dataclass(frozen=True, slots=True)
class ListingQuery:
    filters: tuple[str, ...]
    sort: str | None
    descending: bool
    card_data: bool

    @classmethod
    def of(cls, query: QueryParams) -> "ListingQuery":
        filters = tuple(
            value for item in query.getlist("filter") for value in item.split(",") if value
        )
        sort = query.get("sort")
        if sort is not None and sort not in SORT_FIELDS:
            raise BadRequest(f"Invalid sort {sort!r}: one of {', '.join(SORT_FIELDS)}")
        direction = query.get("direction", "-1")
        if direction not in ("-1", "1"):
            raise BadRequest("'direction' must be -1 (descending) or 1 (ascending)")
        card_data = (
            query.get("cardData", "").lower() in _TRUE or query.get("full", "").lower() in _TRUE
        )
        expand = set(query.getlist("expand") + query.getlist("expand[]"))
        card_data = card_data or "cardData" in expand
        return cls(filters, sort, direction == "-1", card_data)

    @property
    def needs_cards(self) -> bool:
        return bool(self.filters) or self.card_data


def card_tags(metadata: dict[str, Any]) -> list[str]:
    """The tags huggingface.co derives from a card's metadata (see the module docstring)."""
    tags = strings(metadata.get("tags"))
    relation = metadata.get("base_model_relation")
    for base in strings(metadata.get("base_model")):
        tags.append(f"base_model:{base}")
        if isinstance(relation, str) and relation:
            tags.append(f"base_model:{relation}:{base}")
    tags += [f"dataset:{name}" for name in strings(metadata.get("datasets"))]
    tags += [f"license:{name}" for name in strings(metadata.get("license"))]
    for field in ("library_name", "pipeline_tag"):
        tags += strings(metadata.get(field))
    return list(dict.fromkeys(tags))


async def with_cards(
    store: RepoStore, repo_type: RepoType, summaries: list[dict[str, Any]], wanted: ListingQuery
) -> list[dict[str, Any]]:
    """The summaries whose tags match every filter, with their tags (and `cardData`)."""
    kept = []
    for summary in summaries:
        ref = RepoRef(repo_type, summary["id"])
        metadata = await metadata_at(store, ref, summary.get("sha") or DEFAULT_BRANCH) or {}
        tags = card_tags(metadata)
        if not all(value in tags for value in wanted.filters):
            continue
        summary = {**summary, "tags": tags}
        for field in ("library_name", "pipeline_tag"):
            if isinstance(metadata.get(field), str):
                summary[field] = metadata[field]
        if wanted.card_data:
            summary["cardData"] = metadata
        kept.append(summary)
    return kept


def sorted_summaries(summaries: list[dict[str, Any]], wanted: ListingQuery) -> list[dict[str, Any]]:
    if wanted.sort is None:
        return summaries
    field = SORT_FIELDS[wanted.sort]
    return sorted(summaries, key=lambda item: str(item.get(field) or ""), reverse=wanted.descending)
