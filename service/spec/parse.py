"""Parsing a decoded spec: interpolations resolved, RLinf's ignored keys split off,
typos named, the rest validated against the schema."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError

from service.errors import InvalidSpec
from service.spec.document import load_document
from service.spec.rlinf import RLINF_IGNORED_KEYS, TOP_LEVEL_KEYS, USED_SECTIONS
from service.spec.schema import JobSpec, Section

# A spec must never read the server's environment (tokens, database passwords).
if OmegaConf.has_resolver("oc.env"):
    OmegaConf.clear_resolver("oc.env")


@dataclass(frozen=True)
class ParsedSpec:
    """A validated spec and the keys it carried that loraplane does not act on."""

    spec: JobSpec
    ignored_keys: list[str]


def _plain(value: Any) -> bool:
    """Nothing for OmegaConf to do: string keys, JSON values, no `${` in any string (an
    interpolation, or an escaped one OmegaConf would unescape)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and "${" not in k and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, str):
        return "${" not in value
    return value is None or isinstance(value, bool | int | float)


def _resolve(document: dict[str, Any]) -> dict[str, Any]:
    """Resolve `${...}` interpolations inside the used sections (others are left alone). A
    plain document (most of them) is already resolved: OmegaConf would build and walk a
    config of it to give back equal values, a third of a submit's time."""
    if _plain(document):
        return document
    try:
        config = OmegaConf.create(document)
        return {
            key: (
                OmegaConf.to_container(config[key], resolve=True)
                if key in USED_SECTIONS and OmegaConf.is_config(config[key])
                else document[key]
            )
            for key in document
        }
    except OmegaConfBaseException as exc:
        message = str(exc).splitlines()[0]
        raise InvalidSpec(f"cannot resolve interpolation: {message}") from None


def _model_fields(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Field name -> nested section model (or None for a leaf)."""
    out: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        out[name] = ann if isinstance(ann, type) and issubclass(ann, Section) else None
    return out


def _split_known(
    section: dict[str, Any], model: type[BaseModel], path: str, ignored: list[str], errors: list
) -> dict[str, Any]:
    """Keep the keys the model knows; move RLinf's other keys to `ignored`; flag typos."""
    fields = _model_fields(model)
    rlinf = RLINF_IGNORED_KEYS.get(path, frozenset())
    kept: dict[str, Any] = {}
    for key, value in section.items():
        where = f"{path}.{key}"
        if key in fields:
            sub = fields[key]
            if sub is not None and isinstance(value, dict):
                value = _split_known(value, sub, where, ignored, errors)
            kept[key] = value
        elif key in rlinf:
            ignored.append(where)
        else:
            close = difflib.get_close_matches(key, list(fields) + sorted(rlinf), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append({"loc": where, "msg": f"unknown key {key!r} in {path}{hint}",
                           "type": "unknown_key"})
    return kept


def _message(err: Any) -> str:
    """Pydantic's message, naming the offending value for type errors (types are strict)."""
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"].endswith("_type") or err["type"] in {"literal_error", "enum"}:
        value = err.get("input")
        msg += f" (got {type(value).__name__} {value!r}; types are strict)"
    return msg


def parse_spec(document: dict[str, Any]) -> ParsedSpec:
    """Validate a decoded spec document against the spec format (README, "The job spec")."""
    ignored: list[str] = []
    errors: list[dict[str, Any]] = []
    resolved = _resolve(document)
    kept: dict[str, Any] = {}
    for key, value in resolved.items():
        if key in TOP_LEVEL_KEYS:
            section = _model_fields(JobSpec)[key]
            if section is not None and isinstance(value, dict):
                value = _split_known(value, section, key, ignored, errors)
            kept[key] = value
            continue
        close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.8)
        if close and close[0] not in resolved:
            errors.append({"loc": key, "msg": f"unknown top-level key {key!r}; did you mean "
                           f"{close[0]!r}?", "type": "unknown_key"})
        else:
            ignored.append(key)
    if errors:
        raise InvalidSpec(errors[0]["msg"], errors=errors)
    try:
        spec = JobSpec.model_validate(kept)
    except ValidationError as exc:
        field_errors = [
            {
                "loc": ".".join(str(p) for p in err["loc"]),
                "msg": _message(err),
                "type": err["type"],
            }
            for err in exc.errors(include_url=False)
        ]
        first = field_errors[0]
        raise InvalidSpec(f"{first['loc']}: {first['msg']}", errors=field_errors) from None
    return ParsedSpec(spec=spec, ignored_keys=sorted(ignored))


def parse_body(body: bytes, content_type: str | None, max_bytes: int) -> ParsedSpec:
    """Decode and validate a spec body in one step."""
    return parse_spec(load_document(body, content_type, max_bytes))
