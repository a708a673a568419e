"""Registry credentials from Docker's client config, so `docker login` is all a user needs.

Order, as Docker's CLI resolves them: a per-registry `credHelpers` entry, then `credsStore`, then
the `auths` section (its base64 "auth", "username"/"password" or "identitytoken"). Secrets never
appear in messages: errors name the registry, the helper and the config file only.
An identity token (OAuth refresh token) comes back as the pair ("<token>", token), Docker's
own convention; the bearer-token flow exchanges it instead of sending a password.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from pathlib import Path

from .errors import OciasmError
from .reference import DOCKER_HUB, normalise_registry

IDENTITY_TOKEN_USER = "<token>"
# The key `docker login` uses for Docker Hub, and so what helpers are asked for.
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


def _host_key(server: str) -> str:
    """"https://index.docker.io/v1/" -> "docker.io"; "gcr.io" -> "gcr.io"."""
    host = server.split("://", 1)[-1].split("/", 1)[0]
    return normalise_registry(host)


def _load_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise OciasmError(f"cannot read Docker config {path}: {type(e).__name__}: fix or remove it") from None
    if not isinstance(data, dict):
        raise OciasmError(f"Docker config {path} is not a JSON object: fix or remove it")
    return data


def _run_helper(helper: str, registry: str, path: Path) -> tuple[str, str] | None:
    binary = f"docker-credential-{helper}"
    server = DOCKER_HUB_SERVER if registry == DOCKER_HUB else registry
    try:
        proc = subprocess.run([binary, "get"], input=server, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise OciasmError(f"credential helper {binary} (named in {path}) is not on PATH: "
                          f"install it or remove it from the config") from None
    except subprocess.TimeoutExpired:
        raise OciasmError(f"credential helper {binary} did not answer within 60s for {registry}") from None
    if proc.returncode != 0:
        said = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
        if said and "credentials not found" in said[0].lower():
            return None
        raise OciasmError(f"credential helper {binary} failed for {registry} (exit {proc.returncode})"
                          + (f": {said[0][:200]}" if said else ""))
    try:
        answer = json.loads(proc.stdout)
        user, secret = answer.get("Username") or "", answer.get("Secret") or ""
    except (ValueError, AttributeError):
        raise OciasmError(f"credential helper {binary} gave {registry} an answer that is not JSON") from None
    return (user, secret) if secret else None


def _from_auths(entry: dict, registry: str, path: Path) -> tuple[str, str] | None:
    if token := entry.get("identitytoken"):
        return IDENTITY_TOKEN_USER, token
    if encoded := entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise OciasmError(f"the \"auth\" entry for {registry} in {path} is not base64 of user:password: "
                              f"run docker login {registry} again")
        return user, password
    if entry.get("username") and entry.get("password"):
        return entry["username"], entry["password"]
    return None


def docker_config_credentials(registry: str) -> tuple[str, str] | None:
    """(username, secret) for `registry` (a host, a URL or a Docker Hub alias), or None."""
    registry = _host_key(registry)
    path = docker_config_path()
    config = _load_config(path)
    helpers = {_host_key(k): v for k, v in (config.get("credHelpers") or {}).items()}
    if helper := helpers.get(registry):
        return _run_helper(helper, registry, path)
    if store := config.get("credsStore"):
        if found := _run_helper(store, registry, path):
            return found
    auths = {_host_key(k): v for k, v in (config.get("auths") or {}).items() if isinstance(v, dict)}
    entry = auths.get(registry)
    return _from_auths(entry, registry, path) if entry else None
