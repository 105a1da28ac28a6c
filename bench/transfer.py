"""Artifact transfer: download and upload throughput, resumed downloads, server memory.

A live `loraplane serve` (SQLite, no local workers). A full-model "adapter" is registered
through the worker protocol with a large `model.safetensors` (a valid safetensors file of the
given size, random bytes) and a smaller one, both uploaded with
`PUT /worker/jobs/{id}/blobs/{sha256}` (streamed, 1 MiB chunks, worker token).

- Upload: MB/s of each PUT, and the peak RSS of the server process during it minus its RSS
  before (kernel VmHWM, reset before each transfer): it must stay flat as the file grows.
  Baseline in the same run: copying the same file on local disk with sha256 and fsync, the
  least work the server must do.
- Download: MB/s of `GET /adapters/{id}/files/model.safetensors`, read by a minimal raw-socket
  client (1 MiB `recv_into`, so the client costs little), against, in the same run, reading the
  stored blob from disk (page cache warm, as for the server), `python -m http.server` and a
  starlette `FileResponse` app under uvicorn serving the same file.
- Resume: `loraplane_client.fetch.download_file` after a download cut at half (the first half is left
  in `dest.part`): bytes sent by the server and time, against a whole `download_file` of the
  same file in the same run (both verify sha256 and fsync).

- Through S3 (`--store s3` or `both`): the same service with `LORAPLANE_ARTIFACTS_URL` on a
  bucket of moto's standalone server (a child process on a loopback port), the artifact
  uploaded through the worker protocol (streamed multipart), then downloaded through the API
  (`artifacts_presign_seconds` 0: streamed by the service) against a direct GET of the
  presigned URL the service would redirect to (the object store's own speed), same client.

Big files live in a temp folder, deleted at the end.

    python bench/transfer.py [--quick] [--size-mib 1024] [--small-mib 256] [--s3-mib 256]
                             [--store local|s3|both]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    ROOT,
    admin_token,
    claim_job,
    client,
    file_sha256,
    live_server,
    machine,
    upload_blob,
    worker_headers,
    write_safetensors,
)

from tests.live import free_port, wait_ready

MiB = 1 << 20


class PeakRss:
    """Peak RSS of a process over a `with` block, minus its RSS at the start (bytes)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.samples: list[int] = []
        self._stop = threading.Event()

    def _status(self, key: str) -> int:
        text = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(rf"{key}:\s+(\d+)", text).group(1)) * 1024

    def __enter__(self) -> Self:
        self.before = self.proc.memory_info().rss
        try:  # reset the kernel's high-water mark; fall back to sampling if not allowed
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.hwm = True
        except OSError:
            self.hwm = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.samples.append(self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        peak = self._status("VmHWM") if self.hwm else max(self.samples, default=self.before)
        self.delta = max(peak - self.before, 0)


def raw_get(
    port: int, path: str, headers: dict[str, str] | None = None, stop_after: int | None = None
) -> tuple[int, bytes]:
    """GET over a plain socket; returns (body bytes read, status line). Reads into a 1 MiB
    buffer and drops the bytes; `stop_after` closes the connection early."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Accept-Encoding: identity\r\n{extra}\r\n".encode()
        )
        buf = bytearray(MiB)
        view = memoryview(buf)
        head = b""
        while b"\r\n\r\n" not in head:
            n = sock.recv_into(view)
            if not n:
                raise ConnectionError("closed before the headers")
            head += bytes(view[:n])
        head, _, rest = head.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
        got = len(rest)
        while got < length and (stop_after is None or got < stop_after):
            n = sock.recv_into(view)
            if not n:
                break
            got += n
    if stop_after is None and got != length:
        raise ConnectionError(f"got {got} of {length} bytes from :{port}{path}")
    return got, status


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


def copy_with_hash(src: Path, dest: Path) -> None:
    """What an upload must at least do: read, hash, write, fsync."""
    import hashlib

    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while chunk := fin.read(MiB):
            digest.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())


def read_file(path: Path) -> int:
    n = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(MiB)
        while got := f.readinto(buf):
            n += got
    return n


def serve_files(port: int, directory: Path) -> None:
    """The starlette FileResponse baseline (run in a child process)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, PlainTextResponse
    from starlette.routing import Route

    async def ready(request):
        return PlainTextResponse("ok")

    async def file(request):
        return FileResponse(directory / request.path_params["name"])

    app = Starlette(routes=[Route("/readyz", ready), Route("/files/{name}", file)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / seconds


def s3_download(size: int, repeat: int, tmp: Path) -> str:
    """The S3 line: a download streamed through the API against a direct presigned GET."""
    from urllib.parse import urlsplit

    import boto3

    from service.artifacts_s3 import S3ArtifactStore

    port = free_port()
    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    os.environ.update(credentials)  # for this process's boto3 (bucket, presigned URL)
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        boto3.client("s3").create_bucket(Bucket="bench")
        url = "s3://bench/artifacts"
        big = tmp / "s3.safetensors"
        sha = write_safetensors(big, size, seed=3)
        size = big.stat().st_size
        env = {**credentials, "LORAPLANE_ARTIFACTS_URL": url}
        with live_server("sqlite", env=env) as server, client(server, timeout=600) as http:
            job_id, lease = claim_job(server, http, {
                "actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": False}},
                "runner": {"experiment_name": "bench-transfer-s3"}})
            config = tmp / "config.json"
            upload_s, _ = timed(upload_blob, server, http, job_id, lease, big, sha)
            upload_blob(server, http, job_id, lease, config, file_sha256(config))
            r = http.post(f"/worker/jobs/{job_id}/complete", headers=worker_headers(server, lease),
                          json={"kind": "full", "files": [
                              {"name": "config.json", "sha256": file_sha256(config),
                               "size": config.stat().st_size},
                              {"name": "model.safetensors", "sha256": sha, "size": size}]})
            r.raise_for_status()
            adapter_id = http.get(f"/jobs/{job_id}").json()["adapter_id"]
            path = f"/adapters/{adapter_id}/files/model.safetensors"
            token = admin_token(server)
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            presigned = S3ArtifactStore(url, presign_seconds=300).download_url(
                sha, filename="model.safetensors", media_type="application/octet-stream")
            direct = urlsplit(presigned)
            best: dict[str, float] = {}
            for _ in range(repeat):  # interleaved; each keeps its best
                seconds, (n, status) = timed(raw_get, server.port, path, auth)
                if n != size or b" 200 " not in status:
                    raise RuntimeError(f"service download from S3: {status!r}, {n} bytes")
                best["service"] = min(best.get("service", 1e9), seconds)
                seconds, (n, status) = timed(raw_get, port, f"{direct.path}?{direct.query}")
                if n != size or b" 200 " not in status:
                    raise RuntimeError(f"presigned GET: {status!r}, {n} bytes")
                best["presigned"] = min(best.get("presigned", 1e9), seconds)
    finally:
        moto.terminate()
        moto.wait(10)
    service, direct_rate = mbps(size, best["service"]), mbps(size, best["presigned"])
    return (f"transfer[s3]: download {size / MiB:.0f} MiB from an S3 store (moto) via GET "
            f"/adapters/{{id}}/files {service:.0f} MiB/s vs a direct GET of its presigned URL "
            f"{direct_rate:.0f} MiB/s: {service / direct_rate:.2f}x (best of {repeat}); upload "
            f"through the API (streamed multipart) {mbps(size, upload_s):.0f} MiB/s; {machine()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB and 64 MiB (make bench)")
    parser.add_argument("--size-mib", type=int, default=1024, help="the big artifact")
    parser.add_argument("--small-mib", type=int, default=256, help="the small upload (RSS check)")
    parser.add_argument("--repeat", type=int, default=3, help="downloads per server (best kept)")
    parser.add_argument("--s3-mib", type=int, default=256, help="the artifact on S3 (moto)")
    parser.add_argument("--store", choices=["local", "s3", "both"], default="both")
    parser.add_argument("--serve-files", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_files:
        serve_files(int(args.serve_files[0]), Path(args.serve_files[1]))
        return
    if args.quick:
        args.size_mib, args.small_mib, args.s3_mib, args.repeat = 256, 64, 64, 2
    if args.store in ("s3", "both"):
        with tempfile.TemporaryDirectory(prefix="loraplane-bench-transfer-s3-") as tmp:
            (Path(tmp) / "config.json").write_text('{"model_type": "llama"}\n')
            print(s3_download(args.s3_mib * MiB, args.repeat, Path(tmp)), flush=True)
    if args.store == "s3":
        return
    big_size, small_size = args.size_mib * MiB, args.small_mib * MiB

    with tempfile.TemporaryDirectory(prefix="loraplane-bench-transfer-") as tmp:
        tmp = Path(tmp)
        files = tmp / "files"
        files.mkdir()
        big, small, config = (
            files / "model.safetensors",
            files / "small.safetensors",
            files / "config.json",
        )
        big_sha = write_safetensors(big, big_size, seed=1)
        small_sha = write_safetensors(small, small_size, seed=2)
        config.write_text('{"model_type": "llama"}\n')
        big_size, small_size = big.stat().st_size, small.stat().st_size

        with live_server("sqlite") as server, client(server, timeout=600) as http:
            pid = server.proc.pid
            # ---- uploads: the small file, then the big one, each under its RSS watch
            job_id, lease = claim_job(
                server,
                http,
                {
                    "actor": {"model": {"model_path": "demo-tiny-llama", "is_lora": False}},
                    "runner": {"experiment_name": "bench-transfer"},
                },
            )
            up = {}
            for label, path, sha in (("small", small, small_sha), ("big", big, big_sha)):
                with PeakRss(pid) as rss:
                    seconds, _ = timed(upload_blob, server, http, job_id, lease, path, sha)
                up[label] = (seconds, rss.delta)
            upload_blob(server, http, job_id, lease, config, file_sha256(config))
            copy_s, _ = timed(copy_with_hash, big, tmp / "copy")
            (tmp / "copy").unlink()
            refs = [
                {"name": p.name, "sha256": file_sha256(p), "size": p.stat().st_size}
                for p in (config, big, small)
            ]
            r = http.post(
                f"/worker/jobs/{job_id}/complete",
                headers=worker_headers(server, lease),
                json={"kind": "full", "files": refs},
            )
            r.raise_for_status()
            adapter_id = http.get(f"/jobs/{job_id}").json()["adapter_id"]
            path = f"/adapters/{adapter_id}/files/model.safetensors"
            token = admin_token(server)
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            blob = server.data_dir / "artifacts" / "blobs" / big_sha[:2] / big_sha[2:]
            if not blob.is_file():
                blob = big

            # ---- downloads: the service against disk and two static-file servers
            static_port, files_port = free_port(), free_port()
            static = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    str(static_port),
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    str(files),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            starlette = subprocess.Popen(
                [sys.executable, __file__, "--serve-files", str(files_port), str(files)], cwd=ROOT
            )
            try:
                wait_ready(f"http://127.0.0.1:{files_port}", 60, starlette)
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", static_port)).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                read_file(blob)  # page cache warm for everyone
                best: dict[str, float] = {}
                dl_rss_delta = 0
                for _ in range(args.repeat):  # interleaved; each keeps its best
                    best["disk"] = min(best.get("disk", 1e9), timed(read_file, blob)[0])
                    with PeakRss(pid) as dl_rss:
                        seconds, (n, status) = timed(raw_get, server.port, path, auth)
                    if n != big_size or b" 200 " not in status:
                        raise RuntimeError(f"service download: {status!r}, {n} bytes")
                    best["service"] = min(best.get("service", 1e9), seconds)
                    dl_rss_delta = max(dl_rss_delta, dl_rss.delta)
                    best["http.server"] = min(
                        best.get("http.server", 1e9),
                        timed(raw_get, static_port, "/model.safetensors")[0],
                    )
                    best["FileResponse"] = min(
                        best.get("FileResponse", 1e9),
                        timed(raw_get, files_port, "/files/model.safetensors")[0],
                    )
            finally:
                for proc in (static, starlette):
                    proc.terminate()
                    proc.wait(10)

            # ---- resume: cut at half, then download_file; against a whole download_file
            from loraplane_client.fetch import download_file

            whole_dest, resumed_dest = tmp / "whole.safetensors", tmp / "resumed.safetensors"
            part_path = resumed_dest.with_suffix(".safetensors.part")
            half = big_size // 2
            whole_s = resume_s = 1e9
            for _ in range(args.repeat):
                os.sync()  # earlier writes are not this download's to flush
                whole_s = min(
                    whole_s,
                    timed(download_file, http, path, whole_dest, sha256=big_sha, size=big_size)[0],
                )
                whole_dest.unlink()
                with (
                    http.stream("GET", path, headers={"Accept-Encoding": "identity"}) as resp,
                    open(part_path, "wb") as part,
                ):
                    written = 0
                    for chunk in resp.iter_raw(MiB):
                        chunk = chunk[: half - written]
                        part.write(chunk)
                        written += len(chunk)
                        if written >= half:
                            break  # the connection is dropped here, as by a network cut
                    part.flush()
                    os.fsync(part.fileno())  # the kernel had long written it back
                os.sync()
                sent: list[int] = []
                resume_s = min(
                    resume_s,
                    timed(
                        download_file,
                        http,
                        path,
                        resumed_dest,
                        sha256=big_sha,
                        size=big_size,
                        progress=lambda done, total, sent=sent: sent.append(done),
                    )[0],
                )
                resumed_bytes = big_size - sent[0]
                if file_sha256(resumed_dest) != big_sha:
                    raise RuntimeError("resumed file differs")
                resumed_dest.unlink()

    gib = big_size / 2**30
    service = mbps(big_size, best["service"])
    rates = {k: mbps(big_size, v) for k, v in best.items()}
    up_small, up_big = up["small"], up["big"]
    flat = up_big[1] <= up_small[1] + 16 * MiB
    print(
        f"transfer: download {gib:.2f} GiB via GET /adapters/{{id}}/files {service:.0f} MiB/s "
        f"(service/baseline: disk read {rates['disk']:.0f} MiB/s {service / rates['disk']:.2f}x, "
        f"python -m http.server {rates['http.server']:.0f} MiB/s "
        f"{service / rates['http.server']:.2f}x, starlette FileResponse "
        f"{rates['FileResponse']:.0f} MiB/s {service / rates['FileResponse']:.2f}x; best of "
        f"{args.repeat}), server RSS +{dl_rss_delta / MiB:.0f} MiB while serving | resume after "
        f"a cut at half: {resumed_bytes / MiB:.0f} MiB sent in {resume_s:.2f} s, "
        f"{resume_s / whole_s:.2f}x the {whole_s:.2f} s of a whole download_file (both verify and "
        f"fsync; best of {args.repeat}) | upload PUT "
        f"blobs: {args.small_mib} MiB {mbps(small_size, up_small[0]):.0f} MiB/s with server RSS "
        f"+{up_small[1] / MiB:.0f} MiB, {args.size_mib} MiB {mbps(big_size, up_big[0]):.0f} MiB/s "
        f"with RSS +{up_big[1] / MiB:.0f} MiB (RSS flat as the file grows "
        f"{args.size_mib // args.small_mib}x: {'yes' if flat else 'NO'}); baseline local "
        f"copy+sha256+fsync {mbps(big_size, copy_s):.0f} MiB/s, upload/baseline "
        f"{copy_s / up_big[0]:.2f}x; {machine()}"
    )


if __name__ == "__main__":
    main()
