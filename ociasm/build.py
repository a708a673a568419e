"""Build orchestration: cog.yaml -> base -> layers -> image. Sinks are the CLI's business.

`prepare` checks every local input before any network or disk work, so bad input fails
fast with nothing written; `plan` answers from manifests and cache records only;
`build` produces an immutable `Image` whose layers are in the blob store, except weights layers,
which are recipes regenerated from the project's files when a sink needs their bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import base as base_image
from . import gpu, system
from .assemble import AddedLayer, assemble, cog_env, cog_labels
from .config import CogConfig, load_config, reject_unsupported
from .dockerignore import IgnoreMatcher
from .errors import OciasmError
from .image import Image, StoredLayer
from .layers import code as code_layer
from .layers import deps as deps_layer
from .layers import python as python_layer
from .layers import weights as weights_layer
from .layers.tarstream import Entry
from .progress import Progress
from .reference import Reference
from .registry import RegistryClient
from .requirements import requirement_lines
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
    use_cuda_base_image: str | None = None  # None: not given (Cog's "auto")
    mirrors: dict[str, str] = field(default_factory=dict)
    insecure_registries: frozenset[str] = frozenset()
    ca_cert: Path | None = None
    # The image goes to a registry (`ociasm push`): it needs a name, as `cog push` does, and the
    # base's layers are left in their registry once read (a push mounts or streams them).
    push: bool = False


@dataclass(frozen=True)
class Prepared:
    """The validated local inputs of a build."""

    config: CogConfig
    tag: str
    requirements: list[str]
    schema: Schema | None
    secrets: tuple[SecretSource, ...]
    bases: gpu.BaseOptions
    indexes: list[str]  # wheel index lines the torch matrix added to the requirements


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
    if request.use_cog_base_image is not None and request.use_cuda_base_image is not None:
        raise OciasmError("The flags --use-cog-base-image and --use-cuda-base-image are mutually exclusive: "
                          "you can only set one of them.")
    if request.use_cuda_base_image not in (None, *CUDA_BASE_CHOICES):
        raise OciasmError(f"--use-cuda-base-image {request.use_cuda_base_image!r}: expected auto, true or false")
    secrets = parse_secrets(list(request.secrets))
    resolution = gpu.resolve(config, requirement_lines(config, progress.warn), warn=progress.warn,
                             use_cog_base_image=request.use_cog_base_image,
                             use_cuda_base_image=request.use_cuda_base_image)
    config, requirements = resolution.config, resolution.requirements
    schema = _schema(request, config)
    if request.push and not (request.tag or config.image):
        raise OciasmError(f"{config.path.name}: no image to push to: pass one (ociasm push IMAGE) or set "
                          f"`image` in {config.path.name}, e.g. registry.example.com/you/model")
    tag = request.tag or config.image or default_image_name(project_dir)
    Reference.parse(tag)  # a bad tag fails here, before any work
    return Prepared(config, tag, requirements, schema, secrets, resolution.bases, resolution.indexes)


def _client(request: BuildRequest, progress: Progress) -> RegistryClient:
    return RegistryClient(mirrors=request.mirrors, insecure=request.insecure_registries, progress=progress,
                          ca_cert=request.ca_cert)


def _schema_bytes(schema: dict | None) -> bytes | None:
    return None if schema is None else json.dumps(schema, indent=2, sort_keys=True).encode() + b"\n"


def _scan(request: BuildRequest, config: CogConfig
          ) -> tuple[list[weights_layer.Group], list[Entry], list[tuple]]:
    """The weights groups (with --separate-weights), then the code layer's entries and facts."""
    ignore = IgnoreMatcher.for_project(config.project_dir)
    entries, facts = code_layer.scan(config.project_dir, ignore)
    groups = weights_layer.groups(entries) if request.separate_weights else []
    if groups:
        entries, facts = code_layer.without(entries, facts, frozenset(g.rel for g in groups))
    return groups, entries, facts


def _choose_base(request: BuildRequest, prepared: Prepared, client: RegistryClient,
                 progress: Progress) -> tuple[gpu.ChosenBase, python_layer.Distribution | None]:
    """The base (a cog-base image, nvidia/cuda or python-slim) and the interpreter to add to it."""
    chosen = gpu.choose(prepared.bases, client, mirrors=request.mirrors, insecure=request.insecure_registries,
                        ca_cert=request.ca_cert, progress=progress)
    version = prepared.config.build.python_version
    return chosen, python_layer.distribution(version) if chosen.adds_python else None


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
    groups, entries, code_facts = _scan(request, config)
    chosen, interpreter = _choose_base(request, prepared, _client(request, progress), progress)
    manifest = chosen.manifest
    facts = store.get_meta("base-facts", base_image.facts_key(manifest.digest, config.build.python_version,
                                                               interpreter))
    deps_inputs = {"requirements": prepared.requirements,
                   "cog": deps_layer.cog_requirement(config.build.sdk_version)[0],
                   "python": config.build.python_version}
    deps = None
    if facts is not None:
        target = deps_layer.PythonTarget(**facts)
        deps_inputs.update(site_dir=target.site_dir, platform=target.platform)
        deps = _deps_lookup(request, prepared, store, target)[1]
    code_cached: bool | None = None
    if deps is not None or prepared.schema is None or not prepared.schema.generated:
        schema = prepared.schema.for_cog(deps.cog_version if deps else "") if prepared.schema else None
        code_cached = _code_lookup(request, store, code_facts, _schema_bytes(schema))[1] is not None
    before, after = system.planned(config, chosen.cog_base)
    layers = [PlannedLayer(name, inputs, None) for name, inputs in before]
    layers += [] if interpreter is None else [
        PlannedLayer("python", {"version": interpreter.version, "url": interpreter.url},
                     _python_lookup(request, store, interpreter)[1] is not None)]
    layers += [
        PlannedLayer("dependencies", deps_inputs, None if facts is None else deps is not None),
        *(PlannedLayer(name, inputs, None) for name, inputs in after),
        *(PlannedLayer(f"weights {g.rel}", {"files": len(g.files), "bytes": g.size},
                       _weights_lookup(request, store, g) is not None) for g in groups),
        PlannedLayer("code", {"files": sum(e.kind == "file" for e in entries),
                              "bytes": sum(e.size or 0 for e in entries),
                              "schema": "none" if prepared.schema is None else
                                        "generated" if prepared.schema.generated else "given"},
                     code_cached),
    ]
    return {
        "tag": prepared.tag,
        "base": {"reference": str(chosen.reference), "cog_base": chosen.cog_base, "digest": manifest.digest,
                 "index_digest": manifest.index_digest,
                 "layers": [{"digest": d.digest, "size": d.size, "cached": store.has(d.digest)}
                            for d in manifest.layers]},
        "cuda": {"cuda": config.build.cuda, "cudnn": config.build.cudnn} if config.build.gpu else None,
        "indexes": prepared.indexes,
        "layers": [l.to_json() for l in layers],
    }


# Each layer step: a lookup (its recipe key and the cached layer, None with --no-cache or on a
# miss), shared by `plan` and `build`, then the step that builds on a miss.

def _deps_lookup(request: BuildRequest, prepared: Prepared, store: BlobStore,
                 target: deps_layer.PythonTarget) -> tuple[str, deps_layer.DepsLayer | None]:
    key = deps_layer.recipe_key(target, prepared.requirements, prepared.config.build.sdk_version)
    return key, None if request.no_cache else deps_layer.cached(store, key)


def _python_lookup(request: BuildRequest, store: BlobStore,
                   interpreter: python_layer.Distribution) -> tuple[str, StoredLayer | None]:
    key = python_layer.recipe_key(interpreter)
    return key, None if request.no_cache else python_layer.cached(store, key)


def _weights_lookup(request: BuildRequest, store: BlobStore,
                    group: weights_layer.Group) -> weights_layer.WeightsLayer | None:
    return None if request.no_cache else weights_layer.cached(store, group)


def _code_lookup(request: BuildRequest, store: BlobStore, facts: list[tuple],
                 schema: bytes | None) -> tuple[str, StoredLayer | None]:
    key = code_layer.selector(facts, schema)
    return key, None if request.no_cache else code_layer.cached(store, key)


def _deps(request: BuildRequest, prepared: Prepared, store: BlobStore, target: deps_layer.PythonTarget,
          progress: Progress) -> deps_layer.DepsLayer:
    build_config = prepared.config.build
    key, hit = _deps_lookup(request, prepared, store, target)
    if hit:
        progress.step("dependencies: cached")
        return hit
    progress.step(f"resolving wheels for Python {target.version} ({target.platform})")
    source = build_config.python_requirements or prepared.config.path.name
    return deps_layer.build(store, key, target, prepared.requirements, build_config.sdk_version, source)


def _python(request: BuildRequest, store: BlobStore, interpreter: python_layer.Distribution,
            progress: Progress) -> AddedLayer:
    key, hit = _python_lookup(request, store, interpreter)
    if hit:
        progress.step(f"python {interpreter.version}: cached")
    else:
        progress.step(f"adding Python {interpreter.version} ({interpreter.url})")
        hit = python_layer.build(store, key, interpreter, progress)
    v = interpreter.minor
    return AddedLayer(hit, f"RUN uv python install {v} && ln -sf $(uv python find {v}) /usr/bin/python3 && "
                           f"ln -sf $(uv python find {v}) /usr/local/bin/python")


def _weights(request: BuildRequest, store: BlobStore, group: weights_layer.Group,
             progress: Progress) -> weights_layer.WeightsLayer:
    if hit := _weights_lookup(request, store, group):
        progress.step(f"weights {group.rel}: cached")
        return hit
    return weights_layer.build(store, group, progress)


def _code(request: BuildRequest, store: BlobStore, entries: list[Entry], facts: list[tuple],
          schema: bytes | None, progress: Progress) -> StoredLayer:
    key, hit = _code_lookup(request, store, facts, schema)
    if hit:
        progress.step("code: cached")
        return hit
    total = sum(e.size or 0 for e in entries)
    with progress.task(f"write code layer ({sum(e.kind == 'file' for e in entries)} files)", total) as task:
        return code_layer.build(store, key, entries, schema, task.advance)


def build(request: BuildRequest, store: BlobStore, progress: Progress) -> tuple[Image, str]:
    """Build the image; returns it with the tag it should carry."""
    prepared = prepare(request, progress)
    config = prepared.config
    system.check(config, prepared.secrets)  # steps that need a container fail here, before any work
    groups, entries, code_facts = _scan(request, config)  # before any network: unreadable files fail fast
    client = _client(request, progress)
    chosen, interpreter = _choose_base(request, prepared, client, progress)
    progress.step(f"base {chosen.reference}")
    base = base_image.pull(client, store, chosen.manifest, config.build.python_version, progress, interpreter,
                           lazy=request.push)
    max_concurrency = prepared.schema.max_concurrency if prepared.schema else None
    base_env = base.config.get("config", {}).get("Env") or []
    env = cog_env(config, python_layer.image_env(base_env) if interpreter else base_env, max_concurrency,
                  preamble=not chosen.cog_base)
    around = system.SystemLayers(store, config, base.config, base.layers, env, prepared.secrets,
                                 request.no_cache, progress, chosen.cog_base)
    added = around.before_deps()  # tini, system packages
    if interpreter is not None:
        added.append(_python(request, store, interpreter, progress))
    deps = _deps(request, prepared, store, base.python, progress)
    added.append(AddedLayer(deps.layer, "RUN uv pip install cog -r requirements.txt"))
    added += around.after_deps(added)  # ldconfig, build.run
    weights = [_weights(request, store, group, progress) for group in groups]
    schema = prepared.schema.for_cog(deps.cog_version) if prepared.schema else None
    code = _code(request, store, entries, code_facts, _schema_bytes(schema), progress)

    labels = cog_labels(config, deps.cog_version, schema, deps.pip_freeze)
    if chosen.cog_base:
        labels.update(gpu.cog_base_labels(str(chosen.reference), base.config))
    image = assemble(base.config, base.layers, [
        *added,
        *(AddedLayer(layer, layer.group.created_by) for layer in weights),
        AddedLayer(code, "COPY . /src"),
    ], env, labels, around.entrypoint)
    return image, prepared.tag
