"""A Cog-shaped BuildKit build of a Cog project, the peer the benchmarks measure ociasm against.

What `cog build [--separate-weights]` does for a CPU model on python:<X.Y>-slim (Cog's
pkg/image/build.go and pkg/dockerfile/standard_generator.go), step by step, with
/usr/bin/docker and DOCKER_BUILDKIT=1:
  1. weights: Cog's CRC32 manifest of every weights file (pkg/weightslegacy), compared with the
     previous build's; when it differs, the FROM-scratch image `<image>-weights` is rebuilt;
  2. runner: the generated Dockerfile (ENV preamble, uv, requirements, cog, ldconfig, one
     COPY --from=weights per group, WORKDIR/EXPOSE/ENV/CMD, COPY . /src), weights left out
     of its context;
  3. `python -m pip freeze` in a container of it;
  4. the label step: FROM it, the schema under /src/.cog, Cog's labels.
Adapted to this machine, whose containers have no network and which reaches neither Docker Hub
nor GitHub: wheels are downloaded on the host beforehand (`pip download`) and installed with
`--no-index --find-links`; uv comes from the host's uv package instead of ghcr.io/astral-sh/uv;
the tini step (apt-get + a GitHub download) is left out; Docker 20.10's built-in Dockerfile
frontend is used (a `#syntax=` line would fetch one from Docker Hub), so `COPY --link` is a
plain COPY; Cog's `cog_build` named context (uv, wheels, schema) is a helper image made once,
untimed. Each adaptation makes BuildKit's times shorter than the real `cog build`'s, not longer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import uv
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ociasm.dockerignore import IgnoreMatcher  # noqa: E402
from ociasm.layers import code, weights  # noqa: E402
from ociasm.schema import generate_schema  # noqa: E402

DOCKER = "/usr/bin/docker"
ADAPTATIONS = ("BuildKit peer: wheels downloaded on the host first (containers have no network), "
               "uv from the host, tini step left out, no #syntax= line (COPY --link -> COPY)")
CFLAGS = 'ENV CFLAGS="-O3 -funroll-loops -fno-strict-aliasing -flto -S"'
LDCONFIG = 'RUN find / -type f -name "*python*.so" -printf "%h\\n" | sort -u > /etc/ld.so.conf.d/cog.conf && ldconfig'
PREAMBLE = """ENV DEBIAN_FRONTEND=noninteractive
ENV PYTHONUNBUFFERED=1
ENV LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin
ENV NVIDIA_DRIVER_CAPABILITIES=all"""
MANYLINUX = [f"manylinux_2_{v}_x86_64" for v in range(17, 37)] + ["manylinux2014_x86_64", "linux_x86_64"]


def docker(*args: str, input: bytes | None = None) -> str:
    result = subprocess.run([DOCKER, *args], input=input, capture_output=True,
                            env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if result.returncode:
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed:\n{result.stderr.decode()[-3000:]}")
    return result.stdout.decode()


def crc32_manifest(project: Path, groups: list[str]) -> dict[str, dict[str, str]]:
    """Cog's weights manifest: the CRC32 of every file under each group, hex of its little-endian bytes."""
    paths: list[Path] = []
    for rel in groups:
        top = project / rel
        paths += sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else [top]
    files = {}
    for path in paths:
        crc = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                crc = zlib.crc32(chunk, crc)
        files[str(path.relative_to(project))] = {"crc32": crc.to_bytes(4, "little").hex()}
    return {"files": files}


@dataclass
class CogShaped:
    project: Path
    image: str
    state: Path                  # Cog's .cog/ kept outside the project: Dockerfiles, manifest, staging
    separate_weights: bool = True
    python_version: str = "3.11"
    config: dict = field(init=False)

    def __post_init__(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.config = yaml.safe_load((self.project / "cog.yaml").read_text())

    @property
    def helper(self) -> str:
        return f"{self.image.partition(':')[0]}-cogbuild"

    def prepare(self, cog_version: str) -> None:
        """Untimed: wheels on the host, and the helper image standing in for uv's image and cog_build."""
        staging = self.state / "helper"
        wheels = staging / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        requirements = self.project / "requirements.txt"
        wanted = [f"cog=={cog_version}", *(["-r", str(requirements)] if requirements.exists() else [])]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels),
                        "--only-binary=:all:", "--python-version", self.python_version,
                        "--implementation", "cp", "--abi", f"cp{self.python_version.replace('.', '')}",
                        "--abi", "abi3", "--abi", "none", *(a for p in MANYLINUX for a in ("--platform", p)),
                        "--platform", "any", *wanted],
                       check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
        for name in ("uv", "uvx"):
            shutil.copy2(Path(uv.find_uv_bin()).with_name(name), staging / name)
        schema = generate_schema(self.project, self.config.get("predict") or self.config.get("run"),
                                 self.config.get("train"))
        (staging / "openapi_schema.json").write_text(json.dumps(schema.document))
        if requirements.exists():
            shutil.copy2(requirements, staging / "requirements.txt")
        (self.state / "helper.Dockerfile").write_text(
            "FROM scratch\nCOPY uv uvx /\nCOPY wheels /wheels\nCOPY openapi_schema.json /\n"
            + ("COPY requirements.txt /\n" if requirements.exists() else ""))
        docker("build", "-q", "-t", self.helper, "-f", str(self.state / "helper.Dockerfile"), str(staging))

    def _groups(self) -> list[str]:
        if not self.separate_weights:
            return []
        return weights.find(code.scan(self.project, IgnoreMatcher.for_project(self.project))[0])

    def _ignore(self, dockerfile: Path, extra: list[str]) -> None:
        """Cog's context excludes on top of the project's .dockerignore (a Dockerfile-specific one)."""
        own = self.project / ".dockerignore"
        lines = own.read_text().splitlines() if own.exists() else []
        Path(f"{dockerfile}.dockerignore").write_text("\n".join([*lines, ".cog/", *extra]) + "\n")

    def _runner(self, groups: list[str]) -> str:
        wheels = f"--mount=type=bind,from={self.helper},source=/wheels,target=/tmp/wheels"
        install = "uv pip install --no-index --find-links /tmp/wheels"
        lines = [f"FROM {self.image}-weights AS weights"] if groups else []
        lines += [f"FROM python:{self.python_version}-slim", PREAMBLE,
                  f"COPY --from={self.helper} /uv /uvx /usr/local/bin/", "ENV UV_SYSTEM_PYTHON=true"]
        if (self.project / "requirements.txt").exists():
            lines += [f"COPY --from={self.helper} /requirements.txt /tmp/requirements.txt", CFLAGS,
                      f"RUN --mount=type=cache,target=/root/.cache/pip {wheels} {install} "
                      "--cache-dir /root/.cache/pip -r /tmp/requirements.txt", "ENV CFLAGS="]
        cog_version = self.cog_version
        lines += [CFLAGS, f"RUN --mount=type=cache,target=/root/.cache/uv {wheels} {install} --no-cache "
                          f"cog=={cog_version}", "ENV CFLAGS=", LDCONFIG]
        lines += [f"COPY --from=weights /src/{g} /src/{g}" for g in groups]
        lines += ["WORKDIR /src", "EXPOSE 5000"]
        if predict := self.config.get("predict") or self.config.get("run"):
            lines.append(f'ENV COG_PREDICT_TYPE_STUB="{predict}"')
        lines += ['CMD ["python", "-m", "cog.server.http"]', "COPY . /src"]
        return "\n".join(lines) + "\n"

    @property
    def cog_version(self) -> str:
        return next(p.name.split("-")[1] for p in (self.state / "helper" / "wheels").glob("cog-*.whl"))

    def build(self) -> dict[str, float]:
        """One `cog build`; returns the seconds each step took."""
        steps: dict[str, float] = {}
        start = time.perf_counter()
        groups = self._groups()
        if groups:
            manifest = crc32_manifest(self.project, groups)
            saved = self.state / "weights_manifest.json"
            steps["weights crc32"] = time.perf_counter() - start
            if not saved.exists() or json.loads(saved.read_text()) != manifest:
                mark = time.perf_counter()
                dockerfile = self.state / "weights.Dockerfile"
                dockerfile.write_text("FROM scratch\n" + "".join(f"COPY {g} /src/{g}\n" for g in groups))
                self._ignore(dockerfile, [])
                docker("build", "-q", "-t", f"{self.image}-weights", "-f", str(dockerfile), str(self.project))
                saved.write_text(json.dumps(manifest))
                steps["weights image"] = time.perf_counter() - mark
        mark = time.perf_counter()
        dockerfile = self.state / "runner.Dockerfile"
        dockerfile.write_text(self._runner(groups))
        self._ignore(dockerfile, [p for g in groups for p in (g, f"{g}/**/*")])
        docker("build", "-q", "-t", self.image, "-f", str(dockerfile), str(self.project))
        steps["runner"] = time.perf_counter() - mark
        mark = time.perf_counter()
        freeze = docker("run", "--rm", "--network", "none", self.image, "python", "-m", "pip", "freeze")
        steps["pip freeze"] = time.perf_counter() - mark
        mark = time.perf_counter()
        labels = {"run.cog.version": self.cog_version, "run.cog.config": json.dumps(self.config),
                  "run.cog.openapi_schema": (self.state / "helper" / "openapi_schema.json").read_text(),
                  "run.cog.pip_freeze": freeze, "run.cog.has_init": "true"}
        dockerfile = self.state / "labels.Dockerfile"
        dockerfile.write_text(f"FROM {self.image}\nCOPY --from={self.helper} /openapi_schema.json .cog/\n")
        empty = self.state / "empty"
        empty.mkdir(exist_ok=True)
        docker("build", "-q", "-t", self.image, "-f", str(dockerfile),
               *(a for k, v in labels.items() for a in ("--label", f"{k}={v}")), str(empty))
        steps["labels"] = time.perf_counter() - mark
        steps["total"] = time.perf_counter() - start
        return steps

    def clean(self) -> None:
        """Forget every build: images, BuildKit's cache, the weights manifest (the helper stays)."""
        subprocess.run([DOCKER, "rmi", "-f", self.image, f"{self.image}-weights"], capture_output=True)
        subprocess.run([DOCKER, "builder", "prune", "-af"], capture_output=True)
        (self.state / "weights_manifest.json").unlink(missing_ok=True)
