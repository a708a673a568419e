"""`--secret` values in Cog's forms: `id=X,src=FILE` and `id=X,env=VAR`.

Only where the secret comes from is kept; its value is read when a step mounts it, and
never reaches a layer, the config, a label, a cache record or a log line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import OciasmError


@dataclass(frozen=True)
class SecretSource:
    id: str
    src: Path | None = None
    env: str | None = None


def parse_secret(spec: str) -> SecretSource:
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or key not in ("id", "src", "source", "env", "type") or key in fields:
            raise OciasmError(f"--secret {_redact(spec)}: expected id=NAME,src=FILE or id=NAME,env=VAR")
        fields[key] = value
    fields.setdefault("src", fields.pop("source", ""))
    secret_id = fields.get("id", "")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", secret_id):
        raise OciasmError(f"--secret {_redact(spec)}: id must be letters, digits, '.', '_' or '-'")
    if fields.get("type", "file") not in ("file", "env"):
        raise OciasmError(f"--secret id={secret_id}: type must be file or env")
    if fields.get("type") == "env" and not fields.get("env"):  # BuildKit's form: src names the variable
        fields["env"], fields["src"] = fields["src"] or secret_id, ""
    if bool(fields["src"]) == bool(fields.get("env")):
        raise OciasmError(f"--secret id={secret_id}: give exactly one of src=FILE or env=VAR")
    if fields["src"]:
        path = Path(fields["src"]).expanduser()
        if not path.is_file() or not os.access(path, os.R_OK):
            raise OciasmError(f"--secret id={secret_id}: {path} is not a readable file")
        return SecretSource(secret_id, src=path)
    if fields["env"] not in os.environ:
        raise OciasmError(f"--secret id={secret_id}: environment variable {fields['env']} is not set")
    return SecretSource(secret_id, env=fields["env"])


def _redact(spec: str) -> str:
    """A spec may be mistyped with a value in it: show only its keys."""
    return ",".join(p.partition("=")[0] + "=…" for p in spec.split(","))


def parse_secrets(specs: list[str]) -> tuple[SecretSource, ...]:
    secrets = tuple(parse_secret(s) for s in specs)
    ids = [s.id for s in secrets]
    if dup := next((i for i in ids if ids.count(i) > 1), None):
        raise OciasmError(f"--secret id={dup} is given more than once")
    return secrets
