"""The agent's configuration: layers, precedence, and one-line errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.tools import LOCAL_ONLY_ENV

from agent.config import ConfigError, load_settings


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_empty_file_is_valid_and_every_key_has_a_default(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SCHOOLNET_STATE_DIR", raising=False)
    settings = load_settings(write(tmp_path, ""))
    assert settings.state_dir == Path("/var/lib/schoolnet-agent")
    assert settings.outbox.max_bytes == 50_000_000
    assert settings.upload.max_backoff == 600
    assert settings.probes.system.interval == 60
    # Bandwidth tests have no interval by default: a few a day at planned random times.
    assert settings.probes.bandwidth.interval is None and settings.probes.bandwidth.tests_per_day == 4
    assert settings.probes.bandwidth.backend == "ndt7", "public M-Lab servers by default"


def test_defaults_then_central_then_file_then_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    state.mkdir()
    (state / "central-settings.json").write_text(json.dumps({"settings": {
        "probes": {"system": {"interval": "10s"}, "bandwidth": {"interval": "4h", "duration": "5s"}},
        "contract": {"download_bytes_per_second": 12_500_000},
        "a_newer_collector_knows": {"this": 1},
    }}))
    path = write(tmp_path, f'state_dir = "{state}"\n[probes.system]\ninterval = "30s"\n'
                           '[probes.bandwidth]\nduration = "8s"\n')
    monkeypatch.setenv("SCHOOLNET_PROBES__BANDWIDTH__DURATION", "3s")
    monkeypatch.setenv("SCHOOLNET_DB", "sqlite:///not-an-agent-setting.db")
    settings = load_settings(path)
    assert settings.probes.system.interval == 30, "the local file beats the collector"
    assert settings.probes.bandwidth.interval == 4 * 3600, "the collector beats the default"
    assert settings.probes.bandwidth.duration == 3, "the environment beats the file"
    assert settings.contract.download_bytes_per_second == 12_500_000
    assert load_settings(path, use_central=False).probes.bandwidth.interval is None


def test_a_bad_central_value_is_ignored_not_fatal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "central-settings.json").write_text(
        json.dumps({"settings": {"probes": {"system": {"interval": "whenever"}}}}))
    settings = load_settings(write(tmp_path, f'state_dir = "{state}"\n'))
    assert settings.probes.system.interval == 60


def test_state_dir_from_the_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SCHOOLNET_STATE_DIR", str(tmp_path))
    assert load_settings(None).state_dir == tmp_path


@pytest.mark.parametrize("text, named", [
    ('[probes.system]\nintreval = "30s"\n', "probes.system.intreval"),
    ('[probes.system]\ninterval = "soon"\n', "probes.system.interval"),
    ('[probes.system]\ninterval = "-5s"\n', "probes.system.interval"),
    ('[outbox]\nmax_bytes = "lots"\n', "outbox.max_bytes"),
    ('[upload]\nbatch_records = 5000\n', "upload.batch_records"),
    ('[probes.bandwidth]\nbackend = "carrier-pigeon"\n', "probes.bandwidth.backend"),
    ('log_level = "chatty"\n', "log_level"),
    ('[collector]\ntimeout = "0s"\n', "collector.timeout"),
    ('[collector]\nwhere = "x"\n', "collector.where"),
    ('[upload]\ninterval = "an hour"\n', "upload.interval"),
    ('[upload]\nmax_backoff = "10 parsecs"\n', "upload.max_backoff"),
    ('[probes.system]\nenabled = "perhaps"\n', "probes.system.enabled"),
    ('[probes.bandwidth]\nduration = "forever"\n', "probes.bandwidth.duration"),
    ('[probes.bandwidth]\nmax_bytes = "1 lorry"\n', "probes.bandwidth.max_bytes"),
    ('[contract]\ndownload_bytes_per_second = -1\n', "contract.download_bytes_per_second"),
    ('stat_dir = "/tmp"\n', "stat_dir"),
    ('[probes\n', "not valid TOML"),
    ('[probes.system]\ninterval = true\n', "probes.system.interval"),
    ('[probes.system]\ninterval = 1e400\n', "probes.system.interval"),
    ('[probes.system]\ninterval = nan\n', "probes.system.interval"),
    ('[upload]\nbatch_records = true\n', "upload.batch_records"),
    ('[outbox]\nmax_bytes = false\n', "outbox.max_bytes"),
    ('[outbox]\nmax_bytes = 1.5\n', "outbox.max_bytes"),
    ('[contract]\nupload_bytes_per_second = inf\n', "contract.upload_bytes_per_second"),
    ('[probes.connectivity]\nping_interval = "0s"\n', "probes.connectivity.ping_interval"),
    ('[probes.connectivity]\nwindow = 0\n', "probes.connectivity.window"),
    ('[probes.connectivity]\nhttp_urls = ["elo.example.org"]\n', "probes.connectivity.http_urls.0"),
    ('[probes.connectivity]\nhttp_urls = ["ftp://elo.example.org/"]\n', "probes.connectivity.http_urls.0"),
    ('[probes.connectivity]\nhttp_urls = ["https://elo.example.org:99999/"]\n',
     "probes.connectivity.http_urls.0"),
    ('[probes.connectivity]\ntargets = ["1.1.1.1", "not a host!"]\n', "probes.connectivity.targets.1"),
    ('[probes.connectivity]\ndns_servers = ["9.9.9.9:http"]\n', "probes.connectivity.dns_servers.0"),
    ('[probes.connectivity]\nping_interval = "10s"\n', "ping_interval (10 s) must fit at least 10 times"),
    ('[probes.connectivity]\ngateway = "router?"\n', "gateway 'router?'"),
    ('[probes.connectivity]\nmethod = "carrier-pigeon"\n', "probes.connectivity.method"),
    ('[probes.connectivity]\nloss_threshold = 2\n', "probes.connectivity.loss_threshold"),
])
def test_every_bad_value_is_one_line_naming_the_key(tmp_path: Path, text: str, named: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The safety net's environment would win over the file; reading a config sends nothing.
    for name in LOCAL_ONLY_ENV:
        monkeypatch.delenv(name)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    message = str(caught.value)
    assert named in message and "\n" not in message


def test_a_missing_file_named_explicitly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_bad_environment_value_names_the_key(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SCHOOLNET_UPLOAD__INTERVAL", "every now and then")
    with pytest.raises(ConfigError, match=r"upload\.interval"):
        load_settings(None)


def test_sizes_and_durations_in_human_units(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[outbox]\nmax_bytes = "20MiB"\n[upload]\n'
                                             'interval = "2m"\nmax_backoff = 90\n'))
    assert settings.outbox.max_bytes == 20 * 1024 * 1024
    assert settings.upload.interval == 120 and settings.upload.max_backoff == 90


@pytest.mark.parametrize("variable", ["SCHOOLNET_PROBES", "SCHOOLNET_PROBES__SYSTEM"])
def test_an_environment_variable_naming_a_section_is_one_line_naming_it(
    monkeypatch, variable: str  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv(variable, "30s")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    message = str(caught.value)
    assert message.startswith("config: probes: ") and f"{variable} names a section" in message
