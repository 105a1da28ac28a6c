from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="EvaluationCreate")


@_attrs_define
class EvaluationCreate:
    """`POST /evaluations`: measure an adapter (or a bare base model) on a dataset.

    Attributes:
        dataset (str): A dataset id (`ds_…`), `demo`, or a worker-local JSONL under the allowed roots: prompt/answer
            rows or conversations.
        adapter (None | str | Unset): Any `lora_path` form (adapter id, `name:version`, `name@alias`, adapter or
            checkpoint URL, checkpoint id, worker-local folder); null: the bare base model.
        answer_key (str | Unset):  Default: 'answer'.
        apply_chat_template (bool | Unset): Wrap prompt/answer rows in the chat template, as in training. Default:
            False.
        base_model (None | str | Unset): The base model (`model_path`); defaults to the adapter's. Required with a null
            `adapter` or a worker-local folder.
        max_length (int | Unset): Tokens per row for the loss; longer rows are cut. Default: 1024.
        max_new_tokens (int | Unset): Greedy tokens generated per row for exact match. Default: 64.
        max_samples (int | Unset): The first rows measured. Default: 200.
        messages_key (str | Unset):  Default: 'messages'.
        priority (int | Unset):  Default: 0.
        prompt_key (str | Unset):  Default: 'prompt'.
    """

    dataset: str
    adapter: None | str | Unset = UNSET
    answer_key: str | Unset = "answer"
    apply_chat_template: bool | Unset = False
    base_model: None | str | Unset = UNSET
    max_length: int | Unset = 1024
    max_new_tokens: int | Unset = 64
    max_samples: int | Unset = 200
    messages_key: str | Unset = "messages"
    priority: int | Unset = 0
    prompt_key: str | Unset = "prompt"

    def to_dict(self) -> dict[str, Any]:
        dataset = self.dataset

        adapter: None | str | Unset
        if isinstance(self.adapter, Unset):
            adapter = UNSET
        else:
            adapter = self.adapter

        answer_key = self.answer_key

        apply_chat_template = self.apply_chat_template

        base_model: None | str | Unset
        if isinstance(self.base_model, Unset):
            base_model = UNSET
        else:
            base_model = self.base_model

        max_length = self.max_length

        max_new_tokens = self.max_new_tokens

        max_samples = self.max_samples

        messages_key = self.messages_key

        priority = self.priority

        prompt_key = self.prompt_key

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dataset": dataset,
            }
        )
        if adapter is not UNSET:
            field_dict["adapter"] = adapter
        if answer_key is not UNSET:
            field_dict["answer_key"] = answer_key
        if apply_chat_template is not UNSET:
            field_dict["apply_chat_template"] = apply_chat_template
        if base_model is not UNSET:
            field_dict["base_model"] = base_model
        if max_length is not UNSET:
            field_dict["max_length"] = max_length
        if max_new_tokens is not UNSET:
            field_dict["max_new_tokens"] = max_new_tokens
        if max_samples is not UNSET:
            field_dict["max_samples"] = max_samples
        if messages_key is not UNSET:
            field_dict["messages_key"] = messages_key
        if priority is not UNSET:
            field_dict["priority"] = priority
        if prompt_key is not UNSET:
            field_dict["prompt_key"] = prompt_key

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        dataset = d.pop("dataset")

        def _parse_adapter(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        adapter = _parse_adapter(d.pop("adapter", UNSET))

        answer_key = d.pop("answer_key", UNSET)

        apply_chat_template = d.pop("apply_chat_template", UNSET)

        def _parse_base_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        base_model = _parse_base_model(d.pop("base_model", UNSET))

        max_length = d.pop("max_length", UNSET)

        max_new_tokens = d.pop("max_new_tokens", UNSET)

        max_samples = d.pop("max_samples", UNSET)

        messages_key = d.pop("messages_key", UNSET)

        priority = d.pop("priority", UNSET)

        prompt_key = d.pop("prompt_key", UNSET)

        evaluation_create = cls(
            dataset=dataset,
            adapter=adapter,
            answer_key=answer_key,
            apply_chat_template=apply_chat_template,
            base_model=base_model,
            max_length=max_length,
            max_new_tokens=max_new_tokens,
            max_samples=max_samples,
            messages_key=messages_key,
            priority=priority,
            prompt_key=prompt_key,
        )

        return evaluation_create
