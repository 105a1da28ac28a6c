"""Hostile-document loading: a spec body (JSON or YAML) decoded into a plain dict.

Guards against size, depth, alias bombs, duplicate keys and values JSON cannot hold.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

from service.errors import InvalidSpec, PayloadTooLarge, UnsupportedMediaType
from service.media import normalise_media_type

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
MAX_DEPTH = 32
MAX_NODES = 100_000


class _SafeYamlLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, reads `1e-5` as a float, leaves dates as text."""


_SafeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SafeYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: _SafeYamlLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str):
            raise InvalidSpec(f"YAML key {key!r} (line {key_node.start_mark.line + 1}) is not a string")
        if key in result:
            raise InvalidSpec(f"YAML key {key!r} appears twice (line {key_node.start_mark.line + 1})")
        result[key] = loader.construct_object(value_node, deep=deep)
    return result


_SafeYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Node count with every alias expanded, computed without expanding anything."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once; the constructor rejects cycles' depth below
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_NODES + 1)
    return memo[key]


def _load_yaml(text: str) -> Any:
    loader = _SafeYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_NODES:
            raise InvalidSpec(
                f"YAML document expands to more than {MAX_NODES} nodes (alias bomb?); refused"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise InvalidSpec(f"document nests deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def _load_json(text: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise InvalidSpec(f"JSON key {key!r} appears twice")
            result[key] = value
        return result

    def no_constant(name: str) -> Any:
        raise InvalidSpec(f"JSON value {name} is not allowed")

    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidSpec(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise InvalidSpec(f"document nests deeper than {MAX_DEPTH} levels") from None


def _check_plain(value: Any, path: str = "", depth: int = 0) -> None:
    """Only JSON-representable values, nested at most MAX_DEPTH deep."""
    if depth > MAX_DEPTH:
        raise InvalidSpec(f"document nests deeper than {MAX_DEPTH} levels (at {path or 'top'})")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidSpec(f"{path}: {value} is not a finite number")
    elif not (value is None or isinstance(value, (str, int, bool))):
        raise InvalidSpec(f"{path}: values of type {type(value).__name__} are not allowed")


def load_document(body: bytes, content_type: str | None, max_bytes: int) -> dict[str, Any]:
    """Decode a spec body into a plain dict, refusing anything hostile or malformed."""
    media = normalise_media_type(content_type)
    if media not in JSON_TYPES | YAML_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not accepted; send the spec as "
            "application/json or application/yaml"
        )
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"spec body is {len(body)} bytes; the limit is {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSpec("spec body is not valid UTF-8") from None
    document = _load_json(text) if media in JSON_TYPES else _load_yaml(text)
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise InvalidSpec(f"a spec must be a mapping at the top level, got {kind}")
    _check_plain(document)
    return document
