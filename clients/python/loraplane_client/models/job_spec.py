from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.actor_spec import ActorSpec
    from ..models.cluster_spec import ClusterSpec
    from ..models.data_spec import DataSpec
    from ..models.runner_spec import RunnerSpec


T = TypeVar("T", bound="JobSpec")


@_attrs_define
class JobSpec:
    """A training job: the RLinf sections loraplane acts on, plus queue options.

    Attributes:
        actor (ActorSpec): `actor`: batch sizes, seed, model and optimizer.
        cluster (ClusterSpec | Unset): `cluster`: where the job's components run. loraplane runs the actor (the model
            being
            trained) on one node, over the devices `component_placement.actor` asks for.
        data (DataSpec | Unset): `data`: supervised fine-tuning pairs.
        name (None | str | Unset): Job name; the adapter name falls back to it.
        priority (int | Unset): Higher runs first. Default: 0.
        runner (RunnerSpec | Unset): `runner`: run length, checkpoints, naming.
    """

    actor: ActorSpec
    cluster: ClusterSpec | Unset = UNSET
    data: DataSpec | Unset = UNSET
    name: None | str | Unset = UNSET
    priority: int | Unset = 0
    runner: RunnerSpec | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        actor = self.actor.to_dict()

        cluster: dict[str, Any] | Unset = UNSET
        if not isinstance(self.cluster, Unset):
            cluster = self.cluster.to_dict()

        data: dict[str, Any] | Unset = UNSET
        if not isinstance(self.data, Unset):
            data = self.data.to_dict()

        name: None | str | Unset
        if isinstance(self.name, Unset):
            name = UNSET
        else:
            name = self.name

        priority = self.priority

        runner: dict[str, Any] | Unset = UNSET
        if not isinstance(self.runner, Unset):
            runner = self.runner.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "actor": actor,
            }
        )
        if cluster is not UNSET:
            field_dict["cluster"] = cluster
        if data is not UNSET:
            field_dict["data"] = data
        if name is not UNSET:
            field_dict["name"] = name
        if priority is not UNSET:
            field_dict["priority"] = priority
        if runner is not UNSET:
            field_dict["runner"] = runner

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.actor_spec import ActorSpec
        from ..models.cluster_spec import ClusterSpec
        from ..models.data_spec import DataSpec
        from ..models.runner_spec import RunnerSpec

        d = dict(src_dict)
        actor = ActorSpec.from_dict(d.pop("actor"))

        _cluster = d.pop("cluster", UNSET)
        cluster: ClusterSpec | Unset
        if isinstance(_cluster, Unset):
            cluster = UNSET
        else:
            cluster = ClusterSpec.from_dict(_cluster)

        _data = d.pop("data", UNSET)
        data: DataSpec | Unset
        if isinstance(_data, Unset):
            data = UNSET
        else:
            data = DataSpec.from_dict(_data)

        def _parse_name(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        name = _parse_name(d.pop("name", UNSET))

        priority = d.pop("priority", UNSET)

        _runner = d.pop("runner", UNSET)
        runner: RunnerSpec | Unset
        if isinstance(_runner, Unset):
            runner = UNSET
        else:
            runner = RunnerSpec.from_dict(_runner)

        job_spec = cls(
            actor=actor,
            cluster=cluster,
            data=data,
            name=name,
            priority=priority,
            runner=runner,
        )

        return job_spec
