"""Unit tests of spec parsing (service/spec/, service/media.py), no server.

tests/test_hostile_input.py drives hostile documents through `POST /jobs` and checks the
HTTP answer; here each module is called directly and the exact error, its code, its
message and its field errors are asserted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from service.errors import InvalidSpec, PayloadTooLarge, ServiceError, UnsupportedMediaType
from service.media import normalise_media_type
from service.spec import (
    JSON_TYPES,
    MAX_NODES,
    RLINF_IGNORED_KEYS,
    YAML_TYPES,
    JobSpec,
    load_document,
    parse_body,
    parse_spec,
)

LIMIT = 1 << 20
MODEL = {"model_path": "demo-tiny-llama", "is_lora": True, "lora_rank": 4}


def doc(**sections: Any) -> dict[str, Any]:
    """A minimal valid document, with `sections` merged over it."""
    return {"actor": {"model": dict(MODEL)}, **sections}


def refused(call: Any, kind: type[ServiceError], code: str) -> ServiceError:
    with pytest.raises(kind) as info:
        call()
    assert info.value.code == code
    return info.value


def invalid(document: dict[str, Any]) -> InvalidSpec:
    error = refused(lambda: parse_spec(document), InvalidSpec, "invalid_spec")
    assert isinstance(error, InvalidSpec)
    return error


def yaml_body(document: dict[str, Any]) -> bytes:
    return yaml.safe_dump(document).encode()


# ------------------------------------------------------------------------- media types


@pytest.mark.parametrize(("header", "media"), [
    ("application/json", "application/json"),
    ("Application/YAML; charset=utf-8", "application/yaml"),
    ("  text/yaml ;q=1", "text/yaml"),
    ("; charset=utf-8", ""),
    ("", ""),
    (None, ""),
])
def test_a_content_type_normalises_to_its_bare_lower_case_media_type(header: str | None,
                                                                      media: str) -> None:
    assert normalise_media_type(header) == media


@pytest.mark.parametrize("media", sorted(JSON_TYPES | YAML_TYPES))
def test_every_accepted_media_type_loads_with_parameters_and_any_case(media: str) -> None:
    body = json.dumps(doc()).encode()  # JSON is YAML too
    assert load_document(body, f"{media.upper()}; charset=utf-8", LIMIT) == doc()


@pytest.mark.parametrize(("header", "shown"), [
    ("application/x-python-pickle", "'application/x-python-pickle'"),
    ("text/plain; charset=utf-8", "'text/plain'"),
    (None, "'(none)'"),
    ("", "'(none)'"),
])
def test_an_unaccepted_media_type_is_415_naming_it(header: str | None, shown: str) -> None:
    error = refused(lambda: load_document(b"{}", header, LIMIT), UnsupportedMediaType,
                    "unsupported_media_type")
    assert error.message == (f"Content-Type {shown} is not accepted; send the spec as "
                             "application/json or application/yaml")


def test_the_media_type_is_checked_before_the_size() -> None:
    refused(lambda: load_document(b"x" * 100, "application/pickle", 10), UnsupportedMediaType,
            "unsupported_media_type")


# ------------------------------------------------------------------------------- size


def test_a_body_over_the_limit_is_refused_and_one_at_the_limit_is_read() -> None:
    body = b'{"a": 1}'
    error = refused(lambda: load_document(body + b" ", "application/json", len(body)),
                    PayloadTooLarge, "payload_too_large")
    assert error.message == f"spec body is {len(body) + 1} bytes; the limit is {len(body)} bytes"
    assert load_document(body, "application/json", len(body)) == {"a": 1}


# -------------------------------------------------------------------- hostile documents


def alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_it_expands() -> None:
    error = refused(lambda: load_document(alias_bomb(9).encode(), "application/yaml", LIMIT),
                    InvalidSpec, "invalid_spec")
    assert error.message == (f"YAML document expands to more than {MAX_NODES} nodes "
                             "(alias bomb?); refused")


def test_aliases_that_expand_within_the_limit_are_resolved() -> None:
    body = b"optim: &optim {lr: 0.1}\nactor: {optim: *optim}\n"
    assert load_document(body, "application/yaml", LIMIT) == {
        "optim": {"lr": 0.1}, "actor": {"optim": {"lr": 0.1}}}
    loaded = load_document(alias_bomb(4).encode(), "application/yaml", LIMIT)
    assert len(loaded["a3"]) == 9 and len(loaded["a3"][0][0]) == 9


@pytest.mark.parametrize(("body", "media", "message"), [
    (b"actor: 1\nrunner: 2\nactor: 3\n", "application/yaml",
     "YAML key 'actor' appears twice (line 3)"),
    (b"actor:\n  seed: 1\n  seed: 2\n", "text/yaml", "YAML key 'seed' appears twice (line 3)"),
    (b'{"actor": {}, "actor": {}}', "application/json", "JSON key 'actor' appears twice"),
    (b'{"a": {"b": 1, "b": 1}}', "application/json", "JSON key 'b' appears twice"),
])
def test_duplicate_keys_are_refused(body: bytes, media: str, message: str) -> None:
    error = refused(lambda: load_document(body, media, LIMIT), InvalidSpec, "invalid_spec")
    assert error.message == message


@pytest.mark.parametrize(("body", "media", "message"), [
    (b"1: a\n", "application/yaml", "YAML key 1 (line 1) is not a string"),
    (b"x: .nan\n", "application/yaml", "x: nan is not a finite number"),
    (b"x: [1, -.inf]\n", "application/yaml", "x[1]: -inf is not a finite number"),
    (b'{"x": NaN}', "application/json", "JSON value NaN is not allowed"),
    (b'{"x": Infinity}', "application/json", "JSON value Infinity is not allowed"),
    (b"x: !!binary aGVsbG8=\n", "application/yaml", "x: values of type bytes are not allowed"),
    (b"x: !!set {a, b}\n", "application/yaml", "x: values of type set are not allowed"),
    (b"actor: \xff\n", "application/yaml", "spec body is not valid UTF-8"),
    (b"", "application/yaml", "a spec must be a mapping at the top level, got empty"),
    (b"[1, 2]", "application/json", "a spec must be a mapping at the top level, got a list"),
    (b"'text'", "application/yaml", "a spec must be a mapping at the top level, got a str"),
])
def test_values_json_cannot_hold_and_non_mappings_are_refused(body: bytes, media: str,
                                                               message: str) -> None:
    error = refused(lambda: load_document(body, media, LIMIT), InvalidSpec, "invalid_spec")
    assert error.message == message


def test_python_tags_are_invalid_yaml_and_nothing_runs() -> None:
    body = b"x: !!python/object/apply:os.system ['echo pwned']\n"
    error = refused(lambda: load_document(body, "application/yaml", LIMIT), InvalidSpec,
                    "invalid_spec")
    assert error.message.startswith("invalid YAML: could not determine a constructor for the "
                                    "tag 'tag:yaml.org,2002:python/object/apply:os.system'")


@pytest.mark.parametrize(("open_", "close", "media"), [
    ("a: " + "[" * 33, "]" * 33, "application/yaml"),
    ('{"a": ' + "[" * 33, "]" * 33 + "}", "application/json"),
])
def test_nesting_deeper_than_32_is_refused_and_32_is_read(open_: str, close: str,
                                                          media: str) -> None:
    error = refused(lambda: load_document((open_ + close).encode(), media, LIMIT), InvalidSpec,
                    "invalid_spec")
    assert error.message == f"document nests deeper than 32 levels (at a{'[0]' * 32})"
    assert load_document((open_[:-1] + close[1:]).encode(), media, LIMIT)["a"]


@pytest.mark.parametrize(("body", "media"), [
    (b"a: " + b"[" * 5000 + b"]" * 5000, "application/yaml"),
    (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
])
def test_nesting_that_overflows_the_parser_is_refused(body: bytes, media: str) -> None:
    error = refused(lambda: load_document(body, media, LIMIT), InvalidSpec, "invalid_spec")
    assert error.message.startswith("document nests deeper than 32 levels")


def test_yaml_reads_exponents_as_floats_and_dates_as_text() -> None:
    body = b"lr: 1e-5\nbig: 2E+3\nday: 2024-01-02\nstamp: 2024-01-02 10:00:00\n"
    assert load_document(body, "application/yaml", LIMIT) == {
        "lr": 1e-5, "big": 2000.0, "day": "2024-01-02", "stamp": "2024-01-02 10:00:00"}


# -------------------------------------------------------------- unknown and ignored keys


def test_a_typo_in_a_used_section_names_the_key_it_probably_meant() -> None:
    model = {k: v for k, v in MODEL.items() if k != "is_lora"} | {"is_lorra": True}
    error = invalid({"actor": {"model": model}})
    message = "unknown key 'is_lorra' in actor.model; did you mean 'is_lora'?"
    assert error.message == message
    assert error.errors == [{"loc": "actor.model.is_lorra", "msg": message,
                             "type": "unknown_key"}]


def test_a_typo_of_an_rlinf_key_suggests_the_rlinf_key() -> None:
    error = invalid(doc(data={"num_worker": 4}))
    assert error.message == "unknown key 'num_worker' in data; did you mean 'num_workers'?"


def test_every_unknown_key_is_listed_and_one_without_a_close_match_has_no_hint() -> None:
    error = invalid(doc(data={"zzz": 1}, runner={"max_step": 3}))
    assert error.message == "unknown key 'zzz' in data"
    assert [(e["loc"], e["msg"]) for e in error.errors] == [
        ("data.zzz", "unknown key 'zzz' in data"),
        ("runner.max_step", "unknown key 'max_step' in runner; did you mean 'max_steps'?"),
    ]


def test_a_top_level_typo_of_a_missing_section_is_refused() -> None:
    error = invalid(doc(runer={"max_steps": 3}))
    assert error.message == "unknown top-level key 'runer'; did you mean 'runner'?"
    assert error.errors[0]["loc"] == "runer"


def test_rlinf_keys_and_unused_sections_are_ignored_and_reported_sorted() -> None:
    document = {
        "hydra": {"run": {"dir": "."}},
        "defaults": ["_self_"],
        "actor": {"model": {**MODEL, "model_type": "qwen2"}, "fsdp_config": {"strategy": "fsdp"},
                  "optim": {"optimizer": "adam", "lr": 0.01}},
        "data": {"num_workers": 2},
        "runner": {"logger": {"project_name": "p"}, "max_steps": 3},
        "runnner": {"x": 1},  # close to runner, which is present: an extra section, ignored
    }
    parsed = parse_spec(document)
    assert parsed.ignored_keys == [
        "actor.fsdp_config.strategy", "actor.model.model_type", "actor.optim.optimizer",
        "data.num_workers", "defaults", "hydra", "runner.logger", "runnner",
    ]
    assert parsed.spec.actor.optim.lr == 0.01 and parsed.spec.runner.max_steps == 3


def test_the_ignore_table_covers_only_sections_the_schema_has() -> None:
    for path in RLINF_IGNORED_KEYS:
        model: Any = JobSpec
        for part in path.split("."):
            model = model.model_fields[part].annotation
        assert not set(RLINF_IGNORED_KEYS[path]) & set(model.model_fields), path


# ---------------------------------------------------------------------- interpolation


def test_interpolations_in_used_sections_are_resolved_across_sections() -> None:
    document = {
        "defaults_rank": 8,
        "algorithm": {"rank": 16},
        "actor": {"seed": 7, "model": {**MODEL, "lora_rank": "${algorithm.rank}",
                                       "lora_alpha": "${defaults_rank}"}},
        "data": {"seed": "${actor.seed}"},
        "runner": {"experiment_name": "run-${actor.seed}"},
    }
    spec = parse_spec(document).spec
    assert (spec.actor.model.lora_rank, spec.actor.model.lora_alpha) == (16, 8)
    assert spec.data.seed == 7
    assert spec.runner.experiment_name == "run-7"


def test_interpolations_in_ignored_sections_are_left_alone() -> None:
    parsed = parse_spec(doc(hydra={"run": {"dir": "${oc.env:HOME}/${nope}"}}))
    assert parsed.ignored_keys == ["hydra"]


@pytest.mark.parametrize(("value", "message"), [
    ("${oc.env:HOME}", "cannot resolve interpolation: Unsupported interpolation type oc.env"),
    ("${runner.nope}", "cannot resolve interpolation: Interpolation key 'runner.nope' not found"),
])
def test_an_unresolvable_interpolation_is_refused(value: str, message: str) -> None:
    assert invalid({"actor": {"model": {**MODEL, "lora_rank": value}}}).message == message


@pytest.mark.parametrize("document", [
    {"actor": {"model": MODEL, "optim": {"lr": 1e-4, "betas": [0.9, 0.99]}}},
    {"actor": {"model": {**MODEL, "lora_alpha": 16.5, "target_modules": ["q_proj", "v_proj"]}},
     "runner": {"experiment_name": "café $HOME {braces} $", "max_steps": None},
     "data": {"train_data_paths": [[], {}, [{"nested": True}]]}},
    {"actor": {"model": MODEL}, "hydra": {"run": {"dir": "${oc.env:HOME}"}}},  # not plain
    {"actor": {"model": {**MODEL, "model_path": "a\\${escaped}"}}},  # OmegaConf unescapes it
    {"actor": {"model": MODEL}, "cluster": {1: "int key"}},  # not plain: OmegaConf decides
])
def test_resolving_gives_what_omegaconf_gives(document: dict[str, Any]) -> None:
    """A plain document skips OmegaConf (service/spec/parse.py: `_plain`); any document
    resolves to exactly what OmegaConf's own walk gives."""
    from omegaconf import OmegaConf

    from service.spec.parse import USED_SECTIONS, _resolve

    config = OmegaConf.create(document)
    expected = {key: OmegaConf.to_container(config[key], resolve=True)
                if key in USED_SECTIONS and OmegaConf.is_config(config[key]) else document[key]
                for key in document}
    resolved = _resolve(document)
    assert resolved == expected
    assert json.dumps(resolved, sort_keys=True, default=repr) == json.dumps(
        expected, sort_keys=True, default=repr)  # types too (1 vs 1.0 vs True)


# -------------------------------------------------------------------------- validation


def test_types_are_strict_and_every_field_error_is_listed() -> None:
    error = invalid({"actor": {"micro_batch_size": 0,
                               "model": {**MODEL, "lora_rank": "8", "precision": "fp8"}}})
    assert error.message == "actor.micro_batch_size: Input should be greater than or equal to 1"
    assert error.errors == [
        {"loc": "actor.micro_batch_size", "msg": "Input should be greater than or equal to 1",
         "type": "greater_than_equal"},
        {"loc": "actor.model.lora_rank",
         "msg": "Input should be a valid integer (got str '8'; types are strict)",
         "type": "int_type"},
        {"loc": "actor.model.precision",
         "msg": "Input should be 'fp32', 'bf16' or 'fp16' (got str 'fp8'; types are strict)",
         "type": "literal_error"},
    ]


def test_rule_violations_read_without_pydantics_prefix() -> None:
    error = invalid(doc(actor={"model": {**MODEL, "lora_rank": None}}))
    assert error.message == ("actor.model.lora_rank: lora_rank is required when is_lora is "
                             "true and lora_path is null")
    error = invalid(doc(actor={"model": MODEL, "micro_batch_size": 4, "global_batch_size": 6}))
    assert error.message == ("actor: global_batch_size (6) must be a multiple of "
                             "micro_batch_size (4)")


def test_an_adapter_name_follows_the_name_grammar() -> None:
    assert parse_spec(doc(name="a.b_c-1")).spec.name == "a.b_c-1"
    assert invalid(doc(name="-a")).errors[0]["loc"] == "name"
    assert invalid(doc(runner={"experiment_name": "a" * 101})).errors[0]["loc"] == \
        "runner.experiment_name"


# ---------------------------------------------------------------------------- parse_body


def test_parse_body_decodes_and_validates_in_one_step() -> None:
    body = yaml_body(doc(data={"train_data_paths": "ds_1", "num_workers": 2}))
    parsed = parse_body(body, "application/x-yaml", LIMIT)
    assert parsed.spec.data.train_data_paths == ["ds_1"]  # a single path becomes a list
    assert parsed.ignored_keys == ["data.num_workers"]
    assert parsed.spec.actor.optim.lr == 1e-4 and parsed.spec.actor.global_batch_size == 1
    same = parse_body(json.dumps(doc(data={"train_data_paths": ["ds_1"]})).encode(),
                      "application/json", LIMIT)
    assert same.spec == parsed.spec


def test_parse_body_refuses_what_load_document_refuses() -> None:
    refused(lambda: parse_body(b"{}", "text/plain", LIMIT), UnsupportedMediaType,
            "unsupported_media_type")
    refused(lambda: parse_body(b"{}", "application/json", 1), PayloadTooLarge,
            "payload_too_large")
    error = refused(lambda: parse_body(b"actor: 1\nactor: 2\n", "application/yaml", LIMIT),
                    InvalidSpec, "invalid_spec")
    assert error.message == "YAML key 'actor' appears twice (line 2)"
