"""Which base image a build starts from, as Cog's StandardGenerator.BaseImage decides.

A cog-base image is tried first unless `--no-use-cog-base-image`: it must be a configuration
Cog publishes and the registry must have it. When the attempt was not asked for explicitly,
any failure is a warning and the build falls back to `nvidia/cuda:<tag>` (GPU, unless
`--use-cuda-base-image false`) or `python:<X.Y>-slim`; an explicit `--use-cog-base-image`
that finds nothing fails. The registry (r8.im, or $COG_REGISTRY_HOST) is often unreachable
(offline CI, air-gapped machines), so the default attempt must cost next to nothing there:
one TCP connect with a short timeout, then a single manifest request without retries.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import requests

from ociasm.errors import OciasmError, RegistryError
from ociasm.progress import Progress
from ociasm.reference import Reference
from ociasm.registry import PulledManifest, RegistryClient, is_loopback

from . import cogbase

CONNECT_TIMEOUT = 3.0  # seconds: a registry that does not accept a connection by then is treated as absent


@dataclass(frozen=True)
class BaseOptions:
    """The candidates for a build's base, decided from local inputs only (no network)."""

    cog_base: str | None     # the cog-base reference to try, if any
    cog_base_explicit: bool  # --use-cog-base-image was given: no fallback
    cog_base_problem: str    # why there is no candidate (Cog's "unsupported base image configuration")
    fallback: str            # python:<X.Y>-slim or nvidia/cuda:<tag> ("" with an explicit cog-base)
    cuda_base: bool          # the fallback is a CUDA image: Python must be added


@dataclass(frozen=True)
class ChosenBase:
    reference: Reference
    manifest: PulledManifest
    cog_base: bool           # a cog-base image (it brings Python, Cog's env and entrypoint)
    adds_python: bool        # a CUDA base: the interpreter layer goes on top


def _reachable(host: str) -> str | None:
    """None when a TCP connection to the registry (or its mirror) opens quickly; else why not.
    Skipped for loopback (a refusal there is instant) and behind a proxy (only it can tell)."""
    if is_loopback(host) or requests.utils.get_environ_proxies(f"https://{host}"):
        return None
    where = urlsplit(f"//{host}")
    name, port = where.hostname or host, where.port or 443
    try:
        socket.create_connection((name, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        return f"cannot reach registry {host}: {e.strerror or 'timed out'}"
    return None


def _probe(reference: str, mirrors: dict[str, str], insecure: frozenset[str], ca_cert: Path | None,
           progress: Progress) -> PulledManifest:
    ref = Reference.parse(reference)
    client = RegistryClient(mirrors=mirrors, insecure=insecure, ca_cert=ca_cert, progress=progress, tries=1)
    if problem := _reachable(client.host(ref)):
        raise RegistryError(problem)
    return client.manifest(ref)


def choose(options: BaseOptions, client: RegistryClient, *, mirrors: dict[str, str],
           insecure: frozenset[str], ca_cert: Path | None = None, progress: Progress) -> ChosenBase:
    """Try the cog-base image, else resolve the fallback; manifests only, no layer bytes."""
    if options.cog_base:
        try:
            manifest = _probe(options.cog_base, mirrors, insecure, ca_cert, progress)
            return ChosenBase(manifest.reference, manifest, True, False)
        except RegistryError as e:
            if options.cog_base_explicit:
                raise OciasmError(f"--use-cog-base-image: cog-base image {options.cog_base} is not "
                                  f"available ({e}); build without the flag to fall back") from None
            problem = str(e)
    elif options.cog_base_explicit:
        raise OciasmError(f"--use-cog-base-image: {options.cog_base_problem}; build without the flag "
                          "to use a plain base image")
    else:
        problem = options.cog_base_problem
    if problem:
        progress.warn(f"Could not find a suitable base image, continuing without base image support ({problem})")
    ref = Reference.parse(options.fallback)
    return ChosenBase(ref, client.manifest(ref), False, options.cuda_base)


def cog_base_labels(reference: str, base_config: dict) -> dict[str, str]:
    """The labels Cog adds when a cog-base image is the base: its name and its last layer."""
    diff_ids = base_config.get("rootfs", {}).get("diff_ids") or []
    if not diff_ids:
        raise OciasmError(f"Cog base image has no layers: {reference}")
    return {"run.cog.cog-base-image-name": reference,
            "run.cog.cog-base-image-last-layer-sha": diff_ids[-1],
            "run.cog.cog-base-image-last-layer-idx": str(len(diff_ids) - 1)}


def base_options(*, gpu: bool, cuda: str, python: str, torch: str | None, cuda_tag: Callable[[], str],
                 use_cog_base_image: bool | None, use_cuda_base_image: str | None) -> BaseOptions:
    """`cuda_tag` is called only when a CUDA fallback is possible: it raises when no image fits."""
    cuda_base = gpu and use_cuda_base_image != "false"
    fallback = "" if use_cog_base_image is True else cuda_tag() if cuda_base else f"python:{python}-slim"
    if use_cog_base_image is False:
        return BaseOptions(None, False, "", fallback, cuda_base)
    chosen = cogbase.cog_base_for(cuda, python, torch or "")
    problem = "" if chosen else cogbase.describe(cuda, python, cogbase.normalise_torch(cuda, python, torch or ""))
    return BaseOptions(chosen.reference() if chosen else None, use_cog_base_image is True, problem,
                       fallback, cuda_base)
