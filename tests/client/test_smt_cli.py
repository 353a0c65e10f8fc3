"""The `smt` command line of the real client (Sumatra 0.8.1) in a throw-away git
project, recording into the real sumatra-server. After each command the state is
checked through the server's JSON API (SPEC sections 2 and 6).

The tests of this module are steps of one workflow and run in file order.
"""

import json
import os
import re
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import VENV_BIN, get_json, http

PROJECT = "CliProject"
ALICE = ("alice", "alicepw")
PLACEHOLDERS = ("Not launched.", "Not yet captured.")
PLATFORM_KEYS = sorted(["system_name", "ip_addr", "architecture_bits", "machine",
                        "architecture_linkage", "version", "release", "network_name",
                        "processor"])
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")

MAIN_PY = textwrap.dedent('''\
    import os
    import sys
    import time

    import mylib

    params = mylib.parse(sys.argv[1])
    print("parameters:", ", ".join("%s=%s" % kv for kv in sorted(params.items())))
    os.makedirs("Data", exist_ok=True)
    name = os.path.join("Data", "result-%d.txt" % time.time_ns())
    with open(name, "w") as f:
        f.write("a + b = %d\\n" % (int(params["a"]) + int(params["b"])))
    print("wrote", name)
''')

MYLIB_PY = textwrap.dedent('''\
    """A local package, so that the run has a dependency to record."""


    def parse(path):
        params = {}
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0]
                if "=" in line:
                    key, value = line.split("=", 1)
                    params[key.strip()] = value.strip()
        return params
''')


class Workflow:
    def __init__(self, server, root):
        self.server = server
        self.root = root
        self.dir = root / "project"
        self.home = root / "home"
        self.smt_bin = str(VENV_BIN / "smt")
        self.labels = {}  # "L1", "L2" -> label
        self.records = {}  # label -> record JSON seen after the run
        self.first_run_started = None

    def env(self):
        env = dict(os.environ)
        env.update({
            "HOME": str(self.home),  # no ~/.smtrc, no global git config
            "PATH": "%s%s%s" % (VENV_BIN, os.pathsep, env.get("PATH", "")),
            "GIT_CONFIG_NOSYSTEM": "1",
            "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        })
        for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(var, None)
        return env

    def run(self, *cmd):
        res = subprocess.run(list(cmd), cwd=str(self.dir), env=self.env(), capture_output=True,
                             text=True, timeout=120)
        if res.returncode != 0:
            print("$ %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (" ".join(cmd), res.stdout, res.stderr))
        # check=True, with the output printed above on failure
        subprocess.CompletedProcess.check_returncode(res)
        return res

    def smt(self, *args):
        return self.run(self.smt_bin, *args)

    def git(self, *args):
        return self.run("git", *args)

    def need(self, *names):
        missing = [n for n in names if n not in self.labels]
        if missing:
            pytest.fail("an earlier step of the workflow failed (no %s)" % ", ".join(missing),
                        pytrace=False)
        return [self.labels[n] for n in names]

    # --- server side ------------------------------------------------------
    def project(self):
        return get_json(self.server.project_url(PROJECT), *ALICE)

    def record(self, label):
        return get_json(self.server.record_url(PROJECT, label), *ALICE)

    def record_status(self, label):
        return http("GET", self.server.record_url(PROJECT, label), *ALICE).status

    def project_labels(self):
        prefix = self.server.project_url(PROJECT)
        urls = self.project()["records"]
        for url in urls:
            assert url.startswith(prefix) and url.endswith("/"), url
        return [url[len(prefix):-1] for url in urls]


@pytest.fixture(scope="module")
def wf(server, tmp_path_factory):
    root = tmp_path_factory.mktemp("smt")
    w = Workflow(server, root)
    w.dir.mkdir()
    w.home.mkdir()
    assert Path(w.smt_bin).exists(), "no smt script next to %s" % VENV_BIN
    (w.dir / "mylib").mkdir()
    (w.dir / "mylib" / "__init__.py").write_text(MYLIB_PY)
    (w.dir / "main.py").write_text(MAIN_PY)
    (w.dir / "default.param").write_text("a = 1\nb = 2\n")
    (w.dir / ".gitignore").write_text(".smt/\n.cache/\nData/\n*.param\n!default.param\n")
    w.git("init", "-q")
    w.git("config", "user.name", "Alice Tester")
    w.git("config", "user.email", "alice@example.org")
    w.git("add", "-A")
    w.git("commit", "-q", "-m", "initial version")
    w.head = w.git("rev-parse", "HEAD").stdout.strip()
    return w


def parse_label(stdout):
    m = re.search(r"Record label for this run: '([^']+)'", stdout)
    assert m, "no record label in smt run output:\n" + stdout
    return m.group(1)


def check_complete_record(wf, data, label, reason):
    """What the stored record must hold after `smt run` (SPEC 2.3, 2.5)."""
    assert data["label"] == label
    assert data["project_id"] == PROJECT
    assert data["reason"] == reason
    assert TIMESTAMP_RE.match(data["timestamp"]), data["timestamp"]
    assert data["duration"] is not None and data["duration"] > 0
    assert data["stdout_stderr"] not in PLACEHOLDERS
    assert "parameters: a=1, b=2" in data["stdout_stderr"]
    assert "wrote Data/result-" in data["stdout_stderr"]
    assert data["output_data"], "no output data"
    for key in data["output_data"]:
        assert re.match(r"^result-\d+\.txt$", key["path"]), key
        assert re.match(r"^[0-9a-f]{40}$", key["digest"]), key
        assert key["metadata"]["size"] == len("a + b = 3\n")
        assert key["metadata"]["mimetype"] == "text/plain"
        assert key["creation"] is None or TIMESTAMP_RE.match(key["creation"])
    assert data["dependencies"], "no dependencies"
    mylib = [d for d in data["dependencies"] if d["name"] == "mylib"]
    assert mylib, data["dependencies"]
    assert mylib[0]["path"] == str(wf.dir / "mylib")
    assert mylib[0]["version"] == wf.head
    assert mylib[0]["module"] == "python"
    assert data["platforms"], "no platforms"
    for platform in data["platforms"]:
        assert sorted(platform) == PLATFORM_KEYS
    assert data["user"] == "Alice Tester <alice@example.org>"
    assert "_finished_" in data["tags"] and "sometag" in data["tags"]
    assert data["tags"] == sorted(set(data["tags"]))
    assert data["parameters"] == {"content": "a = 1\nb = 2", "type": "SimpleParameterSet"}
    assert data["script_arguments"] == "<parameters>"
    assert data["main_file"] == "main.py"
    assert data["version"] == wf.head
    assert data["diff"] == ""
    assert data["repository"]["type"] == "GitRepository"
    assert data["repository"]["url"] == str(wf.dir)
    assert data["executable"]["name"] == "Python"
    assert data["launch_mode"]["type"] == "SerialLaunchMode"
    assert data["launch_mode"]["parameters"]["working_directory"] == str(wf.dir)
    assert data["datastore"] == {"type": "FileSystemDataStore",
                                 "parameters": {"root": str(wf.dir / "Data")}}
    assert data["input_datastore"] == {"type": "FileSystemDataStore", "parameters": {"root": "/"}}
    assert data["input_data"] == []
    assert data["repeats"] is None


def test_smt_init(wf):
    url = wf.server.url_with_credentials(*ALICE)
    res = wf.smt("init", "--store", url, "-e", "python", "-m", "main.py", "-d", "Data", PROJECT)
    assert "Sumatra project successfully set up" in res.stdout
    project = json.loads((wf.dir / ".smt" / "project").read_text())
    assert project["name"] == PROJECT
    assert project["record_store"]["type"].endswith("HttpRecordStore")
    assert project["record_store"]["server_url"] == wf.server.url
    wf.labels["init"] = True


def test_smt_run_first(wf):
    wf.need("init")
    wf.first_run_started = time.time()
    res = wf.smt("run", "-r", "first reason", "-t", "sometag", "default.param")
    label = parse_label(res.stdout)
    wf.labels["L1"] = label  # the later steps can run even if a check below fails
    data = wf.records[label] = wf.record(label)
    project = wf.project()
    assert project["id"] == PROJECT
    assert project["user"] == "alice"
    assert "alice" in project["access"]
    assert wf.project_labels() == [label]
    assert project["records"] == [wf.server.record_url(PROJECT, label)]
    check_complete_record(wf, data, label, "first reason")
    assert data["tags"] == ["_finished_", "sometag"]
    assert data["outcome"] == ""
    # alice's project is private
    assert http("GET", wf.server.project_url(PROJECT)).status == 401
    assert http("GET", wf.server.record_url(PROJECT, label), "bob", "bobpw").status == 403


def test_smt_run_second(wf):
    (l1,) = wf.need("L1")
    # labels are timestamps with one-second resolution
    wait = wf.first_run_started + 1.2 - time.time()
    if wait > 0:
        time.sleep(wait)
    res = wf.smt("run", "-r", "second reason", "-t", "sometag", "default.param")
    label = parse_label(res.stdout)
    assert label != l1
    wf.labels["L2"] = label
    data = wf.records[label] = wf.record(label)
    assert wf.project_labels() == [label, l1]  # newest first
    check_complete_record(wf, data, label, "second reason")
    assert data["output_data"] != wf.records[l1]["output_data"]
    # the first record is untouched
    assert wf.record(l1) == wf.records[l1]


def test_smt_list(wf):
    l1, l2 = wf.need("L1", "L2")
    res = wf.smt("list")
    assert res.stdout.split() == [l2, l1]
    res = wf.smt("list", "-l")
    for text in (l1, l2, "first reason", "second reason", "Alice Tester <alice@example.org>",
                 "sometag", wf.head):
        assert text in res.stdout, text
    res = wf.smt("list", "sometag")
    assert res.stdout.split() == [l2, l1]
    res = wf.smt("list", "nosuchtag")
    assert res.stdout.split() == []


def test_smt_comment(wf):
    l1, l2 = wf.need("L1", "L2")
    wf.smt("comment", "the sum is right: 3")
    expected = dict(wf.records[l2], outcome="the sum is right: 3")
    data = wf.records[l2] = wf.record(l2)  # the most recent record
    assert data["outcome"] == "the sum is right: 3"
    assert data == expected  # nothing else changed
    assert wf.record(l1)["outcome"] == ""
    # a second comment is appended on a new line
    wf.smt("comment", l1, "first comment")
    wf.smt("comment", l1, "second comment")
    expected = dict(wf.records[l1], outcome="first comment\nsecond comment")
    data = wf.records[l1] = wf.record(l1)
    assert data == expected


def test_smt_tag(wf):
    l1, l2 = wf.need("L1", "L2")
    wf.smt("tag", "T", l1)
    expected = dict(wf.records[l1], tags=["T", "_finished_", "sometag"])
    data = wf.records[l1] = wf.record(l1)
    assert data["tags"] == ["T", "_finished_", "sometag"]
    assert data == expected
    assert wf.record(l2)["tags"] == ["_finished_", "sometag"]
    assert wf.smt("list", "T").stdout.split() == [l1]


def test_smt_view(wf):
    l1, l2 = wf.need("L1", "L2")
    out = wf.smt("view", l1).stdout
    for text in (l1, "first reason", "first comment", "Alice Tester <alice@example.org>", wf.head,
                 "main.py", "result-"):
        assert text in out, text
    assert l2 not in out


def test_smt_diff(wf):
    l1, l2 = wf.need("L1", "L2")
    out = wf.smt("diff", l1, l2).stdout
    assert l1 in out and l2 in out
    assert re.search(r"Code differs\s*:\s*no", out), out
    assert re.search(r"Parameters differ\s*:\s*no", out), out


def test_smt_export(wf):
    l1, l2 = wf.need("L1", "L2")
    wf.smt("export")
    exported = json.loads((wf.dir / ".smt" / "records_export.json").read_text())
    assert [r["label"] for r in exported] == [l2, l1]
    for rec in exported:
        served = wf.record(rec["label"])
        # the client writes timestamps with an offset; the server serves UTC without one
        assert rec["timestamp"] in (served["timestamp"] + "+0000", served["timestamp"])
        for key in ("reason", "outcome", "tags", "duration", "parameters", "version",
                    "main_file", "stdout_stderr", "user", "repository", "executable",
                    "launch_mode", "datastore", "input_datastore", "platforms", "repeats"):
            assert rec[key] == served[key], key
        assert [(k["path"], k["digest"], k["metadata"]) for k in rec["output_data"]] == \
            [(k["path"], k["digest"], k["metadata"]) for k in served["output_data"]]
        assert sorted(d["name"] for d in rec["dependencies"]) == \
            sorted(d["name"] for d in served["dependencies"])


def test_smt_delete_of_twenty_by_tag_is_restored_byte_for_byte(wf):
    """SPEC 10.2: the client's delete moves records to the trash; to the
    client they are gone, and `restore --tag` brings them all back as they
    were, byte for byte."""
    (l1,) = wf.need("L1")
    template = wf.record(l1)
    bodies = {}
    for i in range(20):
        label = "%s-copy%02d" % (l1, i)
        rec = dict(template, label=label, tags=["batch"])
        rec.pop("project_id", None)
        res = http("PUT", wf.server.record_url(PROJECT, label), *ALICE, body=rec,
                   content_type="application/vnd.sumatra.record-v4+json")
        assert res.status == 201, res
        bodies[label] = http("GET", wf.server.record_url(PROJECT, label), *ALICE).body
    res = wf.smt("delete", "--tag", "batch")
    assert "20 records deleted." in res.stdout, res.stdout
    assert all(wf.record_status(l) == 404 for l in bodies)
    trash = json.loads(wf.server.admin("trash", PROJECT, "--format", "json").stdout)
    assert sorted(t["label"] for t in trash) == sorted(bodies)
    assert {t["deleted_by"] for t in trash} == {"alice"}
    wf.server.admin("restore", PROJECT, "--tag", "batch")
    for label, body in bodies.items():
        assert http("GET", wf.server.record_url(PROJECT, label), *ALICE).body == body, label
    # Gone again (the rest of the workflow expects the project as it was).
    assert "20 records deleted." in wf.smt("delete", "--tag", "batch").stdout


def test_smt_delete_by_tag(wf):
    l1, l2 = wf.need("L1", "L2")
    res = wf.smt("delete", "--tag", "T")
    assert "1 records deleted." in res.stdout
    assert wf.record_status(l1) == 404
    assert wf.project_labels() == [l2]
    assert wf.smt("list").stdout.split() == [l2]


def test_smt_delete_label(wf):
    (l2,) = wf.need("L2")
    wf.smt("delete", l2)
    assert wf.record_status(l2) == 404
    assert wf.project_labels() == []
    assert wf.smt("list").stdout.split() == []
    # the project itself stays
    assert wf.project()["id"] == PROJECT
