"""Steps only a container can do (`build.run`, deprecated `pre_install`, system packages dpkg
must configure), run by the engine's BuildKit and spliced back into the image.

The image assembled so far is loaded into the engine (the docker sink) as a stage; a
Dockerfile `FROM` it holds the steps in Cog's form (`RUN --mount=type=secret,id=X,target=T cmd`,
no `#syntax=` line: the built-in frontend has RUN --mount and the line would fetch a frontend
from Docker Hub). BuildKit runs them through `docker buildx build` or, without buildx, the
classic client with DOCKER_BUILDKIT=1. Only the layers after the stage's are taken back from
`docker save`. The result is cached by the stage's digest, the steps and the sha256 of every
mounted secret's contents, so a changed secret re-runs its steps (Cog's cache misses that,
cog#1009). Secrets reach BuildKit as `--secret id=X,src=FILE|env=VAR` and only the steps that
mount them see them; their values are masked in relayed output and stored nowhere.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from ociasm.assemble import AddedLayer
from ociasm.errors import OciasmError
from ociasm.image import OCI_LAYER_GZIP, Descriptor, Image, Layer, StoredLayer
from ociasm.progress import Progress
from ociasm.secrets import SecretSource
from ociasm.sinks.daemon import engine_available, load
from ociasm.store import BlobStore

from . import recipe
from .rootfs import piped_tar
from .tarstream import COPY_CHUNK, GzipHashingSink

RECIPE_VERSION = 1
STAGE_REPOSITORY = "ociasm-stage"
CLIENTS = ("docker", "/usr/bin/docker", "/usr/local/bin/docker")
_STEP_HEADER = re.compile(r"^#\d+ \[(\d+)/\d+\] (RUN .*)$")
_STEP_OUTPUT = re.compile(r"^#\d+ \d+\.\d+ (.*)$")


@dataclass(frozen=True)
class ContainerStep:
    line: str                    # the Dockerfile instruction, as Cog writes it
    label: str                   # how messages name it: "build.run[1]"
    command: str                 # the shell command alone, for messages
    secrets: tuple[str, ...] = ()  # ids of the secrets it mounts


@dataclass(frozen=True)
class Builder:
    argv: tuple[str, ...]        # up to and including the build subcommand
    env: tuple[tuple[str, str], ...]
    docker: str                  # the client, for save / rmi


@functools.cache
def find_builder() -> Builder | None:
    """A Docker client that can run a BuildKit build: buildx, else a client older than 23
    (those still build with DOCKER_BUILDKIT=1; newer ones refuse without buildx)."""
    for name in dict.fromkeys(CLIENTS):
        client = shutil.which(name)
        if client is None:
            continue
        if subprocess.run([client, "buildx", "version"], capture_output=True).returncode == 0:
            return Builder((client, "buildx", "build", "--load"), (), client)
        version = subprocess.run([client, "--version"], capture_output=True, text=True).stdout
        major = re.search(r"version (\d+)\.", version)
        if major and int(major.group(1)) < 23:
            return Builder((client, "build"), (("DOCKER_BUILDKIT", "1"),), client)
    return None


def container_problem() -> str | None:
    """Why no step can run in a container here, and what would fix it; None when one can."""
    if not engine_available():
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return f"no Docker engine answers at {where} (start one, or point DOCKER_HOST at one)"
    if find_builder() is None:
        return "no Docker client here can run BuildKit (install Docker's buildx plugin)"
    return None


def _short(command: str, width: int = 40) -> str:
    return command if len(command) <= width else command[:width - 1] + "…"


def require_container(steps: list[ContainerStep], where: str) -> None:
    """Fail before any work when steps need a container and none can run."""
    if steps and (problem := container_problem()):
        listed = ", ".join(f"{s.label} `{_short(s.command)}`" for s in steps)
        raise OciasmError(f"{where}: {listed} must run in a container (ociasm runs them with BuildKit), "
                          f"but {problem}")


def check_secrets(steps: list[ContainerStep], secrets: tuple[SecretSource, ...], where: str) -> None:
    given = {s.id for s in secrets}
    for step in steps:
        if missing := [i for i in step.secrets if i not in given]:
            raise OciasmError(f"{where}: {step.label} mounts secret {missing[0]!r}; pass "
                              f"--secret id={missing[0]},src=FILE (or env=VAR)")


def _secret_value(secret: SecretSource) -> bytes:
    if secret.src is not None:
        return secret.src.read_bytes()
    return os.environ.get(secret.env or "", "").encode()


def _mounted(steps: list[ContainerStep], secrets: tuple[SecretSource, ...]) -> list[SecretSource]:
    used = {i for s in steps for i in s.secrets}
    return [s for s in secrets if s.id in used]


def recipe_key(stage: Image, steps: list[ContainerStep], secrets: tuple[SecretSource, ...]) -> str:
    return recipe.key(v=RECIPE_VERSION, stage=stage.digest, steps=[s.line for s in steps],
                      secrets={s.id: hashlib.sha256(_secret_value(s)).hexdigest() for s in _mounted(steps, secrets)})


def cached(store: BlobStore, key: str) -> list[AddedLayer] | None:
    record = store.get_meta("run", key)
    if record is None:
        return None
    layers = [AddedLayer(StoredLayer.from_json(r["layer"], store), r["created_by"]) for r in record["layers"]]
    return layers if all(store.has(a.layer.descriptor.digest) for a in layers) else None


def stage_image(base_config: dict, base_layers: tuple[Layer, ...], added: list[AddedLayer],
                env: list[str]) -> Image:
    """The image the steps start from: the base's config with Cog's env so far, and the layers so far
    (no WORKDIR yet: Cog's RUN steps come before `WORKDIR /src`)."""
    config = copy.deepcopy(base_config)
    config.setdefault("config", {})["Env"] = env
    config["rootfs"] = {"type": "layers",
                        "diff_ids": [*config["rootfs"]["diff_ids"], *(a.layer.diff_id for a in added)]}
    config["history"] = [*config.get("history", []),
                         *({"created_by": a.created_by, "comment": "ociasm"} for a in added)]
    for key in ("container", "container_config", "docker_version"):
        config.pop(key, None)
    return Image(config, (*base_layers, *(a.layer for a in added)))


class _Redactor:
    def __init__(self, secrets: list[SecretSource]) -> None:
        values = {_secret_value(s).decode(errors="replace") for s in secrets}
        values |= {v.strip() for v in values}
        self.values = sorted((v for v in values if v), key=len, reverse=True)

    def __call__(self, line: str) -> str:
        for value in self.values:
            line = line.replace(value, "****")
        return line


class _Unwanted(Exception):
    pass


def _ingest_layer(store: BlobStore, stream: IO[bytes], wanted: set[str]) -> StoredLayer | None:
    """Gzip an uncompressed layer tar into the store if its diff_id is wanted (known only once
    read: `docker save` names layers by ids of its own)."""
    if not wanted:
        return None
    diff_id = ""
    try:
        with store.writer() as blob:
            sink = GzipHashingSink(blob)
            while chunk := stream.read(COPY_CHUNK):
                sink.write(chunk)
            sink.close()
            diff_id = "sha256:" + sink.tar_hash.hexdigest()
            if diff_id not in wanted:
                raise _Unwanted()  # discards the blob
    except _Unwanted:
        return None
    return StoredLayer(Descriptor(OCI_LAYER_GZIP, blob.digest, blob.size), diff_id, store)


def _saved_layers(builder: Builder, store: BlobStore, image: str, stage_count: int
                  ) -> tuple[list[StoredLayer], list[dict]]:
    """The new layers (after the stage's) of `image` and its history, from `docker save`
    (whose members come in name order: the config may follow the layers)."""
    inspect = subprocess.run([builder.docker, "image", "inspect", "--format", "{{json .RootFS.Layers}}", image],
                             capture_output=True, text=True)
    if inspect.returncode != 0:
        raise OciasmError(f"docker image inspect {image} failed: {inspect.stderr.strip()}")
    new_ids = json.loads(inspect.stdout)[stage_count:]
    found: dict[str, StoredLayer] = {}
    history: list[dict] = []
    with piped_tar([builder.docker, "save", image], f"docker save {image} failed") as tar:
        for member in tar:
            if re.fullmatch(r"[0-9a-f]{64}\.json", member.name):
                history = json.load(tar.extractfile(member)).get("history", [])  # type: ignore[arg-type]
            elif member.name.endswith("/layer.tar") and member.isreg():
                layer = _ingest_layer(store, tar.extractfile(member),  # type: ignore[arg-type]
                                      set(new_ids) - set(found))
                if layer is not None:
                    found[layer.diff_id] = layer
    if missing := [d for d in new_ids if d not in found]:
        raise OciasmError(f"docker save {image} did not hold layer {missing[0]}")
    return [found[d] for d in new_ids], history


def _dockerfile(stage_ref: str, steps: list[ContainerStep]) -> str:
    return "".join([f"FROM {stage_ref}\n", *(s.line + "\n" for s in steps)])


def _relay(lines: Iterator[str], steps: list[ContainerStep], redact: _Redactor, progress: Progress
           ) -> tuple[ContainerStep | None, list[str]]:
    """Show the steps' output (secrets masked); return the last step started and the last lines."""
    current: ContainerStep | None = None
    tail: list[str] = []
    for raw in lines:
        line = redact(raw.rstrip("\n"))
        if m := _STEP_HEADER.match(line):
            index = int(m.group(1)) - 2  # [1/N] is the FROM
            current = steps[index] if 0 <= index < len(steps) else current
            progress.step(f"{current.label}: {_short(current.command, 80)}" if current else m.group(2))
        elif m := _STEP_OUTPUT.match(line):
            progress.step(f"  {m.group(1)}")
        tail = [*tail[-19:], line]
    return current, tail


def run(store: BlobStore, key: str, stage: Image, steps: list[ContainerStep],
        secrets: tuple[SecretSource, ...], progress: Progress) -> list[AddedLayer]:
    """Run `steps` on `stage` with BuildKit; return the layers they made (cached under `key`)."""
    builder = find_builder()
    if builder is None:
        raise OciasmError("no Docker client here can run BuildKit (install Docker's buildx plugin)")
    # Per-process tags: a concurrent build removing its tags leaves ours alone.
    stage_ref = f"{STAGE_REPOSITORY}:{stage.digest.split(':')[1][:24]}-{os.getpid()}"
    result_ref = f"{stage_ref}-run"
    mounted = _mounted(steps, secrets)
    load(stage, [stage_ref], progress)
    try:
        with tempfile.TemporaryDirectory(dir=store.tmp_dir, prefix="run-") as scratch:
            context = Path(scratch) / "context"
            context.mkdir()
            dockerfile = Path(scratch) / "Dockerfile"
            dockerfile.write_text(_dockerfile(stage_ref, steps))
            argv = [*builder.argv, "--no-cache", "--progress=plain", "--tag", result_ref, "--file", str(dockerfile)]
            for s in mounted:
                argv += ["--secret", f"id={s.id},src={s.src}" if s.src else f"id={s.id},env={s.env}"]
            argv.append(str(context))
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, **dict(builder.env)}, errors="replace") as proc:
                current, tail = _relay(proc.stdout, steps, _Redactor(mounted), progress)  # type: ignore[arg-type]
            if proc.returncode != 0:
                raise _failure(current, tail)
        layers, history = _saved_layers(builder, store, result_ref, len(stage.layers))
    finally:
        subprocess.run([builder.docker, "rmi", "--force", result_ref, stage_ref], capture_output=True)
    made = _pair(steps, history[-len(steps):], layers)
    store.put_meta("run", key, {"layers": [{"layer": a.layer.to_json(), "created_by": a.created_by}  # type: ignore[attr-defined]
                                           for a in made]})
    return made


def _pair(steps: list[ContainerStep], history: list[dict], layers: list[StoredLayer]) -> list[AddedLayer]:
    """Each new layer with the step that made it (BuildKit appends one history entry per RUN,
    marked empty_layer when the step changed nothing)."""
    made_layer = [not h.get("empty_layer") for h in history]
    if len(history) != len(steps) or sum(made_layer) != len(layers):
        return [AddedLayer(layer, "RUN (BuildKit)") for layer in layers]
    owners = [step for step, made in zip(steps, made_layer) if made]
    return [AddedLayer(layer, step.line) for layer, step in zip(layers, owners)]


def _failure(step: ContainerStep | None, tail: list[str]) -> OciasmError:
    detail = next((l for l in reversed(tail) if "exit code" in l or "error" in l.lower()), tail[-1] if tail else "")
    detail = re.sub(r"^#\d+ (\d+\.\d+ )?", "", detail).strip()
    where = f"{step.label} `{_short(step.command, 60)}`" if step else "the container build"
    return OciasmError(f"{where} failed in the build container: {detail}")
