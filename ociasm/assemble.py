"""The Cog image's config: the base's config plus Cog's env, labels, ports, command and history.

This is the local, daemonless equivalent of the Dockerfile Cog generates (ENV preamble,
WORKDIR /src, EXPOSE 5000, CMD, then the label-adding step). Everything is a pure
function of its inputs, so the same inputs give the same config digest.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .config import CogConfig, config_label
from .image import Image, Layer
from .layers.tarstream import source_date_epoch

CMD = ["python", "-m", "cog.server.http"]
NVIDIA_LIBS = ":/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin"


@dataclass(frozen=True)
class AddedLayer:
    layer: Layer
    created_by: str  # the Dockerfile line Cog would have used; shown by `docker history`


def _env_dict(env: list[str]) -> dict[str, str]:
    return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)


def cog_env(config: CogConfig, base_env: list[str], max_concurrency: int | None, *,
            preamble: bool = True) -> list[str]:
    """Base env, then Cog's preamble (a cog-base image already has it), the user's environment
    and the runtime's type stubs."""
    env = _env_dict(base_env)
    if preamble:
        env.update({
            "DEBIAN_FRONTEND": "noninteractive",
            "PYTHONUNBUFFERED": "1",
            "LD_LIBRARY_PATH": env.get("LD_LIBRARY_PATH", "") + NVIDIA_LIBS,
            "NVIDIA_DRIVER_CAPABILITIES": "all",
        })
    env.update(dict(config.environment))
    if config.predict:
        env["COG_PREDICT_TYPE_STUB"] = config.predict
    if config.train:
        env["COG_TRAIN_TYPE_STUB"] = config.train
    concurrency = config.concurrency_max or max_concurrency
    if concurrency and concurrency > 1:
        env["COG_MAX_CONCURRENCY"] = str(concurrency)
    return [f"{k}={v}" for k, v in env.items()]


def _git(project_dir: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(project_dir), *args], capture_output=True,
                             text=True, timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def git_labels(project_dir: Path) -> dict[str, str]:
    """Cog's revision/version labels: GITHUB_SHA / GITHUB_REF_NAME first, else git."""
    labels = {}
    if revision := os.environ.get("GITHUB_SHA") or _git(project_dir, "rev-parse", "HEAD"):
        labels["org.opencontainers.image.revision"] = revision
    if version := os.environ.get("GITHUB_REF_NAME") or _git(project_dir, "describe", "--tags", "--dirty"):
        labels["org.opencontainers.image.version"] = version
    return labels


def cog_labels(config: CogConfig, cog_version: str, schema: dict | None, pip_freeze: str) -> dict[str, str]:
    labels = {
        "run.cog.version": cog_version,
        "run.cog.config": config_label(config),
        "run.cog.pip_freeze": pip_freeze,
        "run.cog.has_init": "true",
    }
    if schema is not None:
        labels["run.cog.openapi_schema"] = json.dumps(schema, separators=(",", ":"))
    labels.update(git_labels(config.project_dir))
    return labels


def created_timestamp() -> str:
    return datetime.fromtimestamp(source_date_epoch(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def assemble(base_config: dict, base_layers: tuple[Layer, ...], added: list[AddedLayer],
             env: list[str], labels: dict[str, str], entrypoint: list[str] | None = None) -> Image:
    """The final image: base layers then ours, with Cog's runtime settings (`entrypoint`: tini's,
    when the build installed it; otherwise the base's stays)."""
    config = copy.deepcopy(base_config)
    created = created_timestamp()
    runtime = config.setdefault("config", {})
    runtime["Env"] = env
    if entrypoint:
        runtime["Entrypoint"] = entrypoint
    runtime["WorkingDir"] = "/src"
    runtime["ExposedPorts"] = {**(runtime.get("ExposedPorts") or {}), "5000/tcp": {}}
    runtime["Cmd"] = CMD
    runtime["Labels"] = {**(runtime.get("Labels") or {}), **labels}
    config["created"] = created
    config["architecture"], config["os"] = config.get("architecture", "amd64"), config.get("os", "linux")
    config["rootfs"] = {"type": "layers",
                        "diff_ids": [*config["rootfs"]["diff_ids"], *(a.layer.diff_id for a in added)]}
    config["history"] = [*config.get("history", []),
                         *({"created": created, "created_by": a.created_by, "comment": "ociasm"}
                           for a in added)]
    for key in ("container", "container_config", "docker_version"):  # builder leftovers of the base
        config.pop(key, None)
    return Image(config, (*base_layers, *(a.layer for a in added)))
