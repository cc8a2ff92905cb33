#!/usr/bin/env python3
"""End-to-end latency and throughput: modality -> chestnode -> Orthanc.

What is measured
  For each image: the time from starting `storescu` (sending one 2k x 2k
  chest CR, ../shared/data/dicom/wg04/RG1_JLSN.dcm, JPEG-LS, each copy in its
  own study with new UIDs) to chestnode's SR *and* SC both being stored in
  Orthanc (its change log, /changes, polled every 20 ms). Two runs:
    - paced: one image per second (`--rate 1`), N images;
    - full speed: N storescu processes, 4 running at any time.
  Reported: p50, p95 and max latency per run, and for the full-speed run
  the throughput N / (last result stored - first send started).
  chestnode is the release build with its default (embedded) model, one
  analysis worker, destinations = Orthanc for SR and SC. Orthanc (Debian
  package) and chestnode each run on loopback with a fresh data directory.

How to run
  cargo build --release && python3 bench/pacs_latency.py [--n 30]
  Needs DCMTK (storescu, dcmodify) and Orthanc. Prints a Markdown table and
  writes it to bench/out/pacs-latency-<timestamp>.md (git-ignored).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared/data/dicom/wg04/RG1_JLSN.dcm"
BIN = ROOT / "target/release/chestnode"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} did not open")


def orthanc_get(http, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{http}{path}", timeout=5) as response:
        return json.load(response)


class ArrivalWatcher:
    """Follows Orthanc's change log (cheap, whatever the number of pending
    studies) and notes when each study has received which modalities."""

    def __init__(self, http):
        self.http = http
        self.since = orthanc_get(http, "/changes?last")["Last"]
        self.seen = {}  # study -> set of modalities

    def poll(self):
        while True:
            changes = orthanc_get(self.http, f"/changes?since={self.since}&limit=200")
            for change in changes["Changes"]:
                if change["ChangeType"] == "NewInstance":
                    tags = orthanc_get(self.http, f"/instances/{change['ID']}/simplified-tags")
                    self.seen.setdefault(tags["StudyInstanceUID"], set()).add(tags["Modality"])
            self.since = changes["Last"]
            if changes["Done"]:
                return


def make_copies(n, work):
    """N copies of the source, each with new study, series and instance UIDs."""
    copies = []
    work.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = work / f"img{i:03d}.dcm"
        shutil.copy(SOURCE, path)
        subprocess.run(["dcmodify", "-nb", "-gst", "-gse", "-gin", str(path)], check=True, capture_output=True)
        out = subprocess.run(["dcmdump", "+P", "0020,000d", str(path)], check=True, capture_output=True, text=True).stdout
        study = out.split("[", 1)[1].split("]", 1)[0]
        copies.append((path, study))
    return copies


def percentile(values, q):
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


SENDERS = 4  # concurrent storescu processes at full speed, like 4 modalities


def run(copies, node_port, http, rate):
    """Sends the copies (paced at `rate` per second, or as fast as SENDERS
    concurrent storescu processes go if None) and returns (send times,
    result times) per image."""
    sent, done, processes = {}, {}, []
    pending = {study for _, study in copies}
    next_send = time.time()
    queue = list(copies)
    watcher = ArrivalWatcher(http)
    while pending:
        now = time.time()
        running = sum(1 for p in processes if p.poll() is None)
        while queue and (now >= next_send if rate else running < SENDERS):
            path, study = queue.pop(0)
            sent[study] = time.time()
            env = dict(os.environ, TCP_NODELAY="1")
            processes.append(subprocess.Popen(
                ["storescu", "-xu", "-R", "-aec", "CHESTNODE", "127.0.0.1", str(node_port), str(path)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            next_send += 1.0 / rate if rate else 0
            running += 1
        watcher.poll()
        for study in list(pending):
            if {"SR", "OT"} <= watcher.seen.get(study, set()):
                done[study] = time.time()
                pending.discard(study)
        if time.time() - max(sent.values(), default=time.time()) > 120:
            raise SystemExit(f"{len(pending)} results never arrived; see chestnode's log")
        time.sleep(0.02)
    for process in processes:
        if process.wait() != 0:
            raise SystemExit("a storescu failed")
    return sent, done


def node_stage_medians(log_path):
    """Median analysis and report times from chestnode's "analysed" log lines."""
    values = {"analysis (decode + model + findings)": [], "report (SR + SC, written)": []}
    for line in log_path.read_text().splitlines():
        if " analysed " not in line and not line.rstrip().endswith("analysed"):
            continue
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "total_ms" in fields and "report_ms" in fields:
            values["analysis (decode + model + findings)"].append(float(fields["total_ms"]))
            values["report (SR + SC, written)"].append(float(fields["report_ms"]))
    return {k: statistics.median(v) for k, v in values.items() if v}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="analysis.workers")
    args = parser.parse_args()
    if not BIN.exists():
        raise SystemExit("build first: cargo build --release")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["BENCH_WORK"] = tmp
        dicom, http, node_port = free_port(), free_port(), free_port()
        (work / "orthanc-db").mkdir()
        (work / "orthanc.json").write_text(json.dumps({
            "Name": "bench", "StorageDirectory": str(work / "orthanc-db"),
            "IndexDirectory": str(work / "orthanc-db"), "DicomAet": "ORTHANC",
            "DicomPort": dicom, "HttpPort": http, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
        }))
        orthanc = subprocess.Popen(["Orthanc", str(work / "orthanc.json")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (work / "chestnode.toml").write_text(f"""
[node]
port = {node_port}
data_dir = "{work / 'data'}"
[storage]
min_free_mb = 1
[analysis]
workers = {args.workers}
[[destinations]]
name = "orthanc"
ae_title = "ORTHANC"
host = "127.0.0.1"
port = {dicom}
kinds = ["sr", "sc"]
""")
        node = subprocess.Popen([str(BIN), "serve", "--config", str(work / "chestnode.toml")],
                                stdout=subprocess.DEVNULL, stderr=open(work / "node.log", "w"))
        try:
            wait_port(http)
            wait_port(node_port)
            rows = []
            for label, rate in [("1 image/s", 1.0), ("full speed", None)]:
                copies = make_copies(args.n, work / label.replace(" ", "_").replace("/", "_"))
                sent, done = run(copies, node_port, http, rate)
                latencies = [done[s] - sent[s] for s in sent]
                span = max(done.values()) - min(sent.values())
                rows.append((label, statistics.median(latencies), percentile(latencies, 95),
                             max(latencies), args.n / span))
            stages = node_stage_medians(work / "node.log")
        except SystemExit:
            sys.stderr.write((work / "node.log").read_text()[-4000:])
            raise
        finally:
            node.terminate()
            orthanc.terminate()
            node.wait()
            orthanc.wait()
    lines = [
        f"End to end, storescu -> chestnode -> Orthanc (SR and SC stored), {args.n} images of RG1_JLSN (1955x1841 JPEG-LS), {args.workers} analysis worker(s), `python3 bench/pacs_latency.py --n {args.n} --workers {args.workers}`",
        "",
        "| run | p50 s | p95 s | max s | throughput images/s |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.2f} |" for r in rows]
    lines += ["", "Inside chestnode, median per image (its log): " +
              ", ".join(f"{k} {v:.0f} ms" for k, v in stages.items())]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench/out"
    out.mkdir(exist_ok=True)
    (out / f"pacs-latency-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
