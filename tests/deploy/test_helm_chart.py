"""The Helm chart: lint, render with several values files, validate every manifest against the
Kubernetes schemas, and load the rendered settings with hubproxy's own settings loader. The
values schema is checked against `hubproxy.settings.Settings`, and its refusals through helm."""

import base64
import json
import shutil
import subprocess
import typing
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hubproxy.settings import FIELD_NAMES, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "hubproxy"
INGRESS_EXAMPLE = ROOT / "deploy" / "helm" / "examples" / "ingress-nginx.yaml"
HELM = ROOT / ".tools" / "helm" / "helm"
KUBERNETES_VERSION = kubernetes_validate.latest_version()
SCHEMA = json.loads((CHART / "values.schema.json").read_text())

# Settings that never go under `settings`: credentials come from a Secret, and the chart sets
# where hubproxy listens (service.port) and its data dir (the volume at /data).
SECRET_SETTINGS = {"upstream_token", "s3_access_key_id", "s3_secret_access_key"}
CHART_SETTINGS = {"host", "port", "data_dir"}

VALUES = {
    "defaults": {},
    "s3": {
        "settings": {
            "storage": "s3", "s3_bucket": "ml-cache", "s3_endpoint_url": "https://s3.internal.example",
            "s3_path_style": True, "cache_max_bytes": "2TiB", "revision_ttl": "5m",
        },
        "secrets": {"upstreamToken": "hf_xxx", "s3AccessKeyId": "AK", "s3SecretAccessKey": "SK"},
        "persistence": {"size": "20Gi", "storageClass": "fast"},
    },
    "ingress-monitoring": {
        "ingress": {"enabled": True, "className": "nginx", "host": "hub.example.com", "tls": [{"hosts": ["hub.example.com"], "secretName": "hub-tls"}]},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "secrets": {"existingSecret": "hubproxy-credentials"},
        "persistence": {"enabled": False},
    },
}  # fmt: skip

# A valid value, other than the default, for every setting the chart accepts.
EVERY_SETTING = {
    "database_url": "postgresql://hubproxy@db.internal.example/hubproxy",
    "upstream": "https://hub.internal.example/", "offline": True, "storage": "s3",
    "storage_dir": "/data/chunks", "s3_bucket": "ml-cache", "s3_prefix": "team-a/",
    "s3_endpoint_url": "https://s3.internal.example", "s3_region": "eu-west-1",
    "s3_path_style": True, "s3_redirect": True, "chunk_size": "32MiB", "revision_ttl": "5m",
    "cache_max_bytes": "2TiB", "read_ahead_chunks": 2, "parallel_chunk_fetches": 8,
    "lease_seconds": "45s",
    "upstream_concurrency": 64, "upstream_timeout": 90, "public_url": "https://hub.example.com",
    "upload_lfs_threshold": 1048576, "require_auth": True, "audit_stdout": True,
    "audit_queue_size": 500, "audit_retention": "90d", "log_level": "debug", "log_format": "json",
    "max_header_bytes": "32KiB", "max_headers": 80, "header_timeout": "15s", "idle_timeout": 10,
    "body_timeout": "2m",
    "trusted_hosts": "hub.example.com,hub:8000", "max_upload_bytes": "100GB",
    "metrics_require_auth": True, "max_token_lifetime": "30d",
    "accounts_refresh": "5s", "xet_downloads": "all", "xet_download_threshold": "10GB",
    "web_session_lifetime": "8h", "xet_token_lifetime": "30m", "xet_url_lifetime": "5m",
    "sendfile": False, "workers": 4, "webhook_allowed_networks": "10.20.0.0/16,fd00::/8",
    "local_cache_dir": "/data/hot-chunks", "local_cache_max_bytes": "50GiB",
}  # fmt: skip


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if not HELM.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "install-helm.sh")], check=True)
    return [str(HELM)]


def run_helm(helm: list[str], tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        name: str(tmp_path / name)
        for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME")
    }
    environment["PATH"] = "/usr/bin:/bin"
    return subprocess.run(
        [*helm, *arguments], capture_output=True, text=True, env=environment, timeout=120
    )


def values_file(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def render(
    helm: list[str], tmp_path: Path, values: dict[str, Any], chart: Path = CHART
) -> list[dict[str, Any]]:
    """`helm lint --strict` and `helm template` with `values`, every manifest validated."""
    values_path = values_file(tmp_path, values)
    lint = run_helm(helm, tmp_path, "lint", "--strict", str(chart), "-f", str(values_path))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = run_helm(helm, tmp_path, "template", "hub", str(chart), "-f", str(values_path))
    assert rendered.returncode == 0, rendered.stderr
    documents = [document for document in yaml.safe_load_all(rendered.stdout) if document]
    # Custom resources (ServiceMonitor) have no schema in kubernetes-validate: check the rest.
    for document in documents:
        if document["kind"] == "ServiceMonitor":
            continue
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{document['kind']} {document['metadata']['name']}: {error.message}")
    return documents


def refusal(helm: list[str], tmp_path: Path, values: dict[str, Any], *, schema: bool = True) -> str:
    """`helm template` refuses `values`, and so does `helm lint --strict` when the schema is
    what refuses them (lint reports a template's `fail` as mere information); the error text."""
    values_path = values_file(tmp_path, values)
    if schema:
        lint = run_helm(helm, tmp_path, "lint", "--strict", str(CHART), "-f", str(values_path))
        assert lint.returncode != 0, lint.stdout
        assert "values don't meet the specifications of the schema" in lint.stdout
    result = run_helm(helm, tmp_path, "template", "hub", str(CHART), "-f", str(values_path))
    assert result.returncode != 0, result.stdout
    return result.stderr


def kind(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(document for document in documents if document["kind"] == name)


def pod_spec(documents: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = kind(documents, "Deployment")["spec"]["template"]["spec"]
    return spec


def rendered_settings(documents: list[dict[str, Any]], tmp_path: Path) -> Settings:
    settings_file = tmp_path / "hubproxy.yaml"
    settings_file.write_text(kind(documents, "ConfigMap")["data"]["hubproxy.yaml"])
    return load_settings({}, environ={}, config_file=settings_file)  # raises on any unknown key


@pytest.mark.parametrize("name", sorted(VALUES))
def test_chart_renders_valid_manifests(helm: list[str], tmp_path: Path, name: str) -> None:
    documents = render(helm, tmp_path, VALUES[name])
    kinds = {document["kind"] for document in documents}
    config_map = kind(documents, "ConfigMap")
    settings = rendered_settings(documents, tmp_path)
    assert settings.host == "0.0.0.0"
    assert settings.data_dir == Path("/data")
    container = pod_spec(documents)["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    if name == "s3":
        assert settings.storage == "s3"
        assert settings.cache_max_bytes == 2 * 1024**4
        secret = kind(documents, "Secret")
        assert set(secret["stringData"]) == {
            "HUBPROXY_UPSTREAM_TOKEN",
            "HUBPROXY_S3_ACCESS_KEY_ID",
            "HUBPROXY_S3_SECRET_ACCESS_KEY",
        }
        assert "hf_xxx" not in config_map["data"]["hubproxy.yaml"]
    if name == "ingress-monitoring":
        assert {"Ingress", "ServiceMonitor"} <= kinds
        assert "Secret" not in kinds  # the existing one is used
        assert "PersistentVolumeClaim" not in kinds
        assert container["envFrom"][0]["secretRef"]["name"] == "hubproxy-credentials"


def test_more_than_one_replica_needs_postgresql_and_s3(helm: list[str], tmp_path: Path) -> None:
    result = run_helm(helm, tmp_path, "template", "hub", str(CHART), "--set", "replicaCount=2")
    assert result.returncode != 0
    assert "database_url" in result.stderr
    only_database = run_helm(
        helm, tmp_path, "template", "hub", str(CHART), "--set", "replicaCount=2",
        "--set", "settings.database_url=postgresql://hubproxy@db/hubproxy",
    )  # fmt: skip
    assert only_database.returncode != 0
    assert "s3" in only_database.stderr


def test_replicas_on_postgresql_and_s3(helm: list[str], tmp_path: Path) -> None:
    settings = {
        "database_url": "postgresql://hubproxy@db.internal.example/hubproxy",
        "storage": "s3",
        "s3_bucket": "hub",
    }
    documents = render(helm, tmp_path, {"replicaCount": 3, "settings": settings})
    by_kind = {document["kind"]: document for document in documents}
    assert by_kind["Deployment"]["spec"]["replicas"] == 3
    assert by_kind["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert "podAntiAffinity" in pod["affinity"]
    # Readiness is the endpoint that answers 503 DatabaseUnavailable while PostgreSQL is down
    # (tests/replicas), so the Service stops sending a cut-off replica requests; liveness is
    # not, so a database outage restarts no pod.
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    # A replica's data dir is scratch: no volume claim shared by the pods.
    assert "PersistentVolumeClaim" not in by_kind
    data = next(volume for volume in pod["volumes"] if volume["name"] == "data")
    assert data == {"name": "data", "emptyDir": {}}


def test_bundled_postgresql_for_trials(helm: list[str], tmp_path: Path) -> None:
    """`postgresql.enabled`: the chart renders a PostgreSQL of its own and points every replica
    at it, the password only in a Secret; its pods are never selected as hubproxy's."""
    values = {
        "replicaCount": 2,
        "settings": {"storage": "s3", "s3_bucket": "hub"},
        "postgresql": {"enabled": True, "size": "5Gi"},
    }
    documents = render(helm, tmp_path, values)
    named = {(document["kind"], document["metadata"]["name"]): document for document in documents}
    database = named[("StatefulSet", "hub-hubproxy-postgresql")]
    service = named[("Service", "hub-hubproxy-postgresql")]
    secret = named[("Secret", "hub-hubproxy-postgresql")]
    claim = database["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 32
    assert password not in yaml.safe_dump(named[("ConfigMap", "hub-hubproxy")])
    # hubproxy reaches it by the Service's name, with the password from the Secret.
    environment = {item["name"]: item for item in pod_spec(documents)["containers"][0]["env"]}
    url = environment["HUBPROXY_DATABASE_URL"]["value"]
    assert url == "postgresql://hubproxy@hub-hubproxy-postgresql:5432/hubproxy"
    assert load_settings({}, environ={"HUBPROXY_DATABASE_URL": url}).database_url == url
    reference = environment["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "hub-hubproxy-postgresql", "key": "password"}
    # The selectors of the database and of hubproxy match only their own pods.
    database_labels = database["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= database_labels.items()
    hubproxy_service = named[("Service", "hub-hubproxy")]
    assert not hubproxy_service["spec"]["selector"].items() <= database_labels.items()
    selector = named[("Deployment", "hub-hubproxy")]["spec"]["selector"]["matchLabels"]
    assert not selector.items() <= database_labels.items()
    assert not kind(documents, "PodDisruptionBudget")["spec"]["selector"][
        "matchLabels"
    ].items() <= (database_labels.items())


def test_bundled_postgresql_and_database_url_are_refused_together(
    helm: list[str], tmp_path: Path
) -> None:
    values = {
        "settings": {"database_url": "postgresql://hubproxy@db/hubproxy"},
        "postgresql": {"enabled": True},
    }
    assert "database_url" in refusal(helm, tmp_path, values)


# --- the values schema against hubproxy's settings -------------------------------------------


def settings_schema() -> dict[str, dict[str, Any]]:
    properties: dict[str, dict[str, Any]] = SCHEMA["properties"]["settings"]["properties"]
    return properties


def schema_kinds(node: dict[str, Any]) -> set[str]:
    """The JSON types a schema node allows; the shared `size` and `duration` by their names."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return {name} if name in ("size", "duration") else schema_kinds(SCHEMA["definitions"][name])
    if "oneOf" in node:
        return set().union(*(schema_kinds(option) for option in node["oneOf"]))
    types = node["type"]
    return set(types) if isinstance(types, list) else {types}


def accepts(name: str, value: str) -> bool:
    try:
        load_settings({name: value}, environ={})
    except SettingsError:
        return False
    return True


def expected_kinds(name: str, hint: Any) -> set[str]:
    """The schema types that match how hubproxy parses setting `name` of type `hint`."""
    if isinstance(hint, UnionType):
        (inner,) = (argument for argument in typing.get_args(hint) if argument is not NoneType)
        return expected_kinds(name, inner) | {"null"}
    if hint is bool:
        return {"boolean"}
    if hint is int:
        return {"size"} if accepts(name, "1GiB") else {"integer"}
    if hint is float:
        assert accepts(name, "5m"), f"{name}: a float setting that takes no duration"
        return {"duration"}
    return {"string"}  # str, Path and Literal


def test_schema_settings_are_the_settings_of_hubproxy() -> None:
    """A new setting of hubproxy without its entry in values.schema.json fails here."""
    properties = settings_schema()
    refused = {name for name, node in properties.items() if node.get("not") == {}}
    assert refused == SECRET_SETTINGS | CHART_SETTINGS
    assert set(properties) - refused == set(FIELD_NAMES) - SECRET_SETTINGS - CHART_SETTINGS
    assert SCHEMA["properties"]["settings"]["additionalProperties"] is False
    assert set(EVERY_SETTING) == set(properties) - refused


def test_schema_setting_types_match_settings() -> None:
    hints = typing.get_type_hints(Settings)
    properties = settings_schema()
    for name in set(FIELD_NAMES) - SECRET_SETTINGS - CHART_SETTINGS:
        assert schema_kinds(properties[name]) == expected_kinds(name, hints[name]), name
        if typing.get_origin(hints[name]) is typing.Literal:
            assert set(properties[name]["enum"]) == set(typing.get_args(hints[name])), name


def test_every_setting_renders_and_loads(helm: list[str], tmp_path: Path) -> None:
    documents = render(helm, tmp_path, {"settings": EVERY_SETTING})
    settings = rendered_settings(documents, tmp_path)
    defaults = Settings()
    for name in EVERY_SETTING:
        assert getattr(settings, name) != getattr(defaults, name), name
    assert settings.chunk_size == 32 * 1024**2
    assert settings.revision_ttl == 300
    assert settings.audit_retention == 90 * 86400


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"cache_max_byte": "1GiB"}, "settings: Additional property cache_max_byte is not allowed"),
        ({"offline": "yes"}, "settings.offline: Invalid type. Expected: boolean, given: string"),
        ({"chunk_size": "16 megs"}, "settings.chunk_size: Does not match pattern"),
        ({"revision_ttl": "5 minutes"}, "settings.revision_ttl: Does not match pattern"),
        ({"upstream_concurrency": "many"}, "settings.upstream_concurrency: Invalid type"),
        ({"upstream_concurrency": 0}, "settings.upstream_concurrency: Must be greater than"),
        ({"storage": "gcs"}, "settings.storage: settings.storage must be one of the following"),
        ({"upstream": "huggingface.co"}, "settings.upstream: Does not match pattern"),
    ],
)
def test_wrong_settings_are_refused(
    helm: list[str], tmp_path: Path, settings: dict[str, Any], error: str
) -> None:
    assert error in refusal(helm, tmp_path, {"settings": settings})


@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("upstream_token", "secrets.upstreamToken or secrets.existingSecret"),
        ("s3_access_key_id", "secrets.s3AccessKeyId or secrets.existingSecret"),
        ("s3_secret_access_key", "secrets.s3SecretAccessKey or secrets.existingSecret"),
        ("port", "set by the chart: use service.port"),
        ("data_dir", "set by the chart"),
        ("host", "set by the chart"),
    ],
)
def test_secrets_and_chart_settings_in_settings_are_refused(
    helm: list[str], tmp_path: Path, name: str, instead: str
) -> None:
    error = refusal(helm, tmp_path, {"settings": {name: "x"}})
    assert "values don't meet the specifications of the schema" in error
    assert f"settings.{name}: Must not validate the schema (not)" in error
    assert instead in error  # the error says where the value goes


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (
            {"persistance": {"size": "1Ti"}},
            "(root): Additional property persistance is not allowed",
        ),
        ({"serviceAccount": {"crate": True}}, "serviceAccount: Additional property crate"),
        ({"secrets": {"upstream_token": "hf_x"}}, "secrets: Additional property upstream_token"),
        ({"podLabels": {"tier": 1}}, "podLabels.tier: Invalid type. Expected: string"),
        ({"extraEnv": [{"name": "A", "value": 1}]}, "extraEnv.0.value: Invalid type"),
        ({"extraEnv": [{"value": "x"}]}, "extraEnv.0: name is required"),
        ({"tolerations": {"key": "gpu"}}, "tolerations: Invalid type. Expected: array"),
    ],
)
def test_wrong_values_are_refused(
    helm: list[str], tmp_path: Path, values: dict[str, Any], error: str
) -> None:
    assert error in refusal(helm, tmp_path, values)


@pytest.mark.parametrize(
    "name",
    ["HUBPROXY_UPSTREAM_TOKEN", "HUBPROXY_S3_ACCESS_KEY_ID", "HUBPROXY_S3_SECRET_ACCESS_KEY"],
)
def test_plain_credentials_in_extra_env_are_refused(
    helm: list[str], tmp_path: Path, name: str
) -> None:
    error = refusal(helm, tmp_path, {"extraEnv": [{"name": name, "value": "hf_x"}]})
    assert "extraEnv.0: Must not validate the schema (not)" in error


# --- pod and service account values ----------------------------------------------------------

POD_VALUES: dict[str, Any] = {
    "podAnnotations": {"prometheus.io/scrape": "true"},
    "podLabels": {"team": "ml", "app.kubernetes.io/name": "not-the-selector"},
    "extraEnv": [
        {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"},
        {"name": "HUBPROXY_UPSTREAM_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
    ],
    "serviceAccount": {"create": True, "name": "hub-sa", "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/hub"}},
    "nodeSelector": {"kubernetes.io/arch": "amd64"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
    ]}}},
}  # fmt: skip


def test_pod_values_render(helm: list[str], tmp_path: Path) -> None:
    documents = render(helm, tmp_path, POD_VALUES)
    deployment = kind(documents, "Deployment")
    template = deployment["spec"]["template"]
    spec = template["spec"]
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert "checksum/config" in template["metadata"]["annotations"]
    assert template["metadata"]["labels"]["team"] == "ml"
    # The selector labels stay the chart's, or the Deployment would not match its pods.
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "hubproxy"
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= template["metadata"]["labels"].items()
    )
    environment = spec["containers"][0]["env"]
    assert environment[1:] == POD_VALUES["extraEnv"]
    assert spec["nodeSelector"] == POD_VALUES["nodeSelector"]
    assert spec["tolerations"] == POD_VALUES["tolerations"]
    assert spec["affinity"] == POD_VALUES["affinity"]
    account = kind(documents, "ServiceAccount")
    assert account["metadata"]["name"] == "hub-sa" == spec["serviceAccountName"]
    assert account["metadata"]["annotations"] == POD_VALUES["serviceAccount"]["annotations"]
    assert account["automountServiceAccountToken"] is False
    assert spec["automountServiceAccountToken"] is False


def test_default_service_account_is_the_releases_own(helm: list[str], tmp_path: Path) -> None:
    documents = render(helm, tmp_path, {})
    assert kind(documents, "ServiceAccount")["metadata"]["name"] == "hub-hubproxy"
    assert pod_spec(documents)["serviceAccountName"] == "hub-hubproxy"


@pytest.mark.parametrize(("name", "used"), [("", "default"), ("shared-sa", "shared-sa")])
def test_service_account_not_created(helm: list[str], tmp_path: Path, name: str, used: str) -> None:
    documents = render(helm, tmp_path, {"serviceAccount": {"create": False, "name": name}})
    assert "ServiceAccount" not in {document["kind"] for document in documents}
    assert pod_spec(documents)["serviceAccountName"] == used


def test_hubproxy_commands_in_the_pod_read_the_chart_settings(
    helm: list[str], tmp_path: Path
) -> None:
    """`kubectl exec ... hubproxy admin ...` needs no --config: it finds the data dir /data."""
    documents = render(helm, tmp_path, {})
    container = pod_spec(documents)["containers"][0]
    environment = {variable["name"]: variable["value"] for variable in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")["mountPath"]
    config_path = environment["HUBPROXY_CONFIG"]
    assert config_path == f"{mount}/hubproxy.yaml"
    settings_file = tmp_path / "hubproxy.yaml"
    settings_file.write_text(kind(documents, "ConfigMap")["data"]["hubproxy.yaml"])
    settings = load_settings({}, environ={"HUBPROXY_CONFIG": str(settings_file)})
    assert settings.data_dir == Path("/data")


# --- persistence -----------------------------------------------------------------------------


def test_pvc_survives_helm_uninstall(helm: list[str], tmp_path: Path) -> None:
    documents = render(helm, tmp_path, {})
    claim = kind(documents, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volume = next(v for v in pod_spec(documents)["volumes"] if v["name"] == "data")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "helm.sh/resource-policy: keep" in (CHART / "values.yaml").read_text()


def test_existing_claim_is_mounted_and_not_rendered(helm: list[str], tmp_path: Path) -> None:
    documents = render(helm, tmp_path, {"persistence": {"existingClaim": "hubproxy-data-2026"}})
    assert "PersistentVolumeClaim" not in {document["kind"] for document in documents}
    volume = next(v for v in pod_spec(documents)["volumes"] if v["name"] == "data")
    assert volume == {"name": "data", "persistentVolumeClaim": {"claimName": "hubproxy-data-2026"}}


def test_existing_claim_without_persistence_is_refused(helm: list[str], tmp_path: Path) -> None:
    values = {"persistence": {"enabled": False, "existingClaim": "hubproxy-data"}}
    error = refusal(helm, tmp_path, values, schema=False)
    assert "persistence.existingClaim needs persistence.enabled=true" in error


# --- NOTES.txt -------------------------------------------------------------------------------


def render_notes(helm: list[str], tmp_path: Path, values: dict[str, Any]) -> str:
    """NOTES.txt as `helm install` prints it. `helm template` leaves NOTES out, so a copy of
    the chart wraps it in a ConfigMap of a test-only template."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_test_notes.tpl").write_text(
        '{{- define "test.notes" }}' + notes + "{{- end }}\n"
    )
    (chart / "templates" / "test-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ include "test.notes" . | quote }}\n'
    )
    values_path = values_file(tmp_path, values)
    result = run_helm(
        helm, tmp_path, "template", "hub", str(chart), "-f", str(values_path),
        "--namespace", "ml", "--show-only", "templates/test-notes.yaml",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text: str = yaml.safe_load(result.stdout)["data"]["notes"]
    return text


def test_notes_tell_how_to_create_the_first_admin(helm: list[str], tmp_path: Path) -> None:
    notes = render_notes(helm, tmp_path, {})
    exec_prefix = "kubectl exec -n ml deploy/hub-hubproxy -- "
    assert f"{exec_prefix}hubproxy admin user create alice --admin" in notes
    assert f"{exec_prefix}hubproxy admin token create alice --scope admin" in notes
    assert "hubproxy admin --endpoint http://hub-hubproxy.ml:8000 --token hp_" in notes
    assert "export HF_ENDPOINT=http://hub-hubproxy.ml:8000" in notes


def test_notes_tell_the_pvc_is_kept(helm: list[str], tmp_path: Path) -> None:
    notes = render_notes(helm, tmp_path, {})
    assert "`helm uninstall` keeps" in notes
    assert "helm.sh/resource-policy: keep" in notes
    assert "kubectl delete pvc -n ml hub-hubproxy" in notes
    assert "persistence.existingClaim=hub-hubproxy" in notes


def test_notes_with_ingress_and_existing_claim(helm: list[str], tmp_path: Path) -> None:
    values = yaml.safe_load(INGRESS_EXAMPLE.read_text())
    values["persistence"] = {"existingClaim": "hubproxy-data"}
    notes = render_notes(helm, tmp_path, values)
    assert "export HF_ENDPOINT=https://hub.example.com" in notes
    assert "hubproxy admin --endpoint https://hub.example.com --token hp_" in notes
    assert "existing claim hubproxy-data" in notes


# --- ingress for multi-GB LFS transfers ------------------------------------------------------

LARGE_TRANSFER_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/proxy-body-size": "0",
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
    "nginx.ingress.kubernetes.io/proxy-buffering": "off",
}


def test_ingress_example_for_large_transfers(helm: list[str], tmp_path: Path) -> None:
    documents = render(helm, tmp_path, yaml.safe_load(INGRESS_EXAMPLE.read_text()))
    ingress = kind(documents, "Ingress")
    assert ingress["metadata"]["annotations"] == LARGE_TRANSFER_ANNOTATIONS
    assert ingress["spec"]["tls"][0]["hosts"] == ["hub.example.com"]
    assert rendered_settings(documents, tmp_path).public_url == "https://hub.example.com"
    # The commented example in values.yaml says the same.
    values_text = (CHART / "values.yaml").read_text()
    for annotation, value in LARGE_TRANSFER_ANNOTATIONS.items():
        assert f'#       {annotation}: "{value}"' in values_text
