"""Push a one-layer image with a large layer to a loopback registry; print time and peak memory
(run by hand; needs docker-registry, and skopeo for the comparison).

    python bench/bench_push.py [GiB]      (default 4)

The layer is a sparse file of zeros (fixtures/bigpush.py). ociasm pushes it (chunked PATCH
uploads), then skopeo copies the same layout to another repository of a fresh registry. Peak RSS
is each process's VmHWM (polled). The goal: ociasm's peak RSS < 256 MiB, whatever the size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixtures.bigpush import sparse_layout  # noqa: E402
from fixtures.registry import start_registry  # noqa: E402


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one process run to completion. The peak is its VmHWM, polled
    (ru_maxrss would report the forking parent's RSS from before exec)."""
    start = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status, peak_kib = Path(f"/proc/{proc.pid}/status"), 0
    while proc.poll() is None:
        try:
            line = next(l for l in status.read_text().splitlines() if l.startswith("VmHWM:"))
            peak_kib = max(peak_kib, int(line.split()[1]))
        except (OSError, StopIteration):  # exiting
            pass
        time.sleep(0.02)
    if proc.returncode:
        sys.exit(f"{command[0]} failed: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return time.monotonic() - start, peak_kib / 1024


def main() -> None:
    gib = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    size = int(gib * (1 << 30))
    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    try:
        layout = work / "layout"
        sparse_layout(layout, size)
        env = {**os.environ, "OCIASM_CACHE_DIR": str(work / "cache")}
        rows = []
        for tool in ("ociasm", "skopeo"):
            with start_registry(work / f"registry-{tool}") as registry:
                ref = f"{registry.host}/bench/big:1"
                command = ([sys.executable, "-m", "ociasm", "push", "--from", f"oci:{layout}", ref, "--progress", "plain"]
                           if tool == "ociasm" else
                           ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{ref}"])
                if tool == "skopeo" and not shutil.which("skopeo"):
                    continue
                seconds, rss = measured(command, env)
                rows.append((tool, seconds, rss))
            shutil.rmtree(work / f"registry-{tool}")
        print(f"layer {size / (1 << 30):.1f} GiB")
        for tool, seconds, rss in rows:
            print(f"{tool:7} {seconds:7.1f} s  {size / seconds / 1e6:7.0f} MB/s  peak RSS {rss:6.0f} MiB")
        if len(rows) == 2:
            print(f"ociasm/skopeo: time x{rows[0][1] / rows[1][1]:.2f}, peak RSS x{rows[0][2] / rows[1][2]:.2f}")
        print("goal: ociasm peak RSS < 256 MiB:", "met" if rows[0][2] < 256 else "NOT met")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
