"""cog.yaml parsing and validation: Cog's rules and messages, with the offending line."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from ociasm.config import (BuildConfig, RunStep, SecretMount, config_label, load_config,
                           reject_unsupported)
from ociasm.errors import OciasmError
from ociasm.requirements import requirement_lines

PROJECT_FILES = {"predict.py": "class Predictor: ...\n", "train.py": "def train(): ...\n",
                 "requirements.txt": "requests==2.32.3\n"}


def project(tmp_path: Path, cog_yaml: str, files: dict[str, str] | None = None) -> Path:
    for name, text in {**PROJECT_FILES, **(files or {})}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "cog.yaml").write_text(cog_yaml)
    return tmp_path


def load(tmp_path: Path, cog_yaml: str, files: dict[str, str] | None = None):
    warnings: list[str] = []
    config = load_config(project(tmp_path, cog_yaml, files), warn=warnings.append)
    return config, warnings


# (id, cog.yaml, the one-line error)
INVALID = [
    ("python-too-old", 'build:\n  gpu: false\n  python_version: "3.9"\n',
     'cog.yaml:3: invalid build.python_version "3.9": minimum supported Python version is 3.10'),
    ("python-float-3.1", "build:\n  python_version: 3.1\n",
     'cog.yaml:2: invalid build.python_version "3.1": minimum supported Python version is 3.10'),
    ("python-major-only", "build:\n  python_version: 3\n",
     "cog.yaml:2: invalid build.python_version \"3\": must include major and minor version (e.g., '3.11')"),
    ("python-bad-minor", "build:\n  python_version: 3.x\n",
     'cog.yaml:2: invalid build.python_version "3.x": invalid minor version number'),
    ("python-bad-major", "build:\n  python_version: py3.11\n",
     'cog.yaml:2: invalid build.python_version "py3.11": invalid major version number'),
    ("python-missing", "build:\n  gpu: false\npredict: predict.py:Predictor\n",
     "cog.yaml:1: invalid build.python_version: python_version is required. Add it to the build "
     'section of your cog.yaml, e.g. `python_version: "3.13"`'),
    ("python-null", "build:\n  python_version:\n",
     "cog.yaml:2: invalid build.python_version: python_version is required. Add it to the build "
     'section of your cog.yaml, e.g. `python_version: "3.13"`'),
    ("packages-and-requirements",
     'build:\n  python_version: "3.11"\n  python_requirements: requirements.txt\n  python_packages:\n    - numpy\n',
     "cog.yaml:4: invalid build: only one of python_packages or python_requirements can be set, not both"),
    ("requirements-missing", 'build:\n  python_version: "3.11"\n  python_requirements: reqs/missing.txt\n',
     'cog.yaml:3: invalid build.python_requirements "reqs/missing.txt": file does not exist'),
    ("predict-dot-form", 'build:\n  python_version: "3.11"\npredict: predict.Predictor\n',
     "cog.yaml:3: invalid predict \"predict.Predictor\": must be in the form 'predict.py:Predictor'"),
    ("run-form", 'build:\n  python_version: "3.11"\nrun: run:Runner\n',
     "cog.yaml:3: invalid run \"run:Runner\": must be in the form 'run.py:Runner'"),
    ("train-form", 'build:\n  python_version: "3.11"\ntrain: train\n',
     "cog.yaml:3: invalid train \"train\": must be in the form 'train.py:Trainer'"),
    ("predict-file-missing", 'build:\n  python_version: "3.11"\npredict: src/model.py:Predictor\n',
     'cog.yaml:3: invalid predict "src/model.py:Predictor": src/model.py does not exist in {project}'),
    ("predict-outside", 'build:\n  python_version: "3.11"\npredict: ../predict.py:Predictor\n',
     'cog.yaml:3: invalid predict "../predict.py:Predictor": ../predict.py must be inside the project directory'),
    ("run-and-predict", 'build:\n  python_version: "3.11"\nrun: predict.py:Predictor\npredict: predict.py:Predictor\n',
     "cog.yaml:3: invalid run: only one of run or predict can be set"),
    ("cuda-too-old", 'build:\n  python_version: "3.11"\n  cuda: "10.2"\n',
     'cog.yaml:3: invalid build.cuda "10.2": minimum supported CUDA version is 11'),
    ("cuda-no-minor", 'build:\n  python_version: "3.11"\n  cuda: "12"\n',
     "cog.yaml:3: invalid build.cuda \"12\": must include both major and minor versions (e.g., '11.8')"),
    ("cudnn-mismatch", 'build:\n  gpu: true\n  python_version: "3.11"\n  cuda: "11.8"\n  cudnn: "9"\n',
     "cog.yaml:5: CUDA 11.8 is incompatible with CuDNN 9: compatible CuDNN versions are: 8"),
    ("cuda-unknown", 'build:\n  gpu: true\n  python_version: "3.11"\n  cuda: "12.7"\n',
     'cog.yaml:4: invalid build.cuda "12.7": CUDA 12.7 is not supported by Cog'),
    ("env-format", 'environment:\n  - FOO=1\n  - BAR\n',
     'cog.yaml:3: invalid environment: environment variable "BAR" is not in the KEY=VALUE format'),
    ("env-bad-name", 'environment:\n  - 1FOO=x\n',
     'cog.yaml:2: invalid environment: environment variable "1FOO=x" is not in the KEY=VALUE format'),
    ("env-reserved-exact", 'environment:\n  - PATH=/opt/bin\n',
     'cog.yaml:2: invalid environment: environment variable "PATH" is not allowed: reserved for internal use'),
    ("env-reserved-prefix", 'environment:\n  - OK=1\n  - CUDA_HOME=/x\n',
     'cog.yaml:3: invalid environment: environment variable "CUDA_HOME" is not allowed: reserved for internal use'),
    ("env-duplicate", 'environment:\n  - FOO=1\n  - FOO=2\n',
     'cog.yaml:3: invalid environment: environment variable "FOO" is already defined'),
    ("concurrency-zero", 'build:\n  python_version: "3.11"\nconcurrency:\n  max: 0\n',
     'cog.yaml:4: invalid concurrency.max "0": must be at least 1'),
    ("concurrency-py310", 'build:\n  python_version: "3.10"\nconcurrency:\n  max: 4\n',
     'cog.yaml:4: invalid concurrency.max "4": concurrency requires Python 3.11 or higher'),
    ("concurrency-no-max", 'concurrency:\n  default_target: 2\n',
     "cog.yaml:1: invalid concurrency: max is required"),
    ("concurrency-string", 'concurrency:\n  max: "2"\n',
     'cog.yaml:2: invalid concurrency.max: must be an integer, not "2"'),
    ("run-newline", 'build:\n  python_version: "3.11"\n  run:\n    - echo hi\n    - "apt-get update\\napt-get install x"\n',
     "cog.yaml:5: invalid build.run[1]: One of the commands in 'run' contains a new line, which won't work. "
     "You need to create a new list item in YAML prefixed with '-' for each command."),
    ("run-mount-type", 'build:\n  python_version: "3.11"\n  run:\n    - command: pip install x\n'
                       '      mounts:\n        - type: ssh\n          id: key\n          target: /k\n',
     'cog.yaml:6: invalid build.run[0].mounts[0].type "ssh": must be one of the following: "secret"'),
    ("run-mount-missing-id", 'build:\n  python_version: "3.11"\n  run:\n    - command: pip install x\n'
                             '      mounts:\n        - type: secret\n          target: /k\n',
     "cog.yaml:6: invalid build.run[0].mounts[0]: id is required"),
    ("run-item-no-command", 'build:\n  python_version: "3.11"\n  run:\n    - mounts: []\n',
     "cog.yaml:4: invalid build.run[0]: command is required"),
    ("run-item-list", 'build:\n  python_version: "3.11"\n  run:\n    - [a, b]\n',
     'cog.yaml:4: invalid build.run[0]: must be a string or a mapping with "command"'),
    ("gpu-not-bool", 'build:\n  gpu: "yes"\n  python_version: "3.11"\n',
     'cog.yaml:2: invalid build.gpu: must be a boolean, not "yes"'),
    ("packages-not-list", 'build:\n  python_version: "3.11"\n  system_packages: ffmpeg\n',
     'cog.yaml:3: invalid build.system_packages: must be a list, not "ffmpeg"'),
    ("image-mapping", 'image:\n  name: x\n', "cog.yaml:2: invalid image: must be a string, not a mapping"),
    ("build-list", 'build:\n  - python_version: "3.11"\n', "cog.yaml:2: invalid build: must be a mapping, not a list"),
    ("root-list", '- build\n', "cog.yaml:1: invalid cog.yaml: must be a mapping, not a list"),
    ("sdk-too-old", 'build:\n  python_version: "3.11"\n  sdk_version: "0.15.3"\n',
     'cog.yaml:3: invalid build.sdk_version "0.15.3": cog version 0.15.3 is below the minimum required version 0.16.0'),
    ("sdk-not-a-version", 'build:\n  python_version: "3.11"\n  sdk_version: latest\n',
     'cog.yaml:3: invalid build.sdk_version "latest": must be a version such as "0.18.0" or "prerelease"'),
    ("model-with-tag", 'model: r8.im/me/model:v1\n',
     'cog.yaml:1: invalid model "r8.im/me/model:v1": must be a bare repository — tags and digests are not allowed'),
    ("model-and-image", 'image: x\nmodel: r8.im/me/model\n', "cog.yaml:2: invalid model: 'model' and 'image' cannot both be set"),
    ("duplicate-key", 'build:\n  python_version: "3.11"\nbuild:\n  gpu: false\n',
     'cog.yaml:3: invalid YAML: mapping key "build" already defined at line 1'),
    ("yaml-syntax", 'build:\n  python_version: "3.11"\n predict: x\n',
     "cog.yaml:3: invalid YAML: expected <block end>, but found '<block mapping start>' (while parsing a block mapping)"),
    ("yaml-unclosed-quote", 'build:\n  python_version: "3.11\n',
     "cog.yaml:3: invalid YAML: found unexpected end of stream (while scanning a quoted scalar)"),
    ("merge-of-scalar", 'build:\n  <<: 5\n  python_version: "3.11"\n',
     "cog.yaml:2: invalid YAML: expected a mapping or list of mappings for merging, but found scalar"),
    ("weights-not-list", 'weights: hf://x\n', 'cog.yaml:1: invalid weights: must be a list, not "hf://x"'),
    ("earliest-line-wins", 'environment:\n  - PATH=x\nbuild:\n  python_version: "3.9"\n',
     'cog.yaml:2: invalid environment: environment variable "PATH" is not allowed: reserved for internal use'),
]


@pytest.mark.parametrize("cog_yaml, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid(tmp_path, cog_yaml, message):
    with pytest.raises(OciasmError) as info:
        load(tmp_path, cog_yaml)
    assert str(info.value) == message.format(project=tmp_path.resolve())


# (id, cog.yaml, warnings, run.cog.config label)
VALID = [
    ("minimal", 'build:\n  python_version: "3.12"\npredict: "predict.py:Predictor"\n',
     ['cog.yaml:3: deprecated field "predict": use "run" instead'],
     '{"build":{"python_version":"3.12"},"predict":"predict.py:Predictor"}'),
    ("float-3.10-read-as-written", "build:\n  python_version: 3.10\nrun: predict.py:Predictor\n", [],
     '{"build":{"python_version":"3.10"},"predict":"predict.py:Predictor"}'),
    ("patch-stripped", 'build:\n  python_version: "3.11.4"\nrun: predict.py:Predictor\n',
     ["cog.yaml:2: Stripping patch version from Python version 3.11.4 to 3.11"],
     '{"build":{"python_version":"3.11.4"},"predict":"predict.py:Predictor"}'),
    ("unknown-keys", 'buld:\n  x: 1\nbuild:\n  python_version: "3.11"\n  pyhton_packages: []\nrun: predict.py:Predictor\n'
                     'concurrency:\n  max: 1\n  min: 0\n',
     ['cog.yaml:1: unknown key "buld" (ignored)', 'cog.yaml:5: unknown key "build.pyhton_packages" (ignored)',
      'cog.yaml:8: deprecated field "concurrency.max": use "@cog.concurrent(max=...)" instead',
      'cog.yaml:9: unknown key "concurrency.min" (ignored)'],
     '{"build":{"python_version":"3.11"},"predict":"predict.py:Predictor","concurrency":{"max":1}}'),
    ("python-packages-deprecated", 'build:\n  python_version: "3.11"\n  python_packages:\n    - "torch>=2.0"\n',
     ['cog.yaml:3: deprecated field "build.python_packages": use "build.python_requirements" instead'],
     '{"build":{"python_version":"3.11","python_packages":["torch\\u003e=2.0"]}}'),
    ("everything", '''build:
  gpu: false
  python_version: "3.12"
  python_requirements: requirements.txt
  system_packages: [ffmpeg, "libgl1"]
  run:
    - "echo one "
    - command: pip install private
      mounts:
        - type: secret
          id: pip
          target: /etc/pip.conf
  sdk_version: "0.18.0"
image: r8.im/me/model
run: predict.py:Predictor
train: train.py:train
concurrency:
  max: 4
environment:
  - HELLO=wörld & co
  - EMPTY=
''', ['cog.yaml:18: deprecated field "concurrency.max": use "@cog.concurrent(max=...)" instead'],
     '{"build":{"python_version":"3.12","python_requirements":"requirements.txt",'
     '"run":[{"command":"echo one"},{"command":"pip install private","mounts":[{"type":"secret","id":"pip",'
     '"target":"/etc/pip.conf"}]}],"system_packages":["ffmpeg","libgl1"],"sdk_version":"0.18.0"},'
     '"image":"r8.im/me/model","predict":"predict.py:Predictor","train":"train.py:train","concurrency":{"max":4},'
     '"environment":["HELLO=wörld \\u0026 co","EMPTY="]}'),
    ("gpu-cuda-cudnn", 'build:\n  gpu: true\n  python_version: "3.11"\n  cuda: "12.4"\n  cudnn: "9"\n', [],
     '{"build":{"gpu":true,"python_version":"3.11","cuda":"12.4","cudnn":"9"}}'),
    ("no-build-defaults", "run: predict.py:Predictor\n", [],
     '{"build":{"python_version":"3.13"},"predict":"predict.py:Predictor"}'),
    ("empty-file", "", [], '{"build":{"python_version":"3.13"}}'),
    ("null-lists-and-build-null", "build:\nenvironment:\n", [], '{"build":{"python_version":"3.13"}}'),
    ("prerelease-sdk", 'build:\n  python_version: "3.13"\n  sdk_version: prerelease\n', [],
     '{"build":{"python_version":"3.13","sdk_version":"prerelease"}}'),
    ("merge-key", 'x-common: &common\n  python_version: "3.12"\nbuild:\n  <<: *common\n',
     ['cog.yaml:1: unknown key "x-common" (ignored)'], '{"build":{"python_version":"3.12"}}'),
    ("model", 'model: localhost:5000/me/my-model\n', [], '{"build":{"python_version":"3.13"},"model":"localhost:5000/me/my-model"}'),
]


@pytest.mark.parametrize("cog_yaml, warnings, label", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid(tmp_path, cog_yaml, warnings, label):
    config, seen = load(tmp_path, cog_yaml)
    assert seen == warnings
    assert config_label(config) == label
    json.loads(label)  # the expectation itself is JSON


def test_typed_fields(tmp_path):
    config, _ = load(tmp_path, VALID[5][1])
    assert config.path == tmp_path / "cog.yaml" and config.project_dir == tmp_path
    assert config.build == BuildConfig(
        gpu=False, python_version="3.12", python_requirements="requirements.txt", python_packages=(),
        system_packages=("ffmpeg", "libgl1"),
        run=(RunStep("echo one"), RunStep("pip install private", (SecretMount("pip", "/etc/pip.conf"),))),
        pre_install=(), cuda=None, cudnn=None, sdk_version="0.18.0")
    assert (config.image, config.predict, config.train) == ("r8.im/me/model", "predict.py:Predictor", "train.py:train")
    assert config.concurrency_max == 4
    assert config.environment == (("HELLO", "wörld & co"), ("EMPTY", ""))
    assert config.raw["build"]["system_packages"] == ["ffmpeg", "libgl1"]
    assert config.raw["concurrency"] == {"max": 4}


def test_patch_version_is_stripped_for_the_build(tmp_path):
    config, _ = load(tmp_path, 'build:\n  python_version: "3.11.4"\n')
    assert config.build.python_version == "3.11"


def test_label_reflects_resolved_cuda(tmp_path):
    config, _ = load(tmp_path, 'build:\n  gpu: true\n  python_version: "3.11"\n')
    resolved = replace(config, build=replace(config.build, cuda="11.8", cudnn="8"))
    assert config_label(resolved) == '{"build":{"gpu":true,"python_version":"3.11","cuda":"11.8","cudnn":"8"}}'


def test_missing_cog_yaml_names_the_directory(tmp_path):
    with pytest.raises(OciasmError, match=f"^cog.yaml not found in {tmp_path.resolve()}$"):
        load_config(tmp_path)


def test_other_filename_is_named_in_messages(tmp_path):
    (tmp_path / "cog.gpu.yaml").write_text('build:\n  python_version: "3.8"\n')
    with pytest.raises(OciasmError, match=r'^cog\.gpu\.yaml:2: invalid build\.python_version "3\.8"'):
        load_config(tmp_path, "cog.gpu.yaml")


# --------------------------------------------------------------------------- reject_unsupported

UNSUPPORTED = [
    ('model: r8.im/me/m\nweights:\n  - name: base\n    target: /weights\n    source: {uri: "hf://x/y"}\n',
     "cog.yaml:2: weights is not supported by ociasm yet; remove it from cog.yaml or build this model with `cog build`"),
]


@pytest.mark.parametrize("cog_yaml, message", UNSUPPORTED)
def test_reject_unsupported(tmp_path, cog_yaml, message):
    config, _ = load(tmp_path, cog_yaml)
    with pytest.raises(OciasmError) as info:
        reject_unsupported(config)
    assert str(info.value) == message


def test_supported_config_passes(tmp_path):
    config, _ = load(tmp_path, 'build:\n  python_version: "3.11"\n  gpu: false\n  system_packages: [jq]\n'
                               '  run: ["echo hi"]\n  pre_install: ["echo old"]\n')
    reject_unsupported(config)


# --------------------------------------------------------------------------- requirements


def requirements(tmp_path: Path, text: str, files: dict[str, str] | None = None, cog_extra: str = ""):
    config, _ = load(tmp_path, f'build:\n  python_version: "3.11"\n  python_requirements: reqs/requirements.txt\n{cog_extra}',
                     {"reqs/requirements.txt": text, **(files or {})})
    warnings: list[str] = []
    return requirement_lines(config, warnings.append), warnings


def test_requirements_comments_continuations_and_index_options(tmp_path):
    lines, warnings = requirements(tmp_path, """\
# a comment
--index-url https://pypi.example/simple

numpy==2.1.0  # pinned
torch==2.3.1 --extra-index-url=https://download.pytorch.org/whl/cu121
pillow \\
  >=10
-e .
git+https://github.com/me/pkg.git#egg=pkg
--extra-index-url https://download.pytorch.org/whl/cu121
""")
    assert lines == ["--index-url https://pypi.example/simple", "numpy==2.1.0",
                     "--extra-index-url https://download.pytorch.org/whl/cu121", "torch==2.3.1",
                     "pillow   >=10", "git+https://github.com/me/pkg.git#egg=pkg"]
    assert warnings == []


def test_requirements_drop_cog_and_coglet_with_warning(tmp_path):
    lines, warnings = requirements(tmp_path, "cog==0.9.4\nrequests\nCogLet>=0.17\n", cog_extra='  sdk_version: "0.18.0"\n')
    assert lines == ["requests"]
    assert warnings == [
        "reqs/requirements.txt:1: 'cog==0.9.4' found in requirements — overriding with cog==0.18.0 from PyPI. "
        "Remove it from requirements and use build.sdk_version in cog.yaml or COG_SDK_WHEEL to control the version.",
        "reqs/requirements.txt:3: 'CogLet>=0.17' found in requirements — overriding with latest coglet from PyPI. "
        "Remove it from requirements and use build.sdk_version in cog.yaml or COGLET_WHEEL to control the version.",
    ]


def test_requirements_local_artifacts_become_absolute(tmp_path):
    lines, _ = requirements(tmp_path, "./dist/local_pkg-0.1.0-py3-none-any.whl  # vendored\n../vendor/thing-1.0.tar.gz\n",
                            {"reqs/dist/local_pkg-0.1.0-py3-none-any.whl": "whl", "vendor/thing-1.0.tar.gz": "sdist"})
    root = tmp_path.resolve()
    assert lines == [str(root / "reqs/dist/local_pkg-0.1.0-py3-none-any.whl"), str(root / "vendor/thing-1.0.tar.gz")]


def test_requirements_symlinked_artifact_keeps_its_file_name(tmp_path):
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects/blob").write_text("wheel")
    (tmp_path / "reqs/dist").mkdir(parents=True)
    (tmp_path / "reqs/dist/pkg-1.0-py3-none-any.whl").symlink_to(tmp_path / "objects/blob")
    lines, _ = requirements(tmp_path, "dist/pkg-1.0-py3-none-any.whl\n")
    assert lines == [str(tmp_path.resolve() / "reqs/dist/pkg-1.0-py3-none-any.whl")]


def test_requirements_include_files_are_inlined(tmp_path):
    lines, _ = requirements(tmp_path, "-r base.txt\nrequests\n--requirement=https://example.com/r.txt\n",
                            {"reqs/base.txt": "numpy\n-c constraints.txt\n-f ./wheels\n", "reqs/constraints.txt": "numpy<3\n",
                             "reqs/wheels/.keep": ""})
    root = tmp_path.resolve()
    assert lines == ["numpy", f"--constraint {root}/reqs/constraints.txt", f"--find-links {root}/reqs/wheels",
                     "requests", "--requirement https://example.com/r.txt"]


def test_python_packages_are_read_like_requirements(tmp_path):
    config, _ = load(tmp_path, 'build:\n  python_version: "3.11"\n  python_packages:\n    - numpy==2.1.0\n    - cog\n'
                               '    - ./wheels/x-1.0-py3-none-any.whl\n', {"wheels/x-1.0-py3-none-any.whl": "w"})
    warnings: list[str] = []
    assert requirement_lines(config, warnings.append) == ["numpy==2.1.0", str(tmp_path.resolve() / "wheels/x-1.0-py3-none-any.whl")]
    assert warnings[0].startswith("cog.yaml:5: 'cog' found in requirements — overriding with latest cog from PyPI.")


REQUIREMENT_ERRORS = [
    ("../../outside-1.0.tar.gz\n", "reqs/requirements.txt:1: local Python package artifact \"../../outside-1.0.tar.gz\" must be inside the project directory"),
    ("numpy\n./missing-1.0.zip\n", 'reqs/requirements.txt:2: local Python package artifact "./missing-1.0.zip" not found'),
    ("./adir.zip\n", 'reqs/requirements.txt:1: local Python package artifact "./adir.zip" must be a regular file'),
    ("./mypkg\n", 'reqs/requirements.txt:1: local package requirement "./mypkg" is not a supported wheel or source archive'),
    ("file:./x.whl\n", "reqs/requirements.txt:1: local file URL requirements are not supported: file:./x.whl"),
    ("x @ ./x-1.0.whl\n", "reqs/requirements.txt:1: local direct reference requirements (`name @ path`) are not "
                          "supported; list the path directly instead: x @ ./x-1.0.whl"),
    ("./x-1.0.whl --hash=sha256:00\n", "reqs/requirements.txt:1: local package artifact requirements do not support "
                                       "inline options or hashes: ./x-1.0.whl --hash=sha256:00"),
    ("-e ./mypkg\n", "reqs/requirements.txt:1: editable local requirements are not supported: -e ./mypkg; "
                     "list a wheel or source archive inside the project instead"),
    ("-r ../../elsewhere.txt\n", 'reqs/requirements.txt:1: requirements file "../../elsewhere.txt" must be inside the project directory'),
    ("-r other.txt\n", 'reqs/requirements.txt:1: requirements file "other.txt" not found'),
    ("-r requirements.txt\n", "reqs/requirements.txt:1: reqs/requirements.txt includes itself"),
]


@pytest.mark.parametrize("text, message", REQUIREMENT_ERRORS)
def test_requirement_errors(tmp_path, text, message):
    (tmp_path / "outside-1.0.tar.gz").write_text("x")
    root = tmp_path / "project"
    (root / "reqs/adir.zip").mkdir(parents=True)
    with pytest.raises(OciasmError) as info:
        requirements(root, text)
    assert str(info.value) == message


def test_requirement_symlink_leaving_the_project_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "pkg-1.0.zip").write_text("zip")
    inside = tmp_path / "proj"
    (inside / "reqs").mkdir(parents=True)
    (inside / "reqs/pkg-1.0.zip").symlink_to(outside / "pkg-1.0.zip")
    with pytest.raises(OciasmError, match='"./pkg-1.0.zip" must be inside the project directory$'):
        requirements(inside, "./pkg-1.0.zip\n")


def test_relative_project_dir(tmp_path, monkeypatch):
    project(tmp_path, 'build:\n  python_version: "3.11"\nrun: predict.py:Predictor\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("."), warn=lambda m: None)
    assert config.predict == "predict.py:Predictor"
    assert requirement_lines(config) == []
    assert os.path.samefile(config.path, tmp_path / "cog.yaml")
