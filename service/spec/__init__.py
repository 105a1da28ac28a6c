"""The job spec: an RLinf-style config, parsed safely and validated strictly.

A spec arrives as JSON or YAML. Parsing guards against hostile documents (size, depth,
alias bombs, duplicate keys, values JSON cannot hold: `document`); OmegaConf then resolves
`${...}` interpolations in the sections the service uses; pydantic models with strict
types and `extra="forbid"` validate them (`schema`). Keys RLinf knows but the service does
not use are accepted and reported back as `ignored_keys` (`rlinf`, `parse`).
"""

from service.spec.document import JSON_TYPES, MAX_DEPTH, MAX_NODES, YAML_TYPES, load_document
from service.spec.parse import ParsedSpec, parse_body, parse_spec
from service.spec.rlinf import RLINF_IGNORED_KEYS, TOP_LEVEL_KEYS, USED_SECTIONS
from service.spec.schema import (
    ActorSpec,
    DataSpec,
    JobSpec,
    ModelSpec,
    NameStr,
    OptimSpec,
    RunnerSpec,
)

__all__ = [
    "JSON_TYPES",
    "MAX_DEPTH",
    "MAX_NODES",
    "RLINF_IGNORED_KEYS",
    "TOP_LEVEL_KEYS",
    "USED_SECTIONS",
    "YAML_TYPES",
    "ActorSpec",
    "DataSpec",
    "JobSpec",
    "ModelSpec",
    "NameStr",
    "OptimSpec",
    "ParsedSpec",
    "RunnerSpec",
    "load_document",
    "parse_body",
    "parse_spec",
]
