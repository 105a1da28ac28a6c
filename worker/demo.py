"""The bundled demo: a tiny Llama from a config, a byte-level tokenizer and a toy dataset.

Nothing is downloaded. The model is generated from a fixed seed, so every worker that builds it
gets the same weights (and the same `base_fingerprint`), and a job submitted with
`model_path: demo-tiny-llama` trains in seconds on a CPU.

`python -m worker.demo` rewrites `worker/data/demo.jsonl` from `demo_records()`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

DEMO_MODEL_NAME = "demo-tiny-llama"
DEMO_SEED = 20240611
DEMO_DATASET_SEED = 7
DEMO_DATASET_SIZE = 200

BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<s>", "</s>", "<pad>"
BYTE_VOCAB_SIZE = 256  # ids 0..255 are the bytes themselves; specials follow
# `role: content` lines; an assistant turn ends with `</s>`, so the model learns to stop.
DEMO_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

_DATA_DIR = Path(__file__).resolve().parent / "data"


def demo_model_config() -> dict:
    """The demo model's LlamaConfig arguments: ~107k parameters, untied head.

    Two query heads of 32 dimensions sharing one key/value head: vLLM's CPU attention takes
    head sizes from 32 up, so a vLLM server on a laptop can serve the demo and its adapters.
    """
    return {
        "vocab_size": BYTE_VOCAB_SIZE + 3,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 2048,
        "bos_token_id": BYTE_VOCAB_SIZE,
        "eos_token_id": BYTE_VOCAB_SIZE + 1,
        "pad_token_id": BYTE_VOCAB_SIZE + 2,
        "tie_word_embeddings": False,
    }


def _byte_to_char() -> dict[int, str]:
    """Byte -> printable character, the mapping the `tokenizers` ByteLevel pre-tokenizer uses."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)}
    printable |= set(range(ord("®"), ord("ÿ") + 1))
    mapping: dict[int, str] = {}
    shifted = 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + shifted)
            shifted += 1
    return mapping


def _byte_level_tokenizer():
    """The `tokenizers` object: token id == byte value, then `<s>`, `</s>`, `<pad>`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {char: byte for byte, char in _byte_to_char().items()}
    if set(vocab) != set(pre_tokenizers.ByteLevel.alphabet()):
        raise RuntimeError("byte alphabet disagrees with tokenizers' ByteLevel alphabet")
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([BOS_TOKEN, EOS_TOKEN, PAD_TOKEN])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, BYTE_VOCAB_SIZE)],
    )
    return tokenizer


def demo_tokenizer_config() -> dict:
    """The demo's tokenizer_config.json, written by hand so that every transformers loads it.

    transformers 5 would save `"tokenizer_class": "TokenizersBackend"` (a class 4.x lacks)
    and the chat template as a separate `chat_template.jinja` (which older 4.x ignore);
    `PreTrainedTokenizerFast` over `tokenizer.json`, the template inline, is read by both.
    `clean_up_tokenization_spaces` is spelled out because 4.x defaulted it to true, which
    would change decoded text (" ." -> ".").
    """
    specials = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "model_max_length": demo_model_config()["max_position_embeddings"],
        "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": {
            str(BYTE_VOCAB_SIZE + index): {
                "content": token,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for index, token in enumerate(specials)
        },
        "chat_template": DEMO_CHAT_TEMPLATE,
    }


def build_byte_tokenizer():
    """A byte-level tokenizer: token id == byte value, then `<s>`, `</s>`, `<pad>` (256..258),
    with a small chat template (DEMO_CHAT_TEMPLATE)."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_tokenizer(),
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=demo_model_config()["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = DEMO_CHAT_TEMPLATE
    return fast


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _save_tokenizer(directory: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json (see
    `demo_tokenizer_config`), byte for byte the same on every transformers version."""
    directory = Path(directory)
    _byte_level_tokenizer().save(str(directory / "tokenizer.json"), pretty=True)
    config = demo_tokenizer_config()
    (directory / "tokenizer_config.json").write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    special = {key: config[key] for key in ("bos_token", "eos_token", "pad_token")}
    (directory / "special_tokens_map.json").write_text(
        json.dumps(special, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def _tokenizer_is_current(target: Path) -> bool:
    config = target / "tokenizer_config.json"
    if not config.is_file() or (target / "chat_template.jinja").exists():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")) == demo_tokenizer_config()
    except ValueError:
        return False


def _refresh_tokenizer(target: Path) -> None:
    """Give a demo model generated by an older loraplane the current tokenizer files (no
    chat template, or transformers 5's `TokenizersBackend` that 4.x cannot load); the weights
    and config.json, hence its fingerprint, stay as they are."""
    if _tokenizer_is_current(target):
        return
    staging = Path(tempfile.mkdtemp(prefix=f".{DEMO_MODEL_NAME}-tokenizer-", dir=target.parent))
    try:
        _save_tokenizer(staging)
        for path in staging.iterdir():
            os.replace(path, target / path.name)
        (target / "chat_template.jinja").unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("rewrote the demo model's tokenizer files in %s", target)


def build_demo_model(directory: Path, config_overrides: dict | None = None) -> None:
    """Write the demo model (or a Llama with config overrides) and its tokenizer to `directory`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    config = LlamaConfig(**{**demo_model_config(), **(config_overrides or {})})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEMO_SEED)
        model = LlamaForCausalLM(config)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(directory)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    _save_tokenizer(Path(directory))


_LAYOUT_KEYS = ("hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers")


def _layout_is_current(target: Path) -> bool:
    """Whether `target`'s config.json has the current demo's shape (older loraplane versions
    generated 4 heads of 16 dimensions, which vLLM's CPU attention refuses)."""
    try:
        config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = demo_model_config()
    return all(config.get(key) == expected[key] for key in _LAYOUT_KEYS)


def _regenerate(target: Path) -> None:
    """Replace an outdated demo model's files in place (adapters trained on it no longer
    match its fingerprint; it is a demo)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{DEMO_MODEL_NAME}-", dir=target.parent))
    try:
        build_demo_model(staging)
        for path in staging.iterdir():
            os.replace(path, target / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.warning("regenerated the outdated demo model %s in %s", DEMO_MODEL_NAME, target)


def ensure_demo_model(models_dir: Path) -> Path:
    """Return `models_dir/demo-tiny-llama`, generating it first if it is not there."""
    target = Path(models_dir) / DEMO_MODEL_NAME
    if (target / "config.json").is_file():
        if not _layout_is_current(target):
            _regenerate(target)
        _refresh_tokenizer(target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{DEMO_MODEL_NAME}-", dir=target.parent))
    try:
        build_demo_model(staging)
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first, or a broken leftover is in the way.
            if not (target / "config.json").is_file():
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("generated demo model %s in %s", DEMO_MODEL_NAME, target)
    return target


def demo_dataset_path() -> Path:
    """The bundled demo dataset (JSONL with `prompt` / `answer`)."""
    return _DATA_DIR / "demo.jsonl"


# fmt: off
_WORDS = (
    "cat", "dog", "sun", "moon", "tree", "lake", "rock", "bird", "fish", "star", "road", "rain",
    "wind", "snow", "leaf", "seed", "milk", "bread", "lamp", "door", "book", "pen", "cup", "ship",
    "wave", "hill", "farm", "gold", "iron", "salt",
)
# fmt: on


def demo_records(
    count: int = DEMO_DATASET_SIZE, seed: int = DEMO_DATASET_SEED
) -> list[dict[str, str]]:
    """Simple deterministic string and arithmetic tasks, `count` of them."""
    rng = random.Random(seed)

    def word() -> str:
        return rng.choice(_WORDS)

    def number() -> int:
        return rng.randint(0, 99)

    def reverse() -> tuple[str, str]:
        w = word()
        return f"reverse: {w}", w[::-1]

    def upper() -> tuple[str, str]:
        w = word()
        return f"upper: {w}", w.upper()

    def add() -> tuple[str, str]:
        a, b = number(), number()
        return f"add {a} {b}", str(a + b)

    def maximum() -> tuple[str, str]:
        a, b = number(), number()
        return f"max {a} {b}", str(max(a, b))

    def length() -> tuple[str, str]:
        w = word()
        return f"length: {w}", str(len(w))

    def first() -> tuple[str, str]:
        w = word()
        return f"first: {w}", w[0]

    def sort() -> tuple[str, str]:
        w = word()
        return f"sort: {w}", "".join(sorted(w))

    def repeat() -> tuple[str, str]:
        w, n = word(), rng.randint(1, 3)
        return f"repeat {n}: {w}", " ".join([w] * n)

    tasks = [reverse, upper, add, maximum, length, first, sort, repeat]
    records = []
    for index in range(count):
        prompt, answer = tasks[index % len(tasks)]()
        records.append({"prompt": prompt + "\n", "answer": answer})
    rng.shuffle(records)
    return records


def render_demo_dataset(records: list[dict[str, str]] | None = None) -> str:
    """The JSONL text of the demo dataset."""
    rows = demo_records() if records is None else records
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


if __name__ == "__main__":
    demo_dataset_path().parent.mkdir(parents=True, exist_ok=True)
    demo_dataset_path().write_text(render_demo_dataset(), encoding="utf-8")
