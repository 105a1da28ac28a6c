"""What RLinf configs carry that loraplane accepts without acting on.

Keys listed here are accepted and reported back as `ignored_keys`; any other unknown key
inside a used section is a typo (a 422 that names the key it probably meant).
"""

from __future__ import annotations

# Keys RLinf configs carry in the sections loraplane uses, which loraplane does not act on.
# They are accepted and listed in `ignored_keys`; any other unknown key there is a typo.
RLINF_IGNORED_KEYS: dict[str, frozenset[str]] = {
    "actor": frozenset({
        "group_name", "training_backend", "mcore_gpu", "enable_offload", "eval_batch_size",
        "checkpoint_load_path", "checkpoint_save_path", "megatron", "tokenizer",
        "seq_length", "offload_optimizer", "offload_weight", "offload_grad",
        "enable_dp_load_balance", "calculate_flops", "calculate_entropy", "entropy_op_type",
        "use_dynamic_batch_size", "max_tokens_per_mbs", "sync_weight_no_wait",
        "recompute_logprobs", "component_placement", "channel", "micro_batch_size_per_gpu",
    }),
    "actor.model": frozenset({
        "model_type", "sharding_strategy", "add_value_head", "vocab_size", "hidden_size",
        "num_action_chunks", "action_dim", "policy_setup", "use_proprio", "unnorm_key",
        "num_steps", "attn_implementation", "tokenizer_path",
        "header", "value_type", "use_fast_tokenizer", "trust_remote_code", "use_liger_kernel",
    }),
    # RLinf's FSDP options beyond gradient_checkpointing, mixed_precision and
    # sharding_strategy (which are applied).
    "actor.fsdp_config": frozenset({
        "strategy", "cpu_offload", "offload_pin_memory",
        "reshard_after_forward", "enable_gradient_accumulation", "forward_prefetch",
        "limit_all_gathers", "backward_prefetch", "use_orig_params", "use_liger_kernel",
        "wrappers", "mixed_precision_policies", "mixed_precision_rules", "amp_autocast",
        "grad_scaler",
    }),
    "actor.optim": frozenset({
        "optimizer", "lr_decay_style", "min_lr", "min_lr_rate", "lr_warmup_fraction",
        "lr_warmup_init", "value_lr", "warmup_style", "num_cycles", "use_distributed_optimizer",
        "overlap_grad_reduce", "overlap_param_gather", "loss_scale", "initial_loss_scale",
        "bf16", "fp16",
    }),
    "data": frozenset({
        "num_workers", "max_prompt_length", "filter_prompt_by_length", "rollout_batch_size",
        "val_rollout_batch_size", "dataset_name", "chat_template",
        "tokenizer", "image_keys", "choice_key", "solution_key", "lazy_loading",
    }),
    "runner": frozenset({
        "task_type", "logger", "output_dir", "resume_dir", "seq_length",
        "enable_dynamic_batch_size", "max_tokens_per_mbs", "only_eval", "weight_sync_interval",
        "ckpt_path", "max_prompt_length", "per_worker_log",
    }),
    "cluster": frozenset({"num_gpus_per_node", "node_groups", "hardware_ranks"}),
}
USED_SECTIONS = ("actor", "data", "runner", "cluster")
TOP_LEVEL_KEYS = ("actor", "data", "runner", "cluster", "name", "priority")
