"""The Helm chart: lint, render with several values files, validate every manifest against the
Kubernetes schemas, and load the rendered settings with hubproxy's own settings loader."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hubproxy.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "hubproxy"
HELM = ROOT / ".tools" / "helm" / "helm"

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


@pytest.mark.parametrize("name", sorted(VALUES))
def test_chart_renders_valid_manifests(helm: list[str], tmp_path: Path, name: str) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES[name]))
    lint = run_helm(helm, tmp_path, "lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = run_helm(helm, tmp_path, "template", "hub", str(CHART), "-f", str(values))
    assert rendered.returncode == 0, rendered.stderr
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(rendered.stdout)
    documents = [document for document in yaml.safe_load_all(rendered.stdout) if document]
    kinds = {document["kind"] for document in documents}
    # Custom resources (ServiceMonitor) have no schema in kubernetes-validate: check the rest.
    core = tmp_path / "core.yaml"
    core.write_text(
        yaml.safe_dump_all(
            [document for document in documents if document["kind"] != "ServiceMonitor"]
        )
    )
    validation = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", str(core)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validation.returncode == 0, validation.stdout + validation.stderr

    config_map = next(document for document in documents if document["kind"] == "ConfigMap")
    settings_file = tmp_path / "hubproxy.yaml"
    settings_file.write_text(config_map["data"]["hubproxy.yaml"])
    settings = load_settings({}, environ={}, config_file=settings_file)  # raises on any unknown key
    assert settings.host == "0.0.0.0"
    assert settings.data_dir == Path("/data")
    deployment = next(document for document in documents if document["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    if name == "s3":
        assert settings.storage == "s3"
        assert settings.cache_max_bytes == 2 * 1024**4
        secret = next(document for document in documents if document["kind"] == "Secret")
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


def test_more_than_one_replica_is_refused(helm: list[str], tmp_path: Path) -> None:
    result = run_helm(helm, tmp_path, "template", "hub", str(CHART), "--set", "replicaCount=2")
    assert result.returncode != 0
    assert "replicaCount > 1 is not supported" in result.stderr


def test_secrets_in_settings_are_refused(helm: list[str], tmp_path: Path) -> None:
    result = run_helm(
        helm, tmp_path, "template", "hub", str(CHART), "--set", "settings.upstream_token=x"
    )
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
