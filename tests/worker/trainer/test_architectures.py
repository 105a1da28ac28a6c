"""Beyond Llama: tiny Qwen2 (tied embeddings, attention biases), GPT-2 (Conv1D layers, tied
embeddings, biases) and Phi (biases everywhere, partial rotary) built from configs: LoRA with
resume, adapter files without embedding copies that peft loads, and full fine-tuning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM, GPT2Config, PhiConfig, Qwen2Config

from worker.demo import BYTE_VOCAB_SIZE, DEMO_SEED, build_byte_tokenizer
from worker.trainer.model import LORA_KEY

SPECIAL = {"vocab_size": BYTE_VOCAB_SIZE + 3, "bos_token_id": BYTE_VOCAB_SIZE,
           "eos_token_id": BYTE_VOCAB_SIZE + 1, "pad_token_id": BYTE_VOCAB_SIZE + 2}
ARCHITECTURES = {
    "qwen2": (Qwen2Config, {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 2,
                            "max_position_embeddings": 512, "tie_word_embeddings": True}),
    "gpt2": (GPT2Config, {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 512,
                          "tie_word_embeddings": True}),
    "phi": (PhiConfig, {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                        "num_attention_heads": 4, "max_position_embeddings": 512,
                        "partial_rotary_factor": 0.5}),
}
# GPT-2's layers are c_attn, c_proj and c_fc, which RLinf's suffixes do not reach.
TARGETS = {"gpt2": ["c_attn", "c_proj", "c_fc"]}
WRAPPED = {
    "qwen2": ["down_proj", "gate_proj", "k_proj", "lm_head", "o_proj", "q_proj", "up_proj",
              "v_proj"],
    "gpt2": ["c_attn", "c_fc", "c_proj"],
    "phi": ["fc1", "fc2", "k_proj", "lm_head", "q_proj", "v_proj"],  # `dense` is no suffix of theirs
}


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def tiny(request, tmp_path_factory) -> tuple[str, Path]:
    name = request.param
    config_class, shape = ARCHITECTURES[name]
    config = config_class(**{**SPECIAL, **shape})
    folder = tmp_path_factory.mktemp(f"tiny-{name}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEMO_SEED)
        model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    build_byte_tokenizer().save_pretrained(folder)
    return name, folder


def _spec(make_spec, name: str, folder: Path, **runner):
    model = {"model_path": str(folder), "lora_rank": 4}
    if name in TARGETS:
        model["target_modules"] = TARGETS[name]
    return make_spec({"actor": {"micro_batch_size": 4, "model": model, "optim": {"lr": 1e-2}},
                      "data": {"max_samples": 64}, "runner": {"max_steps": 8, **runner}})


def test_lora_trains_resumes_and_writes_an_adapter_peft_loads(
    tiny, train, make_spec, hooks_cls, tmp_path
) -> None:
    name, folder = tiny
    spec = _spec(make_spec, name, folder, save_interval=4)
    straight, hooks, session = train(spec, base_model_dir=folder)
    assert straight.target_modules == WRAPPED[name]
    assert hooks.losses[-1] < hooks.losses[0]
    with safe_open(str(straight.output_dir / "adapter_model.safetensors"), "pt") as handle:
        names = list(handle.keys())
    assert names and all(LORA_KEY.search(n) for n in names)  # no embedding or head copies
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tied = base.config.tie_word_embeddings
    assert tied == (name != "phi")
    loaded = PeftModel.from_pretrained(base, str(straight.output_dir))
    ids = session._micro_batches(session.train_examples[:2])[0]["input_ids"]
    session.model.eval()
    with torch.no_grad():
        expected = session.model(input_ids=ids).logits
        torch.testing.assert_close(loaded(input_ids=ids).logits, expected)

    crashing = hooks_cls(crash_at=6, keep_dir=tmp_path / "kept")
    with pytest.raises(hooks_cls.Crash):
        train(spec, hooks=crashing, base_model_dir=folder)
    resumed, resumed_hooks, _ = train(spec, base_model_dir=folder, resume_dir=crashing.kept[4])
    assert resumed_hooks.losses == hooks.losses[4:]
    assert {p.name: p.read_bytes() for p in resumed.output_dir.iterdir()} == {
        p.name: p.read_bytes() for p in straight.output_dir.iterdir()
    }


def test_full_fine_tuning_keeps_tied_weights_tied(tiny, train, make_spec) -> None:
    _, folder = tiny
    spec = make_spec({"actor": {"micro_batch_size": 4,
                                "model": {"model_path": str(folder), "is_lora": False,
                                          "lora_rank": None},
                                "optim": {"lr": 1e-3}},
                      "data": {"max_samples": 32}, "runner": {"max_steps": 3}})
    result, _, session = train(spec, base_model_dir=folder)
    assert result.kind == "full" and result.trainable_params == result.total_params
    trained = AutoModelForCausalLM.from_pretrained(result.output_dir, dtype=torch.float32)
    original = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    head, embeddings = trained.get_output_embeddings(), trained.get_input_embeddings()
    if trained.config.tie_word_embeddings:
        assert head.weight.data_ptr() == embeddings.weight.data_ptr()
    assert not torch.equal(embeddings.weight, original.get_input_embeddings().weight)
    for (n, p), (_, q) in zip(trained.named_parameters(), session.model.named_parameters(),
                              strict=True):
        assert torch.equal(p, q.detach()), n
