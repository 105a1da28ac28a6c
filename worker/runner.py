"""The worker loop: claim a job, fetch its inputs, train it under a heartbeat, report back."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loraplane_client.fetch import BlobCache, ChecksumMismatch
from loraplane_client.models import (
    AdapterResult,
    AdapterResultKind,
    AdapterResultMetricsType0,
    Claim,
    EvaluationResults,
    JobKind,
    LoraSource,
    LoraSourceKind,
    ResumePoint,
    SampleResults,
    SourceFile,
    TaskResult,
    WorkerEvent,
    WorkerEventData,
)
from loraplane_client.types import Unset

from worker.client import LEASE_HEADER, LeaseLost, ServerError, WorkerClient
from worker.trainer.errors import TrainerError, UserError

log = logging.getLogger(__name__)

REPORT_EVERY_SECONDS = 0.5


def pick_device(device: str) -> str:
    """`auto` → `cuda` when a GPU is there, else `cpu`; anything else is checked and kept."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"device {device} asked for, but torch sees no CUDA device")
    return device


def offered_devices(device: str, cpu_ranks: int = 1) -> list[str]:
    """The devices a worker offers: `cuda` = every visible GPU, `cuda:0,1` = those two,
    `cuda:N` = one, `cpu` = `cpu_ranks` CPU ranks (gloo; for tests and small models),
    `auto` = `cuda` when a GPU is there, else one CPU rank."""
    import torch

    if cpu_ranks < 1:
        raise SystemExit(f"--cpu-ranks must be >= 1, got {cpu_ranks}")
    picked = pick_device(device)
    if picked == "cpu":
        return ["cpu"] * cpu_ranks
    if cpu_ranks != 1:
        raise SystemExit("--cpu-ranks is for --device cpu; a GPU worker offers its GPUs")
    if not picked.startswith("cuda"):
        raise SystemExit(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or cuda:0,1")
    count = torch.cuda.device_count()
    if picked == "cuda":
        return [f"cuda:{i}" for i in range(count)]
    ids = picked.removeprefix("cuda:").split(",")
    if not all(i.strip().isdigit() for i in ids) or len(set(ids)) != len(ids):
        raise SystemExit(f"cannot read the device list {device!r}: write cuda:0,1")
    wrong = [i for i in ids if int(i) >= count]
    if wrong:
        raise SystemExit(f"{device}: torch sees {count} CUDA device(s), not cuda:{wrong[0]}")
    return [f"cuda:{int(i)}" for i in ids]


@dataclass
class WorkerOptions:
    server: str
    token: str | None
    models_dir: Path
    work_dir: Path
    device: str = "auto"
    cpu_ranks: int = 1  # with device cpu: CPU ranks offered (one process each, gloo)
    threads_per_rank: int | None = None  # torch threads of each rank; None: the cores shared
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{secrets.token_hex(4)}")
    wait_seconds: float = 20.0
    once: bool = False  # stop after one job (tests, batch use)


class WorkerStopped(Exception):
    """Raised by the signal handler to break an idle worker out of its long-poll."""


class JobRun:
    """One claimed job: the trainer's hooks, and the threads that heartbeat and report.

    The training thread only appends events to a buffer; a reporter thread sends them every
    REPORT_EVERY_SECONDS, so no training step waits on the network (checkpoints and the end
    of the run flush at once, in order).
    """

    def __init__(self, client: WorkerClient, claim: Claim, stopping: threading.Event):
        self.client = client
        self.claim = claim
        self.job_id = claim.job.id
        self.lease_id = claim.lease_id
        self.heartbeat_seconds = claim.heartbeat_seconds
        self.stopping = stopping  # SIGTERM: hand the job back after a checkpoint
        self.cancel_requested = threading.Event()
        self.lease_lost = threading.Event()
        self.done = threading.Event()
        self._events: list[WorkerEvent] = []
        self._progress: tuple[int, int, dict[str, Any]] | None = None
        self._lock = threading.Lock()  # guards the buffer
        self._sending = threading.Lock()  # one batch on the wire at a time, in order

    # -- heartbeat -----------------------------------------------------------------------
    def heartbeat_forever(self) -> None:
        while not self.done.wait(self.heartbeat_seconds):
            try:
                reply = self.client.heartbeat(self.job_id, self.lease_id)
            except LeaseLost:
                log.warning("job %s: lease lost; abandoning it", self.job_id)
                self.lease_lost.set()
                return
            except Exception:  # server briefly away: keep trying until the lease runs out
                log.warning("job %s: heartbeat failed", self.job_id, exc_info=True)
                continue
            if reply.cancel_requested:
                self.cancel_requested.set()

    def report_forever(self) -> None:
        while not self.done.wait(REPORT_EVERY_SECONDS):
            try:
                self.flush()
            except Exception:  # the final flush or the lease sweep settles it
                log.warning("job %s: report failed", self.job_id, exc_info=True)

    # -- TrainingHooks -------------------------------------------------------------------
    def _event(self, kind: str, data: dict[str, Any]) -> WorkerEvent:
        return WorkerEvent(kind=kind, data=WorkerEventData.from_dict(data))

    def log(self, message: str) -> None:
        log.info("job %s: %s", self.job_id, message)
        with self._lock:
            self._events.append(self._event("log", {"line": message}))

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        with self._lock:
            self._events.append(self._event("metrics", {"step": step, "total": total,
                                                        **metrics}))
            self._progress = (step, total, metrics)

    def checkpoint(self, step: int, directory: Path) -> None:
        self.flush()
        files = self.client.upload_folder(self.job_id, self.lease_id, directory)
        self.client.add_checkpoint(self.job_id, self.lease_id, step=step, files=files)
        self.log(f"checkpoint at step {step} saved ({sum(f.size for f in files)} bytes)")

    def should_stop(self) -> str | None:
        if self.lease_lost.is_set() or self.cancel_requested.is_set():
            return "cancel"
        if self.stopping.is_set():
            return "handback"
        return None

    def flush(self) -> None:
        """Send what is buffered now."""
        with self._sending:
            with self._lock:
                if not self._events:
                    return
                events, self._events = self._events, []
                progress = self._progress
            step, total, metrics = progress if progress else (None, None, None)
            try:
                self.client.report(self.job_id, self.lease_id, events=events, step=step,
                                   total=total, metrics=metrics)
            except LeaseLost:
                self.lease_lost.set()


class Worker:
    """Claims jobs from the server and runs them one at a time."""

    def __init__(self, options: WorkerOptions, client: WorkerClient | None = None):
        self.options = options
        self.client = client or WorkerClient(options.server, options.token)
        self.devices = offered_devices(options.device, options.cpu_ranks)
        if not self.devices:
            raise SystemExit(f"device {options.device}: torch sees no device to offer")
        self.device = self.devices[0]  # single-device jobs, evaluations and samples
        self.stopping = threading.Event()
        self.idle = False
        self.cache = BlobCache(options.work_dir / "cache")

    def stop(self) -> None:
        """Finish the current step, checkpoint, hand the job back, and exit."""
        self.stopping.set()

    def on_signal(self, *_: object) -> None:
        """Signal handler: stop; an idle worker leaves its long-poll at once."""
        self.stop()
        if self.idle:
            raise WorkerStopped

    def run(self) -> None:
        log.info("worker %s on %s polling %s", self.options.worker_id,
                 ", ".join(self.devices), self.options.server)
        while not self.stopping.is_set():
            try:
                self.idle = True
                claim = self.client.claim(self.options.worker_id,
                                          wait_seconds=self.options.wait_seconds,
                                          device=self.device, devices=len(self.devices))
                self.idle = False
            except WorkerStopped:
                break
            except Exception:
                self.idle = False
                log.warning("claim failed; retrying", exc_info=True)
                self.stopping.wait(2.0)
                continue
            if claim is None:
                continue
            if self.stopping.is_set():
                self.client.release(claim.job.id, claim.lease_id, "worker shutting down")
                break
            self.run_job(claim)
            if self.options.once:
                break

    def run_job(self, claim: Claim) -> None:
        run = JobRun(self.client, claim, self.stopping)
        self.client.http.headers[LEASE_HEADER] = run.lease_id  # input downloads are fenced
        beat = threading.Thread(target=run.heartbeat_forever, name=f"heartbeat-{run.job_id}",
                                daemon=True)
        reporter = threading.Thread(target=run.report_forever, name=f"report-{run.job_id}",
                                    daemon=True)
        beat.start()
        reporter.start()
        work_dir = self.options.work_dir / "jobs" / run.job_id
        try:
            self._train(run, work_dir)
        except LeaseLost:
            log.warning("job %s: lease lost; abandoned", run.job_id)
        except (TrainerError, ServerError) as exc:
            retryable = not isinstance(exc, UserError)
            self._report_failure(run, exc.code, exc.message, retryable=retryable)
        except Exception as exc:  # any other failure is the machine's, not the user's
            log.exception("job %s failed", run.job_id)
            code = "out_of_memory" if "OutOfMemoryError" in type(exc).__name__ else "system_error"
            self._report_failure(run, code, f"{type(exc).__name__}: {exc}", retryable=True)
        finally:
            self.client.http.headers.pop(LEASE_HEADER, None)
            run.done.set()
            beat.join(timeout=5)
            reporter.join(timeout=5)
            shutil.rmtree(work_dir, ignore_errors=True)

    def _report_failure(self, run: JobRun, code: str, message: str, *, retryable: bool) -> None:
        try:
            run.flush()
            self.client.fail(run.job_id, run.lease_id, code=code, message=message,
                             retryable=retryable)
        except LeaseLost:
            log.warning("job %s: lease lost before the failure was reported", run.job_id)
        except Exception:  # the server is away: its lease sweep will requeue the job
            log.exception("job %s: could not report the failure", run.job_id)

    def _stopped(self, run: JobRun, stopped: str | None) -> bool:
        """Settle a run the trainer stopped (cancel or hand-back); False if it ran to the end."""
        if stopped == "cancel":
            if not run.lease_lost.is_set():
                self.client.acknowledge_cancel(run.job_id, run.lease_id)
            return True
        if stopped == "handback":
            self.client.release(run.job_id, run.lease_id, "worker shutting down (SIGTERM)")
            return True
        return False

    def _run_task(self, run: JobRun, kind: JobKind, work_dir: Path) -> None:
        """An evaluation or a sample job: no checkpoints; a retry starts it again."""
        from worker.trainer import resolve_model_dir
        from worker.trainer.evaluate import run_evaluation
        from worker.trainer.sample import run_sample

        claim, spec, task = run.claim, run.claim.job.spec, run.claim.task
        if not task:
            raise ServerError(f"the claim of {kind} job {run.job_id} carries no task",
                              code="invalid_claim")
        work_dir.mkdir(parents=True, exist_ok=True)
        base = resolve_model_dir(self._base_model(spec.actor.model.model_path),
                                 self.options.models_dir)
        adapter = self._lora_source(claim.lora_source or None, work_dir / "adapter")
        if kind == JobKind.EVALUATION:
            datasets = claim.datasets.additional_properties if claim.datasets else {}
            files = [self._dataset(p, datasets) for p in spec.data.train_data_paths]
            results, stopped = run_evaluation(spec, base, adapter, files,
                                              max_new_tokens=task.max_new_tokens,
                                              device=self.device, hooks=run)
            body = TaskResult(evaluation=EvaluationResults.from_dict(results or {}))
        else:
            completions, stopped = run_sample(
                base, adapter, list(task.prompts or []), max_new_tokens=task.max_new_tokens,
                temperature=float(task.temperature or 0.0), seed=int(task.seed or 0),
                device=self.device, hooks=run)
            body = TaskResult(sample=SampleResults.from_dict({"completions": completions}))
        run.flush()
        if not self._stopped(run, stopped):
            self.client.finish_task(run.job_id, run.lease_id, body)

    def _train(self, run: JobRun, work_dir: Path) -> None:
        from worker.trainer import TrainingInputs, resolve_model_dir, run_training

        kind = run.claim.kind if isinstance(run.claim.kind, JobKind) else JobKind.TRAINING
        if kind != JobKind.TRAINING:
            self._run_task(run, kind, work_dir)
            return
        claim, spec = run.claim, run.claim.job.spec
        work_dir.mkdir(parents=True, exist_ok=True)
        base = self._base_model(spec.actor.model.model_path)
        datasets = claim.datasets.additional_properties if claim.datasets else {}
        train_files = [self._dataset(p, datasets) for p in spec.data.train_data_paths]
        val_files = [self._dataset(p, datasets) for p in spec.data.val_data_paths or []]
        init_adapter = self._lora_source(claim.lora_source or None, work_dir / "init")
        resume = self._checkpoint(claim.checkpoint or None, work_dir / "resume")
        if claim.checkpoint:
            run.log(f"resuming from the checkpoint at step {claim.checkpoint.step}")
        inputs = TrainingInputs(
            base_model_dir=resolve_model_dir(str(base), self.options.models_dir),
            train_files=train_files,
            val_files=val_files,
            init_adapter_dir=init_adapter,
            resume_dir=resume,
            work_dir=work_dir / "train",
            device=self.device,
        )
        devices = self._job_devices(claim)
        if len(devices) == 1:
            result = run_training(spec, inputs, hooks=run)
        else:
            from worker.launch import RankPlan, run_distributed

            threads = self.options.threads_per_rank or max(1, (os.cpu_count() or 1) // len(devices))
            run.log(f"training on {len(devices)} devices ({', '.join(devices)}), one process "
                    f"each, {threads} thread(s) per rank")
            result = run_distributed(spec, replace(inputs, device=devices[0]), run,
                                     RankPlan(devices=devices, threads_per_rank=threads))
        run.flush()
        if self._stopped(run, result.stopped):
            return
        files = self.client.upload_folder(run.job_id, run.lease_id, result.output_dir)
        metrics = {**result.metrics, "step": result.step,
                   "trainable_params": result.trainable_params,
                   "total_params": result.total_params}
        self.client.complete(run.job_id, run.lease_id, AdapterResult(
            kind=AdapterResultKind(result.kind),
            files=files,
            rank=result.rank,
            alpha=result.alpha,
            target_modules=result.target_modules,
            base_fingerprint=result.base_fingerprint,
            metrics=AdapterResultMetricsType0.from_dict(metrics),
        ))

    def _job_devices(self, claim: Claim) -> list[str]:
        """The devices this job runs on: the first as many as it needs of those offered (all
        of them for `all`)."""
        need = claim.job.devices
        if need is None:
            return list(self.devices)
        if isinstance(need, Unset):
            need = 1
        if need > len(self.devices):  # the claim filter prevents it; a server bug otherwise
            raise ServerError(f"job {claim.job.id} needs {need} devices; this worker offers "
                              f"{len(self.devices)}", code="invalid_claim")
        return self.devices[:need]

    # -- inputs --------------------------------------------------------------------------
    def _base_model(self, model_path: str) -> str:
        from worker.demo import DEMO_MODEL_NAME, ensure_demo_model

        if model_path == DEMO_MODEL_NAME:
            ensure_demo_model(self.options.models_dir)
        return model_path

    def _dataset(self, reference: str, datasets: dict[str, SourceFile]) -> Path:
        """The file a dataset reference names; the server checked local paths at submit."""
        from worker.demo import demo_dataset_path

        if reference == "demo":
            return demo_dataset_path()
        if reference in datasets:
            return self._fetch(datasets[reference])
        path = Path(reference)
        if not path.is_file():
            raise UserError(f"dataset file {reference} does not exist on this worker",
                            code="dataset_not_found")
        return path

    def _fetch_files(self, files: list[SourceFile], folder: Path) -> Path:
        """Download files (each verified by sha256, cached by hash) into one folder."""
        folder.mkdir(parents=True, exist_ok=True)
        for item in files:
            cached = self._fetch(item)
            target = folder / item.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, target)
        return folder

    def _fetch(self, item: SourceFile) -> Path:
        """A verified input from the configured server only: never a URL named elsewhere."""
        if not item.url.startswith("/worker/"):
            raise ServerError(f"refusing to fetch {item.url!r}: inputs come from the server's "
                              "worker paths only", code="invalid_input_url")
        try:
            return self.cache.fetch(self.client.http, item.url, item.sha256, item.size)
        except ChecksumMismatch as exc:  # the download is dropped; a retry fetches it anew
            raise ServerError(f"{item.name}: {exc}", code="checksum_mismatch") from None

    def _lora_source(self, source: LoraSource | None, folder: Path) -> Path | None:
        """The adapter to continue from; a local folder was checked against the allowed
        roots by the server at submit, so here it only has to exist."""
        if source is None:
            return None
        if source.kind == LoraSourceKind.LOCAL:
            path = Path(str(source.path))
            if not path.is_dir():
                raise UserError(f"lora_path {source.lora_path}: no such folder on this worker",
                                code="invalid_lora_path")
            return path
        return self._fetch_files(source.files or [], folder)

    def _checkpoint(self, checkpoint: ResumePoint | None, folder: Path) -> Path | None:
        if checkpoint is None:
            return None
        return self._fetch_files(checkpoint.files, folder)
