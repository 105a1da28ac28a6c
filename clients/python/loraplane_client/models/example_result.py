from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ExampleResult")


@_attrs_define
class ExampleResult:
    """
    Attributes:
        exact_match (bool): Prediction equals reference, outer whitespace aside.
        index (int): Row of the dataset, from 0.
        loss (float | None): Mean loss over the row's answer tokens.
        prediction (str): The greedy answer.
        reference (str):
        tokens (int): Answer tokens the loss is over (0: cut by max_length).
    """

    exact_match: bool
    index: int
    loss: float | None
    prediction: str
    reference: str
    tokens: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        exact_match = self.exact_match

        index = self.index

        loss: float | None
        loss = self.loss

        prediction = self.prediction

        reference = self.reference

        tokens = self.tokens

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "exact_match": exact_match,
                "index": index,
                "loss": loss,
                "prediction": prediction,
                "reference": reference,
                "tokens": tokens,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        exact_match = d.pop("exact_match")

        index = d.pop("index")

        def _parse_loss(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        loss = _parse_loss(d.pop("loss"))

        prediction = d.pop("prediction")

        reference = d.pop("reference")

        tokens = d.pop("tokens")

        example_result = cls(
            exact_match=exact_match,
            index=index,
            loss=loss,
            prediction=prediction,
            reference=reference,
            tokens=tokens,
        )

        example_result.additional_properties = d
        return example_result

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
