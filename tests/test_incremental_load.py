"""`--separate-weights` and incremental loads through the real engine: a model that reads its
weights in setup(), rebuilds that neither re-read nor re-send unchanged weights, and weights
that change under a build failing it with nothing loaded."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from fixtures import engine
from ociasm import build as builder
from ociasm.digestcache import FileChanged
from ociasm.image import Image
from ociasm.layers import weights
from ociasm.progress import Progress, QuietProgress
from ociasm.reference import parse_mirrors
from ociasm.sinks.daemon import LoadResult, chain_ids, load, present_layers
from ociasm.store import BlobStore
from test_sinks import add_layer, make_image
from test_weights import ChangeOnFirstChunk

QUIET = QuietProgress()
SIZE = weights.THRESHOLD + 1024  # just over Cog's threshold: small, and still weights

PREDICT = '''import hashlib
from cog import BasePredictor

VERSION = "{version}"


class Predictor(BasePredictor):
    def setup(self) -> None:
        self.digests = {{}}
        for path in ("weights/model.bin", "adapter.bin"):
            with open(path, "rb") as f:
                self.digests[path] = hashlib.sha256(f.read()).hexdigest()

    def predict(self, path: str = "weights/model.bin") -> str:
        return VERSION + " " + self.digests[path]
'''


def write_predict(project: Path, version: str) -> None:
    (project / "predict.py").write_text(PREDICT.format(version=version))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "cog.yaml").write_text('build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n')
    write_predict(root, "v1")
    (root / "weights" / "model.bin").write_bytes(os.urandom(SIZE))
    (root / "weights" / "config.json").write_text('{"layers": 2}\n')
    (root / "adapter.bin").write_bytes(os.urandom(SIZE))
    return root


@pytest.fixture
def tag(docker_engine: str):
    name = f"ociasm-test-weights:{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run([docker_engine, "rmi", "-f", name], capture_output=True)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Names of the weights files read (hashed or regenerated), in order."""
    seen: list[str] = []
    real = weights._file_data

    def spy(stat, buf, advance):
        seen.append(Path(stat.path).name)
        return real(stat, buf, advance)

    monkeypatch.setattr(weights, "_file_data", spy)
    return seen


def build_image(project: Path, tag: str, registry, progress=QUIET) -> Image:
    request = builder.BuildRequest(project_dir=project, tag=tag, separate_weights=True,
                                   mirrors=parse_mirrors([f"docker.io={registry.host}"], None))
    return builder.build(request, BlobStore(), progress)[0]


def build_and_load(project: Path, tag: str, registry) -> tuple[Image, LoadResult]:
    image = build_image(project, tag, registry)
    return image, load(image, [tag], QUIET)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def served(tag: str) -> dict[str, str]:
    with engine.serve(tag) as model:
        answers = {path: model.predict({"path": path}).json()["output"]
                   for path in ("weights/model.bin", "adapter.bin")}
    return answers


def expected(project: Path, version: str) -> dict[str, str]:
    return {p: f"{version} {sha256(project / p)}" for p in ("weights/model.bin", "adapter.bin")}


def image_id(tag: str) -> str | None:
    out = subprocess.run([engine.DOCKER, "image", "inspect", "--format", "{{.Id}}", tag],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.mark.real
def test_weights_are_served_and_never_resent_unless_changed(project, tag, fixture_registry, reads):
    image, first = build_and_load(project, tag, fixture_registry)
    *_, model_layer, adapter_layer, code_layer = image.layers
    assert [l.group.rel for l in (model_layer, adapter_layer)] == ["weights", "adapter.bin"]
    assert model_layer.descriptor.media_type == "application/vnd.oci.image.layer.v1.tar"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(code_layer.open().read()))) as tar:
        assert "src/predict.py" in tar.getnames()
        assert not [n for n in tar.getnames() if n.startswith(("src/weights", "src/adapter"))]
    history = [h["created_by"] for h in image.config["history"][-3:]]
    assert history[:2] == ["COPY --from=weights --link /src/weights /src/weights",
                           "COPY --from=weights --link /src/adapter.bin /src/adapter.bin"]
    assert sorted(reads) == sorted(["adapter.bin", "config.json", "model.bin"] * 2)  # hashed, then sent
    assert served(tag) == expected(project, "v1")

    # Code only: nothing of the weights is read, and the archive holds the code layer alone.
    reads.clear()
    write_predict(project, "v2")
    image, reload = build_and_load(project, tag, fixture_registry)
    assert reads == []
    assert reload.sent_layers == (image.layers[-1].descriptor.digest,)
    assert reload.sent_bytes < 100_000 < 2 * SIZE
    assert served(tag) == expected(project, "v2")

    # One weights file: only it is read (hashed, then sent), and only its layer and the code above go.
    (project / "adapter.bin").write_bytes(os.urandom(SIZE))
    image, reload = build_and_load(project, tag, fixture_registry)
    assert reads == ["adapter.bin", "adapter.bin"]
    assert reload.sent_layers == tuple(l.descriptor.digest for l in image.layers[-2:])
    assert SIZE < reload.sent_bytes < SIZE + 100_000
    assert served(tag) == expected(project, "v2")


@pytest.mark.real
def test_weights_changing_under_the_build_fail_it_and_nothing_is_loaded(project, tag, fixture_registry):
    build_and_load(project, tag, fixture_registry)
    loaded = image_id(tag)
    adapter = project / "adapter.bin"

    # While it is hashed.
    adapter.write_bytes(os.urandom(SIZE))
    with pytest.raises(FileChanged, match=r"adapter.bin changed while it was being read; build again"):
        build_image(project, tag, fixture_registry, ChangeOnFirstChunk(adapter))

    # After it was hashed and before it is sent, its size and mtime put back.
    adapter.write_bytes(os.urandom(SIZE))
    image = build_image(project, tag, fixture_registry)
    st = adapter.stat()
    with open(adapter, "r+b") as f:
        f.write(b"changed")
    os.utime(adapter, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(FileChanged, match=r"adapter.bin changed after the build planned it") as error:
        load(image, [tag], QUIET)
    assert "\n" not in str(error.value)
    assert image_id(tag) == loaded  # the tag still names the image loaded before


def test_only_layers_whose_chain_the_engine_has_are_left_out(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    a, b, c, x = (add_layer(store, {f"{n}.txt": n.encode()}) for n in "abcx")
    image = make_image([a, b, c])
    assert present_layers(image, [a.diff_id, b.diff_id]) == {a.descriptor.digest, b.descriptor.digest}
    # c sits on x in the engine, on b here: a different chain, so the engine needs its file.
    assert present_layers(image, [a.diff_id, x.diff_id, c.diff_id]) == {a.descriptor.digest}
    assert present_layers(make_image([a, b, a]), [a.diff_id, b.diff_id]) == {b.descriptor.digest}
    assert chain_ids([a.diff_id])[0] == a.diff_id


@pytest.mark.real
def test_a_layer_the_engine_turns_out_to_lack_is_sent_on_a_retry(tmp_path, tag, monkeypatch):
    store = BlobStore(tmp_path)
    image = make_image([add_layer(store, {"id.txt": uuid.uuid4().bytes}), add_layer(store, {"b": b"b"})])
    # The engine is said to hold every layer of this image; it holds none.
    monkeypatch.setattr("ociasm.sinks.daemon.engine_diff_ids", lambda *_: image.diff_ids())
    warnings = io.StringIO()
    result = load(image, [tag], Progress(warnings))
    assert result.skipped_layers == 0 and len(result.sent_layers) == 2
    assert "lacks a layer it had" in warnings.getvalue()
    info = json.loads(subprocess.run([engine.DOCKER, "image", "inspect", tag], check=True,
                                     capture_output=True).stdout)[0]
    assert info["RootFS"]["Layers"] == image.diff_ids()


@pytest.mark.real
def test_an_image_the_engine_already_has_is_not_sent_again(tmp_path, tag):
    store = BlobStore(tmp_path)
    image = make_image([add_layer(store, {"id.txt": uuid.uuid4().bytes})])
    first = load(image, [tag], QUIET)
    assert first.sent_bytes > 0 and image_id(tag) == image.config_descriptor().digest
    again = load(image, [tag], QUIET)
    assert again.sent_bytes == 0 and again.sent_layers == () and again.skipped_layers == 1
    assert image_id(tag) == image.config_descriptor().digest
