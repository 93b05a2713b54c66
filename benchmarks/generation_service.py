"""Generation service under load: batching gain, tail latency and HTTP overhead, measured in one run.

    python -m benchmarks.generation_service [--data-dir DIR] [--clients 32] [--kinds image,digit,text]

Starts `python -m generation.serve` on a loopback port as a separate process and drives it with
the real GenerationClient, and runs the same requests in-process for the HTTP overhead. Per
workload (image: the bot's default 8-digit grid; digit: one digit; text: 300 characters, the
default length) it prints:

- single request latency (median of sequential calls, HTTP and in-process taking turns);
- sequential throughput (back-to-back HTTP calls), and throughput with `--clients` concurrent
  closed-loop clients (after one unmeasured round that opens their connections);
- p50/p99 latency at that load, and the mean batch size the service ran;
- the CPU time one request costs under that load, in the service process and in this (client)
  process, and the throughput ceiling it implies: with C cores, at most C / (CPU per request)
  requests a second, however well batching works. When that ceiling is below the target, the
  target is out of reach on this machine (per-request work that batching cannot share: PNG
  encoding, HTTP on both sides), and the figure says by how much;
- for information, the same sequential and concurrent throughput in-process (no HTTP), which
  separates the batching gain from the cost of HTTP on a machine shared by client and service.

The HTTP overhead is the median of paired differences: each HTTP call is paired with the same call
in-process right before or after it (the order alternates), so a noisy neighbour slows both alike.

Targets: concurrent throughput >= 8x sequential, p99 at that load <= 4x a single request's
latency, HTTP overhead <= 5 ms a request over in-process. Exits 1 when any is missed. With closed-loop
clients the first two are tied (Little's law): the mean latency at load is clients / throughput, so
32 clients at 8x sequential wait 4x a single request on average, and p99 <= 4x needs a little more
than 8x with every client served in turn.

Models: the champions under DATA_DIR/models. When there are none, it trains the default
architecture for a few steps into a temporary folder (`generation.train KIND --max-steps 5`):
speed depends on the network's shape, not on how well it is trained.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from generation.api import MODEL_KINDS, ImageRequest, TextRequest
from generation.client import GenerationClient
from generation.settings import GenerationSettings

THROUGHPUT_TARGET = 8.0  # concurrent / sequential throughput
P99_TARGET = 4.0  # p99 at load / single-request latency
OVERHEAD_TARGET_MS = 5.0  # HTTP median - in-process median, per request
TOKEN = "benchmark-token"
KIND_OF = {"image": "gan", "digit": "gan", "text": "lstm"}


@dataclass
class Figures:
    """One workload's measurements."""

    name: str
    single_http_ms: float
    single_local_ms: float
    sequential_rps: float
    concurrent_rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    mean_batch: float
    recent_batches: list[int]
    local_sequential_rps: float
    local_concurrent_rps: float
    paired_overhead_ms: float
    server_cpu_ms: float  # per request under load, service process
    client_cpu_ms: float  # per request under load, this process (the benchmark's clients)
    cores: int

    @property
    def throughput_ratio(self) -> float:
        return self.concurrent_rps / self.sequential_rps

    @property
    def p99_ratio(self) -> float:
        return self.p99_ms / self.single_http_ms

    @property
    def overhead_ms(self) -> float:
        return self.paired_overhead_ms

    @property
    def cpu_ceiling_ratio(self) -> float:
        """The most concurrent/sequential the measured CPU per request allows on this many cores."""
        cpu_s = (self.server_cpu_ms + self.client_cpu_ms) / 1000
        return self.cores / cpu_s / self.sequential_rps if cpu_s > 0 else float("inf")

    def report(self) -> bool:
        checks = [
            ("throughput", f"{self.throughput_ratio:.2f}x sequential", f">= {THROUGHPUT_TARGET:.0f}x",
             self.throughput_ratio >= THROUGHPUT_TARGET),
            ("p99 at load", f"{self.p99_ratio:.2f}x single", f"<= {P99_TARGET:.0f}x", self.p99_ratio <= P99_TARGET),
            ("HTTP overhead", f"{self.overhead_ms:.2f} ms", f"<= {OVERHEAD_TARGET_MS:.0f} ms",
             self.overhead_ms <= OVERHEAD_TARGET_MS),
        ]  # fmt: skip
        print(f"\n[{self.name}]")
        print(
            f"  single request    HTTP {self.single_http_ms:8.2f} ms   in-process {self.single_local_ms:8.2f} ms"
        )
        print(f"  sequential        {self.sequential_rps:8.1f} req/s")
        print(f"  concurrent        {self.concurrent_rps:8.1f} req/s   mean batch {self.mean_batch:.1f}")
        print(
            f"  latency at load   p50 {self.p50_ms:8.2f} ms   p99 {self.p99_ms:8.2f} ms   mean {self.mean_ms:8.2f} ms"
            f" = {self.mean_ms / self.single_http_ms:.1f}x single (closed loop: clients / throughput)"
        )
        print(f"  last batch sizes  {self.recent_batches}")
        print(
            f"  CPU per request   service {self.server_cpu_ms:.2f} ms + clients {self.client_cpu_ms:.2f} ms at load;"
            f" on {self.cores} cores at most {self.cpu_ceiling_ratio:.1f}x sequential"
        )
        print(
            f"  HTTP overhead     {self.paired_overhead_ms:.2f} ms median of pairs"
            f" ({self.single_http_ms - self.single_local_ms:.2f} ms between the medians)"
        )
        local_ratio = self.local_concurrent_rps / self.local_sequential_rps
        print(
            f"  (in-process, no HTTP: sequential {self.local_sequential_rps:.1f} req/s, concurrent "
            f"{self.local_concurrent_rps:.1f} req/s = {local_ratio:.1f}x; information only)"
        )
        for label, value, target, passed in checks:
            print(f"  {label:<17} {value:<22} target {target:<8} {'PASS' if passed else 'FAIL'}")
        return all(passed for *_, passed in checks)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def alternating(
    first: Callable[[int], Awaitable[object]], second: Callable[[int], Awaitable[object]], count: int
) -> tuple[list[float], list[float]]:
    """Latencies (s) of `count` sequential calls of each, one of each in turn with the same arguments,
    the first going first in even pairs and second in odd ones, so neither always follows the other."""
    timings: tuple[list[float], list[float]] = ([], [])
    for index in range(count):
        pair = list(zip((first, second), timings, strict=True))
        for call, latencies in pair if index % 2 == 0 else reversed(pair):
            begin = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - begin)
    return timings


async def concurrent(
    call: Callable[[int], Awaitable[object]], clients: int, each: int
) -> tuple[list[float], float]:
    """`clients` closed-loop clients making `each` calls: latencies (s) and the wall time."""
    latencies: list[float] = []

    async def client(offset: int) -> None:
        for index in range(each):
            begin = time.perf_counter()
            await call(offset * each + index)
            latencies.append(time.perf_counter() - begin)

    started = time.perf_counter()
    await asyncio.gather(*(client(offset) for offset in range(clients)))
    return latencies, time.perf_counter() - started


WORKLOADS = {
    "image": "8-digit grid (the bot's default)",
    "digit": "one digit",
    "text": "300 characters (the default length)",
}


def workload(kind: str, client: GenerationClient) -> Callable[[int], Awaitable[object]]:
    if kind == "image":
        return lambda index: client.image(ImageRequest(count=8, seed=index))
    if kind == "digit":
        return lambda index: client.image(ImageRequest(count=1, seed=index))
    return lambda index: client.text(TextRequest(model="lstm", prompt="Startups ", seed=index))


async def batching_stats(url: str) -> dict:
    async with httpx.AsyncClient(base_url=url) as http:
        return (await http.get("/readyz")).json()["batching"]


async def measure(
    kind: str, url: str, service: psutil.Process, local: GenerationClient, args: argparse.Namespace
) -> Figures:
    settings = GenerationSettings(generation_url=url, generation_token=TOKEN, generation_timeout_s=120)
    remote = GenerationClient.from_settings(settings)
    await remote.initialize()
    try:
        call = workload(kind, remote)
        sequential_count = args.sequential
        each = args.per_client
        local_call = workload(kind, local)
        for index in range(3):  # connections, caches, allocator
            await call(10_000 + index)
            await local_call(10_000 + index)
        # Sequential calls alternate HTTP and in-process, so a noisy neighbour slows both alike.
        http_latencies, local_latencies = await alternating(call, local_call, sequential_count)
        await concurrent(call, args.clients, 1)  # open the clients' connections; not measured
        before = (await batching_stats(url))[KIND_OF[kind]]
        server_cpu, client_cpu = cpu_seconds(service), time.process_time()
        load_latencies, load_wall = await concurrent(call, args.clients, each)
        server_cpu, client_cpu = cpu_seconds(service) - server_cpu, time.process_time() - client_cpu
        after = (await batching_stats(url))[KIND_OF[kind]]
        await concurrent(local_call, args.clients, 1)
        local_load, local_wall = await concurrent(local_call, args.clients, each)
    finally:
        await remote.shutdown()
    batches = after["batches"] - before["batches"]
    return Figures(
        name=f"{kind}: {WORKLOADS[kind]}, {args.clients} clients",
        single_http_ms=statistics.median(http_latencies) * 1000,
        single_local_ms=statistics.median(local_latencies) * 1000,
        sequential_rps=len(http_latencies) / sum(http_latencies),
        concurrent_rps=len(load_latencies) / load_wall,
        p50_ms=percentile(load_latencies, 0.50) * 1000,
        p99_ms=percentile(load_latencies, 0.99) * 1000,
        mean_ms=statistics.fmean(load_latencies) * 1000,
        mean_batch=(after["requests"] - before["requests"]) / batches if batches else 0.0,
        recent_batches=after["recent_sizes"],
        local_sequential_rps=len(local_latencies) / sum(local_latencies),
        local_concurrent_rps=len(local_load) / local_wall,
        paired_overhead_ms=statistics.median(
            (http - local) * 1000 for http, local in zip(http_latencies, local_latencies, strict=True)
        ),
        server_cpu_ms=server_cpu / len(load_latencies) * 1000,
        client_cpu_ms=client_cpu / len(load_latencies) * 1000,
        cores=psutil.cpu_count() or 1,
    )


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time the process and its live children (PNG workers) have used so far."""
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def has_champions(data_dir: Path) -> bool:
    from generation.registry import ModelRegistry

    registry = ModelRegistry(data_dir / "models")
    return all(registry.champion(kind) is not None for kind in MODEL_KINDS)


def train_default_shapes(data_dir: Path) -> None:
    environment = {**os.environ, "DATA_DIR": str(data_dir)}
    for kind in MODEL_KINDS:
        print(f"no champion: training a default-shape {kind} for a few steps into {data_dir} ...", flush=True)
        command = [sys.executable, "-m", "generation.train", kind, "--max-steps", "5", "--quiet"]
        subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(data_dir: Path, port: int, device: str, log: Path) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "GENERATION_TOKEN": TOKEN,
        "GENERATION_DEVICE": device,
        "GENERATION_TIMEOUT_S": "120",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "generation.serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:
        service = subprocess.Popen(command, env=environment, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the service exited early; its log:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return service
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    service.terminate()
    raise SystemExit("the service did not become ready in 180 s")


async def run(args: argparse.Namespace, data_dir: Path, url: str, service: psutil.Process) -> bool:
    local_settings = GenerationSettings(
        data_dir=data_dir, generation_url="", generation_device=args.device, generation_timeout_s=120
    )
    local = GenerationClient.from_settings(local_settings)
    await local.initialize()
    try:
        results = [await measure(kind, url, service, local, args) for kind in args.kinds]
    finally:
        await local.shutdown()
    return all([figures.report() for figures in results])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generation_service", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: DATA_DIR")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per-client", type=int, default=4, help="calls per concurrent client")
    parser.add_argument("--sequential", type=int, default=24, help="sequential calls, each way")
    parser.add_argument(
        "--kinds", type=lambda text: text.split(","), default=list(WORKLOADS), help="image,digit,text"
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or GenerationSettings().data_dir
    with tempfile.TemporaryDirectory(prefix="genbench-") as scratch:
        if not has_champions(data_dir):
            data_dir = Path(scratch) / "data"
            train_default_shapes(data_dir)
        port = free_port()
        service = start_service(data_dir, port, args.device, Path(scratch) / "service.log")
        try:
            url = f"http://127.0.0.1:{port}"
            passed = asyncio.run(run(args, data_dir, url, psutil.Process(service.pid)))
        finally:
            service.terminate()
            service.wait(30)
    print(f"\ngeneration service benchmark: {'PASS' if passed else 'FAIL'} (models from {data_dir})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
