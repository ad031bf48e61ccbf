"""Settings: file + environment, and errors that name the file and the field."""

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from agent.cli import main
from agent.config import Settings, load_settings
from agent.errors import ConfigError

MINIMAL = """
[site]
site_id = "hn-phuc-tho-01"
name = "UBND xa Phuc Tho"
tier = "commune"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_minimal_file_gets_defaults(tmp_path):
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.site.site_id == "hn-phuc-tho-01"
    assert settings.broker.port == 1883
    assert settings.broker.prefix == "vc"
    assert settings.required_components() == ["camera", "microphone", "display", "codec", "network"]


def test_missing_file_names_it_and_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(err.value)
    assert "not found" in str(err.value)
    assert "agent.example.toml" in str(err.value)


def test_bad_type_names_file_field_and_value(tmp_path):
    path = write(tmp_path, MINIMAL + '[broker]\nport = "eighteen"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    text = str(err.value)
    assert f"config file {path}" in text
    assert "'broker.port'" in text
    assert "'eighteen'" in text


def test_unknown_field_is_an_error_not_ignored(tmp_path):
    path = write(tmp_path, MINIMAL + "[camera]\nsourse = '/dev/video0'\n")
    with pytest.raises(ConfigError, match=r"unknown field 'camera.sourse'"):
        load_settings(path)


def test_missing_required_section(tmp_path):
    with pytest.raises(ConfigError, match=r"field 'site' is required"):
        load_settings(write(tmp_path, "[broker]\nport = 1883\n"))


def test_bad_enum_lists_the_choices(tmp_path):
    path = write(tmp_path, MINIMAL.replace('"commune"', '"village"'))
    with pytest.raises(ConfigError, match=r"'province', 'district' or 'commune'"):
        load_settings(path)


def test_toml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, MINIMAL + "[broker\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 6"):
        load_settings(path)


def test_environment_overrides_file(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL + "[broker]\nport = 1883\n")
    monkeypatch.setenv("EDGE_AGENT_BROKER__PORT", "8883")
    monkeypatch.setenv("EDGE_AGENT_CAMERA__SOURCE", "http://127.0.0.1:9/cam")
    settings = load_settings(path)
    assert settings.broker.port == 8883
    assert settings.camera.source == "http://127.0.0.1:9/cam"


def test_bad_environment_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_AGENT_BROKER__PORT", "70000")
    with pytest.raises(
        ConfigError, match=r"environment EDGE_AGENT_BROKER__PORT: field 'broker.port'"
    ):
        load_settings(write(tmp_path, MINIMAL))


def test_config_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_AGENT_CONFIG", str(write(tmp_path, MINIMAL)))
    assert load_settings().site.name == "UBND xa Phuc Tho"


def test_client_cert_without_key_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL + "[broker]\ntls_ca = '/x/ca.pem'\ntls_cert = '/x/c.pem'\n")
    with pytest.raises(ConfigError, match=r"tls_cert and tls_key must be given together"):
        load_settings(path)


def test_password_from_systemd_credentials(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "broker-password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.broker.password is not None
    assert settings.broker.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_example_config_is_valid():
    example = Path(__file__).resolve().parent.parent / "agent.example.toml"
    settings = load_settings(example)
    assert settings.site.tier.value in {"province", "district", "commune"}


def test_config_check_command(tmp_path, capsys):
    assert main(["--config", str(write(tmp_path, MINIMAL)), "config", "check"]) == 0
    assert "OK - site hn-phuc-tho-01" in capsys.readouterr().out
    assert main(["--config", str(tmp_path / "missing.toml"), "config", "check"]) == 3
    assert "not found" in capsys.readouterr().err


def test_example_documents_every_field():
    """Every settings field appears in agent.example.toml (set or commented out)."""
    text = (Path(__file__).resolve().parent.parent / "agent.example.toml").read_text()
    sections = set(re.findall(r"^#?\s*\[+([a-z_.]+)\]+", text, re.M))
    keys = set(re.findall(r"^#?\s*([a-z_0-9]+) = ", text, re.M))
    missing = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if name not in sections:
                missing.append(f"[{name}]")
            missing += [
                f"{name}.{sub}"
                for sub in annotation.model_fields
                if sub not in keys and f"{name}.{sub}" not in sections
            ]
        elif name not in keys:
            missing.append(name)
    assert missing == []
