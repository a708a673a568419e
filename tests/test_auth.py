import base64
import json
import os
import stat
from pathlib import Path

import pytest

from ociasm.auth import docker_config_credentials
from ociasm.errors import OciasmError


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """Write $DOCKER_CONFIG/config.json; returns a function taking the config object."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    (tmp_path / "docker").mkdir()

    def write(config: dict) -> Path:
        path = tmp_path / "docker" / "config.json"
        path.write_text(json.dumps(config))
        return path
    return write


@pytest.fixture
def helper_bin(tmp_path, monkeypatch):
    """Put a fake docker-credential-<name> on PATH that answers from a JSON table keyed by server URL."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def make(name: str, table: dict[str, dict]) -> Path:
        log = tmp_path / f"{name}.asked"
        script = bin_dir / f"docker-credential-{name}"
        script.write_text(f"""#!/usr/bin/env python3
import json, sys
assert sys.argv[1:] == ["get"], sys.argv
server = sys.stdin.read().strip()
open({str(log)!r}, "a").write(server + "\\n")
table = {json.dumps(table)!r}
answer = json.loads(table).get(server)
if answer is None:
    print("credentials not found in native keychain")
    sys.exit(1)
print(json.dumps(answer))
""")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return log
    return make


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_no_config_means_no_credentials(docker_config):
    assert docker_config_credentials("ghcr.io") is None


def test_auths_base64_and_plain_fields(docker_config):
    docker_config({"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hub:pass")},
        "localhost:5000": {"username": "u", "password": "p"},
        "https://ghcr.io": {"identitytoken": "refresh-me"},
        "empty.example.com": {},
    }})
    # Docker Hub is found under any of its names; a password may contain ':'.
    for name in ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"):
        assert docker_config_credentials(name) == ("hubuser", "hub:pass")
    assert docker_config_credentials("localhost:5000") == ("u", "p")
    assert docker_config_credentials("ghcr.io") == ("<token>", "refresh-me")
    assert docker_config_credentials("empty.example.com") is None
    assert docker_config_credentials("quay.io") is None


def test_bad_auth_entry_names_registry_not_secret(docker_config):
    path = docker_config({"auths": {"r.example.com": {"auth": b64("no-colon-secretvalue")}}})
    with pytest.raises(OciasmError) as e:
        docker_config_credentials("r.example.com")
    assert "r.example.com" in str(e.value) and str(path) in str(e.value)
    assert "secretvalue" not in str(e.value)


def test_malformed_config_is_one_line_error(docker_config):
    path = docker_config({})
    path.write_text("{not json")
    with pytest.raises(OciasmError, match=r"cannot read Docker config .*config.json"):
        docker_config_credentials("ghcr.io")


def test_cred_helpers_and_store(docker_config, helper_bin):
    per_registry = helper_bin("gcloud", {"gcr.io": {"Username": "_json_key", "Secret": "gsecret"}})
    store = helper_bin("pass", {"https://index.docker.io/v1/": {"Username": "hub", "Secret": "hsecret"},
                                "r.example.com": {"Username": "<token>", "Secret": "idtok"}})
    docker_config({"credHelpers": {"gcr.io": "gcloud"}, "credsStore": "pass",
                   "auths": {"fallback.example.com": {"auth": b64("f:fpass")}}})
    assert docker_config_credentials("gcr.io") == ("_json_key", "gsecret")
    # Docker Hub is asked for under the URL docker login stores it with.
    assert docker_config_credentials("docker.io") == ("hub", "hsecret")
    assert docker_config_credentials("r.example.com") == ("<token>", "idtok")
    # Not in the store: the auths section still answers, and a miss is None, not an error.
    assert docker_config_credentials("fallback.example.com") == ("f", "fpass")
    assert docker_config_credentials("quay.io") is None
    assert per_registry.read_text().split() == ["gcr.io"]
    assert store.read_text().split() == ["https://index.docker.io/v1/", "r.example.com",
                                         "fallback.example.com", "quay.io"]


def test_missing_helper_is_actionable(docker_config, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    path = docker_config({"credsStore": "desktop"})
    with pytest.raises(OciasmError) as e:
        docker_config_credentials("docker.io")
    assert str(e.value) == (f"credential helper docker-credential-desktop (named in {path}) is not on PATH: "
                            "install it or remove it from the config")


def test_failing_helper_reports_exit_without_secrets(docker_config, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-broken"
    script.write_text("#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    docker_config({"credHelpers": {"r.example.com": "broken"}})
    with pytest.raises(OciasmError, match=r"^credential helper docker-credential-broken failed for "
                                          r"r.example.com \(exit 3\): keychain locked$"):
        docker_config_credentials("r.example.com")
