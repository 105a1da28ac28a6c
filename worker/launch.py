"""One job on several devices: a process per device, started as torchrun starts them, and a
supervisor in the worker process that is the job's only voice to the server.

The worker process (which holds the lease, heartbeats and reports) starts one rank process
per device with `torch.multiprocessing` (forkserver) and torchrun's env contract (MASTER_ADDR,
MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE); the ranks join one process group
(NCCL on GPUs, gloo on CPU) and train (worker/trainer/distributed.py). Rank 0 sends the logs,
metrics, checkpoint folders and the result to the supervisor, which hands them to the job's
hooks (the server); a checkpoint is uploaded before rank 0 trains on. The supervisor writes the
worker's stop request (cancel, SIGTERM hand-back) into a shared value that rank 0 reads after
every step and broadcasts, so every rank stops after the same step.

A rank that dies ends the attempt: the supervisor sees its exit code within `POLL_SECONDS`,
SIGKILLs the others (they would only wait in a collective) and raises, so the runner reports a
retryable system error and the retry resumes from the last checkpoint. Ranks ignore SIGTERM
and SIGINT (the supervisor decides) and end within a second of the worker process, however
it ends (a watchdog thread in each rank).
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.trainer.errors import TrainerError, UserError
from worker.trainer.hooks import (
    STOP_CODES,
    STOP_NAMES,
    TrainingHooks,
    TrainingInputs,
    TrainingResult,
)

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
WATCH_SECONDS = 0.5  # how often a rank checks that the worker process still runs
KILL_WAIT_SECONDS = 10.0
GRACE_SECONDS = 30.0  # the other ranks' time to end after rank 0 sent the result
PRELOAD = ["torch", "transformers", "peft", "safetensors.torch", "loraplane_client.models",
           "torch.distributed.fsdp", "torch.distributed.checkpoint.state_dict",
           "torch.nn.parallel", "worker.trainer.loop", "worker.trainer.distributed"]


class RankFailed(Exception):
    """A rank process died or failed: the attempt ends as a (retryable) system error."""


@dataclass(frozen=True)
class RankPlan:
    """The devices one job runs on: `devices` like ["cpu", "cpu"] or ["cuda:0", "cuda:2"]."""

    devices: list[str]
    threads_per_rank: int

    @property
    def world_size(self) -> int:
        return len(self.devices)

    @property
    def device_type(self) -> str:
        return "cuda" if self.devices[0].startswith("cuda") else "cpu"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rank_env(plan: RankPlan, rank: int, port: int) -> dict[str, str]:
    """torchrun's env contract for one rank of a single-node group."""
    env = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": str(rank),
        "WORLD_SIZE": str(plan.world_size),
        "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(plan.world_size),
        "GROUP_RANK": "0",
        "OMP_NUM_THREADS": str(plan.threads_per_rank),
        "LORAPLANE_SUPERVISOR_PID": str(os.getpid()),  # ranks end when it does
    }
    if plan.device_type == "cuda":
        # Rank r uses cuda:r of its own view: the job's devices, in order, mapped through any
        # CUDA_VISIBLE_DEVICES the worker itself runs under.
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [d.split(":", 1)[1] if ":" in d else "0" for d in plan.devices]
        if visible:
            outer = [v.strip() for v in visible.split(",")]
            ids = [outer[int(i)] for i in ids]
        env["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
    return env


# ---------------------------------------------------------------------- inside a rank process

class RankHooks:
    """The hooks of a rank: rank 0 forwards to the supervisor; the others stay silent."""

    def __init__(self, messages: Any, stop: Any, acks: Any, *, main: bool,
                 supervisor: int) -> None:
        self.messages, self.stop, self.acks, self.main = messages, stop, acks, main
        self.supervisor = supervisor

    def log(self, message: str) -> None:
        if self.main:
            self.messages.put(("log", message))

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        if self.main:
            self.messages.put(("progress", step, total, dict(metrics)))

    def checkpoint(self, step: int, directory: Path) -> None:
        if not self.main:
            return
        self.messages.put(("checkpoint", step, str(directory)))
        while True:  # uploaded before this rank trains on
            try:
                self.acks.get(timeout=1.0)
                return
            except queue.Empty:
                if not supervisor_alive(self.supervisor):
                    raise RankFailed("the worker process is gone") from None

    def should_stop(self) -> str | None:
        if not self.main:
            return None
        return STOP_NAMES.get(int(self.stop.value))


def supervisor_alive(pid: int) -> bool:
    """Whether the worker process `pid` still runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def _die_with_worker(supervisor: int) -> None:
    """End this rank when the worker process ends, however it ends (no orphaned rank).

    A forked rank's parent is the forkserver, which the ranks themselves keep alive, so
    PR_SET_PDEATHSIG (asked too) only covers the forkserver's death; a watchdog thread
    checks the worker process twice a second and exits the rank when it is gone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass

    def watch() -> None:
        while supervisor_alive(supervisor):
            time.sleep(WATCH_SECONDS)
        os._exit(3)

    threading.Thread(target=watch, name="watch-worker", daemon=True).start()


def _rank_main(env: dict[str, str], spec: dict[str, Any], inputs: TrainingInputs,
               plan: RankPlan, messages: Any, stop: Any, acks: Any) -> None:
    """A rank process: join the group, train, send rank 0's result; exit 1 on any failure."""
    os.environ.update(env)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    supervisor = int(env["LORAPLANE_SUPERVISOR_PID"])
    _die_with_worker(supervisor)
    rank = int(env["RANK"])
    try:
        import torch
        from loraplane_client.models import JobSpec

        from worker.trainer import distributed as ddp
        from worker.trainer import run_training

        torch.set_num_threads(plan.threads_per_rank)
        dist = ddp.init_from_env(plan.device_type)
        try:
            hooks = RankHooks(messages, stop, acks, main=dist.is_main, supervisor=supervisor)
            result = run_training(JobSpec.from_dict(spec), inputs, hooks, dist)
            if dist.is_main:
                messages.put(("result", result))
        finally:
            ddp.shutdown()
    except UserError as exc:
        messages.put(("error", rank, "user", exc.code, exc.message))
        _flush_and_exit(messages, 1)
    except TrainerError as exc:
        messages.put(("error", rank, "system", exc.code, exc.message))
        _flush_and_exit(messages, 1)
    except BaseException as exc:
        logging.getLogger(__name__).exception("rank %s failed", rank)
        messages.put(("error", rank, "system", "system_error", f"{type(exc).__name__}: {exc}"))
        _flush_and_exit(messages, 1)
    _flush_and_exit(messages, 0)


def _flush_and_exit(messages: Any, code: int) -> None:
    messages.close()
    messages.join_thread()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no atexit work: the group is gone, CUDA/gloo teardown can hang


# ---------------------------------------------------------------------- the supervisor

def run_distributed(spec: Any, inputs: TrainingInputs, hooks: TrainingHooks, plan: RankPlan,
                    *, on_started: Callable[[list[int]], None] | None = None) -> TrainingResult:
    """Train `spec` on `plan.devices`, one process each; rank 0's result. Raises UserError when
    a rank refused the job, RankFailed when a rank died or failed otherwise."""
    import torch.multiprocessing as mp

    # forkserver: a clean server process that has imported torch, transformers and peft once
    # forks each rank, so a job's ranks start in well under a second instead of importing all
    # of it again (seconds of CPU per rank); nothing in it has touched CUDA or started threads.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    messages, acks = ctx.Queue(), ctx.Queue()
    stop = ctx.Value("i", 0)
    port = _free_port()
    spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    procs = []
    for rank in range(plan.world_size):
        proc = ctx.Process(
            target=_rank_main, name=f"rank-{rank}", daemon=True,
            args=(rank_env(plan, rank, port), spec_dict, inputs, plan, messages, stop, acks))
        proc.start()
        procs.append(proc)
    log.info("started %d ranks on %s: pids %s", plan.world_size, ", ".join(plan.devices),
             [p.pid for p in procs])
    if on_started is not None:
        on_started([p.pid for p in procs])
    result: TrainingResult | None = None
    errors: list[tuple[int, str, str, str]] = []
    ended: list[int | None] = [None] * len(procs)
    finished = 0.0  # when rank 0 ended with its result
    try:
        while True:
            request = hooks.should_stop()
            if request is not None and STOP_CODES[request] > stop.value:
                stop.value = STOP_CODES[request]  # cancel wins over a hand-back
            try:
                message = messages.get(timeout=POLL_SECONDS)
            except queue.Empty:
                message = None
            if message is not None:
                result = _handle(message, hooks, acks, errors) or result
                continue  # drain messages before judging exit codes
            codes = [p.exitcode for p in procs]
            if all(code is not None for code in codes):
                break
            if result is not None and codes[0] == 0:
                finished = finished or time.monotonic()
                if time.monotonic() - finished > GRACE_SECONDS:
                    log.warning("ranks %s still running %.0f s after rank 0 finished; killed",
                                [r for r, c in enumerate(codes) if c is None], GRACE_SECONDS)
                    break
            if any(code not in (None, 0) for code in codes) or errors:
                break
        if errors:  # a rank that saw a peer vanish reports first: let the peer's exit show
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not any(
                    p.exitcode not in (None, 0) and p.exitcode < 0 for p in procs):
                time.sleep(0.05)
        ended = [p.exitcode for p in procs]  # before the supervisor kills the rest
        _kill(procs)
        while True:  # what the ranks sent before they ended
            try:
                result = _handle(messages.get(timeout=0.2), hooks, acks, errors) or result
            except queue.Empty:
                break
    finally:
        _kill(procs)
    return _outcome(ended, result, errors)


def _handle(message: tuple, hooks: TrainingHooks, acks: Any,
            errors: list[tuple[int, str, str, str]]) -> TrainingResult | None:
    kind = message[0]
    if kind == "log":
        hooks.log(message[1])
    elif kind == "progress":
        hooks.progress(message[1], message[2], message[3])
    elif kind == "checkpoint":
        hooks.checkpoint(message[1], Path(message[2]))
        acks.put(message[1])
    elif kind == "result":
        return message[1]
    elif kind == "error":
        errors.append(message[1:])
    return None


def _kill(procs: list[Any]) -> None:
    """SIGKILL every rank still running and reap them all."""
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))


def _outcome(ended: list[int | None], result: TrainingResult | None,
             errors: list[tuple[int, str, str, str]]) -> TrainingResult:
    """Rank 0's result, or the error that ended the attempt (`ended`: the exit codes when the
    supervisor stopped waiting; None for ranks it then killed)."""
    users = [e for e in errors if e[1] == "user"]
    if users:
        rank, _, code, message = users[0]
        raise UserError(message, code=code)
    killed = [(rank, code) for rank, code in enumerate(ended) if code is not None and code < 0]
    if killed:  # the cause; the other ranks' errors (a peer gone) are its consequence
        what = ", ".join(f"rank {rank} killed by {signal.Signals(-code).name}"
                         for rank, code in killed)
        raise RankFailed(f"the job's processes failed: {what}; the other ranks were stopped")
    if errors:
        rank, _, code, message = errors[0]
        raise RankFailed(f"rank {rank} failed ({code}): {message}")
    dead = [(rank, code) for rank, code in enumerate(ended) if code not in (None, 0)]
    if result is not None and ended[0] == 0 and not dead:
        return result  # ranks that lingered after rank 0's result were stopped, nothing lost
    if result is None or dead or None in ended:
        what = ", ".join(
            f"rank {rank} " + (f"killed by {signal.Signals(-code).name}" if code and code < 0
                               else f"exited with {code}")
            for rank, code in dead) or "rank 0 sent no result"
        raise RankFailed(f"the job's processes failed: {what}; the other ranks were stopped")
    return result
