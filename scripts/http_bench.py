#!/usr/bin/env python3
"""HTTP benchmark of `parley serve` (issue 12's speed rows), standard library only.

    python3 scripts/http_bench.py --events /tmp/perf-data/ev-1m.ndjson --data /tmp/hb \
        [--limit 200000] [--clients 4] [--batch 1000] [--readers 50] [--fresh]

Starts `parley serve` on 127.0.0.1 (an ephemeral port) over DIR (with `--fresh`, a new
DIR with workspace `bench`), creates an ingest and a read token through the CLI (which
goes through the running server), then posts the file's events (after `--skip` lines,
at most `--limit`) in NDJSON batches of `--batch` lines from `--clients` threads, while
`--readers` threads read the Conversations report over and over. Prints events/s, the
batch latencies (p50, p99, max), the readers' latencies, whether every read answered
200 with a document whose counts never went down, and the server's peak RSS. Then it
times one report over HTTP against the library call (`parley report --timing` on the
same data dir once the server is stopped).
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEW = "range=last_30_days&now=2026-11-30T12%3A00%3A00%2B01%3A00"


def parley_bin():
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/parley-target"))
    return str(target / "release" / "parley")


def cli(data, *args):
    return subprocess.run([parley_bin(), "--data", str(data), *args], check=True,
                          capture_output=True, text=True).stdout


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def rss_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--max-wait", type=int, help="readers send Parley-Max-Wait: MS (answer what is derived after MS)")
    ap.add_argument("--max-unfiled", type=int, help="passed to `parley serve --max-unfiled` (default: the server's)")
    ap.add_argument("--server-log", help="write the server's stderr here (with PARLEY_PHASES set, its phases)")
    a = ap.parse_args()
    data = Path(a.data)
    if a.fresh:
        shutil.rmtree(data, ignore_errors=True)
        cli(data, "workspace", "create", "bench", "--timezone", "Europe/Madrid")
    # Batches read from the file as the posters take them (all of L does not fit in
    # memory as Python bytes).
    source = open(a.events, "rb")
    for _ in range(a.skip):
        source.readline()
    taken = {"lines": 0, "batches": 0}
    source_lock = threading.Lock()

    def next_batch():
        with source_lock:
            want = a.batch
            if a.limit:
                want = min(want, a.limit - taken["lines"])
            lines = []
            while len(lines) < want:
                line = source.readline()
                if not line:
                    break
                lines.append(line)
            if not lines:
                return None
            taken["lines"] += len(lines)
            taken["batches"] += 1
            return b"".join(lines)
    extra = ["--max-unfiled", str(a.max_unfiled)] if a.max_unfiled else []
    server = subprocess.Popen([parley_bin(), "--data", str(data), "serve", "--listen", "127.0.0.1:0"] + extra,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    port = None
    for line in server.stderr:
        if "serving http://" in line:
            port = int(line.split("serving http://")[1].split("/")[0].split(":")[1])
            break
    log = open(a.server_log, "w") if a.server_log else None
    threading.Thread(target=lambda: [log and log.write(l) for l in server.stderr], daemon=True).start()
    ingest = cli(data, "token", "create", "--workspace", "bench", "--scope", "ingest").strip()
    read = cli(data, "token", "create", "--workspace", "bench", "--scope", "read").strip()

    lat, errors, lock = [], [], threading.Lock()
    done = threading.Event()

    def poster(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while (b := next_batch()) is not None:
            t = time.perf_counter()
            conn.request("POST", "/api/v1/workspaces/bench/events", body=b,
                         headers={"Authorization": f"Bearer {ingest}", "Content-Type": "application/x-ndjson"})
            r = conn.getresponse()
            body = r.read()
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                if r.status != 200:
                    errors.append((r.status, body[:200]))

    reads, bad_reads, pending = [], [], []

    def reader():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        last = -1
        while not done.is_set():
            t = time.perf_counter()
            hs = {"Authorization": f"Bearer {read}"}
            if a.max_wait is not None:
                hs["Parley-Max-Wait"] = str(a.max_wait)
            conn.request("GET", f"/api/v1/workspaces/bench/reports/conversations?{VIEW}", headers=hs)
            r = conn.getresponse()
            body = r.read()
            dt = time.perf_counter() - t
            ok = r.status == 200
            pending.append(int(r.getheader("Parley-Pending") or 0))
            if ok:
                opened = json.loads(body)["components"]["opened"]["value"]
                ok = opened >= last
                last = opened
            with lock:
                reads.append(dt)
                if not ok:
                    bad_reads.append((r.status, body[:200]))

    readers = [threading.Thread(target=reader) for _ in range(a.readers)]
    for t in readers:
        t.start()
    start = time.perf_counter()
    posters = [threading.Thread(target=poster, args=(k,)) for k in range(a.clients)]
    for t in posters:
        t.start()
    for t in posters:
        t.join()
    elapsed = time.perf_counter() - start
    done.set()
    for t in readers:
        t.join()
    # One report, over HTTP, several times once the ingest is over.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    http_ms = []
    for _ in range(7):
        t = time.perf_counter()
        conn.request("GET", f"/api/v1/workspaces/bench/reports/conversations?{VIEW}",
                     headers={"Authorization": f"Bearer {read}"})
        conn.getresponse().read()
        http_ms.append((time.perf_counter() - t) * 1000)
    peak = rss_mb(server.pid)
    server.terminate()
    server.wait()
    lib = []
    for _ in range(5):
        out = subprocess.run([parley_bin(), "--timing", "--data", str(data), "report", "conversations",
                              "--workspace", "bench", "--range", "last_30_days", "--now", "2026-11-30T12:00:00+01:00"],
                             capture_output=True, text=True, check=True)
        lib.append(float([l for l in out.stderr.splitlines() if l.startswith("timing:")][-1].split()[2]))
    n = taken["lines"]
    print(json.dumps({
        "events": n, "batches": taken["batches"], "clients": a.clients, "readers": a.readers,
        "seconds": round(elapsed, 2), "events_per_s": round(n / elapsed),
        "batch_p50_ms": round(pct(lat, 50) * 1000, 1), "batch_p99_ms": round(pct(lat, 99) * 1000, 1),
        "batch_max_ms": round(max(lat) * 1000, 1), "ingest_errors": len(errors),
        "reads": len(reads), "read_p50_ms": round(pct(reads, 50) * 1000, 1),
        "read_p99_ms": round(pct(reads, 99) * 1000, 1), "bad_reads": len(bad_reads),
        "reads_leaving_batches_out": sum(1 for p in pending if p), "max_pending": max(pending, default=0),
        "first_read_after_ingest_s": round(http_ms[0] / 1000, 2),
        "report_over_http_ms_median": round(statistics.median(http_ms[1:]), 1),
        "report_library_call_ms_median": round(statistics.median(lib), 1),
        "server_peak_rss_mb": round(peak),
    }, indent=1))
    if errors or bad_reads:
        print("errors:", errors[:3], bad_reads[:3], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
