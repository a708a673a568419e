"""The inputs of a predict/run/train function: names, types and Input() keywords."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from .ann import AnnotationError, dotted_name, from_ast
from .literals import DictLiteral, Unresolved
from .module import ModuleInfo
from .types import InputType, TypeProblem, input_type

NO_DEFAULT = object()
FILE_TYPES = ("Path", "File")


@dataclass
class InputField:
    name: str
    order: int
    type: InputType
    default: Any = NO_DEFAULT
    description: str | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    regex: str | None = None
    choices: list[Any] | None = None
    deprecated: bool | None = None
    accept: str | None = None
    constraints: list[str] = field(default_factory=list)  # keywords given, for the union check


def extract_inputs(module: ModuleInfo, func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[InputField]:
    args = func.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    if params and params[0][0].arg == "self":
        params = params[1:]
    return [_input(module, func.name, order, arg, default) for order, (arg, default) in enumerate(params)]


def _input(module: ModuleInfo, method: str, order: int, arg: ast.arg, default: ast.expr | None) -> InputField:
    name = arg.arg
    if arg.annotation is None:
        raise module.error(arg, f"parameter '{name}' on {method}() has no type annotation; annotate it, e.g. `{name}: str`")
    try:
        itype = input_type(module, from_ast(arg.annotation))
    except AnnotationError as e:
        raise module.error(arg, f"parameter '{name}': unsupported type annotation {e}") from None
    except TypeProblem as e:
        module_, line = e.where or (module, arg.lineno)
        raise module_.error(line, f"parameter '{name}': {e}") from None
    inp = InputField(name, order, itype)
    if default is not None:
        call = _input_call(module, default)
        if call is not None:
            _apply_input_keywords(module, inp, *call)
        else:
            try:
                inp.default = module.value(default)
            except Unresolved:
                raise module.error(
                    default,
                    f"parameter '{name}': default `{ast.unparse(default)}` cannot be statically resolved; "
                    "use a literal, a module-level constant or Input(default=...)",
                ) from None
    _validate(module, arg, inp)
    return inp


def _is_input(module: ModuleInfo, node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = dotted_name(node.func)
    return name is not None and (name == "Input" or module.is_cog(name, "Input"))


def _input_call(module: ModuleInfo, node: ast.expr) -> tuple[ast.Call, dict[str, ast.expr]] | None:
    """The Input() call a default stands for, with the names it binds.

    Besides a direct `Input(...)`, Cog accepts a reference to a shared definition:
    a class attribute `Inputs.seed` holding an Input(), or a static method call
    `Inputs.guidance(7.5)` whose body returns an Input() built from its parameters.
    """
    if _is_input(module, node):
        return node, {}
    ref = node.func if isinstance(node, ast.Call) else node
    name = dotted_name(ref)
    if name is None or "." not in name:
        return None
    owner, _, member = name.rpartition(".")
    found = module.find_class(owner)
    if found is None:
        return None
    for stmt in found[1].body:
        if isinstance(node, ast.Call) and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == member:
            call = next((s.value for s in stmt.body if isinstance(s, ast.Return) and s.value is not None and _is_input(module, s.value)), None)
            return (call, _bind(stmt, node)) if call is not None else None
        if not isinstance(node, ast.Call) and isinstance(stmt, ast.Assign) and _is_input(module, stmt.value):
            if any(isinstance(t, ast.Name) and t.id == member for t in stmt.targets):
                return stmt.value, {}
    return None


def _bind(func: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call) -> dict[str, ast.expr]:
    params = [a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs if a.arg not in ("self", "cls")]
    bound = dict(zip(params, call.args))
    bound.update((k.arg, k.value) for k in call.keywords if k.arg)
    return bound


def _apply_input_keywords(module: ModuleInfo, inp: InputField, call: ast.Call, bound: dict[str, ast.expr]) -> None:
    for kw in call.keywords:
        if kw.arg is None:
            continue
        node = kw.value
        if isinstance(node, ast.Name) and node.id in bound:
            node = bound[node.id]
        key = kw.arg
        if key == "default_factory":
            raise module.error(kw, f"parameter '{inp.name}': default_factory is not supported in Input(); use a literal default value instead")
        if key == "choices":
            inp.choices = _choices(module, node, inp.name)
            inp.constraints.append(key)
            continue
        try:
            value = module.value(node)
        except Unresolved:
            if key == "default":
                inp.default = None  # Cog reads an unresolvable default as None
            continue
        if key == "default":
            inp.default = value
        elif key in ("description", "regex", "accept") and isinstance(value, str):
            setattr(inp, key, value)
        elif key in ("ge", "le", "min_length", "max_length") and _is_number(value):
            setattr(inp, key, int(value) if key.endswith("length") else value)
        elif key == "deprecated" and isinstance(value, bool):
            inp.deprecated = value
        else:
            continue
        if key in ("ge", "le", "min_length", "max_length", "regex"):
            inp.constraints.append(key)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choices(module: ModuleInfo, node: ast.expr, param: str) -> list[Any]:
    try:
        return _choice_list(module, node)
    except Unresolved:
        raise module.error(
            node,
            f"parameter '{param}': choices `{ast.unparse(node)}` cannot be statically resolved; use a literal list "
            '(e.g. choices=["a", "b"]) or a module-level constant list',
        ) from None


def _choice_list(module: ModuleInfo, node: ast.expr) -> list[Any]:
    """A list literal or constant, `list(D.keys())`, `list(D.values())`, or `a + b` of those."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _choice_list(module, node.left) + _choice_list(module, node.right)
    if isinstance(node, ast.Call) and dotted_name(node.func) == "list" and len(node.args) == 1 and not node.keywords:
        inner = node.args[0]
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and not inner.args:
            owner = dotted_name(inner.func.value)
            mapping = module.constant(owner) if owner else None
            if isinstance(mapping, DictLiteral) and inner.func.attr in ("keys", "values"):
                index = 0 if inner.func.attr == "keys" else 1
                return [pair[index] for pair in mapping.pairs]
        raise Unresolved
    if isinstance(node, (ast.List, ast.Name, ast.Attribute)):
        value = module.value(node)
        if isinstance(value, list):
            return value
    raise Unresolved


def _validate(module: ModuleInfo, arg: ast.arg, inp: InputField) -> None:
    if inp.accept is not None and inp.type.primitive not in FILE_TYPES:
        raise module.error(arg, f"parameter '{inp.name}': accept is only valid on Path or File inputs")
    if inp.type.kind == "union" and inp.constraints:
        raise module.error(arg, f"parameter '{inp.name}': constraints and choices are not supported on union inputs")
