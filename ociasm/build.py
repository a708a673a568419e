"""Build orchestration: cog.yaml -> base -> layers -> image. Sinks are the CLI's business.

`prepare` checks every local input before any network or disk work, so bad input fails
fast with nothing written; `plan` answers from manifests and cache records only;
`build` produces an immutable `Image` whose layers are all in the blob store.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import base as base_image
from .assemble import AddedLayer, assemble, cog_env, cog_labels
from .config import CogConfig, load_config, reject_unsupported
from .requirements import requirement_lines
from .dockerignore import IgnoreMatcher
from .errors import OciasmError
from .image import Image, StoredLayer
from .layers import code as code_layer
from .layers.tarstream import Entry
from .layers import deps as deps_layer
from .progress import Progress
from .reference import Reference
from .registry import RegistryClient
from .schema import generate_schema, load_schema_file, schema_override
from .secrets import SecretSource, parse_secrets
from .store import BlobStore

CUDA_BASE_CHOICES = ("auto", "true", "false")


@dataclass(frozen=True)
class BuildRequest:
    """Everything `ociasm build` / `plan` was asked, as given on the command line."""

    project_dir: Path
    config_file: str = "cog.yaml"
    tag: str | None = None
    no_cache: bool = False
    separate_weights: bool = False
    secrets: tuple[str, ...] = ()
    openapi_schema: Path | None = None
    use_cog_base_image: bool | None = None
    use_cuda_base_image: str = "auto"
    mirrors: dict[str, str] = field(default_factory=dict)
    insecure_registries: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Prepared:
    """The validated local inputs of a build."""

    config: CogConfig
    tag: str
    requirements: list[str]
    schema: Schema | None
    secrets: tuple[SecretSource, ...]
    base_ref: Reference


def default_image_name(project_dir: Path) -> str:
    """Cog's default: `cog-` + the directory name, lowercased, [a-z0-9-] only, 30 chars at most."""
    name = re.sub(r"[^a-z0-9\-]+", "", project_dir.resolve().name.lower().replace(" ", "-"))
    name = name[:30 - len("cog-")]
    return name if name.startswith("cog-") else "cog-" + name


@dataclass(frozen=True)
class Schema:
    """The OpenAPI document the image carries: given by the user, or generated from the source."""

    document: dict
    generated: bool
    max_concurrency: int | None = None

    def for_cog(self, cog_version: str) -> dict:
        """Cog writes the runtime's version into a generated schema's info.version."""
        if not self.generated:
            return self.document
        return {**self.document, "info": {**self.document.get("info", {}), "version": cog_version}}


def _schema(request: BuildRequest, config: CogConfig) -> Schema | None:
    if (given := schema_override(request.openapi_schema)) is not None:
        return Schema(load_schema_file(given), generated=False)
    if not config.predict and not config.train:
        return None
    generated = generate_schema(config.project_dir, config.predict, config.train)
    return Schema(generated.document, True, generated.max_concurrency)


def prepare(request: BuildRequest, progress: Progress) -> Prepared:
    project_dir = request.project_dir.resolve()
    if not project_dir.is_dir():
        raise OciasmError(f"{request.project_dir}: not a directory; give the model's project directory")
    config = load_config(project_dir, request.config_file, warn=progress.warn)
    reject_unsupported(config)
    if request.separate_weights:
        raise OciasmError("--separate-weights is not supported by ociasm yet; build without it")
    if request.use_cog_base_image:
        raise OciasmError("--use-cog-base-image: cog-base images are not supported by ociasm yet; "
                          "use --no-use-cog-base-image (CPU models build on python:<version>-slim)")
    if request.use_cuda_base_image not in CUDA_BASE_CHOICES:
        raise OciasmError(f"--use-cuda-base-image {request.use_cuda_base_image!r}: expected auto, true or false")
    secrets = parse_secrets(list(request.secrets))
    requirements = requirement_lines(config, progress.warn)
    schema = _schema(request, config)
    tag = request.tag or config.image or default_image_name(project_dir)
    Reference.parse(tag)  # a bad tag fails here, before any work
    base_ref = Reference.parse(f"python:{config.build.python_version}-slim")
    return Prepared(config, tag, requirements, schema, secrets, base_ref)


def _client(request: BuildRequest, progress: Progress) -> RegistryClient:
    return RegistryClient(mirrors=request.mirrors, insecure=request.insecure_registries, progress=progress)


def _schema_bytes(schema: dict | None) -> bytes | None:
    return None if schema is None else json.dumps(schema, indent=2, sort_keys=True).encode() + b"\n"


def _scan_code(config: CogConfig) -> tuple[list[Entry], list[tuple]]:
    return code_layer.scan(config.project_dir, IgnoreMatcher.for_project(config.project_dir))


def _facts_key(manifest_digest: str, version: str) -> str:
    return f"{manifest_digest.split(':')[1]}-py{version}-v{base_image.FACTS_VERSION}"


@dataclass(frozen=True)
class PlannedLayer:
    name: str
    inputs: dict
    cached: bool | None  # None: cannot be known without reading the base's layers or resolving

    def to_json(self) -> dict:
        return {"name": self.name, "inputs": self.inputs, "cached": self.cached}


def plan(request: BuildRequest, store: BlobStore, progress: Progress) -> dict:
    """What a build would do, from manifests and cache records only: no wheels, no layer blobs."""
    prepared = prepare(request, progress)
    config = prepared.config
    entries, code_facts = _scan_code(config)
    manifest = base_image.resolve(_client(request, progress), prepared.base_ref)
    facts = store.get_meta("base-facts", _facts_key(manifest.digest, config.build.python_version))
    deps_inputs = {"requirements": prepared.requirements,
                   "cog": deps_layer.cog_requirement(config.build.sdk_version)[0],
                   "python": config.build.python_version}
    deps = None
    if facts is not None:
        target = deps_layer.PythonTarget(**facts)
        deps_inputs.update(site_dir=target.site_dir, platform=target.platform)
        deps = None if request.no_cache else deps_layer.cached(
            store, deps_layer.recipe_key(target, prepared.requirements, config.build.sdk_version))
    code_cached: bool | None = None
    if deps is not None or prepared.schema is None or not prepared.schema.generated:
        schema = prepared.schema.for_cog(deps.cog_version if deps else "") if prepared.schema else None
        key = code_layer.selector(code_facts, _schema_bytes(schema))
        code_cached = not request.no_cache and code_layer.cached(store, key) is not None
    layers = [
        PlannedLayer("dependencies", deps_inputs,
                     None if facts is None else (not request.no_cache and deps is not None)),
        PlannedLayer("code", {"files": sum(e.kind == "file" for e in entries),
                              "bytes": sum(e.size or 0 for e in entries),
                              "schema": "none" if prepared.schema is None else
                                        "generated" if prepared.schema.generated else "given"},
                     code_cached),
    ]
    return {
        "tag": prepared.tag,
        "base": {"reference": str(prepared.base_ref), "digest": manifest.digest,
                 "index_digest": manifest.index_digest,
                 "layers": [{"digest": d.digest, "size": d.size, "cached": store.has(d.digest)}
                            for d in manifest.layers]},
        "layers": [l.to_json() for l in layers],
    }


def _deps(request: BuildRequest, prepared: Prepared, store: BlobStore, target: deps_layer.PythonTarget,
          progress: Progress) -> deps_layer.DepsLayer:
    build_config = prepared.config.build
    key = deps_layer.recipe_key(target, prepared.requirements, build_config.sdk_version)
    if not request.no_cache and (hit := deps_layer.cached(store, key)):
        progress.step("dependencies: cached")
        return hit
    progress.step(f"resolving wheels for Python {target.version} ({target.platform})")
    source = build_config.python_requirements or prepared.config.path.name
    return deps_layer.build(store, key, target, prepared.requirements, build_config.sdk_version, source)


def _code(request: BuildRequest, store: BlobStore, entries: list[Entry], facts: list[tuple],
          schema: bytes | None, progress: Progress) -> StoredLayer:
    key = code_layer.selector(facts, schema)
    if not request.no_cache and (hit := code_layer.cached(store, key)):
        progress.step("code: cached")
        return hit
    total = sum(e.size or 0 for e in entries)
    with progress.task(f"write code layer ({sum(e.kind == 'file' for e in entries)} files)", total) as task:
        return code_layer.build(store, key, entries, schema, task.advance)


def build(request: BuildRequest, store: BlobStore, progress: Progress) -> tuple[Image, str]:
    """Build the image; returns it with the tag it should carry."""
    prepared = prepare(request, progress)
    config = prepared.config
    entries, code_facts = _scan_code(config)  # before any network: unreadable files fail fast
    client = _client(request, progress)
    progress.step(f"base {prepared.base_ref}")
    base = base_image.pull(client, store, base_image.resolve(client, prepared.base_ref),
                           config.build.python_version, progress)
    deps = _deps(request, prepared, store, base.python, progress)
    schema = prepared.schema.for_cog(deps.cog_version) if prepared.schema else None
    code = _code(request, store, entries, code_facts, _schema_bytes(schema), progress)

    max_concurrency = prepared.schema.max_concurrency if prepared.schema else None
    env = cog_env(config, base.config.get("config", {}).get("Env") or [], max_concurrency)
    labels = cog_labels(config, deps.cog_version, schema, deps.pip_freeze)
    image = assemble(base.config, base.layers, [
        AddedLayer(deps.layer, "RUN uv pip install cog -r requirements.txt"),
        AddedLayer(code, "COPY . /src"),
    ], env, labels)
    return image, prepared.tag
