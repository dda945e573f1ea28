"""Runtime settings: built once, frozen, injected everywhere.

Precedence, highest first: command-line options, `HUBPROXY_<NAME>` environment variables, the
YAML config file (`--config` / `HUBPROXY_CONFIG`), then the defaults below. Every field is
available in all three places under the same name (`cache_max_bytes`, `--cache-max-bytes`,
`HUBPROXY_CACHE_MAX_BYTES`). An unknown key in the file or an unknown `HUBPROXY_*` variable is an
error: a typo must not silently fall back to a default.
"""

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hubproxy.constants import DEFAULT_CHUNK_SIZE, MEBIBYTE

ENV_PREFIX = "HUBPROXY_"
# Variables of that prefix that are not settings (test-suite knobs).
_ENV_NOT_SETTINGS = ("HUBPROXY_TEST_",)

StorageKind = Literal["local", "memory", "s3"]


class SettingsError(ValueError):
    """A setting has an unknown name or a value that cannot be parsed."""


def _secret(value: str | None) -> str:
    return "<unset>" if value is None else "<redacted>"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything that can be configured. Field docs are the user documentation of the option."""

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8000
    """Port to listen on."""
    data_dir: Path = Path("hubproxy-data")
    """Directory of the metadata database, staging area and (for `local` storage) chunks."""
    upstream: str = "https://huggingface.co"
    """Base URL of the upstream hub (huggingface.co, a mirror, or another hubproxy)."""
    upstream_token: str | None = field(default=None, repr=False)
    """hubproxy's own credential for upstream. Client tokens are never sent upstream."""
    offline: bool = False
    """Never contact upstream; serve only what is cached."""
    storage: StorageKind = "local"
    """Chunk storage backend: `local` (a directory, NFS-safe), `s3`, or `memory` (tests)."""
    storage_dir: Path | None = None
    """Directory of the `local` backend; default `<data_dir>/storage`."""
    s3_bucket: str | None = None
    """Bucket of the `s3` backend."""
    s3_prefix: str = ""
    """Key prefix inside the bucket (several hubproxy caches can share one bucket)."""
    s3_endpoint_url: str | None = None
    """S3 API endpoint, for S3-compatible stores (MinIO, Ceph...); default AWS."""
    s3_region: str | None = None
    """Region of the bucket."""
    s3_path_style: bool = False
    """Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need."""
    s3_redirect: bool = False
    """Answer downloads of fully cached, verified files with a 302 to a presigned S3 URL."""
    s3_access_key_id: str | None = field(default=None, repr=False)
    """Credentials; default: the usual AWS sources (environment, profile, instance role)."""
    s3_secret_access_key: str | None = field(default=None, repr=False)
    """Secret of `s3_access_key_id`."""
    chunk_size: int = DEFAULT_CHUNK_SIZE
    """Size of the chunks blobs are cached in (accepts 16MiB-style values)."""
    revision_ttl: float = 60.0
    """Seconds a branch or tag → commit mapping is trusted before asking upstream again."""
    cache_max_bytes: int | None = None
    """Evict least recently used blobs beyond this many cached bytes (accepts 100GiB)."""
    read_ahead_chunks: int = 1
    """Chunks fetched ahead of a ranged read that does not run to the end of the file."""
    parallel_chunk_fetches: int = 4
    """Chunks of one file fetched from upstream at the same time during a full download."""
    upstream_concurrency: int = 32
    """Upstream requests in flight at once, across all files."""
    upstream_timeout: float = 30.0
    """Seconds to connect to upstream, and the longest silence tolerated mid-body."""
    public_url: str | None = None
    """The URL clients use to reach hubproxy, if it differs from the request's own."""
    upload_lfs_threshold: int = 10 * MEBIBYTE
    """Uploads to hosted repos: files this large or larger go through Git LFS, smaller ones
    travel inside the commit. Clients with hf_xet need HF_HUB_DISABLE_XET=1 for LFS files."""
    require_auth: bool = False
    """Refuse anonymous requests everywhere (also `hubproxy admin policy set --require-auth`)."""
    audit_stdout: bool = False
    """Also print every audit record as one JSON line on stdout, for log shippers."""
    audit_queue_size: int = 10_000
    """Audit records held in memory before requests wait for the writer (never dropped)."""
    audit_retention: float | None = None
    """Delete audit records older than this (e.g. 90d), checked hourly; default keep all."""
    log_level: str = "info"
    """Logging level: debug, info, warning, error."""
    log_format: str = "text"
    """`text` (readable lines) or `json` (one JSON object per line, for log shippers)."""

    def __repr__(self) -> str:
        shown = {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(self)
            if item.name not in _SECRET_FIELDS
        }
        secrets = ", ".join(f"{name}={_secret(getattr(self, name))}" for name in _SECRET_FIELDS)
        return f"Settings({secrets}, {shown})"

    @property
    def storage_path(self) -> Path:
        """Where the `local` backend keeps chunks."""
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "storage"

    @property
    def database_path(self) -> Path:
        """The SQLite metadata database."""
        return self.data_dir / "hubproxy.sqlite3"

    @property
    def audit_path(self) -> Path:
        """The audit log, a SQLite file of its own."""
        return self.data_dir / "audit.sqlite3"

    @property
    def staging_path(self) -> Path:
        """Scratch files of in-flight upstream fetches; emptied at start."""
        return self.data_dir / "staging"


FIELD_NAMES = tuple(item.name for item in dataclasses.fields(Settings))
_SECRET_FIELDS = ("upstream_token", "s3_access_key_id", "s3_secret_access_key")
_BYTE_FIELDS = {"chunk_size", "cache_max_bytes", "upload_lfs_threshold"}
_SECONDS_FIELDS = {"revision_ttl", "upstream_timeout", "audit_retention"}
_INT_FIELDS = {
    "port", "read_ahead_chunks", "parallel_chunk_fetches", "upstream_concurrency",
    "audit_queue_size",
}  # fmt: skip
_BOOL_FIELDS = {"offline", "s3_path_style", "s3_redirect", "require_auth", "audit_stdout"}
_PATH_FIELDS = {"data_dir", "storage_dir"}
_NULLABLE_FIELDS = {
    "upstream_token", "storage_dir", "cache_max_bytes", "public_url", "audit_retention",
    "s3_bucket", "s3_endpoint_url", "s3_region", "s3_access_key_id", "s3_secret_access_key",
}  # fmt: skip

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": MEBIBYTE, "gib": 1024**3, "tib": 1024**4,
}  # fmt: skip
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_SECONDS_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_size(value: Any) -> int:
    """`1048576`, `"16MiB"`, `"100GB"` → bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_PATTERN.match(str(value))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise SettingsError(f"not a size: {value!r} (use e.g. 1048576, 16MiB or 100GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def parse_seconds(value: Any) -> float:
    """`60`, `"60s"`, `"5m"` → seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _SIZE_PATTERN.match(str(value))
    if not match or match.group(2).lower() not in _SECONDS_UNITS:
        raise SettingsError(f"not a duration: {value!r} (use e.g. 60, 60s, 5m)")
    return float(match.group(1)) * _SECONDS_UNITS[match.group(2).lower()]


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"not a boolean: {value!r}")


def _coerce(name: str, value: Any) -> Any:
    if value is None or (name in _NULLABLE_FIELDS and value == ""):
        if name in _NULLABLE_FIELDS:
            return None
        raise SettingsError(f"{name}: a value is required")
    try:
        if name in _BYTE_FIELDS:
            return parse_size(value)
        if name in _SECONDS_FIELDS:
            return parse_seconds(value)
        if name in _BOOL_FIELDS:
            return parse_bool(value)
        if name in _INT_FIELDS:
            if isinstance(value, bool):
                raise SettingsError(f"not an integer: {value!r}")
            return int(value)
        if name in _PATH_FIELDS:
            return Path(str(value)).expanduser()
    except (TypeError, ValueError) as error:
        raise SettingsError(f"{name}: {error}") from None
    return str(value)


def _validate(settings: Settings) -> Settings:
    if settings.storage not in ("local", "memory", "s3"):
        raise SettingsError(f"storage: unknown backend {settings.storage!r} (local, s3, memory)")
    if settings.s3_redirect and settings.storage != "s3":
        raise SettingsError("s3_redirect: needs storage s3")
    if settings.storage == "s3" and not settings.s3_bucket:
        raise SettingsError("s3_bucket: required with storage s3")
    if settings.chunk_size < 64 * 1024:
        raise SettingsError("chunk_size: must be at least 64KiB")
    if not settings.upstream.startswith(("http://", "https://")):
        raise SettingsError(f"upstream: not an http(s) URL: {settings.upstream!r}")
    if settings.audit_retention is not None and settings.audit_retention <= 0:
        raise SettingsError("audit_retention: must be positive")
    if settings.cache_max_bytes is not None and settings.cache_max_bytes <= 0:
        raise SettingsError("cache_max_bytes: must be positive")
    for name in ("read_ahead_chunks",):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name}: must not be negative")
    for name in ("parallel_chunk_fetches", "upstream_concurrency", "audit_queue_size"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name}: must be at least 1")
    if settings.log_format not in ("text", "json"):
        raise SettingsError(f"log_format: unknown format {settings.log_format!r} (text, json)")
    if settings.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise SettingsError(f"log_level: unknown level {settings.log_level!r}")
    return dataclasses.replace(
        settings, upstream=settings.upstream.rstrip("/"), log_level=settings.log_level.lower()
    )


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SettingsError(f"cannot read config file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SettingsError(f"config file {path} is not valid YAML: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"config file {path} must be a mapping of settings")
    values = {str(key).replace("-", "_"): value for key, value in loaded.items()}
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise SettingsError(f"config file {path}: unknown settings {', '.join(unknown)}")
    return values


def _read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key.startswith(_ENV_NOT_SETTINGS):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name == "config":
            continue
        if name not in FIELD_NAMES:
            raise SettingsError(f"unknown environment variable {key}")
        values[name] = value
    return values


def load_settings(
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge defaults < config file < environment < CLI into validated `Settings`.

    `cli` holds only the options actually given (None values are ignored). The config file is
    `config_file`, else `HUBPROXY_CONFIG` from `environ`.
    """
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        config_file = Path(environ[f"{ENV_PREFIX}CONFIG"])
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(_read_config_file(config_file))
    merged.update(_read_environment(environ))
    for key, value in (cli or {}).items():
        if key not in FIELD_NAMES:
            raise SettingsError(f"unknown option {key}")
        if value is not None:
            merged[key] = value
    coerced = {name: _coerce(name, value) for name, value in merged.items()}
    return _validate(Settings(**coerced))
