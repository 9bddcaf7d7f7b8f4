"""The ten resource kinds: Workspace, PolicyPack, Budget, Registry, Connector, SecretRef, Model,
Blueprint, Pipeline and Run. Shapes that SPEC section 11 fixes are kept exactly; the rest is
documented in `docs/concepts.md` and `specs/resource-envelope.md`. The Workspace lives in
`workspace.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from reconciler.model.base import (
    NAMED_KEYS,
    Closed,
    Host,
    Name,
    OneOf,
    Resource,
    Text,
    one_of_schema,
)
from reconciler.model.names import (
    KIND_NAMES,
    VERSION_PATTERN,
    Action,
    DecisionKind,
    Kind,
    Risk,
)
from reconciler.model.workspace import OnExceed, Period, Workspace
from reconciler.patterncheck import pattern_problem

VAULT_REF_PATTERN = r"^vault://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""`vault://NAME`: NAME is the secret's name in the vault (vault.types.NAME_PATTERN), which
both providers can hold (Azure Key Vault allows letters, digits and dashes only)."""
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
Count = Annotated[int, Field(ge=0)]


# --- PolicyPack ------------------------------------------------------------------------------


class Increase(Closed):
    percent_over: Annotated[float, Field(ge=0)]


class ValueMatch(Closed):
    field: Annotated[str, Field(min_length=1, max_length=200)]
    matches: Annotated[
        str, Field(min_length=1, max_length=1000, json_schema_extra={"format": "regex"})
    ]

    @field_validator("matches")
    @classmethod
    def _safe(cls, value: str) -> str:
        # `where` patterns run on every desired value at plan time: no exponential ones.
        problem = pattern_problem(value)
        if problem is not None and problem.kind != "empty":
            raise ValueError(problem.text.replace("regex ", "matches ", 1))
        return value


class RuleMatch(Closed):
    """When a rule applies; every condition given must hold (an empty list means any)."""

    kinds: list[Kind] = []
    actions: list[Action] = []
    fields: list[Annotated[str, Field(min_length=1, max_length=200)]] = []
    risk: list[Risk] = []
    increase: Increase | None = None
    grows: bool | None = None
    tightens: bool | None = None
    bootstrap: bool | None = None
    where: list[ValueMatch] = []


class ApprovalRequirement(Closed):
    count: Annotated[int, Field(ge=1, le=10)] = 1
    groups: Annotated[list[Name], Field(min_length=1)]
    distinct: bool = False
    exclude_author: bool = False


class Rule(Closed):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"decision": {"const": "approval"}}, "required": ["decision"]},
            "then": {"required": ["approvals"], "properties": {"approvals": {"type": "object"}}},
        }
    )

    name: Name
    description: Text = ""
    match: RuleMatch = RuleMatch()
    decision: DecisionKind
    approvals: ApprovalRequirement | None = None

    @model_validator(mode="after")
    def _approval_needs_requirement(self) -> Rule:
        if self.decision == "approval" and self.approvals is None:
            raise ValueError("decision 'approval' needs approvals: {count, groups}")
        return self


class RedactionPattern(Closed):
    name: Name
    regex: Annotated[
        str, Field(min_length=1, max_length=1000, json_schema_extra={"format": "regex"})
    ]

    @field_validator("regex")
    @classmethod
    def _safe(cls, value: str) -> str:
        problem = pattern_problem(value)
        if problem is not None:
            raise ValueError(problem.text)
        return value


class ToolRules(Closed):
    deny: list[Annotated[str, Field(min_length=1)]] = []
    require_approval: list[Annotated[str, Field(min_length=1)]] = []


class EgressRules(Closed):
    allow_hosts: list[Host] = []
    deny_hosts: list[Host] = []


class RateLimits(Closed):
    calls_per_minute: Annotated[int, Field(ge=1)] | None = None
    calls_per_hour: Annotated[int, Field(ge=1)] | None = None


class PolicyPackSpec(Closed):
    description: Text = ""
    extends: Name | None = None
    rules: list[Rule] = []
    egress: EgressRules = EgressRules()
    tools: ToolRules = ToolRules()
    redaction: list[RedactionPattern] = []
    rate_limits: RateLimits = RateLimits()


class PolicyPack(Resource):
    kind: Literal["PolicyPack"]
    spec: PolicyPackSpec


# --- Budget ----------------------------------------------------------------------------------


class BudgetScope(OneOf):
    model_config = ConfigDict(json_schema_extra=one_of_schema("workspace", "connector", "pipeline"))

    workspace: Literal[True] | None = None
    connector: Name | None = None
    pipeline: Name | None = None


class BudgetLimits(Closed):
    # SPEC section 11 fixes these keys in snake_case.
    model_config = ConfigDict(alias_generator=None, json_schema_extra={"minProperties": 1})

    cost_usd: Annotated[float, Field(ge=0)] | None = None
    tokens: Count | None = None
    calls: Count | None = None
    wall_seconds: Count | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> BudgetLimits:
        if not self.model_fields_set:
            raise ValueError("set at least one of: cost_usd, tokens, calls, wall_seconds")
        return self


class BudgetSpec(Closed):
    description: Text = ""
    scope: BudgetScope
    period: Period | None = None
    limits: BudgetLimits
    on_exceed: OnExceed | None = None


class Budget(Resource):
    kind: Literal["Budget"]
    spec: BudgetSpec


# --- Registry --------------------------------------------------------------------------------

REGISTRY_URL_PATTERN = r"^(https?://[^\s]+|file:[^\s]+)$"


class RegistrySpec(Closed):
    description: Text = ""
    url: Annotated[str, Field(pattern=REGISTRY_URL_PATTERN, max_length=2048)]
    root: Annotated[str, Field(pattern=DIGEST_PATTERN)]


class Registry(Resource):
    kind: Literal["Registry"]
    spec: RegistrySpec


# --- Connector -------------------------------------------------------------------------------


PACKAGE_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
PYPI_PACKAGE_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$"
RepoPath = Annotated[str, Field(min_length=1, max_length=1024)]
"""A relative path inside the repository (checked by the loader: no `..`, not absolute)."""


class RegistryPackage(Closed):
    """`source.registry`: a package of a declared Registry, `publisher/name`."""

    name: Name
    package: Annotated[str, Field(pattern=PACKAGE_PATTERN, max_length=127)]


class PypiPackage(Closed):
    """`source.pypi`: a PyPI distribution installed from a hash lock (`cloned connectors lock`)."""

    package: Annotated[str, Field(pattern=PYPI_PACKAGE_PATTERN)]
    lock: RepoPath
    entry_point: Annotated[str, Field(pattern=PYPI_PACKAGE_PATTERN)] | None = None


class ConnectorSource(OneOf):
    model_config = ConfigDict(
        json_schema_extra=one_of_schema("registry", "pypi", "path", "builtin")
    )

    registry: RegistryPackage | None = None
    pypi: PypiPackage | None = None
    path: RepoPath | None = None
    builtin: Name | None = None


class ToolSelection(Closed):
    allow: list[Annotated[str, Field(min_length=1)]] = []
    deny: list[Annotated[str, Field(min_length=1)]] = []


class ConnectorEgress(Closed):
    allow_hosts: list[Host] = []
    insecure_hosts: list[Host] = []
    """Hosts of `allowHosts` this connector may reach over plain http (https only otherwise)."""


class ConnectorLimits(Closed):
    rate_per_minute: Annotated[int, Field(ge=1)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30
    concurrency: Annotated[int, Field(ge=1, le=64)] = 1


class SandboxPath(Closed):
    """A folder of this machine the connector may see inside its sandbox (specs/sandbox.md)."""

    path: Annotated[str, Field(pattern=r"^(/|~/)[^\x00]*$", max_length=4096)]
    write: bool = False


class Sandbox(Closed):
    profile: Literal["none", "standard", "strict"] = "standard"
    paths: Annotated[list[SandboxPath], Field(max_length=64)] = []


class ConnectorSpec(Closed):
    description: Text = ""
    source: ConnectorSource
    version: Annotated[str, Field(pattern=VERSION_PATTERN)]
    publisher: Name
    enabled: bool = True
    allow_downgrade: bool = False
    tools: ToolSelection = ToolSelection()
    egress: ConnectorEgress = ConnectorEgress()
    secrets: list[Name] = []
    limits: ConnectorLimits = ConnectorLimits()
    sandbox: Sandbox = Sandbox()


class Connector(Resource):
    kind: Literal["Connector"]
    spec: ConnectorSpec


# --- SecretRef -------------------------------------------------------------------------------


class SecretUsers(Closed):
    connectors: list[Name] = []
    pipelines: list[Name] = []


class SecretRefSpec(Closed):
    description: Text = ""
    ref: Annotated[str, Field(pattern=VAULT_REF_PATTERN)]
    used_by: SecretUsers = SecretUsers()


class SecretRef(Resource):
    kind: Literal["SecretRef"]
    spec: SecretRefSpec


# --- Model -----------------------------------------------------------------------------------

MODEL_URL_PATTERN = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$"
"""An http(s) base URL without credentials, query or fragment (`http://127.0.0.1:8000/v1`)."""
MODEL_NAME_PATTERN = r"^[^\s\x00-\x1f\x7f]+$"
"""The provider's model name (`gpt-4o-mini`, `qwen2.5:7b`, `meta-llama/Llama-3.1-8B`)."""


class ModelPrice(Closed):
    """USD per million tokens; a missing price is 0 (the Model's calls then cost nothing)."""

    input_per_m_tok: Annotated[float, Field(ge=0)] = 0
    output_per_m_tok: Annotated[float, Field(ge=0)] = 0


class ModelSpec(Closed):
    """A chat model endpoint agents' data is sent to (docs/models.md, specs/models.md)."""

    description: Text = ""
    api: Literal["openai-chat"]
    base_url: Annotated[str, Field(pattern=MODEL_URL_PATTERN, max_length=2048)]
    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN, min_length=1, max_length=256)]
    api_key: Name | None = None
    """The SecretRef whose secret is the bearer token, or None for an endpoint without one."""
    price: ModelPrice | None = None


class Model(Resource):
    kind: Literal["Model"]
    spec: ModelSpec


# --- Blueprint -------------------------------------------------------------------------------


class BlueprintSource(OneOf):
    model_config = ConfigDict(json_schema_extra=one_of_schema("builtin", "path"))

    builtin: Name | None = None
    path: Annotated[str, Field(min_length=1, max_length=1024)] | None = None


class BlueprintSpec(Closed):
    description: Text = ""
    source: BlueprintSource
    parameters: dict[str, JsonValue] = {}


class Blueprint(Resource):
    kind: Literal["Blueprint"]
    spec: BlueprintSpec


# --- Pipeline --------------------------------------------------------------------------------


class PipelineInput(Closed):
    type: Literal["string", "number", "integer", "boolean", "object", "array"] = "string"
    required: bool = False
    default: JsonValue = None
    description: Text = ""


class ToolCall(Closed):
    connector: Name
    name: Annotated[str, Field(min_length=1, max_length=200)]


class Gate(Closed):
    count: Annotated[int, Field(ge=1, le=10)] = 1
    groups: Annotated[list[Name], Field(min_length=1)]


class ModelCall(Closed):
    """A `model` step: one chat completion from the Model `name` (SPEC section 11)."""

    name: Name
    prompt: Annotated[str, Field(min_length=1, max_length=100_000)]
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)]
    system: Annotated[str, Field(max_length=100_000)] | None = None
    schema_: dict[str, JsonValue] | None = Field(default=None, alias="schema")
    """A JSON Schema the output must match: the model is asked for structured output."""

    @field_validator("schema_")
    @classmethod
    def _a_schema(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if value is not None:
            # Imported only for a step that sets a schema: most loads never pay for jsonschema.
            import jsonschema
            from jsonschema import validators

            checker = validators.validator_for(value, default=jsonschema.Draft202012Validator)
            try:
                checker.check_schema(value)
            except jsonschema.SchemaError as exc:
                where = "/".join(str(part) for part in exc.absolute_path) or "(top)"
                raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from None
        return value


class Step(Closed):
    # Exactly one of `tool`, `skill` and `model`; the other keys are optional.
    model_config = ConfigDict(json_schema_extra=one_of_schema("tool", "skill", "model"))

    name: Name
    description: Text = ""
    tool: ToolCall | None = None
    skill: Annotated[str, Field(pattern=r"^[a-z0-9]+(\.[a-z0-9-]+)*$")] | None = None
    model: ModelCall | None = None
    with_: dict[str, JsonValue] = Field(default={}, alias="with")
    gate: Gate | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=86400)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        if sum(part is not None for part in (self.tool, self.skill, self.model)) != 1:
            raise ValueError("set exactly one of: tool, skill, model")
        return self


class PipelineOutput(Closed):
    from_: Annotated[str, Field(min_length=1, max_length=200)] = Field(alias="from")
    description: Text = ""


class PipelineSpec(Closed):
    description: Text = ""
    inputs: Annotated[dict[Name, PipelineInput], Field(json_schema_extra=NAMED_KEYS)] = {}
    budget: Name | None = None
    steps: Annotated[list[Step], Field(min_length=1)]
    outputs: Annotated[dict[Name, PipelineOutput], Field(json_schema_extra=NAMED_KEYS)] = {}


class Pipeline(Resource):
    kind: Literal["Pipeline"]
    spec: PipelineSpec


# --- Run -------------------------------------------------------------------------------------


class RunSpec(Closed):
    description: Text = ""
    pipeline: Name
    inputs: Annotated[dict[Name, JsonValue], Field(json_schema_extra=NAMED_KEYS)] = {}


class Run(Resource):
    kind: Literal["Run"]
    spec: RunSpec


KINDS: dict[str, type[Resource]] = {
    model.model_fields["kind"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        Workspace,
        PolicyPack,
        Budget,
        Registry,
        Connector,
        SecretRef,
        Model,
        Blueprint,
        Pipeline,
        Run,
    )
}
"""Every kind by its `kind:` value, in the order documents of that kind are applied."""

assert tuple(KINDS) == KIND_NAMES, "model.names.KIND_NAMES must list the kinds in this order"
