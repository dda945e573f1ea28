"""Runtime settings: built once, frozen, injected everywhere.

Precedence, highest first: command-line options, `HUBPROXY_<NAME>` environment variables, the
YAML config file (`--config` / `HUBPROXY_CONFIG`), then the defaults below. Every field is
available in all three places under the same name (`cache_max_bytes`, `--cache-max-bytes`,
`HUBPROXY_CACHE_MAX_BYTES`). An unknown key in the file or an unknown `HUBPROXY_*` variable is an
error: a typo must not silently fall back to a default.
"""

import dataclasses
import math
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal

import yaml

from hubproxy.constants import DEFAULT_CHUNK_SIZE, MEBIBYTE

ENV_PREFIX = "HUBPROXY_"
# Variables of that prefix that are not settings (test-suite knobs).
_ENV_NOT_SETTINGS = ("HUBPROXY_TEST_",)

StorageKind = Literal["local", "memory", "s3"]
XetDownloads = Literal["off", "hosted", "all"]
XET_DOWNLOAD_MODES = ("off", "hosted", "all")


class SettingsError(ValueError):
    """A setting has an unknown name or a value that cannot be parsed."""


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, bounded by a cgroup CPU quota (a
    container limited to 2 CPUs on a 64-core node gets 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _secret(value: str | None) -> str:
    return "<unset>" if value is None else "<redacted>"


SETTING_INFO = "hubproxy.setting"
SettingKind = Literal["size", "duration", "int", "bool", "path", "text"]


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """What `setting()` records about a field (see there)."""

    help: str
    kind: SettingKind | None
    flags: str | None
    shown_default: str | None
    secret: bool


def setting(
    default: Any,
    help: str,
    *,
    kind: SettingKind | None = None,
    flags: str | None = None,
    shown_default: str | None = None,
    secret: bool = False,
) -> Any:
    """One setting: its default and everything the CLI, environment and docs say about it.

    `kind` is how a value is parsed (derived from the field's type when omitted); `flags` names
    a boolean's on/off options (`--offline/--online`); `shown_default` is what `--help` shows
    where the default is computed or absent; `secret` settings are never command-line options
    and never printed.
    """
    metadata = SettingInfo(help, kind, flags, shown_default, secret)
    return field(default=default, repr=not secret, metadata={SETTING_INFO: metadata})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything that can be configured: each field is declared once, here, with its help.

    The `serve` options, the environment variables, the config file keys and the parsing of
    each value are all derived from these declarations (`SETTING_FIELDS`).
    """

    host: str = setting("127.0.0.1", "Address to listen on.")
    port: int = setting(8000, "Port to listen on.")
    workers: int | None = setting(
        None,
        "Server processes on the one port and data dir (1: a single process; memory storage "
        "allows only 1).",
        shown_default="number of cores",
    )
    data_dir: Path = setting(
        Path("hubproxy-data"),
        "Directory of the metadata database, staging area and (for local storage) chunks.",
    )
    database_url: str | None = setting(
        None,
        "PostgreSQL URL (postgresql://user@host/db) of a metadata database shared by replicas; "
        "unset: SQLite in the data dir. Give a password in PGPASSWORD or ~/.pgpass, not here.",
        shown_default="SQLite in <data-dir>",
    )
    upstream: str = setting(
        "https://huggingface.co",
        "Base URL of the upstream hub (huggingface.co, a mirror, or another hubproxy).",
    )
    upstream_token: str | None = setting(
        None,
        "hubproxy's own credential for upstream. Client tokens are never sent upstream.",
        secret=True,
    )
    offline: bool = setting(
        False, "Never contact upstream; serve only what is cached.", flags="--offline/--online"
    )
    storage: StorageKind = setting(
        "local", "Chunk storage backend: local (a directory, NFS-safe), s3, or memory (tests)."
    )
    storage_dir: Path | None = setting(
        None, "Directory of the local backend.", shown_default="<data-dir>/storage"
    )
    s3_bucket: str | None = setting(None, "Bucket of the s3 backend.")
    s3_prefix: str = setting(
        "", "Key prefix inside the bucket (several hubproxy caches can share one bucket)."
    )
    s3_endpoint_url: str | None = setting(
        None, "S3 API endpoint, for S3-compatible stores (MinIO, Ceph...).", shown_default="AWS"
    )
    s3_region: str | None = setting(None, "Region of the bucket.")
    s3_path_style: bool = setting(
        False,
        "Path-style addressing (endpoint/bucket/key), which most S3-compatible stores need.",
        flags="--s3-path-style/--s3-virtual-hosted",
    )
    s3_redirect: bool = setting(
        False,
        "Answer downloads of fully cached, verified files with a 302 to a presigned S3 URL.",
        flags="--s3-redirect/--no-s3-redirect",
    )
    s3_access_key_id: str | None = setting(
        None,
        "S3 credentials; default: the usual AWS sources (environment, profile, instance role).",
        secret=True,
    )
    s3_secret_access_key: str | None = setting(None, "Secret of s3_access_key_id.", secret=True)
    local_cache_dir: Path | None = setting(
        None,
        "With s3 storage: a local directory keeping copies of hot chunks, so warm downloads "
        "are sent from local disk (sendfile) while S3 stays the truth.",
        shown_default="off",
    )
    local_cache_max_bytes: int = setting(
        10 * 1024**3,
        "Most bytes of chunk copies in local_cache_dir (least recently used dropped first).",
        kind="size",
    )
    chunk_size: int = setting(
        DEFAULT_CHUNK_SIZE, "Size of the chunks blobs are cached in.", kind="size"
    )
    revision_ttl: float = setting(
        60.0, "How long a branch or tag -> commit mapping is trusted before asking upstream again."
    )
    cache_max_bytes: int | None = setting(
        None,
        "Evict least recently used files beyond this many cached bytes.",
        kind="size",
        shown_default="unlimited",
    )
    read_ahead_chunks: int = setting(
        1, "Chunks fetched ahead of a ranged read that does not run to the end of the file."
    )
    parallel_chunk_fetches: int = setting(
        4, "Chunks of one file fetched from upstream at the same time during a full download."
    )
    lease_seconds: float = setting(
        30.0,
        "How long a chunk fill's lease lasts unrenewed: after a process (a replica, a worker) "
        "dies mid-fill, another takes the chunk over this long after its last renewal.",
    )
    sendfile: bool = setting(
        True,
        "Send cached, verified files from local chunk storage or local_cache_dir with "
        "sendfile(2) (zero-copy); S3 without it, TLS and files still arriving take the copy path.",
        flags="--sendfile/--no-sendfile",
    )
    upstream_concurrency: int = setting(32, "Upstream requests in flight at once, all files.")
    upstream_timeout: float = setting(
        30.0, "Time to connect to upstream, and the longest silence tolerated mid-body."
    )
    max_header_bytes: int = setting(
        64 * 1024, "Largest request head (request line and headers) accepted.", kind="size"
    )
    max_headers: int = setting(100, "Most request headers accepted in one request.")
    header_timeout: float = setting(
        10.0, "Time a client has to send a whole request head, from its first byte."
    )
    idle_timeout: float = setting(
        5.0, "Time an idle connection (no request in progress) is kept open."
    )
    body_timeout: float = setting(
        60.0,
        "Longest silence tolerated while a request body arrives (not its total time; responses "
        "are never cut).",
    )
    public_url: str | None = setting(
        None,
        "The URL clients use to reach hubproxy, if it differs from the request's own.",
        shown_default="the request's own",
    )
    trusted_hosts: str = setting(
        "",
        "Without public_url: comma-separated host[:port] names whose Host header may name "
        "hubproxy in absolute links (localhost and the listen address always may; any other "
        "Host gets links to the listen address).",
    )
    upload_lfs_threshold: int = setting(
        10 * MEBIBYTE,
        "Uploads to hosted repos: files this large or larger go through Git LFS (or Xet, with "
        "hf_xet installed), smaller ones travel inside the commit.",
        kind="size",
    )
    xet_downloads: XetDownloads = setting(
        "hosted",
        "Which downloads hubproxy offers over Xet (hf_xet clients then fetch with parallel "
        "streams; plain HTTP always works too): off; hosted (files uploaded through Xet, and "
        "cached files above xet_download_threshold); all (every cached LFS file as well).",
    )
    xet_download_threshold: int = setting(
        50 * 1000**3,
        "With xet_downloads hosted: cached files larger than this are offered over Xet too "
        "(huggingface_hub refuses plain HTTP downloads above 50GB).",
        kind="size",
        shown_default="50GB",
    )
    max_upload_bytes: int = setting(
        500 * 1000**3,
        "Largest LFS object a hosted repo accepts: refused in the batch answer and while it "
        "streams.",
        kind="size",
        shown_default="500GB",
    )
    require_auth: bool = setting(
        False,
        "Refuse anonymous requests everywhere (also `hubproxy admin policy set --require-auth`).",
        flags="--require-auth/--allow-anonymous",
    )
    metrics_require_auth: bool = setting(
        False,
        "/metrics needs a valid token (any user or robot, any scope); anonymous scrapes get 401.",
        flags="--metrics-require-auth/--metrics-open",
    )
    accounts_refresh: float = setting(
        1.0,
        "How often account changes made outside this server (the admin CLI on the data dir) are "
        "picked up: a revoked token or disabled user is refused within it.",
    )
    max_token_lifetime: float = setting(
        365 * 86400.0,
        "Longest `expires_in` a token or robot may be created with over the API (a 400 beyond).",
    )
    xet_token_lifetime: float = setting(
        3600.0,
        "How long a Xet access token (xet-read-token / xet-write-token) is valid; clients ask "
        "for a new one when it runs out.",
    )
    web_session_lifetime: float = setting(
        12 * 3600.0,
        "How long a web UI sign-in lasts before the token must be entered again (the token is "
        "re-checked on every page: revoking it signs the browser out at once).",
    )
    xet_url_lifetime: float = setting(
        900.0,
        "How long a signed xorb-range URL of a Xet reconstruction answer is valid; clients ask "
        "for a new reconstruction when it runs out.",
    )
    audit_stdout: bool = setting(
        False,
        "Also print every audit record as one JSON line on stdout, for log shippers.",
        flags="--audit-stdout/--no-audit-stdout",
    )
    audit_queue_size: int = setting(
        10_000, "Audit records held in memory before requests wait for the writer (never lost)."
    )
    audit_retention: float | None = setting(
        None,
        "Delete audit records older than this (e.g. 90d), checked hourly.",
        shown_default="keep all",
    )
    webhook_allowed_networks: str = setting(
        "",
        "Comma-separated networks (CIDR) webhooks may call although they are not public: "
        "loopback, private, link-local and reserved addresses are refused otherwise.",
    )
    log_level: str = setting("info", "Logging level: debug, info, warning, error.")
    log_format: str = setting(
        "text", "text (readable lines) or json (one JSON object per line, for log shippers)."
    )

    def __repr__(self) -> str:
        shown = {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(self)
            if item.name not in SECRET_FIELDS
        }
        if self.database_url is not None:
            # A password may be in the URL (better in PGPASSWORD): never shown.
            shown["database_url"] = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", self.database_url)
        secrets = ", ".join(f"{name}={_secret(getattr(self, name))}" for name in SECRET_FIELDS)
        return f"Settings({secrets}, {shown})"

    @property
    def worker_count(self) -> int:
        """`workers`, or its default: one per core (one with memory storage, which a process
        cannot share)."""
        if self.workers is not None:
            return self.workers
        return 1 if self.storage == "memory" else available_cores()

    @property
    def trusted_host_names(self) -> frozenset[str]:
        """`trusted_hosts` as lowercase `host[:port]` names."""
        return frozenset(
            name.strip().lower() for name in self.trusted_hosts.split(",") if name.strip()
        )

    @property
    def webhook_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """`webhook_allowed_networks`, parsed (validated by `load_settings`)."""
        return tuple(
            ip_network(part.strip(), strict=False)
            for part in self.webhook_allowed_networks.split(",")
            if part.strip()
        )

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

    @property
    def worker_metrics_path(self) -> Path:
        """The metric files of `serve --workers` (one set per worker); emptied at start."""
        return self.data_dir / "metrics"


def _declared_kind(annotation: Any, info: SettingInfo) -> SettingKind:
    """How a setting's value is parsed: declared, or read off its type."""
    if info.kind is not None:
        return info.kind
    types = set(typing.get_args(annotation)) - {type(None)} or {annotation}
    if bool in types:
        return "bool"
    if int in types:
        return "int"
    if float in types:
        return "duration"  # every float setting is a time span
    if Path in types:
        return "path"
    return "text"


@dataclass(frozen=True, slots=True)
class SettingField:
    """A `Settings` field with everything derived from its one declaration."""

    name: str
    default: Any
    kind: SettingKind
    nullable: bool
    info: SettingInfo

    @property
    def option(self) -> str:
        """The command-line option (`--cache-max-bytes`)."""
        return "--" + self.name.replace("_", "-")

    @property
    def environment_variable(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _setting_fields() -> tuple[SettingField, ...]:
    hints = typing.get_type_hints(Settings)
    found = []
    for item in dataclasses.fields(Settings):
        info: SettingInfo = item.metadata[SETTING_INFO]
        annotation = hints[item.name]
        nullable = type(None) in typing.get_args(annotation)
        kind = _declared_kind(annotation, info)
        found.append(SettingField(item.name, item.default, kind, nullable, info))
    return tuple(found)


SETTING_FIELDS = _setting_fields()
FIELD_NAMES = tuple(item.name for item in SETTING_FIELDS)
SECRET_FIELDS = tuple(item.name for item in SETTING_FIELDS if item.info.secret)
_FIELDS_BY_NAME = {item.name: item for item in SETTING_FIELDS}

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": MEBIBYTE, "gib": 1024**3, "tib": 1024**4,
}  # fmt: skip
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_SECONDS_UNITS = {
    "": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0,
}  # fmt: skip


def parse_size(value: Any) -> int:
    """`1048576`, `"16MiB"`, `"100GB"` → bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_PATTERN.match(str(value))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise SettingsError(f"not a size: {value!r} (use e.g. 1048576, 16MiB or 100GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def parse_seconds(value: Any) -> float:
    """`60`, `"60s"`, `"5m"`, `"12h"`, `"90d"`, `"2w"` → seconds: the one duration grammar of
    settings and CLI options."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _SIZE_PATTERN.match(str(value))
        if not match or match.group(2).lower() not in _SECONDS_UNITS:
            raise SettingsError(f"not a duration: {value!r} (use e.g. 60, 60s, 5m, 12h, 90d, 2w)")
        seconds = float(match.group(1)) * _SECONDS_UNITS[match.group(2).lower()]
    if not math.isfinite(seconds):
        raise SettingsError(f"not a finite duration: {value!r}")
    return seconds


def format_size(count: int) -> str:
    """Bytes as the shortest exact `parse_size` spelling: 16777216 → `16MiB`."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", MEBIBYTE), ("KiB", 1024)):
        if count and count % factor == 0:
            return f"{count // factor}{unit}"
    return str(count)


def format_seconds(seconds: float) -> str:
    """Seconds as the shortest exact `parse_seconds` spelling: 300 → `5m`."""
    for unit in ("w", "d", "h", "m"):
        factor = _SECONDS_UNITS[unit]
        if seconds and seconds % factor == 0:
            return f"{seconds / factor:.0f}{unit}"
    return f"{seconds:g}s"


def shown_default(declared: SettingField) -> str | None:
    """A setting's default as `--help` and the docs show it (None: nothing to show)."""
    if declared.info.shown_default is not None:
        return declared.info.shown_default
    if declared.default is None or declared.kind == "bool":
        return None
    if declared.kind == "size":
        return format_size(declared.default)
    if declared.kind == "duration":
        return format_seconds(declared.default)
    return str(declared.default) if declared.default != "" else None


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
    declared = _FIELDS_BY_NAME[name]
    if value is None or (declared.nullable and value == ""):
        if declared.nullable:
            return None
        raise SettingsError(f"{name}: a value is required")
    try:
        if declared.kind == "size":
            return parse_size(value)
        if declared.kind == "duration":
            return parse_seconds(value)
        if declared.kind == "bool":
            return parse_bool(value)
        if declared.kind == "int":
            if isinstance(value, bool):
                raise SettingsError(f"not an integer: {value!r}")
            return int(value)
        if declared.kind == "path":
            return Path(str(value)).expanduser()
    except (TypeError, ValueError) as error:
        raise SettingsError(f"{name}: {error}") from None
    return str(value)


def _validate(settings: Settings) -> Settings:
    if settings.storage not in ("local", "memory", "s3"):
        raise SettingsError(f"storage: unknown backend {settings.storage!r} (local, s3, memory)")
    if settings.xet_downloads not in XET_DOWNLOAD_MODES:
        modes = ", ".join(XET_DOWNLOAD_MODES)
        raise SettingsError(f"xet_downloads: unknown mode {settings.xet_downloads!r} ({modes})")
    if settings.s3_redirect and settings.storage != "s3":
        raise SettingsError("s3_redirect: needs storage s3")
    if settings.storage == "s3" and not settings.s3_bucket:
        raise SettingsError("s3_bucket: required with storage s3")
    if settings.local_cache_dir is not None and settings.storage != "s3":
        raise SettingsError("local_cache_dir: needs storage s3 (local storage already is local)")
    if settings.local_cache_max_bytes <= 0:
        raise SettingsError("local_cache_max_bytes: must be positive")
    if settings.chunk_size < 64 * 1024:
        raise SettingsError("chunk_size: must be at least 64KiB")
    if not settings.upstream.startswith(("http://", "https://")):
        raise SettingsError(f"upstream: not an http(s) URL: {settings.upstream!r}")
    if settings.audit_retention is not None and settings.audit_retention <= 0:
        raise SettingsError("audit_retention: must be positive")
    if settings.database_url is not None and not settings.database_url.startswith(
        ("postgresql://", "postgres://")
    ):
        raise SettingsError("database_url: must be a postgresql:// URL")
    if settings.accounts_refresh <= 0:
        raise SettingsError("accounts_refresh: must be positive")
    if settings.lease_seconds < 1:
        # Renewed a third of it apart: shorter leases would be lost to a slow database.
        raise SettingsError("lease_seconds: must be at least 1s")
    for name in ("xet_token_lifetime", "xet_url_lifetime"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name}: must be at least 1s")
    if settings.workers is not None and settings.workers < 1:
        raise SettingsError("workers: must be at least 1")
    if settings.storage == "memory" and settings.worker_count > 1:
        raise SettingsError("workers: memory storage cannot be shared by several processes")
    if settings.cache_max_bytes is not None and settings.cache_max_bytes <= 0:
        raise SettingsError("cache_max_bytes: must be positive")
    for name in ("read_ahead_chunks",):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name}: must not be negative")
    for name in ("parallel_chunk_fetches", "upstream_concurrency", "audit_queue_size"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name}: must be at least 1")
    try:
        settings.webhook_networks  # noqa: B018 - raises ValueError when invalid
    except ValueError as error:
        raise SettingsError(f"webhook_allowed_networks: {error}") from None
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
