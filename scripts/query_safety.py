#!/usr/bin/env python3
"""What a question may cost (SPEC 7.6), measured on a release build.

    cargo build --release
    python3 scripts/query_safety.py target/release/sumatra-server [WORKDIR]

Makes (once, in WORKDIR, default /tmp/sumatra-query-safety) a database with a
public project `Pub` of 100 000 records and a public project `Big` of 300
records with 1 MiB of output each, serves it on 127.0.0.1:8702 (loopback
only, a bounded number of requests) and asks what an attacker would: 16 sort
keys, an `in` of 521 values, 64 `~` over long outputs, 16 such queries
abandoned after half a second, repeated `stdout` columns of table JSON, four
comparisons of ten large records at once, 300 CSV readers that never read,
and SIGTERM with heavy work in flight. Prints each answer (status, seconds,
bytes) and the server's peak memory (VmHWM, KiB) after each step.
"""
import copy, json, os, signal, socket, subprocess, sys, threading, time
import urllib.error, urllib.parse, urllib.request

BIN = os.path.abspath(sys.argv[1])
WORK = sys.argv[2] if len(sys.argv) > 2 else "/tmp/sumatra-query-safety"
os.makedirs(WORK, exist_ok=True)
DB = os.path.join(WORK, "s.db")
LOG = os.path.join(WORK, "serve.log")
PORT = 8702


def make_project(base, n, pid, big):
    recs = []
    for i in range(n):
        r = copy.deepcopy(base)
        r["label"] = f"r{i:06d}"
        r["project_id"] = pid
        r["timestamp"] = f"2024-01-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}"
        r["parameters"] = {"content": "\n".join(f"k{j} = {(i * 7 + j) % 1000}" for j in range(10)) + f"\nn = {i % 1000}",
                           "type": "SimpleParameterSet"}
        r["tags"] = ["rare"] if i % 1000 == 0 else ["common"]
        r["reason"] = "ÉCOLE run" if i % 5000 == 0 else "plain run"
        if big:
            r["stdout_stderr"] = ("x" * 1023 + "\n") * (big * 1024)
        recs.append(r)
    path = os.path.join(WORK, f"{pid}.json")
    with open(path, "w") as f:
        json.dump({"sumatra_server_export": 1, "projects": [{"id": pid, "name": pid, "description": "", "records": recs}]}, f)
    return path


if not os.path.exists(DB):
    def run(*a):
        subprocess.run([BIN, "--db", DB, *a], check=True)
    run("init")
    run("loaddata", "haggling")
    export = subprocess.run([BIN, "--db", DB, "export"], check=True, capture_output=True).stdout
    base = json.loads(export)["projects"][0]["records"][0]
    run("loaddata", make_project(base, 100_000, "Pub", 0), make_project(base, 300, "Big", 1))
    run("grant", "anonymous", "Pub")
    run("grant", "anonymous", "Big")

U = f"http://127.0.0.1:{PORT}/records"
def hwm(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM:"): return int(l.split()[1])
def threads(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("Threads:"): return int(l.split()[1])
def start(*extra):
    p = subprocess.Popen([BIN, "--db", DB, "serve", "--bind", f"127.0.0.1:{PORT}", *extra], stderr=open(LOG, "w"))
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{U}/Pub/r000001/?format=json"); return p
        except Exception: time.sleep(0.1)
    raise SystemExit("no server")
def get(path, timeout=60, accept="application/json"):
    t = time.time()
    req = urllib.request.Request(U + path, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            n = 0
            while True:
                b = r.read(1 << 20)
                if not b: break
                n += len(b)
            return r.status, time.time() - t, n
    except urllib.error.HTTPError as e:
        return e.code, time.time() - t, 0
def q(s): return urllib.parse.quote(s, safe="")
def hang(path, after):
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(f"GET /records{path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n".encode())
    time.sleep(after); s.close()
heavy = q(" or ".join(f"stdout ~ zz{i}" for i in range(64)))
p = start()
res = {}
res["idle_hwm_kib"] = hwm(p.pid)
res["sort16"] = get("/Pub/?format=json&sort=" + q("params.k0," + ",".join(["duration"] * 15)) + "&limit=50")
print("sort16", hwm(p.pid) if p.poll() is None else "-", flush=True)
res["sort9"] = get("/Pub/?sort=" + q(",".join(f"params.k{i}" for i in range(9))))
print("sort9", hwm(p.pid) if p.poll() is None else "-", flush=True)
res["in521"] = get("/Pub/?q=" + q("params.n in (" + ",".join(str(i) for i in range(521)) + ")"))
print("in521", hwm(p.pid) if p.poll() is None else "-", flush=True)
res["in64"] = get("/Pub/?format=json&q=" + q("params.n in (" + ",".join(str(i) for i in range(64)) + ")"))
print("in64", hwm(p.pid) if p.poll() is None else "-", flush=True)
res["heavy_big"] = get(f"/Big/?format=json&q={heavy}")
print("heavy_big", hwm(p.pid) if p.poll() is None else "-", flush=True)
res["heavy_pub_reason"] = get("/Pub/?format=json&q=" + q(" or ".join(f"reason ~ zz{i}" for i in range(64))))
print("heavy_pub_reason", hwm(p.pid) if p.poll() is None else "-", flush=True)
# abandoned heavy + light
ts = [threading.Thread(target=hang, args=(f"/Big/?format=json&q={heavy}", 0.5)) for _ in range(16)]
[t.start() for t in ts]; time.sleep(0.2)
res["light_during_16_abandoned"] = get("/Pub/r000001/?format=json")
print("light_during_16_abandoned", hwm(p.pid) if p.poll() is None else "-", flush=True)
[t.join() for t in ts]
t0 = time.time()
while True:
    r = get("/Pub/?format=json&q=" + q("params.n = 7") + "&limit=5")
    if r[0] == 200 or time.time() - t0 > 15: break
    time.sleep(0.02)
res["search_after_abandon_s"] = (r[0], time.time() - t0)
print("search_after_abandon_s", hwm(p.pid) if p.poll() is None else "-", flush=True)
log = open(LOG).read()
res["logged_499"] = log.count(" 499 ")
print("logged_499", hwm(p.pid) if p.poll() is None else "-", flush=True)
# memory: table json stdout x4 over Big
base = hwm(p.pid)
res["table_stdout_x4"] = get("/Big/?format=table%2Bjson&columns=stdout,stdout,stdout,stdout")
print("table_stdout_x4", hwm(p.pid) if p.poll() is None else "-", flush=True)
res["table_growth_kib"] = hwm(p.pid) - base
base = hwm(p.pid)
ten = ",".join(f"r{i:06d}" for i in range(10))
out = []
ts = [threading.Thread(target=lambda: out.append(get(f"/Big/?compare={ten}", accept="text/html"))) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
res["compare_x4"] = out
print("compare_x4", hwm(p.pid) if p.poll() is None else "-", flush=True)
res["compare_growth_kib"] = hwm(p.pid) - base
# slow CSV readers
th0 = threads(p.pid)
socks = []
for i in range(300):
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(b"GET /records/Big/?format=csv&columns=stdout HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
time.sleep(1)
res["threads_before_after_300_slow_csv"] = (th0, threads(p.pid))
print("threads_before_after_300_slow_csv", hwm(p.pid) if p.poll() is None else "-", flush=True)
res["light_during_300_slow_csv"] = get("/Pub/r000002/?format=json")
print("light_during_300_slow_csv", hwm(p.pid) if p.poll() is None else "-", flush=True)
for s in socks: s.close()
time.sleep(0.5)
# SIGTERM with heavy running (clients connected)
ts = [threading.Thread(target=hang, args=(f"/Big/?format=json&q={heavy}", 30)) for _ in range(4)]
[t.start() for t in ts]; time.sleep(0.3)
res["peak_hwm_kib_whole_run"] = hwm(p.pid)
t = time.time(); p.send_signal(signal.SIGTERM); p.wait(); res["sigterm_exit_s"] = (time.time() - t, p.returncode)
for k, v in res.items(): print(k, v)
