"""load_settings: defaults < TOML file < SWITCHYARD_* environment < overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.settings import ConfigError, ProviderConfig, Settings, load_settings

SECRET = "sk-test-5f2b9c0e1d"
CONFIG = f"""
host = "0.0.0.0"
port = 9000
log_level = "debug"
keepalive_interval = 1.5

[providers.openai]
api_key = "{SECRET}"
base_url = "https://example.com/v1"

[providers.azure]
deployments = {{"openai/gpt-4o" = "my-4o"}}

[local]
workers = 2
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "switchyard.toml"
    path.write_text(CONFIG, "utf-8")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment whose data dir is empty, so no default config file is found."""
    return {"SWITCHYARD_DATA_DIR": str(tmp_path / "data")}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text, "utf-8")
    return str(path)


def test_defaults(env: dict[str, str]) -> None:
    s = load_settings(environ=env)
    assert (s.host, s.port, s.log_level, s.keepalive_interval) == ("127.0.0.1", 8080, "info", 3.0)
    assert s.providers == {}
    assert s.local.workers == 1


def test_defaults_with_empty_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # keep ~ away from the real home directory
    s = load_settings(environ={})
    assert s.data_dir == "~/.switchyard"
    assert s.port == 8080


def test_toml_overrides_defaults(config_file: Path, env: dict[str, str]) -> None:
    s = load_settings(str(config_file), environ=env)
    assert (s.host, s.port, s.log_level, s.keepalive_interval) == ("0.0.0.0", 9000, "debug", 1.5)
    assert s.local.workers == 2
    assert s.local.queue_size == 16  # untouched nested default
    assert s.providers["openai"].api_key == SECRET
    assert s.providers["openai"].base_url == "https://example.com/v1"
    assert s.providers["azure"].deployments == {"openai/gpt-4o": "my-4o"}
    assert s.providers["azure"].enabled is True


def test_env_overrides_toml(config_file: Path, env: dict[str, str]) -> None:
    env |= {"SWITCHYARD_PORT": "9100", "SWITCHYARD_LOG_LEVEL": "warning"}
    s = load_settings(str(config_file), environ=env)
    assert s.port == 9100
    assert s.log_level == "warning"
    assert s.host == "0.0.0.0"  # not in the environment: the file's value stands


def test_overrides_beat_env(config_file: Path, env: dict[str, str]) -> None:
    env |= {"SWITCHYARD_PORT": "9100", "SWITCHYARD_HOST": "10.0.0.1"}
    s = load_settings(str(config_file), overrides={"port": 9200, "host": None}, environ=env)
    assert s.port == 9200
    assert s.host == "10.0.0.1"  # a None override means "not given"


def test_numeric_env_values_are_converted(env: dict[str, str]) -> None:
    env |= {"SWITCHYARD_KEEPALIVE_INTERVAL": "0.25", "SWITCHYARD_MAX_BODY_BYTES": "1024"}
    s = load_settings(environ=env)
    assert s.keepalive_interval == 0.25
    assert s.max_body_bytes == 1024


def test_config_file_from_env(config_file: Path, env: dict[str, str]) -> None:
    s = load_settings(environ=env | {"SWITCHYARD_CONFIG": str(config_file)})
    assert s.port == 9000


def test_default_config_file_in_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "switchyard.toml").write_text("port = 7000\n", "utf-8")
    s = load_settings(environ={"SWITCHYARD_DATA_DIR": str(data)})
    assert s.port == 7000
    assert s.sqlite_path == data / "switchyard.db"


@pytest.mark.parametrize("value", ["eighty", "80.5", ""])
def test_bad_port_env(env: dict[str, str], value: str) -> None:
    with pytest.raises(ConfigError, match="SWITCHYARD_PORT"):
        load_settings(environ=env | {"SWITCHYARD_PORT": value})


def test_out_of_range_port_env(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings(environ=env | {"SWITCHYARD_PORT": "70000"})


def test_bad_float_env(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="SWITCHYARD_KEEPALIVE_INTERVAL"):
        load_settings(environ=env | {"SWITCHYARD_KEEPALIVE_INTERVAL": "soon"})


def test_unknown_key_in_toml(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="bogus"):
        load_settings(write(tmp_path, "bogus = 1\n"), environ=env)


def test_unknown_key_in_provider_table(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="api_kee"):
        load_settings(write(tmp_path, '[providers.openai]\napi_kee = "x"\n'), environ=env)


def test_wrong_type_in_toml(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings(write(tmp_path, 'port = "8080"\n'), environ=env)


def test_invalid_toml(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, "port = \n")
    with pytest.raises(ConfigError, match=r"c\.toml"):
        load_settings(path, environ=env)


def test_missing_config_file(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(str(tmp_path / "absent.toml"), environ=env)


def test_provider_tables_become_provider_specs(tmp_path: Path, env: dict[str, str]) -> None:
    text = '[[provider]]\nslug = "acme"\nname = "Acme"\nprotocol = "openai"\n'
    s = load_settings(write(tmp_path, text), environ=env)
    assert s.provider_specs == [{"slug": "acme", "name": "Acme", "protocol": "openai"}]
    assert s.catalog_extra()["providers"] == s.provider_specs


def test_provider_config_repr_hides_key() -> None:
    config = ProviderConfig(api_key=SECRET, base_url="https://example.com/v1")
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert "api_key=set" in repr(config)
    assert "api_key=None" in repr(ProviderConfig())


def test_settings_repr_hides_provider_keys(config_file: Path, env: dict[str, str]) -> None:
    s = load_settings(str(config_file), environ=env)
    assert isinstance(s, Settings)
    assert SECRET not in repr(s)


def test_resilience_settings_from_the_environment() -> None:
    settings = load_settings(
        None,
        environ={
            "SWITCHYARD_MAX_MESSAGES": "12",
            "SWITCHYARD_MAX_STREAM_SECONDS": "90.5",
            "SWITCHYARD_SHUTDOWN_GRACE_SECONDS": "7",
            "SWITCHYARD_WORKERS": "3",
        },
    )
    assert settings.max_messages == 12
    assert settings.max_stream_seconds == 90.5
    assert settings.shutdown_grace_seconds == 7.0
    assert settings.workers == 3


@pytest.mark.parametrize(
    "line",
    ["workers = 0", "max_messages = 0", "max_stream_seconds = 0", "shutdown_grace_seconds = -1"],
)
def test_resilience_settings_are_validated(tmp_path: Path, line: str) -> None:
    config = tmp_path / "switchyard.toml"
    config.write_text(line + "\n")
    with pytest.raises(ConfigError, match=line.split()[0]):
        load_settings(str(config), environ={})
