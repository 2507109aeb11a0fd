"""The demo page under load: N sessions separate at once against ``asteroid-audiosep demo``
started on 127.0.0.1 with a tiny random model; prints requests, completed runs, refusals
(queue full), failures, wall time, the server's peak RSS and the session folders left after
the sessions end.

Usage: python benchmarks/bench_demo_load.py [--sessions 8] [--concurrency 1] [--max-queue 4]
       [--seconds 20] [--waves 2]

Each session speaks the browser's protocol (Gradio's HTTP queue API, what the page's
JavaScript sends): it opens the heartbeat (the open tab), uploads its own clip (a tone at its
own frequency), joins the queue with the page's separation event, reads the event stream until
its run completes, downloads its separated sound and residual, and closes the heartbeat (the
tab closed). Every network call has a timeout, so the run stops by itself.
"""
import argparse
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
API = "/gradio_api"


class QueueFull(Exception):
    """The server refused a run because its queue is full (HTTP 503)."""


@dataclass
class RunResult:
    """What one session got back: the status text and its outputs' URLs (target, residual)."""

    status: str
    urls: List[str] = field(default_factory=list)
    seconds: float = 0.0


class PageSession:
    """One browser tab on the demo page, over HTTP (``httpx``).

    Args:
        url: the page's address (``http://127.0.0.1:PORT/``).
        timeout: seconds any one call may take.
    """

    def __init__(self, url: str, timeout: float = 120.0):
        import httpx

        self.url, self.timeout = url.rstrip("/"), timeout
        self.session_hash = uuid.uuid4().hex[:11]
        self.http = httpx.Client(timeout=timeout)
        config = self.http.get(f"{self.url}/config").json()
        ids = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
        self.fn_index = next(d["id"] for d in config["dependencies"]
                             if ids["status"] in d["outputs"] and len(d["inputs"]) == 5)
        self._stop, self._beating = threading.Event(), None
        self._heartbeat = threading.Thread(target=self._beat, daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        """Hold the heartbeat connection open (a raw socket, so that :meth:`close` drops it at once)."""
        host, port = self.url.split("//", 1)[1].split("/")[0].split(":")
        try:
            with socket.create_connection((host, int(port)), timeout=None) as sock:
                self._beating = sock
                sock.sendall(f"GET {API}/heartbeat/{self.session_hash} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                             "Accept: text/event-stream\r\n\r\n".encode())
                while not self._stop.is_set() and sock.recv(4096):
                    pass
        except OSError:  # closed by close()
            return

    def upload(self, path: Path) -> str:
        """Upload ``path`` as the page's upload field does; the server's path of the copy.

        Raises:
            ValueError: the server refused it (its message, e.g. over the size limit: HTTP 413).
        """
        with open(path, "rb") as f:
            response = self.http.post(f"{self.url}{API}/upload", files=[("files", (Path(path).name, f, "audio/wav"))])
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}: {response.text}")
        return response.json()[0]

    def separate(self, server_path: str, query: str) -> RunResult:
        """Press Separate: join the queue, wait for the run, return what the page would show.

        Raises:
            QueueFull: the server's queue is full (HTTP 503).
        """
        start = time.monotonic()
        result = self.wait(self.join(server_path, query))
        result.seconds = time.monotonic() - start
        return result

    def join(self, server_path: str, query: str) -> str:
        """Ask for the run (the queue's ``join``); its event id.

        Raises:
            QueueFull: the server's queue is full (HTTP 503).
        """
        audio = {"path": server_path, "orig_name": Path(server_path).name, "meta": {"_type": "gradio.FileData"}}
        body = {"data": [audio, query, [], None, None], "event_data": None, "fn_index": self.fn_index,
                "trigger_id": None, "session_hash": self.session_hash}
        response = self.http.post(f"{self.url}{API}/queue/join", json=body)
        if response.status_code == 503:
            raise QueueFull(response.json().get("detail", "queue full"))
        response.raise_for_status()
        return response.json()["event_id"]

    def wait(self, event_id: str) -> RunResult:
        """Read the session's event stream until the run ``event_id`` completes; what it returned."""
        with self.http.stream("GET", f"{self.url}{API}/queue/data", params={"session_hash": self.session_hash}) as s:
            for line in s.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                    break
            else:
                raise RuntimeError("the event stream ended before the run completed")
        if not message.get("success"):
            raise RuntimeError(f"the run failed: {message.get('output')}")
        data = message["output"]["data"]
        status = data[0]["value"] if isinstance(data[0], dict) else data[0]
        urls = [v["value"]["url"] for v in data[4:6] if isinstance(v, dict) and isinstance(v.get("value"), dict)]
        return RunResult(status, urls)

    def fetch(self, url: str):
        """GET a served file: (HTTP status, bytes)."""
        response = self.http.get(url if url.startswith("http") else f"{self.url}{url}")
        return response.status_code, response.content

    def close(self) -> None:
        """Close the tab: the heartbeat connection drops and the server ends the session."""
        self._stop.set()
        if self._beating is not None:
            with contextlib.suppress(OSError):
                self._beating.shutdown(socket.SHUT_RDWR)  # the connection drops now
        self.http.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def demo_server(model: Path, table: Path, workdir: Path, *options: str, timeout: float = 300.0):
    """``asteroid-audiosep demo`` on a free port of 127.0.0.1 with Gradio's cache in
    ``workdir/gradio``; yields (url, process); stopped with SIGINT (Ctrl+C) at the end."""
    port = free_port()
    env = dict(os.environ, GRADIO_TEMP_DIR=str(workdir / "gradio"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    log_path = workdir / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "asteroid_audiosep", "demo", "-m", str(model), "--query-embeddings", str(table),
             "--device", "cpu", "--port", str(port), "--threads", "1", *options],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(url + "config", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the demo did not start:\n{log_path.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def memory_mb(pid: int) -> Dict[str, float]:
    """The process's resident memory now (``VmRSS``) and its peak so far (``VmHWM``), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def session_folders(workdir: Path) -> List[Path]:
    """The page's per-session output folders now (in Gradio's cache under ``workdir``)."""
    return [p for root in (workdir / "gradio").glob("audiosep-sessions-*") for p in root.iterdir()]


def tone_clip(path: Path, freq: float, seconds: float, rate: int = 16000) -> Path:
    """A mono float WAV: a tone at ``freq`` plus a little noise (one per session: distinct)."""
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    noise = 0.02 * np.random.default_rng(int(freq)).standard_normal(t.size)
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype("float32"), rate, subtype="FLOAT")
    return path


def own_outputs(session: PageSession, result: RunResult, clip: Path) -> bool:
    """True when the session's target plus residual give back its own input (to float32
    precision): the outputs were made from its upload and nobody else's."""
    import soundfile as sf

    parts = []
    for url in result.urls:
        code, content = session.fetch(url)
        if code != 200:
            return False
        parts.append(sf.read(io.BytesIO(content), dtype="float32", always_2d=True)[0])
    wav = sf.read(clip, dtype="float32", always_2d=True)[0]
    return len(parts) == 2 and parts[0].shape == wav.shape and float(np.abs(parts[0] + parts[1] - wav).max()) < 1e-5


def run_wave(url: str, clips: List[Path], query: str, timeout: float) -> Dict[str, object]:
    """All sessions at once (one thread each): each opens, uploads, separates, checks its own
    outputs; returns the figures and the sessions (still open) with their results."""
    sessions: List[Optional[PageSession]] = [None] * len(clips)
    outcome: List[object] = [None] * len(clips)
    barrier = threading.Barrier(len(clips))

    def one(k: int) -> None:
        try:
            sessions[k] = session = PageSession(url, timeout)
            path = session.upload(clips[k])
            barrier.wait(timeout)  # every run asked for at the same moment
            outcome[k] = result = session.separate(path, query)
            if not own_outputs(session, result, clips[k]):
                outcome[k] = RuntimeError("outputs are not this session's")
        except Exception as err:  # noqa: BLE001 (counted and reported)
            outcome[k] = err

    start = time.monotonic()
    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(len(clips))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout * 2)
    wall = time.monotonic() - start
    done = [o for o in outcome if isinstance(o, RunResult) and o.status.startswith("Separated")]
    refused = [o for o in outcome if isinstance(o, QueueFull)]
    failures = [repr(o) for o in outcome if o not in done and o not in refused]
    return {"requests": len(clips), "completed": len(done), "refused": len(refused), "failures": failures,
            "wall_s": wall, "run_s": [r.seconds for r in done], "sessions": sessions, "outcome": outcome}


def wait_until(condition, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def make_model(folder: Path, query: str):
    """A tiny random model package (the tests' demo model) and a one-query embedding table."""
    import torch

    from asteroid_audiosep import AudioSep
    from asteroid_audiosep.encoders import PrecomputedQueryEncoder

    torch.manual_seed(0)
    model = AudioSep(sample_rate=16000, n_fft=512, hop_length=160, channels=[8, 8, 16, 16], bottleneck_channels=16,
                     pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]], condition_dim=24).eval()
    torch.save(model.serialize(), folder / "model.pth")
    PrecomputedQueryEncoder(table={query: torch.randn(24)}).save(folder / "queries.pt")
    return folder / "model.pth", folder / "queries.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8, help="sessions per wave (default: %(default)s)")
    parser.add_argument("--waves", type=int, default=2, help="waves of sessions, one after the other")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-queue", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="each clip's length (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds any one call may take")
    args = parser.parse_args()
    query = "speech"
    with tempfile.TemporaryDirectory(prefix="bench-demo-load-") as tmp:
        work = Path(tmp)
        model, table = make_model(work, query)
        clips = [tone_clip(work / f"clip{k}.wav", 300 + 110 * k, args.seconds) for k in range(args.sessions)]
        with demo_server(model, table, work, "--concurrency", str(args.concurrency), "--max-queue",
                         str(args.max_queue), "--max-minutes", "1") as (url, proc):
            idle = memory_mb(proc.pid)["VmRSS"]
            print(f"demo on {url}: concurrency {args.concurrency}, max queue {args.max_queue}, "
                  f"{args.sessions} sessions x {args.waves} waves, {args.seconds:g} s clips; idle RSS {idle:.0f} MiB")
            print(f"{'wave':>4} {'requests':>8} {'completed':>9} {'refused':>7} {'failures':>8} {'wall s':>7} "
                  f"{'run s (max)':>11} {'RSS MiB':>7} {'peak MiB':>8} {'folders left':>12}")
            for wave in range(args.waves):
                figures = run_wave(url, clips, query, args.timeout)
                memory = memory_mb(proc.pid)
                for session in figures["sessions"]:
                    if session is not None:
                        session.close()
                wait_until(lambda: not session_folders(work), 30)
                slowest = max(figures["run_s"], default=0.0)
                print(f"{wave + 1:>4} {figures['requests']:>8} {figures['completed']:>9} {figures['refused']:>7} "
                      f"{len(figures['failures']):>8} {figures['wall_s']:>7.1f} {slowest:>11.1f} "
                      f"{memory['VmRSS']:>7.0f} {memory['VmHWM']:>8.0f} {len(session_folders(work)):>12}")
                for failure in figures["failures"]:
                    print(f"     failure: {failure}")


if __name__ == "__main__":
    main()
