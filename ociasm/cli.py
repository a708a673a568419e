"""The `ociasm` command line: `build` and `plan`, with `cog build`'s flags.

Every command shares the build options, declared once below and added to each command's
signature. An `OciasmError` becomes one line on stderr and its exit code; no traceback.
"""

import functools
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from . import build as builder
from .errors import OciasmError
from .progress import MODES, Progress, make_progress
from .push import publish
from .reference import parse_mirrors
from .sinks import Output, parse_output, write
from .sinks.daemon import engine_available
from .store import BlobStore

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Daemonless OCI image assembler for Cog models.")


# (name, annotation, default) of the options every build-like command takes.
_BUILD_OPTIONS: list[tuple[str, object, object]] = [
    ("project_dir", Annotated[Path, typer.Argument(help="The model's project directory.")], Path(".")),
    ("tag", Annotated[Optional[str], typer.Option("-t", "--tag", help="Image name (default: `image` from cog.yaml, else cog-<dir>).")], None),
    ("file", Annotated[str, typer.Option("-f", "--file", help="The config file, relative to DIR.")], "cog.yaml"),
    ("no_cache", Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer, ignoring cached ones.")], False),
    ("separate_weights", Annotated[bool, typer.Option("--separate-weights", help="Put model weights in their own layers.")], False),
    ("progress", Annotated[Optional[str], typer.Option("--progress", help=f"One of {', '.join(MODES)} (default: $BUILDKIT_PROGRESS, else auto).")], None),
    ("secret", Annotated[list[str], typer.Option("--secret", help="id=NAME,src=FILE or id=NAME,env=VAR (repeatable).")], []),
    ("openapi_schema", Annotated[Optional[Path], typer.Option("--openapi-schema", help="Use this OpenAPI schema instead of generating one.")], None),
    ("use_cog_base_image", Annotated[Optional[bool], typer.Option("--use-cog-base-image/--no-use-cog-base-image", help="Build on r8.im/cog-base (or $COG_REGISTRY_HOST) when it has the model's configuration (default: try it, fall back with a warning).")], None),
    ("use_cuda_base_image", Annotated[Optional[str], typer.Option("--use-cuda-base-image", help="auto (default), true or false: GPU models build on nvidia/cuda unless false.")], None),
    ("output", Annotated[Optional[str], typer.Option("--output", "-o", help="docker, oci:DIR, oci-archive:FILE or docker-archive:FILE (default: docker when an engine answers, else oci-archive:<name>.tar).")], None),
    ("registry_mirror", Annotated[list[str], typer.Option("--registry-mirror", help="HOST=MIRROR, e.g. docker.io=localhost:5000 (repeatable; also $OCIASM_REGISTRY_MIRRORS).")], []),
    ("insecure_registry", Annotated[list[str], typer.Option("--insecure-registry", help="Allow plain HTTP to this registry host (repeatable).")], []),
    ("ca_cert", Annotated[Optional[Path], typer.Option("--ca-cert", help="Also trust this CA certificate (PEM) for registries' TLS.")], None),
]


def _request(opts: dict) -> builder.BuildRequest:
    return builder.BuildRequest(
        project_dir=opts["project_dir"], config_file=opts["file"], tag=opts["tag"],
        no_cache=opts["no_cache"], separate_weights=opts["separate_weights"],
        secrets=tuple(opts["secret"]), openapi_schema=opts["openapi_schema"],
        use_cog_base_image=opts["use_cog_base_image"], use_cuda_base_image=opts["use_cuda_base_image"],
        mirrors=parse_mirrors(opts["registry_mirror"], os.environ.get("OCIASM_REGISTRY_MIRRORS")),
        insecure_registries=frozenset(opts["insecure_registry"]), ca_cert=opts["ca_cert"],
    )


def build_command(fn: Callable) -> Callable:
    """Give `fn(request, output, progress, **own)` the shared build options as CLI parameters."""
    own = [p for name, p in inspect.signature(fn).parameters.items()
           if name not in ("request", "output", "progress")]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
              for name, annotation, default in _BUILD_OPTIONS]

    @functools.wraps(fn)
    def command(**kwargs):
        opts = {name: kwargs.pop(name) for name, _, _ in _BUILD_OPTIONS}
        progress = make_progress(opts["progress"])
        if opts["progress"] is not None and opts["progress"] not in MODES:
            _fail(OciasmError(f"--progress {opts['progress']!r}: expected one of {', '.join(MODES)}"))
        try:
            output = parse_output(opts["output"]) if opts["output"] else None
            return fn(_request(opts), output, progress, **kwargs)
        except OciasmError as e:
            _fail(e)
        except KeyboardInterrupt:
            print("ociasm: interrupted; nothing was written at the output path", file=sys.stderr)
            raise typer.Exit(130)
        finally:
            progress.close()

    command.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
    return command


def _fail(error: OciasmError) -> None:
    print(f"error: {error}", file=sys.stderr)
    raise typer.Exit(error.exit_code)


def _default_output(tag: str, progress: Progress) -> Output:
    """As `cog build` does: load into the engine when one answers; otherwise say where it went."""
    if engine_available():
        return Output("docker", None)
    name = tag.rpartition("/")[2].partition(":")[0].partition("@")[0]
    output = Output("oci-archive", Path(f"{name}.tar"))
    progress.warn(f"no Docker engine answers; writing oci-archive:{output.path} instead")
    return output


@app.command("build")
@build_command
def build_cmd(request: builder.BuildRequest, output: Output | None, progress: Progress) -> None:
    """Build a Cog model's image without a Docker daemon."""
    store = BlobStore()
    image, tag = builder.build(request, store, progress)
    message = write(image, output or _default_output(tag, progress), tag, progress)
    progress.step(message)
    print(f"{tag} {image.digest}")


@app.command("push")
@build_command
def push_cmd(request: builder.BuildRequest, output: Output | None, progress: Progress,
             image: Annotated[Optional[str], typer.Argument(help="registry/repository[:tag] to push to (default: `image` from cog.yaml).")] = None,
             layout: Annotated[Optional[str], typer.Option("--from", help="Push this OCI layout (oci:DIR or oci:DIR:NAME) instead of building.")] = None) -> None:
    """Build a Cog model's image and push it to a registry, sending only what the registry lacks."""
    if output is not None:
        raise OciasmError("--output is for build: push sends the image to IMAGE")
    print(publish(request, image, layout, BlobStore(), progress))


@app.command("plan")
@build_command
def plan_cmd(request: builder.BuildRequest, output: Output | None, progress: Progress,
             as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False) -> None:
    """Print what a build would do; writes nothing, fetches manifests only."""
    plan = builder.plan(request, BlobStore(), progress)
    if output is not None:
        plan["output"] = {"kind": output.kind, "path": str(output.path) if output.path else None}
    if as_json:
        print(json.dumps(plan, indent=2))
        return
    base = plan["base"]
    print(f"image  {plan['tag']}")
    print(f"base   {base['reference']}{'  (cog-base)' if base.get('cog_base') else ''}\n       {base['digest']}")
    if plan.get("cuda"):
        print(f"cuda   {plan['cuda']['cuda']} (cuDNN {plan['cuda']['cudnn']})")
    for index in plan.get("indexes", []):
        print(f"index  {index}")
    for layer in base["layers"]:
        print(f"  layer {layer['digest'][:19]} {layer['size']:>12,} B  {'cached' if layer['cached'] else 'to fetch'}")
    for layer in plan["layers"]:
        state = {True: "cached", False: "to build", None: "unknown until a build reads the layers below it"}[layer["cached"]]
        inputs = ", ".join(f"{k}={v}" for k, v in layer["inputs"].items())
        print(f"layer  {layer['name']:<13} {state}\n       {inputs}")


def main() -> None:
    app()
