from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="DataSpec")


@_attrs_define
class DataSpec:
    """`data`: supervised fine-tuning pairs.

    Attributes:
        answer_key (str | Unset):  Default: 'answer'.
        append_eos (bool | Unset): End each answer with the tokenizer's eos (plain pairs; a chat template ends turns its
            own way). Default: True.
        apply_chat_template (bool | Unset): Wrap prompt/answer pairs in the base tokenizer's chat template (a user turn
            and an assistant turn); the loss is on the assistant part only. Default: False.
        group_by_length (bool | Unset): Form each optimizer step's batch from samples of similar length (within groups
            of 50 steps' samples, deterministic for data.seed), so padding stays a small share of the tokens; false: plain
            shuffled order. Default: True.
        max_length (int | Unset): Tokens per sample; longer ones are truncated. Default: 1024.
        max_samples (int | Unset): -1: all samples. Default: -1.
        messages_key (str | Unset): Rows holding this key are OpenAI-style conversations (a list of {role:
            system|user|assistant, content}), rendered with the chat template; the loss is on every assistant turn. Default:
            'messages'.
        prompt_key (str | Unset):  Default: 'prompt'.
        seed (int | Unset):  Default: 42.
        shuffle (bool | Unset):  Default: True.
        train_data_paths (list[str] | Unset): Dataset ids (`ds_...`), worker-local JSONL paths, or `demo` (the bundled
            set).
        type_ (Literal['llm'] | Unset): `llm`: SFT of a causal LM on prompt/answer pairs or conversations. Default:
            'llm'.
        val_data_paths (list[str] | None | Unset):
    """

    answer_key: str | Unset = "answer"
    append_eos: bool | Unset = True
    apply_chat_template: bool | Unset = False
    group_by_length: bool | Unset = True
    max_length: int | Unset = 1024
    max_samples: int | Unset = -1
    messages_key: str | Unset = "messages"
    prompt_key: str | Unset = "prompt"
    seed: int | Unset = 42
    shuffle: bool | Unset = True
    train_data_paths: list[str] | Unset = UNSET
    type_: Literal["llm"] | Unset = "llm"
    val_data_paths: list[str] | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        answer_key = self.answer_key

        append_eos = self.append_eos

        apply_chat_template = self.apply_chat_template

        group_by_length = self.group_by_length

        max_length = self.max_length

        max_samples = self.max_samples

        messages_key = self.messages_key

        prompt_key = self.prompt_key

        seed = self.seed

        shuffle = self.shuffle

        train_data_paths: list[str] | Unset = UNSET
        if not isinstance(self.train_data_paths, Unset):
            train_data_paths = self.train_data_paths

        type_ = self.type_

        val_data_paths: list[str] | None | Unset
        if isinstance(self.val_data_paths, Unset):
            val_data_paths = UNSET
        elif isinstance(self.val_data_paths, list):
            val_data_paths = self.val_data_paths

        else:
            val_data_paths = self.val_data_paths

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if answer_key is not UNSET:
            field_dict["answer_key"] = answer_key
        if append_eos is not UNSET:
            field_dict["append_eos"] = append_eos
        if apply_chat_template is not UNSET:
            field_dict["apply_chat_template"] = apply_chat_template
        if group_by_length is not UNSET:
            field_dict["group_by_length"] = group_by_length
        if max_length is not UNSET:
            field_dict["max_length"] = max_length
        if max_samples is not UNSET:
            field_dict["max_samples"] = max_samples
        if messages_key is not UNSET:
            field_dict["messages_key"] = messages_key
        if prompt_key is not UNSET:
            field_dict["prompt_key"] = prompt_key
        if seed is not UNSET:
            field_dict["seed"] = seed
        if shuffle is not UNSET:
            field_dict["shuffle"] = shuffle
        if train_data_paths is not UNSET:
            field_dict["train_data_paths"] = train_data_paths
        if type_ is not UNSET:
            field_dict["type"] = type_
        if val_data_paths is not UNSET:
            field_dict["val_data_paths"] = val_data_paths

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        answer_key = d.pop("answer_key", UNSET)

        append_eos = d.pop("append_eos", UNSET)

        apply_chat_template = d.pop("apply_chat_template", UNSET)

        group_by_length = d.pop("group_by_length", UNSET)

        max_length = d.pop("max_length", UNSET)

        max_samples = d.pop("max_samples", UNSET)

        messages_key = d.pop("messages_key", UNSET)

        prompt_key = d.pop("prompt_key", UNSET)

        seed = d.pop("seed", UNSET)

        shuffle = d.pop("shuffle", UNSET)

        train_data_paths = cast(list[str], d.pop("train_data_paths", UNSET))

        type_ = cast(Literal["llm"] | Unset, d.pop("type", UNSET))
        if type_ != "llm" and not isinstance(type_, Unset):
            raise ValueError(f"type must match const 'llm', got '{type_}'")

        def _parse_val_data_paths(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                val_data_paths_type_0 = cast(list[str], data)

                return val_data_paths_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        val_data_paths = _parse_val_data_paths(d.pop("val_data_paths", UNSET))

        data_spec = cls(
            answer_key=answer_key,
            append_eos=append_eos,
            apply_chat_template=apply_chat_template,
            group_by_length=group_by_length,
            max_length=max_length,
            max_samples=max_samples,
            messages_key=messages_key,
            prompt_key=prompt_key,
            seed=seed,
            shuffle=shuffle,
            train_data_paths=train_data_paths,
            type_=type_,
            val_data_paths=val_data_paths,
        )

        return data_spec
