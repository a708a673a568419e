"""Predictor signatures with golden schemas. Most are taken from Cog's own tests
(pkg/schema/python/parser_test.go, pkg/schema/openapi_spec_test.go and the
integration-tests/*.txtar files); the Cog test each mirrors is named in `cog`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # predict.py
    predict: str | None = "predict.py:Predictor"
    train: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # other project files
    cog: str = ""  # the Cog test this mirrors


def _cls(signature: str, imports: str = "from cog import BasePredictor, Input, Path", *, ret: str = "str", extra: str = "") -> str:
    return f"{imports}\n{extra}\n\nclass Predictor(BasePredictor):\n    def run(self, {signature}) -> {ret}:\n        pass\n"


CASES = [
    # -- targets ------------------------------------------------------------------------
    Case("run_method", _cls("s: str"), cog="TestSimpleStringRunner"),
    Case("predict_method_legacy", "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def setup(self):\n        pass\n\n    def predict(self, s: str) -> str:\n        return s\n", cog="TestLegacyPredictMethodFallback"),
    Case("run_preferred_over_predict", "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def run(self, s: str) -> str:\n        return s\n\n    def predict(self, s: int) -> int:\n        return s\n", cog="TestRunnerWithBothRunAndPredictUsesRun"),
    Case("inherited_run", "from cog import BasePredictor\n\nclass Base(BasePredictor):\n    def run(self, n: int) -> int:\n        return n\n\nclass Predictor(Base):\n    def setup(self):\n        pass\n", cog="TestRunnerWithInheritedRun"),
    Case("plain_function", "from cog import Input\n\ndef run(text: str = Input(default=\"world\")) -> str:\n    return text\n", predict="predict.py:run", cog="TestStandaloneFunction"),
    Case("async_run", "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    async def run(self, s: str) -> str:\n        return s\n", cog="TestConcurrentDecoratorUndecoratedHasNoMax"),
    Case("no_inputs", _cls(""), cog="TestNoInputPredictor"),
    Case("train_function", "from cog import Input, Path\n\ndef train(n: int, lr: float = 0.001) -> Path:\n    pass\n", predict=None, train="predict.py:train", cog="TestTrainMode"),
    Case("predict_and_train", "from cog import BasePredictor, Input, Path\n\nclass Predictor(BasePredictor):\n    def run(self, prompt: str) -> str:\n        pass\n\ndef train(steps: int = Input(default=100, ge=1), mode: str = Input(default=\"lora\", choices=[\"lora\", \"full\"])) -> Path:\n    pass\n", train="predict.py:train", cog="GenerateCombined / MergeSchemas"),
    # -- input types --------------------------------------------------------------------
    Case("primitives", _cls("text: str, count: int, scale: float, flag: bool, image: Path"), cog="TestAllPrimitiveInputTypes / build_openapi_schema.txtar"),
    Case("file_and_secret", _cls("f: File, token: Secret", "from cog import BasePredictor, File, Secret"), cog="TestFileType / TestSecretType"),
    Case("secret_default_none", _cls('prompt: str = Input(description="Text prompt"), api_key: Secret = Input(description="Your API key", default=None), api_key_required: Secret = Input(description="Required API key"), seed: int = Input(description="Random seed", default=None)', "from cog import BasePredictor, Input, Secret"), cog="static_schema_secret_optional.txtar"),
    Case("list_inputs", _cls("paths: list[Path], tags: List[str] = Input(default=[\"a\", \"b\"])", "from typing import List\nfrom cog import BasePredictor, Input, Path"), cog="TestListPathInput / TestTypingListCapitalL"),
    Case("optional_inputs", _cls("f: Optional[str], a: Optional[str] = Input(default=None), b: int | None = None, c: Union[str, None] = None, d: Optional[List[str]] = None, e: list[Path] | None = Input(default=None)", "from typing import List, Optional, Union\nfrom cog import BasePredictor, Input, Path"), cog="TestOptionalInput* / TestOptionalListPipeNone / TestOptionalInputOpenAPINotRequired"),
    Case("union_inputs", _cls("a: str | float, d: str | float | None, b: Union[int, list[str]] = 3, c: str | float | None = Input(default=None)", "from typing import Union\nfrom cog import BasePredictor, Input"), cog="TestUnionInputStringFloat / TestUnionInputNullableWithoutDefaultOpenAPI"),
    Case("dict_and_any_inputs", _cls("a: dict, b: Dict[str, Any], c: dict[str, int] = {}, d: list[dict] = [], e: Optional[dict] = None, f: Any = None", "from typing import Any, Dict, Optional\nfrom cog import BasePredictor"), cog="TestBareDictInput / TestDictStrAnyInput / TestDictInputWithDefault"),
    Case("typeddict_input", "from typing import TypedDict\nfrom cog import BasePredictor\n\nclass Payload(TypedDict):\n    name: str\n    count: int\n\nclass Predictor(BasePredictor):\n    def run(self, data: Payload, more: list[Payload] | None = None) -> str:\n        pass\n", cog="TestTypedDictInput / TestOptionalListOfTypedDictInput"),
    Case("opaque_input", _cls("value: Annotated[ThirdPartyType, Opaque], values: Annotated[List[ThirdPartyType], Opaque]", "from typing import Annotated, List\nfrom cog import BasePredictor, Opaque\nfrom some_pip_package.deep import ThirdPartyType"), cog="TestOpaqueImportedInput / TestOpaqueImportedListInput"),
    # -- Input() keywords ---------------------------------------------------------------
    Case("input_constraints", _cls('image: Path = Input(description="Grayscale input image"), scale: float = Input(description="Factor to scale image by", ge=0, le=10, default=1.5), text: str = Input(description="Input text", min_length=1, max_length=100, regex="^[a-z]+$")', ret="Path"), cog="TestMultipleInputsWithDefaults / TestInputConstraints"),
    Case("plain_defaults", _cls('flag: bool = False, count: int = 0, ratio: float = 0.0, name: str = "", neg: int = -3, temp: float = Input(default=-1.5), x: float = 1.0'), cog="TestDefaultFalse / TestDefaultZeroInt / TestNegativeNumberDefault"),
    Case("static_schema_gen", "from cog import BasePredictor, Input, Path\n\nclass Predictor(BasePredictor):\n    def predict(\n        self,\n        text: str,\n        image: Path,\n        count: int = Input(description=\"Number of iterations\", default=5, ge=1, le=100),\n        mode: str = Input(description=\"Quality mode\", default=\"fast\", choices=[\"fast\", \"balanced\", \"quality\"]),\n    ) -> str:\n        pass\n", cog="static_schema_gen.txtar"),
    Case("choices_int", _cls("steps: int = Input(choices=list(STEP_LABELS.keys()), default=1), scale: float = Input(choices=[0.5, 1.0, 2.0])", extra='STEP_LABELS = {1: "one", 2: "two", 4: "four"}'), cog="TestChoicesIntegerDictKeys / TestIntegerChoices"),
    Case("choices_constants", _cls("v: str = Input(choices=MY_CHOICES), ar: str = Input(choices=list(RATIOS.keys()), default=\"1:1\"), m: str = Input(choices=list(LABELS.values())), s: str = Input(choices=list(SIZES.keys()) + [\"custom\"]), x: str = Input(choices=BASE + EXTRA)", extra='MY_CHOICES = ["x", "y", "z"]\nRATIOS = {"1:1": (1024, 1024), "16:9": (1344, 768)}\nLABELS = {"fast": "Fast Mode", "slow": "Slow Mode"}\nSIZES = {"small": 256, "large": 1024}\nBASE = ["a", "b"]\nEXTRA = ["c"]'), cog="TestChoicesModuleLevelListVar / ListDictKeys / ListDictValues / DictKeysPlusLiteral / ConcatTwoVars"),
    Case("choices_imported_constant", _cls("size: str = Input(choices=SIZES, default=DEFAULT_SIZE), q: str = Input(choices=consts.QUALITIES)", "from cog import BasePredictor, Input\nfrom .consts import SIZES, DEFAULT_SIZE\nimport consts"), files={"consts.py": 'SIZES = ["512", "1024"]\nDEFAULT_SIZE = "512"\nQUALITIES = ("low", "high")\n'}, cog="(ociasm: choices from a local import)"),
    Case("module_level_defaults", _cls("ar: str = Input(default=DEFAULT_RATIO, description=STEP_DESC), steps: int = Input(default=DEFAULT_STEPS), tags: list[str] = Input(default=DEFAULT_TAGS), text: str = MY_DEFAULT", extra='DEFAULT_RATIO = "1:1"\nDEFAULT_STEPS = 50\nDEFAULT_TAGS = ["a", "b"]\nMY_DEFAULT = "hello"\nSTEP_DESC = "Number of denoising steps. 4 is recommended."'), cog="TestDefaultModuleLevel* / TestDescriptionFromModuleLevelVar"),
    Case("deprecated_and_accept", _cls('old_param: str = Input(deprecated=True, default="x"), image: Path = Input(description="An image", accept="image/*"), audio: Path = Input(accept="audio/wav,audio/mp3"), f: File = Input(accept="image/png")', "from cog import BasePredictor, File, Input, Path"), cog="TestDeprecatedInput / TestAccept*"),
    Case("input_registry", "from dataclasses import dataclass\nfrom cog import BasePredictor, Input\n\nRATIOS = {\"1:1\": (1024, 1024), \"16:9\": (1344, 768)}\n\n@dataclass(frozen=True)\nclass Inputs:\n    ar = Input(description=\"Aspect ratio\", choices=list(RATIOS.keys()), default=\"1:1\")\n\n    @staticmethod\n    def guidance(default: float) -> Input:\n        return Input(description=\"Guidance scale\", ge=0.0, le=20.0, default=default)\n\nclass Predictor(BasePredictor):\n    def run(self, ar: str = Inputs.ar, guidance_scale: float = Inputs.guidance(7.5)) -> str:\n        pass\n", cog="TestInputRegistryAttribute / TestInputRegistryMethod"),
    Case("parameter_order", _cls("alpha: str, beta: int, gamma: float = Input(default=1.0), *, delta: bool = True"), cog="TestParameterOrdering"),
    # -- outputs ------------------------------------------------------------------------
    Case("output_path", _cls("n: int", ret="Path"), cog="TestOutputPath"),
    Case("output_list_path", _cls("n: int", ret="list[Path]"), cog="TestListOutput"),
    Case("output_bare_dict_and_list", _cls("n: int", ret="dict"), cog="TestDictOutput"),
    Case("output_bare_list", _cls("n: int", ret="list"), cog="TestBareListOutput"),
    Case("output_nested_dict", _cls("n: int", ret="dict[str, list[dict[str, int]]]"), cog="TestListOfDictOfListOutput / TestParameterizedDictOutput"),
    Case("output_basemodel", "from typing import Optional\nfrom cog import BaseModel, BasePredictor\n\nclass Result(BaseModel):\n    text: str\n    confidence: float = 0.0\n    error: Optional[str] = None\n    tags: list[str]\n    meta: dict[str, int]\n\nclass Predictor(BasePredictor):\n    def run(self, s: str) -> Result:\n        pass\n", cog="TestBaseModelOutputWithDefaults / TestPydanticOutputWithOptionalField"),
    Case("output_pydantic_nested", "from pydantic import BaseModel\nfrom cog import BasePredictor\n\nclass Inner(BaseModel):\n    value: int\n    label: str\n\nclass Outer(BaseModel):\n    inner: Inner\n    name: str\n\nclass Predictor(BasePredictor):\n    def run(self, x: str) -> list[Outer]:\n        pass\n", cog="TestNestedBaseModelField / TestListOfBaseModelOutput"),
    Case("output_recursive_model", "from typing import Optional\nfrom pydantic import BaseModel\nfrom cog import BasePredictor\n\nclass TreeNode(BaseModel):\n    value: str\n    child: Optional[\"TreeNode\"] = None\n\nclass Predictor(BasePredictor):\n    def run(self, x: str) -> \"TreeNode\":\n        pass\n", cog="TestRecursiveBaseModelDoesNotStackOverflow / TestForwardReferenceOutput"),
    Case("output_model_from_other_file", "from cog import BasePredictor\nfrom output_types import Output\n\nclass Predictor(BasePredictor):\n    def predict(self, prompt: str) -> Output:\n        pass\n", files={"output_types.py": "from pydantic import BaseModel\n\nclass Output(BaseModel):\n    text: str\n    score: float\n    tags: list[str]\n"}, cog="multi_file_schema.txtar"),
    Case("output_typeddict", "from typing import Required, TypedDict\nfrom cog import BasePredictor\n\nclass Base(TypedDict):\n    name: str\n\nclass Payload(Base, total=False):\n    count: int\n    value: Required[int | None]\n\nclass Predictor(BasePredictor):\n    def run(self, x: str) -> dict[str, Payload]:\n        pass\n", cog="TestTypedDictOutputTotalFalse / TestTypedDictOutputRequiredOptionalField / TestInheritedTypedDictOutput"),
    Case("output_typeddict_notrequired", "from typing import NotRequired, TypedDict\nfrom cog import BasePredictor\n\nclass Payload(TypedDict):\n    name: str\n    count: NotRequired[int]\n\nclass Predictor(BasePredictor):\n    def run(self, x: str) -> Payload:\n        pass\n", cog="TestTypedDictOutputNotRequiredField"),
    Case("output_iterator", "from typing import Iterator\nfrom cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def run(self, count: int) -> Iterator[str]:\n        yield 'x'\n", cog="TestIteratorOutput / TestOutputIterator"),
    Case("output_async_iterator_streaming", "from typing import AsyncIterator\nimport cog\n\nclass Predictor(cog.BasePredictor):\n    @cog.streaming\n    async def run(self, s: str) -> AsyncIterator[dict[str, int]]:\n        yield {}\n", cog="TestAsyncIteratorOutput / TestStreamingDecoratorQualifiedOptIn"),
    Case("output_concatenate_iterator", "from cog import BasePredictor, ConcatenateIterator, streaming as stream\n\nclass Predictor(BasePredictor):\n    @stream()\n    def run(self, prompt: str) -> ConcatenateIterator[str]:\n        yield 'a'\n", cog="TestConcatenateIteratorOutput / TestStreamingDecoratorImportedAliasOptIn"),
    Case("concurrent_max", "import cog as c\n\nclass Predictor(c.BasePredictor):\n    @c.concurrent(max=4)\n    async def run(self, prompt: str) -> str:\n        return prompt\n", cog="TestConcurrentDecoratorQualifiedAliasMax"),
    Case("concurrent_bare", "from cog import BasePredictor, concurrent\n\nclass Predictor(BasePredictor):\n    @concurrent\n    def run(self) -> str:\n        return 'x'\n", cog="TestConcurrentDecoratorBareDefaultsToOne"),
    Case("decorators_not_from_cog", "from other import streaming, concurrent\nfrom typing import Iterator\nfrom cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    @streaming\n    @concurrent(max=4)\n    async def run(self) -> Iterator[str]:\n        yield 'x'\n", cog="TestStreamingDecoratorIgnoredWhenNotFromCog / TestConcurrentDecoratorIgnoredWhenNotFromCog"),
    # -- errors -------------------------------------------------------------------------
    Case("err_default_factory", _cls("items: list[str] = Input(default_factory=list)"), cog="TestDefaultFactoryError"),
    Case("err_choices_call", _cls("my_param: str = Input(choices=get_choices())"), cog="TestChoicesArbitraryCallErrors / TestChoicesErrorIncludesParamName"),
    Case("err_choices_not_list", _cls("x: str = Input(choices=NOT_A_LIST)", extra='NOT_A_LIST = "oops"'), cog="TestChoicesVarNotAListErrors"),
    Case("err_choices_comprehension", _cls('x: str = Input(choices=[f"{i}x" for i in range(5)])'), cog="TestChoicesListComprehensionErrors"),
    Case("err_unsupported_input", _cls("x: set[str]"), cog="(unsupported input generic)"),
    Case("err_unresolvable_import", _cls("x: str", "from cog import BasePredictor\nimport torch", ret="torch.Tensor"), cog="TestUnresolvableTypeTorchTensor"),
    Case("err_unknown_type", _cls("x: Foo"), cog="TestUnresolvableUndefinedTypeError"),
    Case("err_union_path", _cls("value: Path | str"), cog="TestUnionInputRejectsPathString"),
    Case("err_optional_output", _cls("s: str", "from typing import Optional\nfrom cog import BasePredictor", ret="Optional[str]"), cog="TestOptionalOutputErrors"),
    Case("err_optional_output_pipe", _cls("s: str", ret="str | None"), cog="TestOptionalOutputPipeNoneErrors"),
    Case("err_union_output", _cls("s: str", ret="str | int"), cog="resolveUnionSchemaType"),
    Case("err_concatenate_not_str", _cls("n: int", "from cog import BasePredictor, ConcatenateIterator", ret="ConcatenateIterator[int]"), cog="TestConcatenateIteratorNotStrErrors"),
    Case("err_missing_class", "from cog import BasePredictor\n\nclass Other(BasePredictor):\n    def run(self, s: str) -> str:\n        pass\n", cog="TestPredictorNotFound"),
    Case("err_missing_method", "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def setup(self) -> None:\n        pass\n", cog="TestRunnerWithNoRunOrPredictErrors"),
    Case("err_missing_train", "from cog import BasePredictor\n\nclass Trainer:\n    def run(self) -> str:\n        pass\n", predict=None, train="predict.py:Trainer", cog="findNamedMethodInClass"),
    Case("err_syntax", "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def run(self, s: str) -> str\n        return s\n", cog="(ociasm: syntax error)"),
    Case("err_missing_return", _cls("s: str").replace(" -> str", ""), cog="TestMissingReturnType"),
    Case("err_missing_annotation", _cls('s="hello"'), cog="TestMissingTypeAnnotation"),
    Case("err_unresolvable_default", _cls("text: str = UNDEFINED_VAR"), cog="TestDefaultUndefinedVarPlainErrors"),
    Case("err_accept_on_str", _cls('name: str = Input(accept="image/*")'), cog="TestAcceptOnNonFileTypeErrors"),
    Case("err_streaming_needs_iterator", "from cog import BasePredictor, streaming\n\nclass Predictor(BasePredictor):\n    @streaming\n    def run(self) -> str:\n        return 'x'\n", cog="TestStreamingDecoratorRequiresIteratorOutput"),
    Case("err_concurrent_needs_async", "from cog import BasePredictor, concurrent\n\nclass Predictor(BasePredictor):\n    @concurrent(max=2)\n    def run(self) -> str:\n        return 'x'\n", cog="TestConcurrentDecoratorRequiresAsyncForMaxGreaterThanOne"),
    Case("err_concurrent_non_literal", "from cog import BasePredictor, concurrent\n\nMAX = 2\n\nclass Predictor(BasePredictor):\n    @concurrent(max=MAX)\n    async def run(self) -> str:\n        return 'x'\n", cog="TestConcurrentDecoratorRejectsNonLiteralMax"),
    Case("err_model_field_notrequired", "from typing import NotRequired\nfrom pydantic import BaseModel\nfrom cog import BasePredictor\n\nclass Output(BaseModel):\n    count: NotRequired[int]\n\nclass Predictor(BasePredictor):\n    def run(self, x: str) -> Output:\n        pass\n", cog="TestNonTypedDictNotRequiredQualifierErrors"),
    Case("err_union_constraints", _cls("v: int | str = Input(ge=1)"), cog="ValidateInputField"),
    Case("err_bad_ref", "", predict="predict.py", cog="TestParsePredictRef"),
]
