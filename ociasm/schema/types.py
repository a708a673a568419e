"""Python type annotations -> JSON Schema, with Cog's rules for inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .ann import Ann, GENERIC, SIMPLE, UNION
from .module import Model, ModuleInfo

PRIMITIVES: dict[str, dict] = {
    "bool": {"type": "boolean"},
    "float": {"type": "number"},
    "int": {"type": "integer"},
    "str": {"type": "string"},
    "Path": {"type": "string", "format": "uri"},
    "File": {"type": "string", "format": "uri"},
    "Secret": {"type": "string", "format": "password", "writeOnly": True, "x-cog-secret": True},
    "Any": {"type": "object"},
}
OBJECT = {"type": "object"}


class TypeProblem(Exception):
    """An annotation Cog cannot turn into a schema; `where` names the file:line when known."""

    def __init__(self, message: str, where: tuple[ModuleInfo, int] | None = None):
        super().__init__(message)
        self.where = where


def unsupported(message: str) -> TypeProblem:
    return TypeProblem(f"unsupported type: {message}")


OPTIONAL_OUTPUT = "unsupported output type: Optional is not allowed as a return type; return the type itself"


def _unresolvable(module: ModuleInfo, ann: Ann) -> TypeProblem:
    head = ann.name.split(".", 1)[0]
    entry = module.imports.get(head)
    if entry is not None and entry.module != "builtins":
        return TypeProblem(
            f"cannot resolve type '{ann.base}' (imported from '{entry.module}'): external types cannot be analyzed "
            f"statically; mark it opaque with `Annotated[{ann.base}, Opaque]` (from cog import Opaque) "
            "or define it as a BaseModel/TypedDict in the project"
        )
    return TypeProblem(
        f"cannot resolve type '{ann.name}': it is not a primitive type (str, int, float, bool, Path, File, Secret) "
        "and no BaseModel or TypedDict of that name was found in the project"
    )


def optional_inner(ann: Ann) -> Ann | None:
    """X for Optional[X], Union[X, None] and X | None; None otherwise."""
    if ann.kind == GENERIC and ann.base == "Optional" and len(ann.args) == 1:
        return ann.args[0]
    if (ann.kind == UNION or (ann.kind == GENERIC and ann.base == "Union")) and len(ann.args) == 2:
        for i, arg in enumerate(ann.args):
            if arg.kind == SIMPLE and arg.name == "None":
                return ann.args[1 - i]
    return None


def _annotated(module: ModuleInfo, ann: Ann) -> bool:
    return ann.kind == GENERIC and module.is_typing(ann.name, "Annotated")


def _opaque_inner(module: ModuleInfo, ann: Ann) -> Ann | None:
    """T for Annotated[T, cog.Opaque]: a JSON-shaped type Cog does not look into."""
    if _annotated(module, ann) and len(ann.args) >= 2:
        if any(m.kind == SIMPLE and module.is_cog(m.name, "Opaque") for m in ann.args[1:]):
            return ann.args[0]
    return None


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputType:
    kind: str  # "prim" | "any" | "array" | "union"
    prim: str = "Any"
    elem: InputType | None = None
    variants: tuple[InputType, ...] = ()
    nullable: bool = False

    @property
    def primitive(self) -> str:
        """The scalar type Cog's flat field model sees (element type for arrays)."""
        if self.kind == "prim":
            return self.prim
        if self.kind == "array" and self.elem is not None and self.elem.kind == "prim":
            return self.elem.prim
        return "Any"

    def json(self) -> dict:
        if self.kind == "prim":
            out = dict(PRIMITIVES[self.prim])
        elif self.kind == "array":
            out = {"type": "array", "items": self.elem.json() if self.elem else dict(OBJECT)}
        elif self.kind == "union":
            variants = [v.json() for v in self.variants]
            if self.nullable:
                for v in variants:
                    v["nullable"] = True
            out = {"anyOf": variants}
        else:
            out = dict(OBJECT)
        if self.nullable:
            out["nullable"] = True
        return out


ANY = InputType("any")


def _prim(name: str) -> InputType:
    return ANY if name == "Any" else InputType("prim", name)


def input_type(module: ModuleInfo, ann: Ann) -> InputType:
    if (inner := _opaque_inner(module, ann)) is not None:
        return _opaque_input(module, inner)
    if ann.kind == SIMPLE:
        model = module.find_model(ann.name)
        if model is not None:
            if model.typed_dict:
                return ANY
            raise unsupported(f"{ann.name} is a BaseModel, which cannot be an input; use dict or a TypedDict")
        if ann.base in ("dict", "Dict"):
            return ANY
        if ann.base in PRIMITIVES:
            return _prim(ann.base)
        if ann.base in ("list", "List"):
            raise unsupported(f"{ann.name} needs an element type, e.g. list[str]")
        raise _unresolvable(module, ann)
    if ann.kind == UNION:
        return _input_union(module, ann.args)
    outer = ann.base
    if outer in ("dict", "Dict"):
        return ANY
    if outer == "Optional":
        if len(ann.args) != 1:
            raise unsupported(f"Optional expects exactly 1 type argument, got {len(ann.args)}")
        return replace(input_type(module, ann.args[0]), nullable=True)
    if outer == "Union":
        return _input_union(module, ann.args)
    if _annotated(module, ann):
        return input_type(module, ann.args[0])
    if outer in ("list", "List"):
        if len(ann.args) != 1:
            raise unsupported(f"List expects exactly 1 type argument, got {len(ann.args)}")
        inner = _input_element(module, ann.args[0])
        if inner.nullable or inner.kind in ("array", "union"):
            raise unsupported("nested generics like List[Optional[X]] are not supported")
        return InputType("array", elem=inner)
    raise unsupported(f"{ann.name}[...] is not a supported input type")


def _input_element(module: ModuleInfo, ann: Ann) -> InputType:
    inner = _opaque_inner(module, ann)
    return _opaque_input(module, inner) if inner is not None else input_type(module, ann)


def _opaque_input(module: ModuleInfo, ann: Ann) -> InputType:
    if (nested := _opaque_inner(module, ann)) is not None:
        return _opaque_input(module, nested)
    if (inner := optional_inner(ann)) is not None:
        return replace(_opaque_input(module, inner), nullable=True)
    if ann.base in ("list", "List"):
        return InputType("array", elem=ANY)
    return ANY


def _input_union(module: ModuleInfo, args: tuple[Ann, ...]) -> InputType:
    variants: list[InputType] = []
    nullable = False
    for arg in args:
        if arg.kind == SIMPLE and arg.name == "None":
            nullable = True
            continue
        if arg.kind == UNION or (arg.kind == GENERIC and arg.base == "Union"):
            raise unsupported("nested union inputs are not supported")
        variant = input_type(module, arg)
        if variant.kind == "union":
            raise unsupported("nested union inputs are not supported")
        variants.append(variant)
    if not variants:
        raise unsupported("union inputs must include at least one non-None type")
    if len(variants) == 1:
        return replace(variants[0], nullable=variants[0].nullable or nullable)
    for variant in variants:
        _check_union_variant(variant)
    return InputType("union", variants=tuple(variants), nullable=nullable)


def _check_union_variant(variant: InputType) -> None:
    if variant.nullable:
        raise unsupported("nested nullable variants are not supported in union inputs")
    if variant.kind == "prim" and variant.prim in ("Path", "File", "Secret"):
        raise unsupported(f"{variant.prim} is not supported in union inputs; unions may only mix JSON types")
    if variant.kind == "array" and variant.elem is not None:
        _check_union_variant(variant.elem)


# ---------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------


def output_schema(module: ModuleInfo, ann: Ann, seen: frozenset[int] = frozenset()) -> dict:
    """The JSON Schema of a return annotation (without the top-level title)."""
    if (inner := _opaque_inner(module, ann)) is not None:
        if optional_inner(inner) is not None:
            raise TypeProblem(OPTIONAL_OUTPUT)
        return _opaque_output(inner)
    if _annotated(module, ann):
        return output_schema(module, ann.args[0], seen)
    if ann.kind == SIMPLE:
        model = module.find_model(ann.name)
        if model is not None:
            return _model_schema(model, seen)
        if ann.base in ("Any", "dict", "Dict"):
            return dict(OBJECT)
        if ann.base in ("list", "List"):
            return {"type": "array", "items": dict(OBJECT)}
        if ann.base in PRIMITIVES:
            return dict(PRIMITIVES[ann.base])
        raise _unresolvable(module, ann)
    if ann.kind == UNION:
        raise _union_output(ann)
    outer = ann.base
    if outer in ("dict", "Dict"):
        if len(ann.args) != 2:
            raise unsupported("dict expects 0 or 2 type arguments")
        return {"type": "object", "additionalProperties": output_schema(module, ann.args[1], seen)}
    if outer == "Optional":
        if len(ann.args) != 1:
            raise unsupported("Optional expects exactly 1 type argument")
        raise TypeProblem(OPTIONAL_OUTPUT)
    if outer == "Union":
        raise _union_output(ann)
    if outer in ("list", "List", "Iterator", "AsyncIterator"):
        if len(ann.args) != 1:
            raise unsupported(f"{outer} expects exactly 1 type argument")
        out = {"type": "array", "items": output_schema(module, ann.args[0], seen)}
        if outer.endswith("Iterator"):
            out["x-cog-array-type"] = "iterator"
        return out
    if outer in ("ConcatenateIterator", "AsyncConcatenateIterator"):
        if len(ann.args) != 1:
            raise unsupported(f"{outer} expects exactly 1 type argument")
        elem = ann.args[0]
        if elem.kind != SIMPLE or elem.base != "str":
            raise TypeProblem(f"{outer} element type must be str, got {elem}")
        return {"type": "array", "items": {"type": "string"}, "x-cog-array-type": "iterator", "x-cog-array-display": "concatenate"}
    raise unsupported(f"{outer}[...] is not a supported output type")


def _union_output(ann: Ann) -> TypeProblem:
    if optional_inner(ann) is not None:
        return TypeProblem(OPTIONAL_OUTPUT)
    return unsupported("union types are not supported as output")


def _opaque_output(ann: Ann) -> dict:
    if ann.base in ("list", "List"):
        return {"type": "array", "items": dict(OBJECT)}
    return dict(OBJECT)


def _model_schema(model: Model, seen: frozenset[int]) -> dict:
    if id(model) in seen:
        return dict(OBJECT)  # a recursive model: Cog breaks the cycle with an opaque object
    seen = seen | {id(model)}
    properties: dict[str, dict] = {}
    required: list[str] = []
    for field in model.fields:
        try:
            prop, is_required = _field_schema(model.module, field.ann, seen)
        except TypeProblem as e:
            raise TypeProblem(f"field '{field.name}' of {model.name}: {e}", e.where or (model.module, field.lineno)) from None
        if field.key_required is not None:
            is_required = field.key_required
        if field.has_default:
            is_required = False
        prop["title"] = title_case(field.name)
        properties[field.name] = prop
        if is_required:
            required.append(field.name)
    out: dict = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def _field_schema(module: ModuleInfo, ann: Ann, seen: frozenset[int]) -> tuple[dict, bool]:
    """A model field's schema and whether it is required (Optional fields are not)."""
    if (inner := _opaque_inner(module, ann)) is not None:
        if (opt := optional_inner(inner)) is not None:
            return {**_opaque_output(opt), "nullable": True}, False
        return _opaque_output(inner), True
    if _annotated(module, ann):
        return _field_schema(module, ann.args[0], seen)
    if (inner := optional_inner(ann)) is not None:
        return {**output_schema(module, inner, seen), "nullable": True}, False
    return output_schema(module, ann, seen), True


def title_case(name: str) -> str:
    """snake_case -> Title Case, exactly as Cog (and pydantic) title fields."""
    return " ".join(p[:1].upper() + p[1:] for p in name.split("_"))
