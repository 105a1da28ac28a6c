"""`lora_path` parsing, no I/O: each accepted form, and each refused one with what is wrong."""

from __future__ import annotations

import pytest

from service.errors import InvalidLoraPath
from service.lora_path import LoraRef, parse_lora_path

AD = "ad_01jd8x4k2m9q7r5t3v1w0y6z8a"


CK = "ck_01jd8x4k2m9q7r5t3v1w0y6z8a"


JOB = "job_01jd8x4k2m9q7r5t3v1w0y6z8a"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (AD, LoraRef(kind="adapter", adapter_id=AD)),
        ("support-bot:3", LoraRef(kind="adapter", name="support-bot", version=3)),
        ("support-bot@prod", LoraRef(kind="adapter", name="support-bot", alias="prod")),
        (f"https://lp.example/adapters/{AD}", LoraRef(kind="adapter", adapter_id=AD)),
        (f"http://10.0.0.1:8000/prefix/adapters/{AD}/", LoraRef(kind="adapter", adapter_id=AD)),
        (CK, LoraRef(kind="checkpoint", checkpoint_id=CK)),
        (
            f"https://lp.example/jobs/{JOB}/checkpoints/{CK}",
            LoraRef(kind="checkpoint", job_id=JOB, checkpoint_id=CK),
        ),
        ("/mnt/adapters/bot", LoraRef(kind="local", path="/mnt/adapters/bot")),
    ],
)
def test_parse_each_form(value: str, expected: LoraRef):
    assert parse_lora_path(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("relative/folder", "not a form loraplane accepts"),
        ("bot:v3", "not a form"),
        ("ad_short", "not a form"),
        (" bot:1", "surrounding spaces"),
        ("file:///etc/passwd", "only http(s)"),
        ("https://lp.example/adapters/", "…/adapters/{ad_id}"),
        (f"https://lp.example/models/{AD}", "…/adapters/{ad_id}"),
        (f"https://lp.example/adapters/{AD}?x=1", "no query"),
    ],
)
def test_parse_rejects_other_forms(value: str, message: str):
    with pytest.raises(InvalidLoraPath) as info:
        parse_lora_path(value)
    assert message in info.value.message
    assert info.value.errors[0]["loc"] == "actor.model.lora_path"
