"""ociasm against a Cog-shaped BuildKit build of the same project, side by side (run by hand).

    python bench/bench_weights.py [--sizes 0.5,2,8] [--no-weights] [--registry HOST:PORT]
                                  [--workdir DIR] [--repeat N] [--scenarios cold,noop,code,file,shard]

For each weights size (GiB), a copy of fixtures/models/hello with `weights/` (4 shards and a
config) plus a 64 MiB root `adapter.bin` is built with `ociasm build --separate-weights` and with
bench/cogshaped.py (Cog's Dockerfiles, its weights image and CRC32 check; /usr/bin/docker with
DOCKER_BUILDKIT=1), both loaded into the same engine: cold, no-op, code-only change, one
weights file changed (adapter.bin, a layer of its own), one shard of weights/ changed. Short
scenarios run --repeat times (median). Printed: wall times, BuildKit/ociasm, ociasm's peak RSS and
bytes sent to the engine, BuildKit's steps, and weights ingest next to hashlib.sha256.
`--no-weights` builds the plain hello model instead (the no-op/code-only comparison of issue 2).

Cold means: ociasm with the base already in its store and uv's wheel cache warm (its layer records
and the engine's image removed); BuildKit with the base in the engine, the wheels downloaded on the
host, its build cache pruned (`docker builder prune -af`: the engine's whole BuildKit cache).
Needs the engine, docker-registry and skopeo (scripts/setup-env.sh), GNU time, and disk for about
5x the largest size (BuildKit keeps several copies of the weights; `--no-buildkit` needs 3x).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cogshaped import ADAPTATIONS, DOCKER, CogShaped  # noqa: E402
from fixtures import base  # noqa: E402
from fixtures.registry import start_registry  # noqa: E402
from ociasm.dockerignore import IgnoreMatcher  # noqa: E402
from ociasm.layers import code, weights  # noqa: E402
from ociasm.progress import QuietProgress  # noqa: E402
from ociasm.store import BlobStore  # noqa: E402

TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
MODEL = Path(__file__).resolve().parent.parent / "fixtures" / "models" / "hello"
GIB, MIB = 1 << 30, 1 << 20
ADAPTER = 64 * MIB
SHARDS = 4
BLOCK = 16 * MIB


def write_random(path: Path, size: int) -> None:
    """Incompressible, unique bytes, written fast: a random block salted per file and offset."""
    block = bytearray(random.randbytes(BLOCK))
    salt = random.randbytes(8)
    with open(path, "wb") as f:
        for offset in range(0, size, BLOCK):
            block[:16] = salt + offset.to_bytes(8, "little")
            f.write(memoryview(block)[:min(BLOCK, size - offset)])


def make_project(root: Path, size: int | None) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(MODEL, root)
    if size:
        (root / "weights").mkdir()
        for i in range(SHARDS):
            write_random(root / "weights" / f"shard-{i}.bin", (size - ADAPTER) // SHARDS)
        (root / "weights" / "config.json").write_text('{"shards": 4}\n')
        write_random(root / "adapter.bin", ADAPTER)
    return root


@dataclass
class Run:
    seconds: float
    rss_mib: float
    sent: str


class Ociasm:
    def __init__(self, project: Path, tag: str, cache: Path, registry: str, separate: bool) -> None:
        self.project, self.tag, self.cache, self.registry, self.separate = project, tag, cache, registry, separate

    def image_id(self) -> str:
        return subprocess.run([DOCKER, "image", "inspect", "--format", "{{.Id}}", self.tag],
                              capture_output=True, text=True).stdout.strip()

    def build(self) -> Run:
        replaced = self.image_id()
        # On python:3.11-slim, as the BuildKit peer: no cog-base lookup (r8.im is out of reach here).
        args = [sys.executable, "-m", "ociasm", "build", "-t", self.tag, "--progress", "plain",
                "--no-use-cog-base-image", "--registry-mirror", f"docker.io={self.registry}"]
        # GNU time reports the peak RSS: a child forked from this (large) process would count its pages.
        with tempfile.NamedTemporaryFile() as rss, tempfile.TemporaryFile() as out:
            start = time.perf_counter()
            proc = subprocess.run([TIME, "-f", "%M", "-o", rss.name, *args,
                                   *(["--separate-weights"] if self.separate else [])],
                                  cwd=self.project, stdout=out, stderr=out,
                                  env={**os.environ, "OCIASM_CACHE_DIR": str(self.cache)})
            seconds = time.perf_counter() - start
            out.seek(0)
            text = out.read().decode(errors="replace")
            if proc.returncode:
                raise RuntimeError(f"ociasm build failed:\n{text[-3000:]}")
            rss_kib = int(Path(rss.name).read_text().split()[-1])
        if replaced and replaced != self.image_id():  # an untagged old image would hold its weights on disk
            subprocess.run([DOCKER, "rmi", replaced], capture_output=True)
        sent = re.search(r"sent ([\d.]+ MB)", text)
        return Run(seconds, rss_kib / 1024, sent.group(1) if sent else "?")

    def clean(self) -> None:
        """Forget the layer records (base blobs and facts stay) and the engine's image."""
        for kind in ("deps", "code", "weights"):
            shutil.rmtree(self.cache / "meta" / kind, ignore_errors=True)
        subprocess.run([DOCKER, "rmi", "-f", self.tag], capture_output=True)


def scenarios(project: Path, with_weights: bool) -> list[tuple[str, str, Callable[[], None] | None, bool]]:
    """(key, name, change to make before each run, repeatable)."""
    counter = iter(range(1_000_000))

    def code_change() -> None:
        with open(project / "predict.py", "a") as f:
            f.write(f"# change {next(counter)}\n")

    out = [("cold", "cold", None, False), ("noop", "no-op", None, True),
           ("code", "code-only change", code_change, True)]
    if with_weights:
        out += [("file", "one weights file (own layer)",
                 lambda: write_random(project / "adapter.bin", ADAPTER), False),
                ("shard", "one shard of weights/", lambda: write_random(
                    project / "weights" / "shard-0.bin", (project / "weights" / "shard-0.bin").stat().st_size),
                 False)]
    return out


def measure(project: Path, ociasm: Ociasm, cog: CogShaped | None, with_weights: bool, repeat: int,
            chosen: set[str]) -> list[dict]:
    rows = []
    for key, name, change, repeatable in scenarios(project, with_weights):
        if key not in chosen:
            continue
        runs: list[tuple[dict, Run]] = []
        for _ in range(repeat if repeatable else 1):
            if change:
                change()
            if name == "cold":
                ociasm.clean()
                if cog:
                    cog.clean()
            steps = cog.build() if cog else {"total": math.nan}
            runs.append((steps, ociasm.build()))
            print(f"  {name}: buildkit {steps['total']:.2f} s, ociasm {runs[-1][1].seconds:.2f} s", flush=True)
        buildkit = statistics.median(s["total"] for s, _ in runs)
        ours = statistics.median(r.seconds for _, r in runs)
        steps, run = runs[-1]
        rows.append({"scenario": name, "buildkit": buildkit, "ociasm": ours, "rss": max(r.rss_mib for _, r in runs),
                     "sent": run.sent, "steps": ", ".join(f"{k} {v:.2f}" for k, v in steps.items() if k != "total")})
    return rows


def best(fn: Callable[[], float], times: int = 3) -> float:
    return max(fn() for _ in range(times))


def throughput(project: Path) -> dict[str, float]:
    """MB/s: ociasm's weights ingest of the largest group, and hashlib.sha256 on this machine."""
    group = max(weights.groups(code.scan(project, IgnoreMatcher.for_project(project))[0]), key=lambda g: g.size)
    largest = max(group.files, key=lambda f: f.size).path

    def ingest() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            weights.build(BlobStore(Path(tmp)), group, QuietProgress())
            return group.size / (time.perf_counter() - start) / 1e6

    buf = memoryview(os.urandom(256 * MIB))

    def in_memory() -> float:
        h, start = hashlib.sha256(), time.perf_counter()
        for i in range(0, len(buf), MIB):
            h.update(buf[i:i + MIB])
        return len(buf) / (time.perf_counter() - start) / 1e6

    def read_and_hash() -> float:
        h, chunk, start, total = hashlib.sha256(), bytearray(MIB), time.perf_counter(), 0
        with open(largest, "rb", buffering=0) as f:
            while n := f.readinto(chunk):
                h.update(memoryview(chunk)[:n])
                total += n
        return total / (time.perf_counter() - start) / 1e6

    return {"ingest": best(ingest), "sha256": best(in_memory), "read+sha256": best(read_and_hash)}


def table(title: str, rows: list[dict]) -> str:
    lines = [f"### {title}", "",
             "| scenario | BuildKit (Cog-shaped) s | ociasm s | BuildKit / ociasm | ociasm peak RSS MiB "
             "| ociasm sent to engine | BuildKit steps (s) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {r['scenario']} | {r['buildkit']:.2f} | {r['ociasm']:.2f} | {r['buildkit'] / r['ociasm']:.1f}x "
              f"| {r['rss']:.0f} | {r['sent']} | {r['steps']} |" for r in rows]
    return "\n".join(lines).replace("| nan ", "| - ").replace("| nanx ", "| - ")


def ensure_base_in_engine() -> None:
    if subprocess.run([DOCKER, "image", "inspect", "python:3.11-slim"], capture_output=True).returncode:
        base.load_into_engine("python:3.11-slim")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.5,2,8", help="weights sizes in GiB, comma-separated")
    parser.add_argument("--no-weights", action="store_true", help="the plain hello model, no weights")
    parser.add_argument("--registry", help="HOST:PORT of a registry holding the base (default: start one)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/ociasm-bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs of no-op and code-only (median)")
    parser.add_argument("--no-buildkit", action="store_true", help="ociasm only (BuildKit needs ~4x the disk)")
    parser.add_argument("--scenarios", default="cold,noop,code,file,shard",
                        help="which to run (cold comes first; `shard` rewrites a quarter of the weights)")
    args = parser.parse_args()

    ensure_base_in_engine()
    registry = None
    if not args.registry:
        registry = start_registry(args.workdir / "registry")
        base.push(registry.host)
    host = args.registry or registry.host
    sizes = [None] if args.no_weights else [float(s) for s in args.sizes.split(",")]
    reports = []
    try:
        for size in sizes:
            label = "no weights (hello)" if size is None else f"weights {size:g} GiB"
            print(f"== {label}", flush=True)
            project = make_project(args.workdir / "project", None if size is None else int(size * GIB))
            name = "bench-w" if size is None else f"bench-w{size:g}".replace(".", "-")
            ociasm = Ociasm(project, f"{name}-ociasm", args.workdir / "cache", host, size is not None)
            ociasm.build()  # untimed warm-up: base in the store, uv's cache, the cog version
            cog_version = subprocess.run(
                [DOCKER, "image", "inspect", "--format", '{{index .Config.Labels "run.cog.version"}}',
                 ociasm.tag], check=True, capture_output=True, text=True).stdout.strip()
            cog = None if args.no_buildkit else \
                CogShaped(project, f"{name}-buildkit", args.workdir / "cogstate", size is not None)
            if cog:
                cog.prepare(cog_version)
            rows = measure(project, ociasm, cog, size is not None, args.repeat, set(args.scenarios.split(",")))
            report = table(label, rows)
            if size is not None:
                rate = throughput(project)
                report += (f"\n\nweights ingest {rate['ingest']:.0f} MB/s = {rate['ingest'] / rate['sha256']:.0%} of "
                           f"hashlib.sha256 ({rate['sha256']:.0f} MB/s in memory; read+sha256 of one file "
                           f"{rate['read+sha256']:.0f} MB/s)")
            reports.append(report)
            print(report, flush=True)
            if cog:
                cog.clean()
                subprocess.run([DOCKER, "rmi", "-f", cog.helper], capture_output=True)
            ociasm.clean()
            shutil.rmtree(project)
    finally:
        if registry:
            registry.stop()
    print(f"\n{ADAPTATIONS}.\n")
    print("\n\n".join(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
