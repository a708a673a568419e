#!/usr/bin/env python3
"""Refresh ociasm/gpu/data/{cuda,torch,tf}_compatibility.json and their provenance (sources.json).

Two ways, both writing the files only when every one of them was fetched and checked:

  --from-cog REF   copy Cog's own files at a git ref (default: main) of replicate/cog and record the
                   commit. This keeps ociasm choosing exactly what that Cog release chooses.
  --generate       rebuild them from the public sources Cog's generator (tools/compatgen) reads, the
                   way it reads them: NVIDIA's nvidia/cuda tags on Docker Hub and each image's
                   CUDA_VERSION / NV_CUDNN_VERSION; TensorFlow's tested GPU build table; PyTorch's
                   wheel indexes (newest release) and its previous-versions page (older releases),
                   keeping the Python versions for which torch, torchvision and torchaudio all have wheels.

Needs network access to those hosts (not available on the project's build machines).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import html.parser
import json
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "ociasm" / "gpu" / "data"
sys.path.insert(0, str(ROOT))

FILES = {"cuda": "cuda_compatibility.json", "torch": "torch_compatibility.json", "tf": "tf_compatibility.json"}
COG_REPO = "replicate/cog"
PYTORCH = "https://download.pytorch.org/whl"
MIN_CUDA_MAJOR, MIN_PYTHON_MINOR = 11, 10
TIMEOUT = 60


def get(url: str, **kwargs) -> requests.Response:
    resp = requests.get(url, timeout=TIMEOUT, **kwargs)
    resp.raise_for_status()
    return resp


def vkey(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text.split("+")[0])[:3])


# --------------------------------------------------------------------------- from Cog


def from_cog(ref: str) -> tuple[dict[str, list], dict[str, dict]]:
    commit = get(f"https://api.github.com/repos/{COG_REPO}/commits/{ref}",
                 headers={"Accept": "application/vnd.github+json"}).json()["sha"]
    data, sources = {}, {}
    for name in FILES.values():
        data[name] = get(f"https://raw.githubusercontent.com/{COG_REPO}/{commit}/pkg/config/{name}").json()
        sources[name] = {"from": f"https://github.com/{COG_REPO}/blob/{commit}/pkg/config/{name}", "commit": commit,
                         "note": f"Cog's data at {ref}, copied by scripts/refresh-compat-data.py --from-cog"}
    return data, sources


# --------------------------------------------------------------------------- HTML helpers


class _Elements(html.parser.HTMLParser):
    """A flat list of (tag, attrs, text) for the elements of interest, in document order."""

    def __init__(self, tags: set[str]) -> None:
        super().__init__()
        self.tags, self.items, self.open = tags, [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.tags:
            self.open.append(len(self.items))
            self.items.append([tag, dict(attrs), ""])

    def handle_endtag(self, tag):
        if tag in self.tags and self.open:
            self.open.pop()

    def handle_data(self, data):
        for i in self.open:
            self.items[i][2] += data


def elements(text: str, *tags: str) -> list[list]:
    parser = _Elements(set(tags))
    parser.feed(text)
    return parser.items


# --------------------------------------------------------------------------- CUDA images


def cuda_tags() -> list[str]:
    url, tags = "https://hub.docker.com/v2/repositories/nvidia/cuda/tags/?page_size=100&name=devel-ubuntu", []
    while url:
        page = get(url).json()
        tags += [r["name"] for r in page["results"] if "-cudnn" in r["name"] and not r["name"].endswith("-rc")]
        url = page.get("next")
    return sorted(set(tags), reverse=True)


def generate_cuda() -> list[dict]:
    from ociasm.progress import make_progress
    from ociasm.reference import Reference
    from ociasm.registry import RegistryClient
    from ociasm.store import BlobStore

    client = RegistryClient(progress=make_progress("quiet"))
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        store = BlobStore(Path(tmp))
        for tag in cuda_tags():
            ubuntu = tag.split("ubuntu", 1)[1] if tag.count("ubuntu") == 1 else None
            if ubuntu is None:
                raise SystemExit(f"nvidia/cuda:{tag}: tag does not end in ubuntu<version>")
            ref = Reference.parse(f"nvidia/cuda:{tag}")
            manifest = client.manifest(ref)
            client.fetch_blob(ref, manifest.config, store)
            env = dict(e.split("=", 1) for e in json.loads(store.read(manifest.config.digest))["config"]["Env"])
            if not env.get("NV_CUDNN_VERSION"):
                raise SystemExit(f"nvidia/cuda:{tag}: no NV_CUDNN_VERSION in its config")
            images.append({"Tag": tag, "CUDA": env["CUDA_VERSION"], "CuDNN": env["NV_CUDNN_VERSION"].split(".")[0],
                           "IsDevel": "-devel" in tag, "Ubuntu": ubuntu})
    return sorted(images, key=lambda i: (i["CUDA"], i["CuDNN"], i["Ubuntu"], i["Tag"]))


# --------------------------------------------------------------------------- TensorFlow


def python_range(cell: str) -> list[str]:
    """"3.9-3.11, 3.12" -> ["3.9", "3.10", "3.11", "3.12"]."""
    found = []
    for part in (p.strip() for p in cell.split(",") if p.strip()):
        start, _, end = part.partition("-")
        if end:
            (a, b), (c, d) = map(int, start.split(".")), map(int, end.split("."))
            if a != c:
                raise SystemExit(f"TensorFlow table: Python range {part!r} spans major versions")
            found += [f"{a}.{m}" for m in range(b, d + 1)]
        else:
            found.append(part)
    return found


def parse_tf_table(page: str) -> list[dict]:
    """Rows of the table after <h4 id="gpu">: package-version, python, compiler, build tools, cuDNN, CUDA."""
    items = elements(page, "h4", "table", "tr", "td")
    start = next(i for i, (tag, attrs, _) in enumerate(items) if tag == "h4" and attrs.get("id") == "gpu")
    table = next(i for i in range(start, len(items)) if items[i][0] == "table")
    rows, cells = [], []
    for tag, _, text in items[table + 1:]:
        if tag == "table" or tag == "h4":
            break
        if tag == "tr" and cells:
            rows.append(cells)
            cells = []
        elif tag == "td":
            cells.append(text.strip())
    if cells:
        rows.append(cells)
    compats = []
    for cells in rows:
        package, _, ver = cells[0].rpartition("-")
        cudnn, cuda = cells[4], cells[5]
        if vkey(cuda) < (MIN_CUDA_MAJOR,):
            continue
        compats.append({"TF": ver, "TFCPUPackage": f"tensorflow=={ver}", "TFGPUPackage": f"{package}=={ver}",
                        "CUDA": cuda, "CuDNN": cudnn, "Pythons": python_range(cells[1])})
    return compats


def generate_tf() -> list[dict]:
    compats = parse_tf_table(get("https://www.tensorflow.org/install/source").text)
    if len(compats) < 12:
        raise SystemExit(f"TensorFlow table had {len(compats)} rows: has the page changed?")
    return sorted(compats, key=lambda c: (c["TF"], c["CUDA"], c["CuDNN"]))


# --------------------------------------------------------------------------- PyTorch

_WHEEL = re.compile(r".+?-(?P<base>\d+(?:\.\d+)*)(?P<suffix>(?:[._]?(?:post|dev|rc)\d+)*)?(?:\+(?P<variant>[a-z0-9_.]+))?"
                    r"-(?P<py>[a-z0-9_.]+)-[a-z0-9_.]+-(?P<platform>.+?)\.whl")
_LINUX = ("linux_x86_64", "manylinux_2_28_x86_64", "manylinux1_x86_64")


def parse_wheels(page: str) -> list[dict]:
    """Linux x86_64 CPython wheels listed on an index page: name (version+variant), version, cuda, python."""
    found = []
    for _, _, text in elements(page, "a"):
        m = _WHEEL.fullmatch(unquote(text.strip()))
        if not m or m["platform"] not in _LINUX or ".cxx" in text:
            continue
        variant, py = m["variant"] or "", m["py"].removeprefix("cp")
        if variant not in ("", "cpu") and not variant.startswith("cu"):
            continue  # rocm and others
        if not py.isdigit() or not py.startswith("3") or int(py[1:]) < MIN_PYTHON_MINOR:
            continue
        cuda = f"{variant[2:-1]}.{variant[-1]}" if variant.startswith("cu") else None
        wheel = {"name": m["base"] + (m["suffix"] or "") + (f"+{variant}" if variant else ""), "version": m["base"],
                 "variant": variant, "cuda": cuda, "python": f"3.{py[1:]}"}
        if wheel not in found:
            found.append(wheel)
    return found


@functools.cache
def wheels_at(url: str) -> list[dict]:
    """The wheels an index page lists; each page is fetched once (many rows share an index)."""
    return parse_wheels(get(url).text)


def index_url(variant: str) -> str:
    return f"{PYTORCH}/{variant}/"


def newest(wheels: list[dict]) -> str:
    return max((w["version"] for w in wheels), key=vkey)


def current_rows() -> list[dict]:
    """The newest torch from the torch index, paired with the newest torchvision / torchaudio."""
    torch = wheels_at(index_url("torch"))
    vision, audio = newest(wheels_at(index_url("torchvision"))), newest(wheels_at(index_url("torchaudio")))
    latest, rows = newest(torch), {}
    for w in (w for w in torch if w["version"] == latest):
        row = rows.setdefault(w["name"], {"Torch": w["name"], "Torchvision": vision, "Torchaudio": audio, "FindLinks": "",
                                          "ExtraIndexURL": index_url(w["variant"]) if w["variant"] else "",
                                          "CUDA": w["cuda"], "Pythons": []})
        if w["python"] not in row["Pythons"]:
            row["Pythons"].append(w["python"])
    return list(rows.values())


def pythons_for(torch: str, vision: str, audio: str, index: str, find_links: str) -> list[str]:
    """Python versions with wheels of all three packages at these versions."""
    url = index or find_links or f"{PYTORCH}/"
    def versions(pkg: str, ver: str) -> set[str]:
        page = url.rstrip("/") + f"/{pkg}" if url != find_links else url
        return {w["python"] for w in wheels_at(page) if ver in (w["version"], w["name"])}
    found = versions("torch", torch)
    for pkg, ver in (("torchvision", vision), ("torchaudio", audio)):
        if ver:
            found &= versions(pkg, ver)
    return sorted(found)


def parse_previous_versions(code: str) -> list[dict]:
    """`# CUDA 11.8` / `# CPU only` sections of `pip install torch==X torchvision==Y ... --index-url URL` lines."""
    rows, cuda, skip = [], None, False
    for line in code.splitlines():
        if line.startswith("#"):
            heading = line[2:].strip().lower()
            if heading.startswith("cuda"):
                cuda, skip = heading.split(" ", 1)[1].strip(), False
            elif heading == "cpu only":
                cuda, skip = None, False
            elif heading.startswith("rocm"):
                cuda, skip = None, True
            continue
        if skip or not line.startswith("pip install "):
            continue
        tokens, libs, index, find_links = iter(line.split()[2:]), {}, "", ""
        for item in tokens:
            if item == "-f":
                find_links = next(tokens, "")
            elif item in ("--index-url", "--extra-index-url"):
                index = next(tokens, "")
            else:
                name, _, ver = item.partition("==")
                if name not in ("torch", "torchvision", "torchaudio"):
                    raise SystemExit(f"previous-versions page: unknown token {item!r} in {line!r}")
                libs[name] = ver
        if "torch" not in libs or "torchvision" not in libs:
            raise SystemExit(f"previous-versions page: no torch / torchvision version in {line!r}")
        index = index.rstrip("/") + "/" if index else ""
        torch = libs["torch"]
        variant = urlsplit(index).path.strip("/").rsplit("/", 1)[-1] if index else ""
        if index and "+" not in torch and (variant.startswith("cu") or variant == "cpu"):
            torch = f"{torch}+{variant}"
        vision = libs["torchvision"].replace("0.8.0", "0.8.1") if libs["torchvision"].startswith("0.8.0") else libs["torchvision"]
        rows.append({"Torch": torch, "Torchvision": vision, "Torchaudio": libs.get("torchaudio", ""),
                     "FindLinks": find_links, "ExtraIndexURL": index, "CUDA": cuda})
    return rows


def previous_rows() -> list[dict]:
    items = elements(get("https://pytorch.org/get-started/previous-versions/").text, "h5", "code")
    rows = []
    for i, (tag, _, text) in enumerate(items):
        if tag == "h5" and text.strip() == "Linux and Windows":
            code = next((t for tg, _, t in items[i + 1:] if tg == "code"), "")
            rows += parse_previous_versions(code)
    for row in rows:
        row["Pythons"] = pythons_for(row["Torch"], row["Torchvision"], row["Torchaudio"], row["ExtraIndexURL"],
                                     row["FindLinks"])
    return rows


def generate_torch() -> list[dict]:
    rows = [r for r in current_rows() + previous_rows() if r["Pythons"]]
    if len(rows) < 21:
        raise SystemExit(f"PyTorch matrix had only {len(rows)} rows: has the page changed?")
    return sorted(rows, key=lambda r: (r["Torch"], r["Torchvision"], r["Torchaudio"], r["CUDA"] or "",
                                       r["ExtraIndexURL"], r["FindLinks"]))


ORIGINS = {"cuda": "Docker Hub nvidia/cuda tags (name=devel-ubuntu, -cudnn) and their image configs",
           "tf": "https://www.tensorflow.org/install/source (GPU tested build configurations)",
           "torch": f"{PYTORCH}/{{torch,torchvision,torchaudio}}/ and https://pytorch.org/get-started/previous-versions/"}


def generate(only: list[str]) -> tuple[dict[str, list], dict[str, dict]]:
    generators = {"cuda": generate_cuda, "tf": generate_tf, "torch": generate_torch}
    today = datetime.date.today().isoformat()
    data, sources = {}, {}
    for kind in only:
        data[FILES[kind]] = generators[kind]()
        sources[FILES[kind]] = {"from": ORIGINS[kind], "generated": today,
                                "note": "regenerated by scripts/refresh-compat-data.py --generate, as Cog's tools/compatgen does"}
    return data, sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--from-cog", metavar="REF", help="copy Cog's files at this git ref (default mode, ref main)")
    mode.add_argument("--generate", action="store_true", help="rebuild from the upstream sources")
    parser.add_argument("--only", default="cuda,torch,tf", help="with --generate: which of cuda,torch,tf")
    parser.add_argument("--out", type=Path, default=DATA, help=f"data directory (default {DATA})")
    args = parser.parse_args(argv)
    only = [k.strip() for k in args.only.split(",") if k.strip()]
    if bad := [k for k in only if k not in FILES]:
        parser.error(f"--only: unknown {', '.join(bad)}")
    data, sources = generate(only) if args.generate else from_cog(args.from_cog or "main")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in data.items():
        (args.out / name).write_text(json.dumps(rows, indent=2) + "\n")
    provenance = args.out / "sources.json"
    merged = {**(json.loads(provenance.read_text()) if provenance.exists() else {}), **sources}
    provenance.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    print(f"wrote {', '.join(sorted(data))} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
