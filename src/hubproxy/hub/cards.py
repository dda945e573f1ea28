"""Repo card (README.md) metadata, validated as huggingface.co validates it.

The metadata is the YAML block between `---` lines at the top of the card. `validate_card`
answers what `POST /api/validate-yaml` answers: errors (the YAML does not parse, is not a
mapping, or a known field has the wrong type) and warnings (no metadata at all). A commit
whose README.md has errors is refused with them (400), as on huggingface.co.
"""

from dataclasses import dataclass, field
from typing import Any

import yaml

MISSING_METADATA = (
    "empty or missing yaml metadata in repo card"
    " (https://huggingface.co/docs/hub/model-cards#model-card-metadata)"
)
MAX_CARD_BYTES = 1024 * 1024

# Known fields and the kinds of value they take ("strings": a string or a list of strings).
_STRING = "a string"
_STRINGS = "a string or a list of strings"
_LIST = "a list"
_MAPPING = "an object"
_BOOLEAN = "a boolean"
_COMMON: dict[str, str] = {
    "license": _STRINGS,
    "license_name": _STRING,
    "license_link": _STRING,
    "language": _STRINGS,
    "tags": _STRINGS,
    "datasets": _STRINGS,
    "pretty_name": _STRING,
    "thumbnail": _STRING,
    "extra_gated_prompt": _STRING,
    "extra_gated_fields": _MAPPING,
    "configs": _LIST,
}
_BY_TYPE: dict[str, dict[str, str]] = {
    "model": {
        "pipeline_tag": _STRING,
        "library_name": _STRING,
        "base_model": _STRINGS,
        "base_model_relation": _STRING,
        "metrics": _STRINGS,
        "model-index": _LIST,
        "widget": _LIST,
        "inference": "a boolean or an object",
        "new_version": _STRING,
    },
    "dataset": {
        "task_categories": _STRINGS,
        "task_ids": _STRINGS,
        "size_categories": _STRINGS,
        "source_datasets": _STRINGS,
        "annotations_creators": _STRINGS,
        "language_creators": _STRINGS,
        "multilinguality": _STRINGS,
        "dataset_info": "an object or a list",
        "viewer": _BOOLEAN,
    },
    "space": {
        "title": _STRING,
        "sdk": _STRING,
        "sdk_version": _STRING,
        "app_file": _STRING,
        "app_port": "an integer",
        "pinned": _BOOLEAN,
        "models": _STRINGS,
        "emoji": _STRING,
    },
}


@dataclass(slots=True)
class CardCheck:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def metadata_block(content: str) -> str | None:
    """The YAML text between the leading `---` lines, or None when there is none. Blank
    lines may come before the first `---` (huggingface_hub and huggingface.co accept them)."""
    text = content.lstrip("\ufeff").lstrip()
    lines = text.splitlines()
    if not lines or lines[0].rstrip() != "---":
        return None
    for index, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return "\n".join(lines[1:index])
    return None


def _kind_ok(kind: str, value: Any) -> bool:
    if value is None:
        return True  # an empty field is left out, not refused
    if kind == _STRING:
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if kind == _STRINGS:
        items = value if isinstance(value, list) else [value]
        return all(
            isinstance(item, str | int | float) and not isinstance(item, bool) for item in items
        )
    if kind == _LIST:
        return isinstance(value, list)
    if kind == _MAPPING:
        return isinstance(value, dict)
    if kind == _BOOLEAN:
        return isinstance(value, bool)
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "a boolean or an object":
        return isinstance(value, bool | dict)
    return isinstance(value, dict | list)  # "an object or a list"


def validate_card(content: str, repo_type: str) -> CardCheck:
    """The errors and warnings of a card's metadata for a repo of `repo_type`."""
    check = CardCheck()
    block = metadata_block(content)
    if block is None or not block.strip():
        check.warnings.append(MISSING_METADATA)
        return check
    try:
        metadata = yaml.safe_load(block)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        check.errors.append(f"Invalid YAML in the metadata{where}: {problem}")
        return check
    if metadata is None:
        check.warnings.append(MISSING_METADATA)
        return check
    if not isinstance(metadata, dict):
        check.errors.append("The metadata must be a YAML mapping of fields to values")
        return check
    fields = {**_COMMON, **_BY_TYPE.get(repo_type, {})}
    for name, value in metadata.items():
        kind = fields.get(str(name))
        if kind is not None and not _kind_ok(kind, value):
            check.errors.append(f'"{name}" must be {kind}')
    return check


SPACE_SDKS = ("gradio", "streamlit", "docker", "static")


def space_card(name: str, sdk: str) -> str:
    """The README.md a new space starts with, as on huggingface.co: the metadata that says
    how the space is built (hubproxy runs no spaces, but clients read and update it)."""
    return f"---\ntitle: {name}\nsdk: {sdk}\npinned: false\n---\n\n# {name}\n"


def card_metadata(content: str) -> dict[str, Any]:
    """The metadata mapping of a card ({} when it has none or it does not parse)."""
    block = metadata_block(content)
    if block is None:
        return {}
    try:
        metadata = yaml.safe_load(block)
    except yaml.YAMLError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def strings(value: Any) -> list[str]:
    """A "string or list of strings" field as a list (other values left out)."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    return [str(item) for item in items if isinstance(item, str | int | float)]


def metrics(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Every result of the card's `model-index`, flattened: model, task, dataset, metric
    name and type, value."""
    found: list[dict[str, Any]] = []
    index = metadata.get("model-index")
    for model in index if isinstance(index, list) else []:
        if not isinstance(model, dict):
            continue
        results = model.get("results")
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            task, dataset = result.get("task"), result.get("dataset")
            task = task if isinstance(task, dict) else {}
            dataset = dataset if isinstance(dataset, dict) else {}
            listed = result.get("metrics")
            for metric in listed if isinstance(listed, list) else []:
                if not isinstance(metric, dict):
                    continue
                found.append(
                    {
                        "model": model.get("name"),
                        "task": task.get("type"),
                        "dataset": dataset.get("name") or dataset.get("type"),
                        "name": metric.get("name") or metric.get("type"),
                        "type": metric.get("type"),
                        "value": metric.get("value"),
                    }
                )
    return found


def registry_card(metadata: dict[str, Any]) -> dict[str, Any]:
    """What the model registry shows of a card: metrics (`model-index`), `base_model`,
    `datasets`, `license`, tags."""
    return {
        "baseModel": strings(metadata.get("base_model")),
        "baseModelRelation": metadata.get("base_model_relation"),
        "datasets": strings(metadata.get("datasets")),
        "license": metadata.get("license"),
        "tags": strings(metadata.get("tags")),
        "pipelineTag": metadata.get("pipeline_tag"),
        "libraryName": metadata.get("library_name"),
        "metrics": metrics(metadata),
    }
