from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.example_result import ExampleResult


T = TypeVar("T", bound="EvaluationResults")


@_attrs_define
class EvaluationResults:
    """
    Attributes:
        exact_match (float): Share of rows whose greedy answer is exact.
        exact_matches (int):
        examples (list[ExampleResult]): Per-row results, the first 1000 rows.
        loss (float | None): Token-weighted mean loss over every answer token.
        perplexity (float | None): exp(loss).
        rows (int): Rows measured.
        tokens (int): Answer tokens measured.
    """

    exact_match: float
    exact_matches: int
    examples: list[ExampleResult]
    loss: float | None
    perplexity: float | None
    rows: int
    tokens: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        exact_match = self.exact_match

        exact_matches = self.exact_matches

        examples = []
        for examples_item_data in self.examples:
            examples_item = examples_item_data.to_dict()
            examples.append(examples_item)

        loss: float | None
        loss = self.loss

        perplexity: float | None
        perplexity = self.perplexity

        rows = self.rows

        tokens = self.tokens

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "exact_match": exact_match,
                "exact_matches": exact_matches,
                "examples": examples,
                "loss": loss,
                "perplexity": perplexity,
                "rows": rows,
                "tokens": tokens,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.example_result import ExampleResult

        d = dict(src_dict)
        exact_match = d.pop("exact_match")

        exact_matches = d.pop("exact_matches")

        examples = []
        _examples = d.pop("examples")
        for examples_item_data in _examples:
            examples_item = ExampleResult.from_dict(examples_item_data)

            examples.append(examples_item)

        def _parse_loss(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        loss = _parse_loss(d.pop("loss"))

        def _parse_perplexity(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        perplexity = _parse_perplexity(d.pop("perplexity"))

        rows = d.pop("rows")

        tokens = d.pop("tokens")

        evaluation_results = cls(
            exact_match=exact_match,
            exact_matches=exact_matches,
            examples=examples,
            loss=loss,
            perplexity=perplexity,
            rows=rows,
            tokens=tokens,
        )

        evaluation_results.additional_properties = d
        return evaluation_results

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
