from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.cluster_spec_component_placement import ClusterSpecComponentPlacement


T = TypeVar("T", bound="ClusterSpec")


@_attrs_define
class ClusterSpec:
    """`cluster`: where the job's components run. loraplane runs the actor (the model being
    trained) on one node, over the devices `component_placement.actor` asks for.

        Attributes:
            component_placement (ClusterSpecComponentPlacement | Unset): Devices per component (RLinf's form; keys may name
                several components, like `actor,rollout`). Only the actor's entry is used: `all` = every device of the worker
                that claims the job, `"0-3"` = 4 devices, `"0,2"` = 2, an int = one device. It says how many devices, not which:
                a worker runs the job on the first that many of those it offers. Missing: one device.
            num_nodes (int | Unset): Nodes the job spans; only 1 is supported (multi-node training does not exist yet).
                Default: 1.
    """

    component_placement: ClusterSpecComponentPlacement | Unset = UNSET
    num_nodes: int | Unset = 1

    def to_dict(self) -> dict[str, Any]:
        component_placement: dict[str, Any] | Unset = UNSET
        if not isinstance(self.component_placement, Unset):
            component_placement = self.component_placement.to_dict()

        num_nodes = self.num_nodes

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if component_placement is not UNSET:
            field_dict["component_placement"] = component_placement
        if num_nodes is not UNSET:
            field_dict["num_nodes"] = num_nodes

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.cluster_spec_component_placement import ClusterSpecComponentPlacement

        d = dict(src_dict)
        _component_placement = d.pop("component_placement", UNSET)
        component_placement: ClusterSpecComponentPlacement | Unset
        if isinstance(_component_placement, Unset):
            component_placement = UNSET
        else:
            component_placement = ClusterSpecComponentPlacement.from_dict(_component_placement)

        num_nodes = d.pop("num_nodes", UNSET)

        cluster_spec = cls(
            component_placement=component_placement,
            num_nodes=num_nodes,
        )

        return cluster_spec
