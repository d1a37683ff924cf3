#!/usr/bin/env python3
"""parley's benchmark: every operation of the store-scale table, on S, M and L, side by
side with the two peers of ../shared/perf, in one run.

    python3 scripts/bench.py --sizes S,M,L            # writes BENCHMARKS.md
    python3 scripts/bench.py --sizes S --runs 1 --smoke --no-chatwoot   # CI's check

Sizes: S = 100k messages, M = 1M, L = 10M (`gen_events.py --seed 1 --messages N`), in
/tmp/perf-data (generated when missing). Each operation runs --runs times (default 5)
as a whole `parley` process; the table gives the median, min and max wall time, the
median in-process time (the store call, from `--timing`) and the peak RSS (wait4).

Operations, in order, on a data dir per size:
- bulk ingest of the whole file into a fresh data dir (each run a new dir);
- the "rest" (all but the last 7,140 lines) ingested into one more dir, then seven
  1,000-line slices of the newest traffic, then seven 10-line slices, each a fresh
  batch after everything before it (what webhooks do): five as processes of their own
  (cold), then two in one process, of which the second is reported as warm (what the
  server pays per webhook); then seven more 10-line slices filed with `ingest --defer`
  (five cold processes, then two in one process), and one `settle` that derives them
  (a server files each webhook and settles many together);
- on that (now complete) dir: every report over `last_30_days`, with and without three
  filters, the conversation log's pages 1 and 200, its CSV export, `rebuild`, and
  `workspace list` (the cost of starting the process and opening the database).

`--smoke` checks the counts against the DuckDB peer's (opened, closed, outgoing) and
exits 1 on a mismatch; it makes no timing assertion.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT.parent / "shared" / "perf"
DATA = Path("/tmp/perf-data")
SIZES = {"S": 100_000, "M": 1_000_000, "L": 10_000_000}
LABEL = {"S": "100k", "M": "1m", "L": "10m"}
VIEW = ["--workspace", "bench", "--range", "last_30_days", "--now", "2026-11-30T12:00:00+01:00"]
FILTERS = {
    "conversations": ["--filter", "opened_channel=ch-whatsapp", "--filter", "contact_type=returning",
                      "--filter", "opened_source=contact"],
    "messages": ["--filter", "source=user", "--filter", "channel=ch-whatsapp", "--filter", "type=session"],
    "contacts": ["--filter", "source=incoming_message", "--filter", "user=-", "--filter", "contact=a"],
    "assignments": ["--filter", "source=user", "--filter", "assignee=u01", "--filter", "contact=a"],
}


def parley_bin():
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/parley-target"))
    return str(target / "release" / "parley")


def popen_wait(args, stdout=subprocess.DEVNULL):
    """Like `run`, but waits with wait4 so that the child's own peak RSS is known."""
    t = time.perf_counter()
    p = subprocess.Popen(args, stdout=stdout, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(args)}\n{err.decode(errors='replace')}")
    inproc = None
    for line in err.decode(errors="replace").splitlines():
        if line.startswith("timing: "):
            inproc = float(line.split()[2])
    return wall, inproc, ru.ru_maxrss / 1024


def stats(samples):
    walls = [s[0] for s in samples]
    inproc = [s[1] for s in samples if s[1] is not None]
    return {
        "median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
        "inproc_median_ms": statistics.median(inproc) if inproc else None,
        "rss_mb": max(s[2] for s in samples), "runs": len(samples),
    }


def repeat(n, args, stdout=subprocess.DEVNULL):
    return stats([popen_wait(args, stdout) for _ in range(n)])


def ensure_data(size):
    path = DATA / f"ev-{LABEL[size]}.ndjson"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(PERF / "gen_events.py"), "--seed", "1",
                        "--messages", str(SIZES[size]), "--out", str(path)], check=True)
    return path


def fresh_dir(name):
    d = DATA / name
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run([parley_bin(), "--data", str(d), "workspace", "create", "bench",
                    "--timezone", "Europe/Madrid"], check=True, stdout=subprocess.DEVNULL)
    return d


def split(path, tail):
    """Writes all but the last `tail` lines to a file; returns it and the last lines."""
    with open(path, "rb") as f:
        total = sum(1 for _ in f)
    rest = path.with_suffix(".rest")
    last = []
    with open(path, "rb") as f, open(rest, "wb") as out:
        for i, line in enumerate(f):
            if i < total - tail:
                out.write(line)
            else:
                last.append(line)
    return rest, last


def bench_size(size, runs):
    p = parley_bin()
    path = ensure_data(size)
    res = {"events_file": str(path), "events_bytes": path.stat().st_size, "ops": {}}
    ops = res["ops"]
    # Bulk ingest, each run into a fresh data dir.
    samples = []
    for _ in range(runs):
        d = fresh_dir(f"parley-{size}-bulk")
        samples.append(popen_wait([p, "--timing", "--data", str(d), "ingest", "--workspace", "bench", str(path)]))
    ops["bulk ingest"] = stats(samples)
    shutil.rmtree(DATA / f"parley-{size}-bulk", ignore_errors=True)
    # The newest traffic in slices, after the rest.
    d = fresh_dir(f"parley-{size}")
    rest, last = split(path, 7 * 1000 + 14 * 10)
    ops["ingest of the rest"] = stats([popen_wait([p, "--timing", "--data", str(d), "ingest", "--workspace", "bench", str(rest)])])
    rest.unlink()
    for n, start, defer in ((1000, 0, []), (10, 7000, []), (10, 7070, ["--defer"])):
        slices = []
        for i in range(7):
            f = DATA / f"slice-{size}-{n}-{i}.ndjson"
            f.write_bytes(b"".join(last[start + i * n:start + (i + 1) * n]))
            slices.append(str(f))
        how = ", filed deferred" if defer else ""
        ingest = [p, "--timing", "--data", str(d), "ingest", "--workspace", "bench"] + defer
        # Five slices, each its own process: cold (open, first reads of the database).
        samples = [popen_wait(ingest + [f]) for f in slices[:5]]
        ops[f"{n} newest lines after the rest{how}"] = stats(samples)
        # Then two more in one process, as a server takes webhooks: the second is warm.
        out = subprocess.run(ingest + slices[5:], capture_output=True, check=True)
        warm = [float(l.split()[2]) for l in out.stderr.decode().splitlines() if l.startswith("timing: ")][-1]
        ops[f"{n} newest lines{how}, warm (second batch of one process)"] = {
            "median_s": warm / 1000, "min_s": warm / 1000, "max_s": warm / 1000,
            "inproc_median_ms": warm, "rss_mb": 0, "runs": 1}
        if defer:
            ops["settle of the seven deferred 10-line batches"] = stats(
                [popen_wait([p, "--timing", "--data", str(d), "settle", "--workspace", "bench"])])
        for f in slices:
            Path(f).unlink()
    base = [p, "--timing", "--data", str(d)]
    for report in ("conversations", "messages", "contacts", "assignments"):
        ops[f"{report} report"] = repeat(runs, base + ["report", report] + VIEW)
        ops[f"{report} report, 3 filters"] = repeat(runs, base + ["report", report] + VIEW + FILTERS[report])
    for page in (1, 200):
        ops[f"conversation log page {page}"] = repeat(
            runs, base + ["log", "conversations", "conversations", "--page", str(page)] + VIEW)
    ops["conversation log CSV export"] = repeat(runs, base + ["export", "conversations", "conversations"] + VIEW)
    rows = subprocess.run(base + ["export", "conversations", "conversations"] + VIEW,
                          capture_output=True, check=True).stdout.count(b"\r\n") - 1
    ops["conversation log CSV export"]["rows"] = rows
    ops["rebuild"] = repeat(runs, base + ["rebuild", "--workspace", "bench"])
    ops["workspace list (process start, open)"] = repeat(runs, [p, "--data", str(d), "workspace", "list"])
    res["db_bytes"] = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
    conv = json.loads(subprocess.run([p, "--data", str(d), "report", "conversations"] + VIEW,
                                     capture_output=True, check=True).stdout)
    msgs = json.loads(subprocess.run([p, "--data", str(d), "report", "messages"] + VIEW,
                                     capture_output=True, check=True).stdout)
    res["counts"] = {
        "opened": conv["components"]["opened"]["value"],
        "closed": conv["components"]["closed"]["value"],
        "outgoing": msgs["components"]["delivery"]["total"],
    }
    return res


def shape_files():
    """The shapes that stress grouping and chunking, at full scale (SPEC §2 NDJSON)."""
    DATA.mkdir(parents=True, exist_ok=True)
    base = 1_767_571_200  # 2026-01-05T00:00:00Z

    def at(n):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + n))

    files = {}
    f = DATA / "shape-one-contact.ndjson"
    if not f.exists():
        with open(f, "w") as out:
            n = 0
            for c in range(100_000):  # 100k conversations of 10 events: 1M events
                t = c * 60
                out.write(json.dumps({"id": f"o{c}", "type": "conversation.opened", "at": at(t), "conversation_id": f"cv{c}",
                                      "contact_id": "big", "source": "contact", "channel_id": "wa"}) + "\n")
                for m in range(4):
                    mid = f"m{c}-{m}"
                    out.write(json.dumps({"id": mid, "type": "message.received", "at": at(t + 1 + 2 * m), "message_id": mid,
                                          "contact_id": "big", "channel_id": "wa", "content": {"type": "text", "text": "q"}}) + "\n")
                    sid = f"s{c}-{m}"
                    out.write(json.dumps({"id": sid, "type": "message.sent", "at": at(t + 2 + 2 * m), "message_id": sid,
                                          "contact_id": "big", "channel_id": "wa", "source": "user", "user_id": "u1",
                                          "message_type": "session", "content": {"type": "text", "text": "a"}}) + "\n")
                out.write(json.dumps({"id": f"x{c}", "type": "conversation.closed", "at": at(t + 30), "conversation_id": f"cv{c}",
                                      "source": "user", "user_id": "u1"}) + "\n")
                n += 10
    files["one contact with 1,000,000 events"] = f
    f = DATA / "shape-merge-chain.ndjson"
    if not f.exists():
        with open(f, "w") as out:
            for c in range(10_000):
                out.write(json.dumps({"id": f"a{c}", "type": "contact.added", "at": at(c * 10), "contact": {"id": f"c{c}", "name": f"C {c}"},
                                      "source": "user"}) + "\n")
                out.write(json.dumps({"id": f"o{c}", "type": "conversation.opened", "at": at(c * 10 + 1), "conversation_id": f"cv{c}",
                                      "contact_id": f"c{c}", "source": "contact"}) + "\n")
                if c:
                    out.write(json.dumps({"id": f"g{c}", "type": "contact.merged", "at": at(c * 10 + 5),
                                          "primary_contact_id": f"c{c}", "merged_contact_id": f"c{c - 1}", "user_id": "u1"}) + "\n")
    files["a chain of 10,000 merges"] = f
    f = DATA / "shape-shared-conversation.ndjson"
    if not f.exists():
        with open(f, "w") as out:
            for c in range(5_000):
                out.write(json.dumps({"id": f"o{c}", "type": "conversation.opened", "at": at(c), "conversation_id": "shared",
                                      "contact_id": f"c{c}", "source": "contact"}) + "\n")
                for m in range(10):
                    mid = f"m{c}-{m}"
                    out.write(json.dumps({"id": mid, "type": "message.received", "at": at(10_000 + c * 10 + m), "message_id": mid,
                                          "contact_id": f"c{c}", "channel_id": "wa", "content": {"type": "text", "text": "q"}}) + "\n")
    files["one conversation id opened by 5,000 contacts"] = f
    return files


def bench_shapes(runs):
    p = parley_bin()
    ops = {}
    for name, f in shape_files().items():
        samples = []
        for _ in range(runs):
            d = fresh_dir("parley-shape")
            samples.append(popen_wait([p, "--timing", "--data", str(d), "ingest", "--workspace", "bench", str(f)]))
        ops[f"ingest: {name}"] = stats(samples)
        ops[f"rebuild: {name}"] = repeat(runs, [p, "--timing", "--data", str(d), "rebuild", "--workspace", "bench"])
    shutil.rmtree(DATA / "parley-shape", ignore_errors=True)
    return ops


def peer_duckdb(size, runs):
    path = ensure_data(size)
    out = DATA / f"peer-duckdb-{size}.json"
    py = os.environ.get("PEER_PYTHON", "/tmp/perf-venv/bin/python")
    t = time.perf_counter()
    subprocess.run([py, str(PERF / "peer_duckdb.py"), "--events", str(path), "--db",
                    str(DATA / f"peer-duck-{size}.duckdb"), "--precompute-local", "--runs", str(runs),
                    "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
    res = json.loads(out.read_text())
    res["wall_s"] = time.perf_counter() - t
    return res


def peer_chatwoot(size, runs):
    path = ensure_data(size)
    out = DATA / f"peer-chatwoot-{size}.json"
    py = os.environ.get("PEER_PYTHON", "/tmp/perf-venv/bin/python")
    subprocess.run([py, str(PERF / "peer_chatwoot_pg.py"), "--events", str(path), "--runs", str(runs),
                    "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def ms(s):
    return f"{s * 1000:,.0f} ms" if s < 10 else f"{s:,.1f} s"


def peer_rows(timings):
    """A peer's timed operations as table rows: median and min, rows/s where measured."""
    rows = []
    for k, v in timings.items():
        if isinstance(v, dict) and "median_s" in v:
            extra = f" ({v['rows_per_s_median']:,.0f} rows/s)" if "rows_per_s_median" in v else ""
            rows.append(f"| {k}{extra} | {ms(v['median_s'])} | {ms(v['min_s'])} |")
    return rows


def render(results, runs, argv):
    commands = " then ".join(f"`python3 scripts/bench.py {c}`" for c in results.get("_commands", [" ".join(argv)]))
    lines = ["# Benchmarks", "",
             f"Generated by {commands} on {time.strftime('%Y-%m-%d')}.", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
             f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, "
             f"{platform.system()} {platform.release()}; release build. "
             f"Each operation is a whole `parley` process run {runs} times (median, min-max); "
             "*in-process* is the store call alone (`--timing`), which the server pays; "
             "RSS is the process's peak.", ""]
    for size, r in results.items():
        if size.startswith("_"):
            continue
        if size == "shapes":
            lines += ["## Stress shapes (memory bounded whatever the shape)", "",
                      "| operation | median (whole process) | min - max | in-process median | peak RSS |",
                      "| --- | --- | --- | --- | --- |"]
            for name, o in r.items():
                lines.append(f"| {name} | {ms(o['median_s'])} | {ms(o['min_s'])} - {ms(o['max_s'])} "
                             f"| {o['inproc_median_ms']:,.1f} ms | {o['rss_mb']:,.0f} MB |")
            lines.append("")
            continue
        p = r["parley"]
        lines += [f"## {size}: {SIZES[size]:,} messages ({p['events_bytes'] / 2**20:,.0f} MiB of NDJSON)", "",
                  f"On-disk size of the data dir: {p['db_bytes'] / 2**20:,.0f} MiB. Counts: "
                  f"opened {p['counts']['opened']:,}, closed {p['counts']['closed']:,}, "
                  f"outgoing {p['counts']['outgoing']:,}.", "",
                  "| operation | median (whole process) | min - max | in-process median | peak RSS |",
                  "| --- | --- | --- | --- | --- |"]
        for name, o in p["ops"].items():
            extra = ""
            if "rows" in o:
                extra = f" ({o['rows']:,} rows = {o['rows'] / o['median_s']:,.0f} rows/s)"
            inproc = f"{o['inproc_median_ms']:,.1f} ms" if o["inproc_median_ms"] is not None else "-"
            rss = f"{o['rss_mb']:,.0f} MB" if o["rss_mb"] else "-"
            lines.append(f"| {name}{extra} | {ms(o['median_s'])} | {ms(o['min_s'])} - {ms(o['max_s'])} "
                         f"| {inproc} | {rss} |")
        lines.append("")
        if "duckdb" in r:
            d = r["duckdb"]
            t = d["timings"]
            lines += ["Peer 1, hand-written DuckDB (`peer_duckdb.py --precompute-local`), same run:", "",
                      "| operation | median | min |", "| --- | --- | --- |",
                      f"| load ({t['load']['events_per_s']:,.0f} events/s) | {ms(t['load']['s'])} | - |",
                      f"| derive | {ms(t['derive']['s'])} | - |"]
            lines += peer_rows(t)
            lines += ["", f"Peer counts: opened {t['conversations_report']['opened']:,}, "
                          f"closed {t['conversations_report']['closed']:,}, "
                          f"outgoing {t['messages_report']['outgoing']:,}; peak RSS {d['peak_rss_mb']:,.0f} MB"
                          + (f"; database {d['db_bytes'] / 2**20:,.0f} MiB." if 'db_bytes' in d else "."), ""]
        if "chatwoot" in r:
            t = r["chatwoot"]["timings"]
            lines += ["Peer 2, Chatwoot-style PostgreSQL (`peer_chatwoot_pg.py`), same run:", "",
                      "| operation | median | min |", "| --- | --- | --- |",
                      f"| map events to Chatwoot rows (DuckDB) | {ms(t['map_events_to_chatwoot_rows_duckdb']['s'])} | - |",
                      f"| load (COPY, 48 indexes, VACUUM ANALYZE) | {ms(t['load']['total_s'])} | - |"]
            lines += peer_rows(t)
            lines.append("")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="S,M,L")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-chatwoot", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="check counts against the DuckDB peer; no timings kept")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--shapes", action="store_true",
                    help="also measure the stress shapes (one contact with 1M events, 10,000 merges, a shared id)")
    a = ap.parse_args()
    if not Path(parley_bin()).exists():
        sys.exit(f"build parley first: cargo build --release --workspace ({parley_bin()} is missing)")
    results = {}
    sizes = [x for x in a.sizes.split(",") if x]
    if not sizes and a.shapes:
        # Shapes alone: added to the last run's results, so the document stays whole.
        results = json.loads((DATA / "bench-results.json").read_text())
        results.pop("shapes", None)
        # A results file from before commands were recorded came from the default run.
        results.setdefault("_commands", ["--sizes S,M,L --runs 5"])
    results.setdefault("_commands", []).append(" ".join(sys.argv[1:]))
    for size in sizes:
        r = {"parley": bench_size(size, a.runs)}
        print(f"{size}: {json.dumps(r['parley']['counts'])}", file=sys.stderr)
        if not a.no_peers:
            r["duckdb"] = peer_duckdb(size, a.runs)
            if not a.no_chatwoot:
                r["chatwoot"] = peer_chatwoot(size, a.runs)
        results[size] = r
        if a.smoke:
            t = r["duckdb"]["timings"]
            want = {"opened": t["conversations_report"]["opened"], "closed": t["conversations_report"]["closed"],
                    "outgoing": t["messages_report"]["outgoing"]}
            if want != r["parley"]["counts"]:
                sys.exit(f"{size}: parley counts {r['parley']['counts']} differ from the DuckDB peer's {want}")
            print(f"{size}: counts match the DuckDB peer: {json.dumps(want)}", file=sys.stderr)
    if a.shapes:
        results["shapes"] = bench_shapes(a.runs)
    if not a.smoke:
        Path(a.out).write_text(render(results, a.runs, sys.argv[1:]))
        (DATA / "bench-results.json").write_text(json.dumps(results, indent=1, default=str))
        print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
