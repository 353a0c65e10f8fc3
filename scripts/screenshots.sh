#!/usr/bin/env bash
# Screenshots of the HTML pages, from the demo data, in headless Chromium.
#
#   scripts/screenshots.sh [OUT_DIR]        (default: docs/screenshots)
#
# Builds the binary (debug; SKIP_BUILD=1 uses target/debug as it is), starts
# `serve --demo` on a free port, adds a few records so that tags, paging-free
# tables, the comparison, a query and a plot have something to show, and
# writes one PNG per page, plus two at phone width.
# Needs: cargo, curl, python3, chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/screenshots}
mkdir -p "$OUT"
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
[ -n "$CHROMIUM" ] || { echo "screenshots.sh: chromium not found (apt-get install chromium)" >&2; exit 1; }

[ "${SKIP_BUILD:-}" = 1 ] || cargo build --quiet
BIN=target/debug/sumatra-server
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
LOG=$(mktemp)
PROFILE=$(mktemp -d)
"$BIN" serve --demo --bind "127.0.0.1:$PORT" 2>"$LOG" &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$PROFILE" "$LOG" "${CONFIRM:-}" "${NEWTOKEN:-}"; }
trap cleanup EXIT
for _ in $(seq 50); do grep -q "listening on" "$LOG" && break; sleep 0.1; done
BASE="http://127.0.0.1:$PORT/records"
# testuser administers TestProject, so that the permissions page shows its form.
DEMO_DB=$(sed -n 's/^demo database at \(.*\) (removed on exit).*/\1/p' "$LOG")
"$BIN" --db "$DEMO_DB" grant testuser TestProject --level admin >/dev/null
AUTH="testuser:abc123"

# Two more runs of the haggling example, with tags, a diff and captured output,
# so that the pages show what a working project looks like.
put() {
  curl -sf -o /dev/null -u "$AUTH" -X PUT -H 'Content-Type: application/json' --data-binary @- "$BASE/TestProject/$1/"
}
for i in 1 2; do
  n=$((100 * i)); seed=$((4242 + i)); tag=$([ $i = 1 ] && echo baseline || echo larger-n)
  curl -sf -u "$AUTH" -H 'Accept: application/json' "$BASE/TestProject/haggling/" \
  | python3 -c '
import json, sys
i, n, seed, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
r = json.load(sys.stdin)
r.pop("project_id", None)
r["label"] = "20241105-09314%d" % i
r["timestamp"] = "2024-11-05 09:31:4%d" % i
r["reason"] = "haggling with n = %s <b>not bold</b>" % n
r["outcome"] = "mean %.2f shekels" % (3.1 + i / 7)
r["duration"] = 12.5 * i + 61 * (i - 1)
r["tags"] = [tag, "demo"]
r["parameters"]["content"] = "n = %s # number of values to draw\nseed = %s\ndistr = \"normal\"" % (n, seed)
r["version"] = "4659728d2c1a%d8f0c9d7e5b3a1f2e4d6c8b0a9f7e" % i
r["diff"] = "" if i == 1 else "--- a/main.py\n+++ b/main.py\n@@ -3 +3 @@\n-n = 50\n+n = int(sys.argv[1])\n"
r["stdout_stderr"] = "drawing %s values\nmean = %.2f\n" % (n, 3.1 + i / 7)
r["output_data"] = [{"path": "haggling-%d.dat" % i, "digest": ("%d" % i) * 40,
                     "creation": "2024-11-05 09:32:0%d" % i,
                     "metadata": {"mimetype": "text/plain", "size": 2500 * i, "encoding": None}}]
print(json.dumps(r))
' "$i" "$n" "$seed" "$tag" | put "20241105-09314$i"
done

# A parameter sweep of twelve more runs (n from 50 to 1200, two distributions,
# a float dt), whose durations grow with n, for the query and the plot.
for i in $(seq 12); do
  curl -sf -u "$AUTH" -H 'Accept: application/json' "$BASE/TestProject/haggling/" \
  | python3 -c '
import json, random, sys
i = int(sys.argv[1])
rnd = random.Random(i)
n = [50, 80, 100, 150, 200, 300, 400, 500, 650, 800, 1000, 1200][i - 1]
seed = 1000 + 7 * i
distr = "normal" if i % 2 else "uniform"
dt = [0.1, 0.05, 0.01][i % 3]
r = json.load(sys.stdin)
r.pop("project_id", None)
r["label"] = "20241106-1000%02d" % i
r["timestamp"] = "2024-11-06 10:00:%02d" % i
r["reason"] = "sweep: n = %d, %s draws" % (n, distr)
r["outcome"] = "mean %.2f shekels" % (3.0 + rnd.uniform(-0.3, 0.3))
r["duration"] = round(5 + 0.12 * n * rnd.uniform(0.8, 1.2), 1)
r["tags"] = ["sweep"] + (["demo"] if i % 3 == 0 else [])
r["parameters"]["content"] = "n = %d # number of values to draw\nseed = %d\ndistr = \"%s\"\ndt = %s" % (n, seed, distr, dt)
r["stdout_stderr"] = "drawing %d values\n" % n
print(json.dumps(r))
' "$i" | put "$(printf '20241106-1000%02d' "$i")"
done

# A chain for the lineage page: run 2 reads run 1's output, an analysis
# reads run 2's and the first sweep run's outputs, and a figure is made
# from the analysis (the digests are the files' SHA-1s, as Sumatra writes them).
chain() { # label timestamp reason inputs(json) outputs(json)
  curl -sf -u "$AUTH" -H 'Accept: application/json' "$BASE/TestProject/haggling/" \
  | python3 -c '
import json, sys
label, ts, reason, ins, outs = sys.argv[1:6]
r = json.load(sys.stdin)
r.pop("project_id", None)
r.update(label=label, timestamp=ts, reason=reason, tags=["chain"],
         input_data=json.loads(ins), output_data=json.loads(outs), duration=42.0)
print(json.dumps(r))
' "$@" | put "$1"
}
key() { echo "{\"path\": \"$1\", \"digest\": \"$2\", \"creation\": \"2024-11-07 08:00:00\", \"metadata\": {\"mimetype\": \"text/plain\", \"size\": 2500}}"; }
D1=$(printf 'a%.0s' $(seq 40)); D2=$(printf 'b%.0s' $(seq 40)); D3=$(printf 'c%.0s' $(seq 40)); D4=$(printf 'd%.0s' $(seq 40))
chain 20241107-080000 "2024-11-07 08:00:00" "simulate the market" "[]" "[$(key Data/market.csv "$D1")]"
chain 20241107-081500 "2024-11-07 08:15:00" "haggle over the simulated market" "[$(key /home/alice/Data/market.csv "$D1")]" "[$(key Data/prices.dat "$D2")]"
chain 20241107-083000 "2024-11-07 08:30:00" "rerun of the haggling (same prices)" "[$(key /home/alice/Data/market.csv "$D1")]" "[$(key Data/prices.dat "$D2")]"
chain 20241107-090000 "2024-11-07 09:00:00" "analyse the prices" "[$(key /home/alice/Data/prices.dat "$D2")]" "[$(key Data/summary.json "$D3")]"
chain 20241107-093000 "2024-11-07 09:30:00" "figure 2 of the paper" "[$(key /home/alice/Data/summary.json "$D3")]" "[$(key Data/figure2.png "$D4")]"

# A failed run (Sumatra's status tag), an outcome written on the page, and a
# deleted run in the trash: the status column, the history and the trash.
curl -sf -u "$AUTH" -H 'Accept: application/json' "$BASE/TestProject/20241106-100003/" \
| python3 -c '
import json, sys
r = json.load(sys.stdin)
r.pop("project_id", None)
r["tags"] = ["sweep", "_failed_"]
r["outcome"] = "diverged after 3 steps"
print(json.dumps(r))' | put 20241106-100003
curl -sf -o /dev/null -u "$AUTH" -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
  --data 'action=edit&outcome=mean+3.21+shekels%2C+checked+by+eye' "$BASE/TestProject/20241105-093141/"
curl -sf -o /dev/null -u "$AUTH" -X DELETE "$BASE/TestProject/20241106-100012/"
# A run of twelve parameters: the table shows five, the chooser the rest.
curl -sf -u "$AUTH" -H 'Accept: application/json' "$BASE/TestProject/20241106-100003/" \
| python3 -c '
import json, sys
r = json.load(sys.stdin)
r.pop("project_id", None)
r["label"] = "20241108-120000"; r["timestamp"] = "2024-11-08 12:00:00"; r["tags"] = ["sweep", "_finished_"]
r["reason"] = "a wider sweep"; r["outcome"] = ""
r["parameters"]["content"] = "\n".join(f"{k} = {v}" for k, v in [("n", 400), ("seed", 7), ("price_min", 1.5), ("price_max", 9.0),
  ("rounds", 20), ("agents", 64), ("patience", 0.3), ("greed", 0.7), ("tax", 0.05), ("memory", 5), ("noise", 0.01), ("market", "bazaar")])
print(json.dumps(r))' | put 20241108-120000
# A token made on the page (shown once, with its smt init line), and one
# from the shell, so that the list has two.
"$BIN" --db "$DEMO_DB" token create testuser --project TestProject --name cluster --level read >/dev/null 2>&1
NEWTOKEN=$(mktemp --suffix=.html)
curl -sf -u "$AUTH" -X POST -H "Origin: http://127.0.0.1:$PORT" -H 'Accept: text/html' \
  --data 'action=token-create&name=laptop&level=write&expires=90d' "$BASE/TestProject/" \
| sed "s|<head>|<head><base href=\"http://127.0.0.1:$PORT/\">|" >"$NEWTOKEN"
# The confirmation page a delete by tag asks for (a POST: saved, and shown
# with the server's stylesheet).
CONFIRM=$(mktemp --suffix=.html)
curl -sf -u "$AUTH" -X POST -H "Origin: http://127.0.0.1:$PORT" -H 'Accept: text/html' \
  --data 'action=delete-tag&tag=larger-n' "$BASE/TestProject/" \
| sed "s|<head>|<head><base href=\"http://127.0.0.1:$PORT/\">|" >"$CONFIRM"

shot() { # name width url
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$PROFILE" --window-size="$2" \
    --screenshot="$OUT/$1.png" "$3" >/dev/null 2>&1
  echo "$OUT/$1.png"
}
LOGGED="http://$AUTH@127.0.0.1:$PORT/records"
shot projects        1280,640  "$LOGGED/?login"
shot project         1280,900  "$LOGGED/TestProject/"
shot record          1280,1800 "$LOGGED/TestProject/20241107-090000/"
shot compare         1280,1500 "$LOGGED/TestProject/?compare=20241105-093141,20241105-093142&only=differences"
shot search          1280,640  "$LOGGED/TestProject/?search=haggling"
shot permissions     1280,640  "$LOGGED/TestProject/permissions/"
shot phone-project   390,844   "$LOGGED/TestProject/"
QUERY="TestProject/?q=params.n%20%3E%3D%20100%20and%20tag%20%3D%20sweep&sort=-params.n&plot=params.n,duration"
shot query           1280,1500 "$LOGGED/$QUERY"
shot phone-query     390,2000  "$LOGGED/$QUERY"
shot lineage         1280,1100 "$LOGGED/TestProject/20241107-090000/lineage/"
shot files          1280,700  "$LOGGED/TestProject/?view=files"
shot trash          1280,560  "$LOGGED/TestProject/?view=trash"
shot history        1280,900  "$LOGGED/TestProject/?view=history"
shot error          1280,420  "$LOGGED/TestProject/no-such-run/"
shot confirm        1280,600  "file://$CONFIRM"
shot token-new      1280,700  "file://$NEWTOKEN"
shot columns        1280,900  "$LOGGED/TestProject/?tags=sweep"
