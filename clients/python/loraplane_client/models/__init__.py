"""Contains all the data models used in inputs/outputs"""

from .actor_spec import ActorSpec
from .adapter import Adapter
from .adapter_kind import AdapterKind
from .adapter_metrics_type_0 import AdapterMetricsType0
from .adapter_patch import AdapterPatch
from .adapter_patch_tags_type_0 import AdapterPatchTagsType0
from .adapter_result import AdapterResult
from .adapter_result_kind import AdapterResultKind
from .adapter_result_metrics_type_0 import AdapterResultMetricsType0
from .adapter_source import AdapterSource
from .adapter_tags import AdapterTags
from .alias import Alias
from .alias_update import AliasUpdate
from .blob import Blob
from .checkpoint import Checkpoint
from .checkpoint_kind import CheckpointKind
from .checkpoint_upload import CheckpointUpload
from .claim import Claim
from .claim_datasets import ClaimDatasets
from .claim_request import ClaimRequest
from .cluster_spec import ClusterSpec
from .cluster_spec_component_placement import ClusterSpecComponentPlacement
from .completion import Completion
from .data_spec import DataSpec
from .dataset import Dataset
from .delivery_state import DeliveryState
from .evaluation import Evaluation
from .evaluation_create import EvaluationCreate
from .evaluation_results import EvaluationResults
from .evaluation_summary import EvaluationSummary
from .example_result import ExampleResult
from .field_problem import FieldProblem
from .file_ref import FileRef
from .fsdp_config_spec import FsdpConfigSpec
from .fsdp_config_spec_sharding_strategy import FsdpConfigSpecShardingStrategy
from .healthz_response_healthz import HealthzResponseHealthz
from .heartbeat_reply import HeartbeatReply
from .import_adapter_files_body import ImportAdapterFilesBody
from .job import Job
from .job_error import JobError
from .job_event import JobEvent
from .job_event_data import JobEventData
from .job_failure import JobFailure
from .job_kind import JobKind
from .job_metrics_type_0 import JobMetricsType0
from .job_spec import JobSpec
from .job_state import JobState
from .lineage_entry import LineageEntry
from .list_adapters_kind_type_0 import ListAdaptersKindType0
from .list_adapters_servable_type_0 import ListAdaptersServableType0
from .lora_source import LoraSource
from .lora_source_kind import LoraSourceKind
from .mixed_precision_spec import MixedPrecisionSpec
from .mixed_precision_spec_buffer_dtype_type_0 import MixedPrecisionSpecBufferDtypeType0
from .mixed_precision_spec_param_dtype_type_0 import MixedPrecisionSpecParamDtypeType0
from .mixed_precision_spec_reduce_dtype_type_0 import MixedPrecisionSpecReduceDtypeType0
from .model_spec import ModelSpec
from .model_spec_precision_type_0 import ModelSpecPrecisionType0
from .new_token import NewToken
from .new_webhook import NewWebhook
from .optim_spec import OptimSpec
from .optim_spec_lr_scheduler import OptimSpecLrScheduler
from .page_adapter import PageAdapter
from .page_checkpoint import PageCheckpoint
from .page_dataset import PageDataset
from .page_job import PageJob
from .page_job_event import PageJobEvent
from .page_token_info import PageTokenInfo
from .page_webhook import PageWebhook
from .page_webhook_delivery import PageWebhookDelivery
from .peft_verdict import PeftVerdict
from .problem import Problem
from .progress import Progress
from .registry_import import RegistryImport
from .release import Release
from .report import Report
from .report_metrics_type_0 import ReportMetricsType0
from .resume_point import ResumePoint
from .role import Role
from .runner_spec import RunnerSpec
from .sample import Sample
from .sample_create import SampleCreate
from .sample_results import SampleResults
from .serving_verdicts import ServingVerdicts
from .source_file import SourceFile
from .task import Task
from .task_result import TaskResult
from .token_create import TokenCreate
from .token_info import TokenInfo
from .vllm_verdict import VllmVerdict
from .webhook import Webhook
from .webhook_attempt import WebhookAttempt
from .webhook_create import WebhookCreate
from .webhook_delivery import WebhookDelivery
from .webhook_delivery_payload import WebhookDeliveryPayload
from .webhook_event import WebhookEvent
from .worker_event import WorkerEvent
from .worker_event_data import WorkerEventData

__all__ = (
    "ActorSpec",
    "Adapter",
    "AdapterKind",
    "AdapterMetricsType0",
    "AdapterPatch",
    "AdapterPatchTagsType0",
    "AdapterResult",
    "AdapterResultKind",
    "AdapterResultMetricsType0",
    "AdapterSource",
    "AdapterTags",
    "Alias",
    "AliasUpdate",
    "Blob",
    "Checkpoint",
    "CheckpointKind",
    "CheckpointUpload",
    "Claim",
    "ClaimDatasets",
    "ClaimRequest",
    "ClusterSpec",
    "ClusterSpecComponentPlacement",
    "Completion",
    "DataSpec",
    "Dataset",
    "DeliveryState",
    "Evaluation",
    "EvaluationCreate",
    "EvaluationResults",
    "EvaluationSummary",
    "ExampleResult",
    "FieldProblem",
    "FileRef",
    "FsdpConfigSpec",
    "FsdpConfigSpecShardingStrategy",
    "HealthzResponseHealthz",
    "HeartbeatReply",
    "ImportAdapterFilesBody",
    "Job",
    "JobError",
    "JobEvent",
    "JobEventData",
    "JobFailure",
    "JobKind",
    "JobMetricsType0",
    "JobSpec",
    "JobState",
    "LineageEntry",
    "ListAdaptersKindType0",
    "ListAdaptersServableType0",
    "LoraSource",
    "LoraSourceKind",
    "MixedPrecisionSpec",
    "MixedPrecisionSpecBufferDtypeType0",
    "MixedPrecisionSpecParamDtypeType0",
    "MixedPrecisionSpecReduceDtypeType0",
    "ModelSpec",
    "ModelSpecPrecisionType0",
    "NewToken",
    "NewWebhook",
    "OptimSpec",
    "OptimSpecLrScheduler",
    "PageAdapter",
    "PageCheckpoint",
    "PageDataset",
    "PageJob",
    "PageJobEvent",
    "PageTokenInfo",
    "PageWebhook",
    "PageWebhookDelivery",
    "PeftVerdict",
    "Problem",
    "Progress",
    "RegistryImport",
    "Release",
    "Report",
    "ReportMetricsType0",
    "ResumePoint",
    "Role",
    "RunnerSpec",
    "Sample",
    "SampleCreate",
    "SampleResults",
    "ServingVerdicts",
    "SourceFile",
    "Task",
    "TaskResult",
    "TokenCreate",
    "TokenInfo",
    "VllmVerdict",
    "Webhook",
    "WebhookAttempt",
    "WebhookCreate",
    "WebhookDelivery",
    "WebhookDeliveryPayload",
    "WebhookEvent",
    "WorkerEvent",
    "WorkerEventData",
)
