"""Output sinks: each writes a view of the same `Image` somewhere.

  docker                  load into the Docker engine (streamed, no temp copy)
  oci:DIR                 an OCI image layout directory, the manifest named by the tag part
  oci-archive:FILE        a tar that is both an OCI layout and a docker-archive
  docker-archive:FILE     a tar for `docker load`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import OciasmError
from ..image import Image
from ..progress import Progress
from ..reference import Reference
from .archive import write_archive
from .daemon import load
from .layout import ref_name, write_layout

KINDS = ("docker", "oci", "oci-archive", "docker-archive")
_USAGE = "docker, oci:DIR, oci-archive:FILE or docker-archive:FILE"

@dataclass(frozen=True)
class Output:
    kind: str
    path: Path | None


def parse_output(spec: str) -> Output:
    kind, sep, rest = spec.partition(":")
    if kind == "docker" and not sep:
        return Output("docker", None)
    if kind in KINDS[1:]:
        if not rest:
            raise OciasmError(f"--output {spec!r} names no path: use {kind}:PATH")
        return Output(kind, Path(rest))
    raise OciasmError(f"unknown --output {spec!r}: use {_USAGE}")


def repo_tag(tag: str) -> str:
    """`hello` -> `hello:latest`; `localhost:5000/x/y:1` stays. Digests are not tags."""
    if "@" in tag:
        raise OciasmError(f"invalid image tag {tag!r}: a tag cannot carry a digest")
    Reference.parse(tag)
    return tag if ":" in tag.rpartition("/")[2] else f"{tag}:latest"


def write(image: Image, output: Output, tag: str, progress: Progress) -> str:
    """Write `image` to `output` under `tag`; return one line saying what was written."""
    name = repo_tag(tag)
    image_id = image.config_descriptor().digest
    if output.kind == "docker":
        result = load(image, [name], progress)
        return f"loaded {name} into the Docker engine (image {image_id[:19]}; {result})"
    assert output.path is not None
    if output.kind == "oci":
        write_layout(image, output.path, ref_name(name), progress)
        return f"wrote {name} to OCI layout {output.path} as {ref_name(name)!r} ({image.digest[:19]})"
    write_archive(image, output.path, [name], oci_layout=output.kind == "oci-archive",
                  progress=progress)
    return f"wrote {name} to {output.kind} {output.path} ({output.path.stat().st_size / 1e6:.1f} MB)"
