"""cog.yaml: parse, validate with Cog's rules, and report errors as `file:line: message`.

Cog decodes cog.yaml into typed Go structs, then checks a JSON schema and its own semantic
rules (pkg/config/validate.go). We walk the composed YAML node tree instead, so every error
and warning can name the line of the offending field. Where Cog has a message we use its
wording; where Cog silently drops something (unknown keys) we warn.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import yaml

from ociasm.errors import OciasmError
from ociasm.reference import Reference

MIN_PYTHON = (3, 10)
MIN_PYTHON_FOR_CONCURRENCY = (3, 11)
MIN_CUDA_MAJOR = 11
MIN_SDK_VERSION = (0, 16, 0)
SDK_PRERELEASE = "prerelease"
# Cog's DefaultPythonVersion; used when cog.yaml has no build section at all.
DEFAULT_PYTHON_VERSION = "3.13"

# Cog's environmentVariableDenyList (pkg/config/env.go): names the build or runtime owns.
_RESERVED_ENV = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED",
                 "R8_*", "REPLICATE_*", "LIBRARY_PATH", "CUDA_*", "NVIDIA_*", "NV_*", "PGET_*",
                 "HF_ENDPOINT", "HF_HUB_ENABLE_HF_TRANSFER", "KUBERNETES_*")
_ENV_ENTRY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")

_TOP_KEYS = ("build", "image", "model", "run", "predict", "train", "concurrency", "environment",
             "weights")
_BUILD_KEYS = ("gpu", "python_version", "python_requirements", "python_packages", "run",
               "system_packages", "pre_install", "cuda", "cudnn", "sdk_version")
_CONCURRENCY_KEYS = ("max", "default_target")
_RUN_ITEM_KEYS = ("command", "mounts")
_MOUNT_KEYS = ("type", "id", "target")

_NEWLINE_IN_RUN = ("One of the commands in 'run' contains a new line, which won't work. You need to "
                   "create a new list item in YAML prefixed with '-' for each command.")

# PEP 440 public versions, enough to refuse what pip would refuse for `cog==<sdk_version>`.
_PEP440 = re.compile(r"v?\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", re.IGNORECASE)

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"


@dataclass(frozen=True)
class SecretMount:
    id: str
    target: str


@dataclass(frozen=True)
class RunStep:
    command: str
    mounts: tuple[SecretMount, ...] = ()


@dataclass(frozen=True)
class BuildConfig:
    gpu: bool
    python_version: str              # major.minor (a patch level is stripped, as Cog does)
    python_requirements: str | None  # as written, relative to the project directory
    python_packages: tuple[str, ...]
    system_packages: tuple[str, ...]
    run: tuple[RunStep, ...]
    pre_install: tuple[str, ...]
    cuda: str | None
    cudnn: str | None
    sdk_version: str | None


@dataclass(frozen=True)
class CogConfig:
    path: Path
    project_dir: Path
    build: BuildConfig
    image: str | None
    predict: str | None   # `run` or its deprecated spelling `predict`: "file.py:Name"
    train: str | None
    concurrency_max: int | None
    environment: tuple[tuple[str, str], ...]
    raw: dict             # the document as written; scalars as their source text except ints/bools
    model: str | None = None
    # dotted field path ("build.run", "weights", "build.python_packages[2]") -> 1-based line
    lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def where(self, field_path: str) -> str:
        """`cog.yaml:LINE` for a field, for messages about it."""
        line = self.lines.get(field_path)
        return f"{self.path.name}:{line}" if line else self.path.name


def print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- node reading


class _Doc:
    """Errors and warnings collected while walking one YAML file, each with its line."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.errors: list[tuple[int, str]] = []
        self.warnings: list[tuple[int, str]] = []
        self.lines: dict[str, int] = {}

    def error(self, line: int, message: str) -> None:
        self.errors.append((line, message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append((line, message))

    def invalid(self, line: int, field_path: str, message: str, value: str | None = None) -> None:
        """Cog's ValidationError wording: `invalid FIELD "VALUE": MESSAGE`."""
        shown = f' "{value}"' if value else ""
        self.error(line, f"invalid {field_path}{shown}: {message}")

    def finish(self, warn: Callable[[str], None]) -> None:
        for line, message in sorted(self.warnings, key=lambda w: w[0]):
            warn(f"{self.filename}:{line}: {message}")
        if self.errors:
            line, message = min(self.errors, key=lambda e: e[0])
            raise OciasmError(f"{self.filename}:{line}: {message}")


# PyYAML's constructor, used only on nodes: merge-key flattening and bool/int scalars.
_MERGER = yaml.SafeLoader("")


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f'"{node.value}"'


def _mapping(doc: _Doc, node: yaml.Node, path: str, known: Iterable[str]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key -> (key node, value node); records key lines, refuses duplicates, warns on unknown keys."""
    try:
        _MERGER.flatten_mapping(node)  # resolve `<<` merge keys in place
    except yaml.MarkedYAMLError as e:  # a merge of something other than mappings
        line = e.problem_mark.line + 1 if e.problem_mark else _line(node)
        raise OciasmError(f"{doc.filename}:{line}: invalid YAML: {e.problem}") from None
    items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
        dotted = f"{path}.{key}" if path else key
        if key in items:
            doc.error(_line(key_node), f'invalid YAML: mapping key "{key}" already defined at line '
                                       f"{_line(items[key][0])}")
            continue
        if key not in known:
            doc.warn(_line(key_node), f'unknown key "{dotted}" (ignored)')
            continue
        items[key] = (key_node, value_node)
        doc.lines[dotted] = _line(key_node)
    return items


def _string(doc: _Doc, path: str, node: yaml.Node) -> str | None:
    """Any scalar's source text (Go's yaml decodes `3.10` into a string field as "3.10"); null -> None."""
    if _is_null(node):
        return None
    if isinstance(node, yaml.ScalarNode):
        return node.value
    doc.invalid(_line(node), path, f"must be a string, not {_kind(node)}")
    return None


def _strings(doc: _Doc, path: str, node: yaml.Node) -> list[tuple[str, int]]:
    """A list of strings (null allowed), each with its line."""
    if _is_null(node):
        return []
    if not isinstance(node, yaml.SequenceNode):
        doc.invalid(_line(node), path, f"must be a list, not {_kind(node)}")
        return []
    out = []
    for i, item in enumerate(node.value):
        value = _string(doc, f"{path}[{i}]", item)
        if value is not None:
            doc.lines[f"{path}[{i}]"] = _line(item)
            out.append((value, _line(item)))
    return out


def _bool(doc: _Doc, path: str, node: yaml.Node) -> bool | None:
    if _is_null(node):
        return None
    if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL:
        return _MERGER.construct_yaml_bool(node)
    doc.invalid(_line(node), path, f"must be a boolean, not {_kind(node)}")
    return None


def _int(doc: _Doc, path: str, node: yaml.Node) -> int | None:
    if _is_null(node):
        return None
    if isinstance(node, yaml.ScalarNode) and node.tag == _INT:
        return _MERGER.construct_yaml_int(node)
    doc.invalid(_line(node), path, f"must be an integer, not {_kind(node)}")
    return None


def _plain(node: yaml.Node):
    """The document as written: scalars keep their source text, except ints, bools and nulls."""
    if isinstance(node, yaml.MappingNode):
        _MERGER.flatten_mapping(node)
        return {str(k.value): _plain(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v) for v in node.value]
    if node.tag == _NULL:
        return None
    if node.tag == _BOOL:
        return _MERGER.construct_yaml_bool(node)
    if node.tag == _INT:
        return _MERGER.construct_yaml_int(node)
    return node.value


def _compose(text: str, filename: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        problem = e.problem or str(e)
        if e.context:
            problem = f"{problem} ({e.context})"
        raise OciasmError(f"{filename}:{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise OciasmError(f"{filename}: invalid YAML: {e}") from None


# --------------------------------------------------------------------------- version rules


def _python_version(doc: _Doc, line: int, written: str) -> str | None:
    """Cog's validatePythonVersion, then its base-image step that strips a patch level."""
    version = written.strip()
    parts = version.split(".", 2)
    field_path = "build.python_version"
    if len(parts) < 2:
        doc.invalid(line, field_path, "must include major and minor version (e.g., '3.11')", version)
        return None
    if not parts[0].isdigit():
        doc.invalid(line, field_path, "invalid major version number", version)
        return None
    if not parts[1].isdigit():
        doc.invalid(line, field_path, "invalid minor version number", version)
        return None
    if len(parts) == 3 and not parts[2].isdigit():
        doc.invalid(line, field_path, "invalid patch version number", version)
        return None
    major, minor = int(parts[0]), int(parts[1])
    if (major, minor) < MIN_PYTHON:
        doc.invalid(line, field_path, "minimum supported Python version is %d.%d" % MIN_PYTHON, version)
        return None
    stripped = f"{major}.{minor}"
    if stripped != version:
        doc.warn(line, f"Stripping patch version from Python version {version} to {stripped}")
    return stripped


def _cuda(doc: _Doc, line: int, cuda: str) -> bool:
    parts = cuda.split(".")
    if len(parts) < 2:
        doc.invalid(line, "build.cuda", "must include both major and minor versions (e.g., '11.8')", cuda)
        return False
    if not parts[0].isdigit():
        doc.invalid(line, "build.cuda", "invalid major version number", cuda)
        return False
    if not all(p.isdigit() for p in parts[1:]) or len(parts) > 3:
        doc.invalid(line, "build.cuda", "invalid minor version number", cuda)
        return False
    if int(parts[0]) < MIN_CUDA_MAJOR:
        doc.invalid(line, "build.cuda", f"minimum supported CUDA version is {MIN_CUDA_MAJOR}", cuda)
        return False
    return True


def compatible_cudnns(cuda: str) -> list[str]:
    """cuDNN versions with a CUDA base image for `cuda` ("12.4" matches 12.4.1), newest first."""
    from ociasm.gpu.resolve import compatible_cudnns as from_cogs_data  # lazy: ociasm.gpu imports this module
    return from_cogs_data(cuda)


def _sdk_version(doc: _Doc, line: int, sdk: str) -> None:
    """Cog accepts "prerelease" or a version, refusing pins below the minimum SDK."""
    if sdk == SDK_PRERELEASE:
        return
    if not _PEP440.fullmatch(sdk):
        doc.invalid(line, "build.sdk_version", f'must be a version such as "0.18.0" or "{SDK_PRERELEASE}"', sdk)
        return
    release = re.match(r"v?(\d+(?:\.\d+)*)", sdk, re.IGNORECASE).group(1)
    numbers = (tuple(int(n) for n in release.split(".")) + (0, 0))[:3]
    if numbers < MIN_SDK_VERSION:
        minimum = ".".join(map(str, MIN_SDK_VERSION))
        doc.invalid(line, "build.sdk_version",
                    f"cog version {sdk} is below the minimum required version {minimum}", sdk)


# --------------------------------------------------------------------------- sections


def _run_steps(doc: _Doc, path: str, node: yaml.Node) -> list[RunStep]:
    if _is_null(node):
        return []
    if not isinstance(node, yaml.SequenceNode):
        doc.invalid(_line(node), path, f"must be a list, not {_kind(node)}")
        return []
    steps = []
    for i, item in enumerate(node.value):
        item_path = f"{path}[{i}]"
        doc.lines[item_path] = _line(item)
        step = _run_step(doc, item_path, item)
        if step is None:
            continue
        if "\n" in step.command:
            doc.invalid(_line(item), item_path, _NEWLINE_IN_RUN)
        elif not step.command:
            doc.invalid(_line(item), item_path, "command must not be empty")
        steps.append(step)
    return steps


def _run_step(doc: _Doc, path: str, node: yaml.Node) -> RunStep | None:
    if isinstance(node, yaml.ScalarNode) and not _is_null(node):
        return RunStep(node.value.strip())
    if not isinstance(node, yaml.MappingNode):
        doc.invalid(_line(node), path, 'must be a string or a mapping with "command"')
        return None
    items = _mapping(doc, node, path, _RUN_ITEM_KEYS)
    if "command" not in items:
        doc.invalid(_line(node), path, "command is required")
        return None
    command = _string(doc, f"{path}.command", items["command"][1])
    if command is None:
        return None
    mounts = []
    if "mounts" in items:
        mounts_node = items["mounts"][1]
        if not isinstance(mounts_node, yaml.SequenceNode):
            doc.invalid(_line(mounts_node), f"{path}.mounts", f"must be a list, not {_kind(mounts_node)}")
            return None
        for j, mount_node in enumerate(mounts_node.value):
            mount = _mount(doc, f"{path}.mounts[{j}]", mount_node)
            if mount is not None:
                mounts.append(mount)
    return RunStep(command.strip(), tuple(mounts))


def _mount(doc: _Doc, path: str, node: yaml.Node) -> SecretMount | None:
    if not isinstance(node, yaml.MappingNode):
        doc.invalid(_line(node), path, f"must be a mapping, not {_kind(node)}")
        return None
    items = _mapping(doc, node, path, _MOUNT_KEYS)
    values = {}
    for key in _MOUNT_KEYS:
        if key not in items:
            doc.invalid(_line(node), path, f"{key} is required")
            return None
        values[key] = _string(doc, f"{path}.{key}", items[key][1])
        if values[key] is None:
            return None
    if values["type"] != "secret":
        doc.invalid(_line(items["type"][1]), f"{path}.type", 'must be one of the following: "secret"',
                    values["type"])
        return None
    return SecretMount(values["id"], values["target"])


def _build(doc: _Doc, project_dir: Path, key: yaml.Node | None, node: yaml.Node | None) -> BuildConfig:
    empty = BuildConfig(False, DEFAULT_PYTHON_VERSION, None, (), (), (), (), None, None, None)
    if node is None or _is_null(node):
        return empty
    if not isinstance(node, yaml.MappingNode):
        doc.invalid(_line(node), "build", f"must be a mapping, not {_kind(node)}")
        return empty
    items = _mapping(doc, node, "build", _BUILD_KEYS)

    def value(name: str, read):
        return read(doc, f"build.{name}", items[name][1]) if name in items else None

    def line(name: str) -> int:
        return _line(items[name][0])

    gpu = bool(value("gpu", _bool))
    written = value("python_version", _string)
    python_version = None
    if not written:
        doc.invalid(line("python_version") if "python_version" in items else _line(key), "build.python_version",
                    "python_version is required. Add it to the build section of your cog.yaml, "
                    'e.g. `python_version: "3.13"`')
    else:
        python_version = _python_version(doc, line("python_version"), written)

    requirements = value("python_requirements", _string) or None
    packages = [p for p, _ in value("python_packages", _strings) or []]
    if packages and requirements:
        doc.invalid(line("python_packages"), "build",
                    "only one of python_packages or python_requirements can be set, not both")
    if requirements and not (project_dir / requirements).is_file():
        doc.invalid(line("python_requirements"), "build.python_requirements", "file does not exist", requirements)
    if packages:
        doc.warn(line("python_packages"),
                 'deprecated field "build.python_packages": use "build.python_requirements" instead')

    pre_install = value("pre_install", _strings) or []
    for i, (command, item_line) in enumerate(pre_install):
        if "\n" in command.strip():
            doc.invalid(item_line, f"build.pre_install[{i}]", _NEWLINE_IN_RUN)
    if pre_install:
        doc.warn(line("pre_install"), 'deprecated field "build.pre_install": use "build.run" instead')

    cuda = value("cuda", _string) or None
    cudnn = value("cudnn", _string) or None
    if cuda and _cuda(doc, line("cuda"), cuda) and gpu:
        compatible = compatible_cudnns(cuda)
        if not compatible:
            doc.invalid(line("cuda"), "build.cuda", f"CUDA {cuda} is not supported by Cog", cuda)
        elif cudnn and cudnn not in compatible:
            doc.error(line("cudnn"), f"CUDA {cuda} is incompatible with CuDNN {cudnn}: "
                                     f"compatible CuDNN versions are: {', '.join(compatible)}")

    sdk = value("sdk_version", _string) or None
    if sdk:
        _sdk_version(doc, line("sdk_version"), sdk)

    return BuildConfig(
        gpu=gpu,
        python_version=python_version or DEFAULT_PYTHON_VERSION,
        python_requirements=requirements,
        python_packages=tuple(packages),
        system_packages=tuple(p for p, _ in value("system_packages", _strings) or []),
        run=tuple(_run_steps(doc, "build.run", items["run"][1]) if "run" in items else ()),
        pre_install=tuple(c.strip() for c, _ in pre_install),
        cuda=cuda,
        cudnn=cudnn,
        sdk_version=sdk,
    )


def _reference(doc: _Doc, project_dir: Path, field_path: str, line: int, ref: str, example: str) -> None:
    """`file.py:Name`, and the file must be a file inside the project."""
    parts = ref.split(".py:")
    if len(parts) != 2 or not parts[1]:
        doc.invalid(line, field_path, f"must be in the form '{example}'", ref)
        return
    module = parts[0] + ".py"
    source = (project_dir / module).resolve()
    if not is_within(project_dir.resolve(), source):
        doc.invalid(line, field_path, f"{module} must be inside the project directory", ref)
    elif not source.is_file():
        doc.invalid(line, field_path, f"{module} does not exist in {project_dir.resolve()}", ref)


def _environment(doc: _Doc, node: yaml.Node) -> list[tuple[str, str]]:
    """Cog's parseAndValidateEnvironment: KEY=VALUE entries, unique names, none reserved."""
    env: dict[str, str] = {}
    for text, line in _strings(doc, "environment", node):
        name, sep, value = text.partition("=")
        if not sep or not _ENV_ENTRY.match(text):
            doc.invalid(line, "environment", f'environment variable "{text}" is not in the KEY=VALUE format')
        elif any(name == p or (p.endswith("*") and name.startswith(p[:-1])) for p in _RESERVED_ENV):
            doc.invalid(line, "environment",
                        f'environment variable "{name}" is not allowed: reserved for internal use')
        elif name in env:
            doc.invalid(line, "environment", f'environment variable "{name}" is already defined')
        else:
            env[name] = value
    return list(env.items())


def _model(doc: _Doc, line: int, model: str) -> None:
    try:
        ref = Reference.parse(model)
    except OciasmError:
        doc.invalid(line, "model", "invalid repository: use lowercase letters, digits and . _ - / "
                                   "(with an optional registry host first)", model)
        return
    if ref.digest or ":" in model.rpartition("/")[2]:
        doc.invalid(line, "model", "must be a bare repository — tags and digests are not allowed", model)


def load_config(project_dir: Path, filename: str = "cog.yaml",
                warn: Callable[[str], None] = print_warning) -> CogConfig:
    """Read and validate `project_dir/filename`; warnings go to `warn` as `file:line: message`."""
    project_dir = Path(project_dir)
    path = project_dir / filename
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise OciasmError(f"{filename} not found in {project_dir.resolve()}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise OciasmError(f"cannot read {path}: {e}") from None

    shown = path.name  # messages say `cog.yaml:LINE`, as CogConfig.where does
    root = _compose(text, shown)
    doc = _Doc(shown)
    if root is not None and _is_null(root):
        root = None
    if root is not None and not isinstance(root, yaml.MappingNode):
        doc.error(_line(root), f"invalid {shown}: must be a mapping, not {_kind(root)}")
        doc.finish(warn)
    items = _mapping(doc, root, "", _TOP_KEYS) if root is not None else {}

    def value(name: str, read):
        return read(doc, name, items[name][1]) if name in items else None

    def line(name: str) -> int:
        return _line(items[name][0])

    build_key, build_node = items.get("build", (None, None))
    build = _build(doc, project_dir, build_key, build_node)

    run_ref = value("run", _string) or None
    predict_ref = value("predict", _string) or None
    if run_ref and predict_ref:
        doc.invalid(line("run"), "run", "only one of run or predict can be set")
    elif run_ref:
        _reference(doc, project_dir, "run", line("run"), run_ref, "run.py:Runner")
    elif predict_ref:
        _reference(doc, project_dir, "predict", line("predict"), predict_ref, "predict.py:Predictor")
    if predict_ref:
        doc.warn(line("predict"), 'deprecated field "predict": use "run" instead')
    train_ref = value("train", _string) or None
    if train_ref:
        _reference(doc, project_dir, "train", line("train"), train_ref, "train.py:Trainer")

    image = value("image", _string) or None
    model = value("model", _string) or None
    if model and image:
        doc.invalid(line("model"), "model", "'model' and 'image' cannot both be set")
    elif model:
        _model(doc, line("model"), model)

    concurrency_max = _concurrency(doc, items.get("concurrency"), build)
    environment = _environment(doc, items["environment"][1]) if "environment" in items else []
    if "weights" in items and not _is_null(items["weights"][1]) \
            and not isinstance(items["weights"][1], yaml.SequenceNode):
        doc.invalid(line("weights"), "weights", f"must be a list, not {_kind(items['weights'][1])}")

    doc.finish(warn)
    return CogConfig(
        path=path, project_dir=project_dir, build=build, image=image,
        predict=run_ref or predict_ref, train=train_ref, concurrency_max=concurrency_max,
        environment=tuple(environment), raw=_plain(root) if root is not None else {},
        model=model, lines=doc.lines,
    )


def _concurrency(doc: _Doc, item: tuple[yaml.Node, yaml.Node] | None, build: BuildConfig) -> int | None:
    if item is None or _is_null(item[1]):
        return None
    key, node = item
    if not isinstance(node, yaml.MappingNode):
        doc.invalid(_line(node), "concurrency", f"must be a mapping, not {_kind(node)}")
        return None
    items = _mapping(doc, node, "concurrency", _CONCURRENCY_KEYS)
    if "default_target" in items:
        _int(doc, "concurrency.default_target", items["default_target"][1])
    if "max" not in items:
        doc.invalid(_line(key), "concurrency", "max is required")
        return None
    line = _line(items["max"][0])
    maximum = _int(doc, "concurrency.max", items["max"][1])
    if maximum is None:
        return None
    doc.warn(line, 'deprecated field "concurrency.max": use "@cog.concurrent(max=...)" instead')
    if maximum < 1:
        doc.invalid(line, "concurrency.max", "must be at least 1", str(maximum))
    elif maximum > 1 and tuple(map(int, build.python_version.split("."))) < MIN_PYTHON_FOR_CONCURRENCY:
        doc.invalid(line, "concurrency.max", "concurrency requires Python %d.%d or higher"
                    % MIN_PYTHON_FOR_CONCURRENCY, str(maximum))
    return maximum


# --------------------------------------------------------------------------- later issues

def reject_unsupported(config: CogConfig) -> None:
    """Refuse what ociasm does not build: Cog's experimental managed `weights`."""
    if config.raw.get("weights"):
        raise OciasmError(f"{config.where('weights')}: weights is not supported by ociasm yet; "
                          f"remove it from {config.path.name} or build this model with `cog build`")


def is_within(root: Path, target: Path) -> bool:
    return target == root or root in target.parents


# --------------------------------------------------------------------------- label


def _go_json(value) -> str:
    """Compact JSON as Go's encoding/json writes it: UTF-8 kept, HTML characters escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def config_label(config: CogConfig) -> str:
    """`run.cog.config`: Cog's completed Config marshalled by Go (field order, omitempty, escaping).
    GPU resolution of cuda/cudnn is not done here: replace them in `config.build` first."""
    b = config.build
    written = (config.raw.get("build") or {}).get("python_version")
    build: dict = {}
    if b.gpu:
        build["gpu"] = True
    build["python_version"] = str(written).strip() if written else b.python_version
    if b.python_requirements:
        build["python_requirements"] = b.python_requirements
    if b.python_packages:
        build["python_packages"] = list(b.python_packages)
    if b.run:
        build["run"] = [_run_item(step) for step in b.run]
    if b.system_packages:
        build["system_packages"] = list(b.system_packages)
    if b.pre_install:
        build["pre_install"] = list(b.pre_install)
    for key in ("cuda", "cudnn", "sdk_version"):
        if getattr(b, key):
            build[key] = getattr(b, key)
    label: dict = {"build": build}
    for key, value in (("image", config.image), ("model", config.model),
                       ("predict", config.predict), ("train", config.train)):
        if value:
            label[key] = value
    if config.concurrency_max is not None:
        label["concurrency"] = {"max": config.concurrency_max} if config.concurrency_max else {}
    if config.environment:
        label["environment"] = [f"{k}={v}" for k, v in config.environment]
    return _go_json(label)


def _run_item(step: RunStep) -> dict:
    item: dict = {"command": step.command} if step.command else {}
    if step.mounts:
        item["mounts"] = [{"type": "secret", "id": m.id, "target": m.target} for m in step.mounts]
    return item
