"""Settings: CLI > environment > YAML file > defaults; unknown names and bad values fail."""

from pathlib import Path

import pytest

from hubproxy.settings import Settings, SettingsError, load_settings, parse_seconds, parse_size


def test_defaults() -> None:
    settings = load_settings({}, environ={})
    assert settings == Settings()
    assert settings.upstream == "https://huggingface.co"
    assert settings.data_dir == Path("hubproxy-data")
    assert settings.storage == "local"
    assert settings.chunk_size == 16 * 1024 * 1024


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "hubproxy.yaml"
    config.write_text(
        "port: 7000\nrevision_ttl: 5m\ncache-max-bytes: 2GiB\nupstream: http://file.example/\n"
    )
    environment = {
        "HUBPROXY_PORT": "7100",
        "HUBPROXY_UPSTREAM": "http://env.example",
        "HUBPROXY_CONFIG": str(config),
    }
    settings = load_settings({"port": 7200, "offline": None}, environ=environment)
    assert settings.port == 7200  # CLI
    assert settings.upstream == "http://env.example"  # environment over file
    assert settings.revision_ttl == 300.0  # file
    assert settings.cache_max_bytes == 2 * 1024**3
    assert settings.offline is False  # an option not given does not override


def test_unknown_names_fail(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("prot: 1\n")
    with pytest.raises(SettingsError, match="unknown settings prot"):
        load_settings({}, environ={}, config_file=config)
    with pytest.raises(SettingsError, match="HUBPROXY_PROT"):
        load_settings({}, environ={"HUBPROXY_PROT": "1"})
    assert load_settings({}, environ={"HUBPROXY_TEST_S3_ENDPOINT": "x"}) == Settings()


def test_config_file_must_be_a_mapping(tmp_path: Path) -> None:
    config = tmp_path / "list.yaml"
    config.write_text("- port\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings({}, environ={}, config_file=config)
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({}, environ={}, config_file=tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1048576, 1048576),
        ("16MiB", 16 * 1024**2),
        ("1GB", 10**9),
        ("1.5KiB", 1536),
        ("2tib", 2 * 1024**4),
    ],
)
def test_sizes(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["big", "12XB", "-5", ""])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(SettingsError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("60", 60.0), ("5m", 300.0), ("250ms", 0.25), (2, 2.0), ("1h", 3600.0)]
)
def test_durations(text: object, expected: float) -> None:
    assert parse_seconds(text) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"chunk_size": "1KiB"}, "chunk_size"),
        ({"upstream": "ftp://x"}, "upstream"),
        ({"storage": "tape"}, "storage"),
        ({"offline": "maybe"}, "boolean"),
        ({"port": "eighty"}, "port"),
        ({"parallel_chunk_fetches": 0}, "parallel_chunk_fetches"),
        ({"lease_seconds": "500ms"}, "lease_seconds"),
        ({"lease_seconds": 0.5}, "lease_seconds"),
        ({"log_level": "loud"}, "log_level"),
        ({"s3_redirect": True}, "s3_redirect"),
        ({"storage": "s3"}, "s3_bucket"),
        ({"log_format": "xml"}, "log_format"),
    ],
)
def test_bad_values_name_the_setting(values: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(values, environ={})


def test_token_is_never_shown() -> None:
    settings = load_settings({}, environ={"HUBPROXY_UPSTREAM_TOKEN": "hf_secret_value"})
    assert settings.upstream_token == "hf_secret_value"
    assert "hf_secret_value" not in repr(settings)
    assert "hf_secret_value" not in str(settings)


def test_trailing_slash_of_upstream_is_dropped() -> None:
    assert (
        load_settings({"upstream": "http://hub.example/"}, environ={}).upstream
        == "http://hub.example"
    )
