#!/usr/bin/env python3
"""The side-by-side comparison: ixn against Redis 7 and Faye on this machine, in one run.

Runs every workload of the comparison table in alternating rounds (ixn first in odd rounds,
the other side first in even ones), takes the median of each side over the rounds, and prints
one table per mode with the ratio and the goal:

  unpinned  everything shares the machine's cores, as it comes;
  pinned    the server side (ixn-server, redis-server, Faye's node) on CPU 0, the load side
            (ixn-load, redis-benchmark) on the other CPUs (taskset).

    python3 benches/compare.py                  # 3 rounds of 3 s, both modes (about 15 minutes)
    python3 benches/compare.py --rounds 5 --modes pinned
    python3 benches/compare.py --smoke          # every workload once, small and short (CI)
    python3 benches/compare.py --server-workers 1   # ixn-server --workers 1 (one thread
                                                    # serving connections, as Redis's one loop)

Needs: cargo (it builds the release binaries unless --no-build), redis-server and
redis-benchmark (Debian: redis-server, redis-tools), Node.js and npm (it runs `npm ci` in
benches/faye when node_modules is missing), taskset (util-linux) for the pinned mode. Only the
Python standard library. `--json FILE` also writes every sample.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOAD = os.path.join(ROOT, "target", "release", "ixn-load")
SERVER = os.path.join(ROOT, "target", "release", "ixn-server")
FAYE_DIR = os.path.join(ROOT, "benches", "faye")
FAYE = os.path.join(FAYE_DIR, "server.js")


def fail(msg):
    sys.exit(f"compare.py: {msg}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, what):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    fail(f"{what} did not start listening on port {port}")


class Env:
    """Where each side runs in one mode: the command prefixes, the wrappers, the Redis servers."""

    def __init__(self, mode, tmp, cpus, server_args):
        self.mode = mode
        self.tmp = tmp
        if mode == "pinned":
            load_cpus = "1" if cpus == 2 else f"1-{cpus - 1}"
            self.server_prefix = ["taskset", "-c", "0"]
            self.load_prefix = ["taskset", "-c", load_cpus]
        else:
            self.server_prefix = []
            self.load_prefix = []
        # ixn-load spawns ixn-server and node itself: wrappers put them on the server's CPU.
        bin_dir = os.path.join(tmp, f"bin-{mode}")
        os.makedirs(bin_dir, exist_ok=True)
        self.server_bin = self.wrapper(bin_dir, "ixn-server", SERVER, server_args)
        self.node_dir = bin_dir
        node = shutil.which("node")
        if node:
            self.wrapper(bin_dir, "node", node)
        self.redis = []
        self.redis_port = self.start_redis(["--appendonly", "no"])
        aof = os.path.join(tmp, f"aof-{mode}")
        os.makedirs(aof, exist_ok=True)
        self.redis_aof_port = self.start_redis(
            ["--appendonly", "yes", "--appendfsync", "always", "--dir", aof])

    def wrapper(self, bin_dir, name, target, extra=()):
        path = os.path.join(bin_dir, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec " + " ".join(self.server_prefix + [target] + list(extra))
                    + ' "$@"\n')
        os.chmod(path, 0o755)
        return path

    def start_redis(self, extra):
        port = free_port()
        cmd = self.server_prefix + ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--maxclients", "15000"] + extra
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.redis.append(p)
        wait_port(port, "redis-server")
        return port

    def stop(self):
        for p in self.redis:
            p.terminate()
            p.wait()

    def load_env(self):
        env = dict(os.environ)
        env["PATH"] = self.node_dir + os.pathsep + env.get("PATH", "")
        return env


class Runner:
    def __init__(self, args):
        self.args = args
        self.rates = {}  # redis-benchmark: the last rate seen, to size the next run

    def ixn_load(self, env, argv, figure):
        a = self.args
        cmd = env.load_prefix + [LOAD] + argv + [
            "--duration", str(a.duration), "--warmup", "500ms", "--json", "--quiet"]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env.load_env(), timeout=600)
        if r.returncode != 0:
            fail(f"`{' '.join(cmd)}` failed ({r.returncode}):\n{r.stderr}{r.stdout}")
        report = json.loads(r.stdout.strip().splitlines()[-1])
        return report["figures"], report["figures"][figure]

    def redis_benchmark(self, env, port, key, argv, field):
        guess = {"ping16": 2_000_000, "set": 150_000, "set_aof": 100_000}
        rate = self.rates.get((env.mode, key), guess[key])
        n = max(int(rate * self.args.duration), 2000)
        cmd = env.load_prefix + ["redis-benchmark", "-p", str(port), "-n", str(n), "--csv",
                                 "--precision", "3"] + argv
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            fail(f"`{' '.join(cmd)}` failed:\n{r.stderr}")
        rows = [line for line in r.stdout.splitlines() if line.startswith('"')]
        head = [h.strip('"') for h in rows[0].split(",")]
        vals = [v.strip('"') for v in rows[-1].split(",")]
        row = dict(zip(head, vals))
        self.rates[(env.mode, key)] = float(row["rps"])
        return float(row[field])


def measurements(run, env, a, sizes):
    """Each measurement of one round: name -> thunk returning a number."""
    srv = ["--server-bin", env.server_bin]
    s = a.sessions

    def ixn_fanout():
        figs, v = run.ixn_load(env, ["fanout", "-s", str(a.subscribers), "-w", "16"] + srv,
                               "deliveries_per_sec")
        sizes["notification"] = figs.get("notification_bytes", sizes["notification"])
        return v

    def cometd(transport, faye):
        def go():
            argv = ["cometd", "-s", str(s), "--transport", transport]
            if faye:
                argv += ["--faye", FAYE, "--size", str(sizes[transport])]
            else:
                argv += srv
            figs, v = run.ixn_load(env, argv, "deliveries_per_sec")
            if not faye:
                sizes[transport] = figs.get("message_bytes", sizes[transport])
            return v
        return go

    durable = os.path.join(env.tmp, f"data-{env.mode}")
    return {
        "ixn ping 50x16": lambda: run.ixn_load(
            env, ["rr", "ping", "-c", "50", "-p", "16"] + srv, "requests_per_sec")[1],
        "redis PING 50x16": lambda: run.redis_benchmark(
            env, env.redis_port, "ping16", ["-c", "50", "-P", "16", "-t", "ping_mbulk"], "rps"),
        "ixn place 50x1": lambda: run.ixn_load(
            env, ["rr", "place", "-c", "50", "-p", "1"] + srv, "requests_per_sec")[1],
        "redis SET 50x1": lambda: run.redis_benchmark(
            env, env.redis_port, "set", ["-c", "50", "-P", "1", "-t", "set"], "rps"),
        "ixn durable place 50x1": lambda: run.ixn_load(
            env, ["rr", "place", "-c", "50", "-p", "1", "--data-dir", durable] + srv,
            "requests_per_sec")[1],
        "redis SET 50x1 fsync always": lambda: run.redis_benchmark(
            env, env.redis_aof_port, "set_aof", ["-c", "50", "-P", "1", "-t", "set"], "rps"),
        "ixn fanout": ixn_fanout,
        "redis pub/sub": lambda: run.ixn_load(
            env, ["fanout", "--redis", f"127.0.0.1:{env.redis_port}", "-s", str(a.subscribers),
                  "-w", "16", "--size", str(sizes["notification"])], "deliveries_per_sec")[1],
        "ixn 1x1 p50": lambda: run.ixn_load(
            env, ["rr", "ping", "-c", "1", "-p", "1"] + srv, "latency_p50_us")[1],
        # The same client on both sides: at 1 x 1 the client's own loop is most of the time.
        "redis 1x1 p50": lambda: run.ixn_load(
            env, ["rr", "ping", "--redis", f"127.0.0.1:{env.redis_port}", "-c", "1", "-p", "1"],
            "latency_p50_us")[1],
        "ixn cometd long-polling": cometd("long-polling", False),
        "faye long-polling": cometd("long-polling", True),
        "ixn cometd websocket": cometd("websocket", False),
        "faye websocket": cometd("websocket", True),
        "ixn cometd paced p99": lambda: max(
            run.ixn_load(env, ["cometd", "-s", str(s), "--rate", str(a.rate), "--transport", t]
                         + srv, "latency_p99_us")[1] / 1000.0
            for t in ("long-polling", "websocket")),
    }


# (label, ixn measurement, other measurement or None, how the ratio is made, goal, unit)
ROWS = [
    ("rr ping 50 conn x 16 vs redis-benchmark PING -P 16", "ixn ping 50x16", "redis PING 50x16",
     "ixn/other", (">=", 1.0), "/s"),
    ("rr place 50 x 1 vs redis-benchmark SET -P 1", "ixn place 50x1", "redis SET 50x1",
     "ixn/other", (">=", 1.0), "/s"),
    ("durable rr place 50 x 1 vs ephemeral", "ixn durable place 50x1", "ixn place 50x1",
     "ixn/other", (">=", 0.8), "/s"),
    ("durable rr place vs Redis SET, appendfsync always", "ixn durable place 50x1",
     "redis SET 50x1 fsync always", "ixn/other", (">=", 1.0), "/s"),
    ("fanout subscribers x 16 vs Redis pub/sub, same payload", "ixn fanout", "redis pub/sub",
     "ixn/other", (">=", 1.0), "/s"),
    ("1 x 1 p50 latency (us), ixn / Redis, same client", "ixn 1x1 p50", "redis 1x1 p50",
     "ixn/other", ("<=", 1.2), "us"),
    ("CometD sessions, long-polling vs Faye", "ixn cometd long-polling", "faye long-polling",
     "ixn/other", (">=", 2.0), "/s"),
    ("CometD sessions, WebSocket vs Faye", "ixn cometd websocket", "faye websocket",
     "ixn/other", (">=", 2.0), "/s"),
    ("CometD p99 (ms) at the paced rate, worse transport", "ixn cometd paced p99", None,
     "value", ("<", 50.0), "ms"),
]


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "/s":
        return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.1f} k/s"
    if unit == "us":
        return f"{v:.1f} us"
    return f"{v:.1f} ms"


def table(mode, medians, a):
    lines = [f"\n{mode}: medians of {a.rounds} alternating round(s) of {a.duration} s "
             f"(fanout {a.subscribers} subscribers; CometD {a.sessions} sessions, paced at "
             f"{a.rate:g} deliveries/s"
             + (f"; ixn-server --workers {a.server_workers}" if a.server_workers else "") + ")",
             f"| workload | ixn | other | ratio | goal | |", "|---|---|---|---|---|---|"]
    results = []
    for label, mine, other, how, (op, goal), unit in ROWS:
        m = medians.get(mine)
        o = medians.get(other) if other else None
        ratio = m if how == "value" else (m / o if m is not None and o else None)
        met = ratio is not None and {">=": ratio >= goal, "<=": ratio <= goal,
                                     "<": ratio < goal}[op]
        shown = "-" if ratio is None else f"{ratio:.2f}"
        lines.append(f"| {label} | {fmt(m, unit)} | {fmt(o, unit)} | {shown} | {op} {goal:g} | "
                     f"{'met' if met else 'MISSED'} |")
        results.append({"workload": label, "ixn": m, "other": o, "ratio": ratio,
                        "goal": f"{op} {goal:g}", "met": met})
    print("\n".join(lines), flush=True)
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    p.add_argument("--modes", default="unpinned,pinned")
    p.add_argument("--subscribers", type=int, default=1000, help="fanout subscribers")
    p.add_argument("--sessions", type=int, default=1000, help="CometD sessions")
    p.add_argument("--rate", type=float, default=10000, help="paced CometD deliveries/s")
    p.add_argument("--smoke", action="store_true",
                   help="one round of 1 s, 50 subscribers and sessions, unpinned: that it runs")
    p.add_argument("--server-workers", type=int, metavar="N",
                   help="run ixn-server with --workers N (default: its own, one per CPU)")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--json", metavar="FILE", help="also write every sample here")
    a = p.parse_args()
    if a.smoke:
        a.rounds, a.duration, a.modes = 1, 1.0, "unpinned"
        a.subscribers, a.sessions, a.rate = 50, 50, 2000
    modes = [m for m in a.modes.split(",") if m]
    cpus = os.cpu_count() or 1
    for tool in ["redis-server", "redis-benchmark", "node", "npm"] + (
            ["taskset"] if "pinned" in modes else []):
        if not shutil.which(tool):
            fail(f"{tool} is not installed (see this script's header for what it needs)")
    if "pinned" in modes and cpus < 2:
        fail("the pinned mode needs at least 2 CPUs")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "ixn-server",
                        "-p", "ixn-benches"], cwd=ROOT, check=True)
    if not os.path.isdir(os.path.join(FAYE_DIR, "node_modules")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FAYE_DIR, check=True)
    run = Runner(a)
    out = {"rounds": a.rounds, "duration": a.duration, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="ixn-compare-") as tmp:
        for mode in modes:
            env = Env(mode, tmp, cpus, ["--workers", str(a.server_workers)]
                      if a.server_workers else [])
            samples = {}
            sizes = {"notification": 401, "long-polling": 430, "websocket": 430}
            try:
                for r in range(a.rounds):
                    print(f"{mode}: round {r + 1} of {a.rounds}", file=sys.stderr, flush=True)
                    ms = list(measurements(run, env, a, sizes).items())
                    # Pairs (ixn, other) in table order; even rounds run the other side first.
                    pairs = [ms[i:i + 2] for i in range(0, len(ms), 2)]
                    for pair in pairs:
                        for name, thunk in (pair if r % 2 == 0 else list(reversed(pair))):
                            samples.setdefault(name, []).append(thunk())
            finally:
                env.stop()
            medians = {k: statistics.median(v) for k, v in samples.items()}
            out["modes"][mode] = {"samples": samples, "medians": medians,
                                  "table": table(mode, medians, a)}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
