"""The training loop: steps with gradient accumulation, validation, checkpoints, stop requests.

Model building lives in `model`, the optimiser and schedule in `schedule`, the on-disk
training state in `checkpoint`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from loraplane_client.models import JobSpec
from peft import PeftModel

from worker.trainer import checkpoint as ckpt
from worker.trainer import distributed as ddp
from worker.trainer import model as models
from worker.trainer.adapter_config import base_model_reference
from worker.trainer.data import Example, collate, epoch_batches, load_examples, padding_share
from worker.trainer.errors import UserError
from worker.trainer.files import base_fingerprint
from worker.trainer.hooks import TrainingHooks, TrainingInputs, TrainingResult
from worker.trainer.loss import ChunkedLoss
from worker.trainer.precision import gradient_checkpointing_asked, plan_precision
from worker.trainer.schedule import make_optimizer
from worker.trainer.spec_values import value

logger = logging.getLogger(__name__)

OUTPUT_DIR = "output"
CHECKPOINTS_DIR = "checkpoints"
STOP_REQUESTS = (None, "cancel", "handback")


class TrainingSession:
    """One call of `run_training`; after `run()` its `model` is the trained model (for tests)."""

    def __init__(self, spec: JobSpec, inputs: TrainingInputs, hooks: TrainingHooks,
                 dist: ddp.Distributed | None = None) -> None:
        self.spec = spec
        # Several devices: this process is one rank (worker/trainer/distributed.py); only
        # rank 0's hooks reach the server, every rank trains.
        self.dist = dist
        self.base_model_dir = Path(inputs.base_model_dir)
        self.train_files = [Path(f) for f in inputs.train_files]
        self.val_files = [Path(f) for f in inputs.val_files]
        self.init_adapter_dir = Path(inputs.init_adapter_dir) if inputs.init_adapter_dir else None
        self.resume_dir = Path(inputs.resume_dir) if inputs.resume_dir else None
        self.work_dir = Path(inputs.work_dir)
        self.device = dist.device if dist else torch.device(inputs.device)
        self.hooks = hooks
        self.is_lora = spec.actor.model.is_lora
        self.kind = "lora" if self.is_lora else "full"
        self.model: torch.nn.Module | None = None
        self.metrics: dict[str, float] = {}
        self._last_checkpoint: tuple[int, Path] | None = None
        self._last_val_step = -1
        self._step = 0  # optimizer steps done before the one running now
        self._val_loss: float | None = None  # latest validation loss

    # ------------------------------------------------------------------ helpers

    def _note(self, message: str) -> None:
        logger.info("%s", message)
        self.hooks.log(message)

    def _choose_precision(self) -> None:
        self.plan = plan_precision(self.spec, self.device)
        for line in self.plan.notes:
            self._note(line)

    # ------------------------------------------------------------------ set-up

    def _load_data(self) -> None:
        data = self.spec.data
        common = {
            "prompt_key": data.prompt_key,
            "answer_key": data.answer_key,
            "max_length": data.max_length,
            "append_eos": data.append_eos,
            "messages_key": value(data.messages_key, "messages"),
            "apply_chat_template": bool(value(data.apply_chat_template, False)),
            "model_name": self.spec.actor.model.model_path,
        }
        self.train_examples, dropped = load_examples(
            self.train_files, self.tokenizer, max_samples=data.max_samples, **common
        )
        if dropped:
            self._note(f"dropped {dropped} training samples whose answer max_length cuts off")
        self.val_examples: list[Example] = []
        if self.val_files:
            self.val_examples, dropped = load_examples(
                self.val_files, self.tokenizer, what="validation", **common
            )
            if dropped:
                self._note(f"dropped {dropped} validation samples whose answer max_length cuts off")
        # Collated once: every validation pass runs the same micro-batches.
        self._val_batches = self._micro_batches(self.val_examples)
        self._val_tokens = max(1, sum(e.answer_tokens for e in self.val_examples))

    def _build_model(self, resume_state: dict[str, Any] | None) -> torch.nn.Module:
        return models.build_model(
            self.spec.actor.model,
            base_model_dir=self.base_model_dir,
            init_adapter_dir=self.init_adapter_dir,
            resume_dir=self.resume_dir if resume_state else None,
            note=self._note,
            base_dtype=self.plan.base_dtype,
        )

    def _read_resume_state(self) -> dict[str, Any] | None:
        if self.resume_dir is None:
            return None
        return ckpt.read_resume_state(
            self.resume_dir,
            kind=self.kind,
            num_examples=len(self.train_examples),
            global_batch_size=self.global_batch,
        )

    # ------------------------------------------------------------------ steps

    def _micro_batches(self, examples: list[Example]) -> list[dict[str, torch.Tensor]]:
        """Micro-batches in the given order; grouped by length, longest first (less padding,
        the same samples per step)."""
        size = self.spec.actor.micro_batch_size
        if self.group_by_length:
            examples = sorted(examples, key=lambda e: -len(e.input_ids))
        return [collate(examples[i : i + size], self.pad_id) for i in range(0, len(examples), size)]

    def _loss_sum(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Summed cross-entropy over answer tokens of one micro-batch (in chunks: `loss`)."""
        input_ids = batch["input_ids"].to(self.device, non_blocking=True)
        attention_mask = batch["attention_mask"].to(self.device, non_blocking=True)
        labels = batch["labels"].to(self.device, non_blocking=True)
        with self.plan.autocast():
            return self.forward(input_ids, attention_mask, labels)

    def _rank_batches(self, examples: list[Example]) -> list[tuple[dict[str, torch.Tensor], float]]:
        """This rank's micro-batches of a step with their weights: in a distributed run every
        rank runs as many as rank 0 (the biggest share), a missing one as a zero-weight repeat
        so the collectives stay in step."""
        batches = self._micro_batches(examples)
        if self.dist is None:
            return [(b, 1.0) for b in batches]
        count = ddp.micro_batch_count(self._share_of_rank0, self.spec.actor.micro_batch_size)
        filler = batches[0] if batches else self._filler
        return [(b, 1.0) for b in batches] + [(filler, 0.0)] * (count - len(batches))

    def _train_step(self, examples: list[Example]) -> dict[str, float]:
        started = time.perf_counter()
        dist = self.dist
        if dist is not None:  # this rank's share of the global batch
            everyone = examples
            self._share_of_rank0 = -(-len(everyone) // dist.world_size)
            examples = [everyone[i] for i in ddp.rank_share(
                range(len(everyone)), [len(e.input_ids) for e in everyone], dist.rank,
                dist.world_size)]
            answer_tokens = sum(e.answer_tokens for e in everyone)  # the GLOBAL count
            input_tokens = sum(len(e.input_ids) for e in everyone)
        else:
            answer_tokens = sum(e.answer_tokens for e in examples)
            input_tokens = sum(len(e.input_ids) for e in examples)
        batches = self._rank_batches(examples)
        padding = padding_share([b for b, w in batches if w])
        # DDP and FSDP average gradients over the ranks: scaled by the world size, each rank's
        # sum over the global token count adds up to the one-process gradient.
        scale = (dist.world_size if dist else 1) / answer_tokens
        total = torch.zeros((), device=self.device)
        for index, (batch, weight) in enumerate(batches):
            with self._sync(index == len(batches) - 1):
                loss = self._loss_sum(batch) * (scale * weight)
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            total += loss.detach()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        clip = self.spec.actor.optim.clip_grad
        if clip is not None and clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        else:
            grad_norm = torch.nn.utils.get_total_norm(
                [p.grad for p in self.params if p.grad is not None]
            )
        if dist is not None:
            grad_norm = ddp.plain(grad_norm)
            # The loss of the global batch; the total norm is whole already (DDP's gradients
            # are reduced, FSDP's norm is gathered from the shards).
            loss_sum, padding_sum = ddp.sum_over_ranks(
                [float(total) / dist.world_size, padding], dist)  # one collective for both
            total, padding = torch.tensor(loss_sum), padding_sum / dist.world_size
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss_value = float(total)  # synchronises with the device, so the timing below is real
        if not math.isfinite(loss_value):
            raise UserError(
                f"training diverged: the loss is {loss_value} at step {self._step + 1}; "
                "lower actor.optim.lr, enable clip_grad, or use bf16/fp32 instead of fp16",
                code="training_diverged",
            )
        elapsed = max(time.perf_counter() - started, 1e-9)
        return {
            "loss": loss_value,
            "lr": float(lr),
            "grad_norm": float(grad_norm),
            "tokens_per_s": input_tokens / elapsed,
            "tokens": float(input_tokens),
            "padding_share": padding,
            # on a GPU, the peak memory of this process's device so far (rank 0's, sharded)
            **({"max_memory_mib": torch.cuda.max_memory_allocated(self.device) / 2**20}
               if self.device.type == "cuda" else {}),
        }

    def _sync(self, last: bool):
        """Gradients reduced over the ranks in the last micro-batch of a step only."""
        if self.dist is None:
            return contextlib.nullcontext()
        return ddp.gradient_sync(self.root, last)

    @torch.no_grad()
    def _validate(self) -> float:
        self.model.eval()
        batches = self._val_batches
        weights = [1.0] * len(batches)
        if self.dist is not None:  # each rank a share; equal counts keep the collectives in step
            world, rank = self.dist.world_size, self.dist.rank
            count = -(-len(batches) // world)
            mine = batches[rank::world]
            weights = [1.0] * len(mine) + [0.0] * (count - len(mine))
            batches = mine + [batches[0]] * (count - len(mine))
        try:
            loss_sum = torch.zeros((), device=self.device)
            for batch, weight in zip(batches, weights, strict=True):
                loss_sum += self._loss_sum(batch) * weight
        finally:
            self.model.train()
        total = float(loss_sum)  # one device sync per validation
        if self.dist is not None:
            total = ddp.sum_over_ranks([total], self.dist)[0]
        return total / self._val_tokens

    # ------------------------------------------------------------------ outputs

    def _write_weights(self, directory: Path,
                       state: dict[str, torch.Tensor] | None = None) -> None:
        """The adapter or the full HF folder; `state`: the gathered weights of a sharded run."""
        if isinstance(self.model, PeftModel):
            base = base_model_reference(self.base_model_dir, self.spec.actor.model.model_path)
            models.write_adapter(self.model, directory, base, state_dict=state)
        else:
            models.write_full_model(self.model, self.tokenizer, directory, state_dict=state)

    def _gather_weights(self) -> dict[str, torch.Tensor] | None:
        """A distributed run's weights gathered on rank 0 (a collective: every rank calls it)."""
        return ddp.full_model_state(self.model) if self.dist is not None else None

    @property
    def _writes(self) -> bool:
        """Whether this process writes files and speaks to the server: one process or rank 0."""
        return self.dist is None or self.dist.is_main

    def _save_checkpoint(self, step: int) -> Path:
        final = self.work_dir / CHECKPOINTS_DIR / f"step-{step:08d}"
        epoch, position = divmod(step, self.steps_per_epoch)
        weights = self._gather_weights()
        optimizer = None
        if self.dist is not None:
            optimizer = ddp.full_optimizer_state(self.model, self.optimizer)
        if not self._writes:
            self._last_checkpoint = (step, final)
            return final
        if optimizer is not None:
            optimizer = ckpt.by_index(optimizer, self.param_names)
        with ckpt.staged_dir(final) as staging:
            self._write_weights(staging, weights)
            ckpt.save_optimizer(self.optimizer, self.param_names, staging, optimizer)
            ckpt.save_rng(staging)
            ckpt.write_json(
                staging / ckpt.TRAINER_STATE,
                {
                    "format_version": ckpt.FORMAT_VERSION,
                    "kind": self.kind,
                    "step": step,
                    "total_steps": self.total_steps,
                    "epoch": epoch,
                    "position": position,
                    "steps_per_epoch": self.steps_per_epoch,
                    "num_examples": len(self.train_examples),
                    "global_batch_size": self.global_batch,
                    "data_seed": self.spec.data.seed,
                    "scheduler": self.scheduler.state_dict(),
                    "grad_scaler": self.scaler.state_dict() if self.scaler else None,
                    "precision": self.plan.name,
                    "metrics": self.metrics,
                    "last_val_step": self._last_val_step,
                    "val_loss": self._val_loss,
                    "world_size": self.dist.world_size if self.dist else 1,
                },
            )
        self._note(f"checkpoint saved at step {step}")
        self.hooks.checkpoint(step, final)
        previous = self._last_checkpoint
        self._last_checkpoint = (step, final)
        if previous is not None and previous[1] != final:
            shutil.rmtree(previous[1], ignore_errors=True)  # uploaded by the hook already
        return final

    def _restore(self, state: dict[str, Any]) -> int:
        step = int(state["step"])
        if [state.get("epoch"), state.get("position")] != list(divmod(step, self.steps_per_epoch)):
            raise UserError(
                f"checkpoint {self.resume_dir} has an inconsistent data position",
                code="invalid_checkpoint",
            )
        if self.dist is None:
            ckpt.load_optimizer(self.optimizer, self.param_names, self.resume_dir)
        else:  # every rank reads the whole state; each keeps its shard
            saved = ckpt.read_optimizer(self.optimizer, self.param_names, self.resume_dir)
            ddp.load_full_optimizer_state(self.model, self.optimizer,
                                          ckpt.by_name(saved, self.param_names))
        written_on = int(state.get("world_size") or 1)
        world = self.dist.world_size if self.dist else 1
        if written_on != world:
            self._note(f"the checkpoint was written on {written_on} device(s); this attempt "
                       f"runs on {world}, with the same global batch")
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])
        ckpt.load_rng(self.resume_dir)
        saved = state.get("precision")
        if saved is not None and saved != self.plan.name:
            self._note(f"the checkpoint was trained in {saved}; this attempt trains in "
                       f"{self.plan.name}")
        self.metrics = dict(state.get("metrics") or {})
        self._last_val_step = int(state.get("last_val_step", -1))
        self._val_loss = state.get("val_loss")
        self._note(f"resumed from checkpoint at step {step} of {self.total_steps}")
        return step

    def _result(self, step: int, output_dir: Path, stopped: str | None) -> TrainingResult:
        lora = self.model.peft_config["default"] if isinstance(self.model, PeftModel) else None
        return TrainingResult(
            kind=self.kind,
            output_dir=output_dir,
            step=step,
            total_steps=self.total_steps,
            metrics={
                **self.metrics,
                **({"val_loss": self._val_loss} if self._val_loss is not None else {}),
            },
            rank=int(lora.r) if lora else None,
            alpha=float(lora.lora_alpha) if lora else None,
            target_modules=models.wrapped_leaf_names(self.model) if lora else [],
            trainable_params=sum(p.numel() for p in self.params),
            total_params=sum(p.numel() for p in self.model.parameters()),
            base_fingerprint=self.fingerprint,
            stopped=stopped,
        )

    # ------------------------------------------------------------------ run

    def _prepare(self) -> int:
        """Data, model, optimizer and schedule; restored from `resume_dir` if given. Next step."""
        spec, actor = self.spec, self.spec.actor
        self.group_by_length = bool(value(spec.data.group_by_length, False))
        self.fingerprint = base_fingerprint(self.base_model_dir)
        self._choose_precision()
        self.tokenizer = models.load_tokenizer(self.base_model_dir)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        self._load_data()
        self.global_batch = actor.global_batch_size or actor.micro_batch_size
        self.steps_per_epoch = math.ceil(len(self.train_examples) / self.global_batch)
        self.total_steps = (
            spec.runner.max_steps
            if spec.runner.max_steps != -1
            else spec.runner.max_epochs * self.steps_per_epoch
        )
        resume_state = self._read_resume_state()

        torch.manual_seed(actor.seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed_all(actor.seed)
        self.model = self._build_model(resume_state)
        # FSDP on GPUs moves each rank's shards to its device itself: the whole model never
        # sits on one GPU (the probe below then runs on the CPU copy).
        sharded_on_gpu = (self.dist is not None and self.device.type == "cuda"
                          and self._strategy() != "no_shard")
        probe_device = torch.device("cpu") if sharded_on_gpu else self.device
        if not sharded_on_gpu:
            self.model = self.model.to(self.device)
        self.plan.cast_buffers(self.model)
        self.gradient_checkpointing = gradient_checkpointing_asked(spec)
        if self.gradient_checkpointing:
            models.enable_gradient_checkpointing(self.model)
        self.model.train()
        self.loss = ChunkedLoss(self.model)
        probe = self._micro_batches(self.train_examples[:1])[0]
        with self.plan.autocast():
            fallback = self.loss.check(
                probe["input_ids"].to(probe_device), probe["attention_mask"].to(probe_device)
            )
        if fallback:
            self._note(fallback)
        self._filler = probe  # a zero-weight micro-batch for a rank short of samples
        self.forward = self.loss
        if self.dist is not None:
            self._shard()
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.param_names = [n for n, _ in named]
        self.params = [p for _, p in named]
        trainable = sum(p.numel() for p in self.params)
        total = sum(p.numel() for p in self.model.parameters())
        if isinstance(self.model, PeftModel):
            config = self.model.peft_config["default"]
            leaves = ", ".join(models.wrapped_leaf_names(self.model))
            self._note(f"LoRA r={config.r} alpha={config.lora_alpha} on {leaves}")
        self._note(
            f"model loaded on {self.device}: {trainable:,} of {total:,} parameters trainable "
            f"({100 * trainable / total:.2f}%)"
        )

        self.optimizer, self.scheduler = make_optimizer(
            self.params, actor.optim, self.total_steps
        )
        self.scaler = torch.amp.GradScaler(self.device.type) if self.plan.grad_scaler else None
        self._note("applied: " + self._applied())
        step = self._restore(resume_state) if resume_state else 0
        self._note(
            f"training {self.total_steps - step} steps ({len(self.train_examples)} samples, "
            f"batch {self.global_batch} = {self._batch_split()})"
        )
        return step

    def _batch_split(self) -> str:
        """How a global batch is computed: `4 x 2` (micro-batches x size), or with several
        devices `2 devices x 2 x 2` (at most; gradient accumulation fills the rest)."""
        micro = self.spec.actor.micro_batch_size
        if self.dist is None:
            return f"{self.global_batch // micro} x {micro}"
        world = self.dist.world_size
        per_rank = ddp.micro_batch_count(-(-self.global_batch // world), micro)
        return f"{world} devices x {per_rank} x {micro}"

    def _strategy(self) -> str:
        """`actor.fsdp_config.sharding_strategy` (full_shard when unset)."""
        return value(value(self.spec.actor.fsdp_config).sharding_strategy, "full_shard")

    def _shard(self) -> None:
        """Wrap the model for several devices (FSDP2 or DDP, per the sharding strategy)."""
        dist = self.dist
        strategy = self._strategy()
        if self.plan.grad_scaler and strategy != "no_shard":
            raise UserError(
                "fp16 on several devices needs sharding_strategy no_shard (the grad scaler "
                "does not run on sharded gradients); use bf16, or no_shard",
                code="invalid_spec",
            )
        self.root = ddp.wrap_model(self.model, self.loss, strategy, dist)
        self.forward = self.root
        self.strategy = strategy
        self._note(f"rank {dist.rank} of {dist.world_size} on {dist.device} ({dist.backend}): "
                   f"{strategy} ({'DDP' if strategy == 'no_shard' else 'FSDP2'})")

    def _applied(self) -> str:
        """What this run does with the memory settings, for the job's events."""
        parts = [self.plan.describe()]
        parts.append(f"gradient checkpointing {'on' if self.gradient_checkpointing else 'off'}")
        if self.dist is not None:
            parts.append(f"{self.dist.world_size} devices, {self.strategy}")
        if self.loss.chunked:
            parts.append(f"loss in chunks of {self.loss.chunk} tokens")
        if self.group_by_length:
            parts.append("batches grouped by length")
        return "; ".join(parts)

    def run(self) -> TrainingResult:
        """Train to the end, or until a stop request; write the output or a handback checkpoint."""
        spec = self.spec
        step = self._prepare()
        batches_epoch, batches = -1, []
        lengths = [len(e.input_ids) for e in self.train_examples]
        interval, val_every = spec.runner.save_interval, spec.runner.val_check_interval
        while step < self.total_steps:
            epoch, position = divmod(step, self.steps_per_epoch)
            if epoch != batches_epoch:
                batches_epoch = epoch
                batches = epoch_batches(
                    lengths,
                    batch_size=self.global_batch,
                    seed=spec.data.seed,
                    epoch=epoch,
                    shuffle=spec.data.shuffle,
                    group_by_length=self.group_by_length,
                )
            indices = batches[position]
            self._step = step
            metrics = self._train_step([self.train_examples[i] for i in indices])
            step += 1
            metrics["epoch"] = step / self.steps_per_epoch
            if (
                self.val_examples
                and val_every != -1
                and (step % val_every == 0 or step == self.total_steps)
            ):
                metrics["val_loss"] = self._val_loss = self._validate()
                self._last_val_step = step
            self.metrics = metrics
            self.hooks.progress(step, self.total_steps, metrics)
            if interval != -1 and step % interval == 0 and step < self.total_steps:
                self._save_checkpoint(step)
            request = self.hooks.should_stop()
            if request not in STOP_REQUESTS:
                raise ValueError(
                    f"should_stop() returned {request!r}; expected one of {STOP_REQUESTS}"
                )
            if self.dist is not None:  # rank 0's answer: every rank stops after this step
                request = ddp.agree_on_stop(request, self.dist)
            if request == "cancel":
                self._note(f"cancelled after step {step}")
                return self._result(step, self.work_dir / OUTPUT_DIR, "cancel")
            if request == "handback":
                done = self._last_checkpoint
                directory = done[1] if done and done[0] == step else self._save_checkpoint(step)
                self._note(f"handed back after step {step}")
                return self._result(step, directory, "handback")

        if self.val_examples and val_every != -1 and self._last_val_step != step:
            self._val_loss = self._validate()
            self._last_val_step = step
        output = self.work_dir / OUTPUT_DIR
        weights = self._gather_weights()
        if not self._writes:
            return self._result(step, output, None)
        with ckpt.staged_dir(output) as staging:
            self._write_weights(staging, weights)
        self._note(
            f"training finished at step {step}; loss {self.metrics.get('loss', float('nan')):.4f}"
        )
        return self._result(step, output, None)
