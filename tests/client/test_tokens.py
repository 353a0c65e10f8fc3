"""Tokens (SPEC 11.1) with the real client, unchanged: `smt init --store
http://alice:smt_...@host/records/`, then `smt run`, `smt list`, `smt delete`
with a write token; a read token refused on writes; a token of another
project, a revoked one and one whose user lost access refused (expiry:
tests/tokens.rs).
"""

import json
import subprocess

import pytest

from test_smt_cli import MAIN_PY, MYLIB_PY, Workflow, parse_label

PROJECT = "TokenProject"


def token(server, *args):
    res = server.admin("token", "create", "alice", "--project", PROJECT, *args)
    t = res.stdout.strip()
    assert t.startswith("smt_") and len(t) == 40, res
    return t


@pytest.fixture(scope="module")
def wf(server, tmp_path_factory):
    server.grant("alice", PROJECT, "write")
    server.grant("alice", "OtherProject", "admin")
    root = tmp_path_factory.mktemp("tok")
    w = Workflow(server, root)
    w.dir.mkdir()
    w.home.mkdir()
    (w.dir / "mylib").mkdir()
    (w.dir / "mylib" / "__init__.py").write_text(MYLIB_PY)
    (w.dir / "main.py").write_text(MAIN_PY)
    (w.dir / "default.param").write_text("a = 1\nb = 2\n")
    w.git("init", "-q")
    w.git("config", "user.name", "Alice Tester")
    w.git("config", "user.email", "alice@example.org")
    w.git("add", "-A")
    w.git("commit", "-q", "-m", "initial version")
    return w


def smt_may_fail(wf, *args):
    return subprocess.run([wf.smt_bin, *args], cwd=str(wf.dir), env=wf.env(),
                          capture_output=True, text=True, timeout=120)


def store(wf, tok):
    """Puts another token into the working copy's store settings, as a user
    rotating a token does (`smt configure --store` would first copy every
    record from the old store to the new one)."""
    path = wf.dir / ".smt" / "project"
    settings = json.loads(path.read_text())
    assert settings["record_store"]["username"] == "alice"
    settings["record_store"]["password"] = tok
    path.write_text(json.dumps(settings, indent=2))


def history_actors(server):
    entries = json.loads(server.admin("history", PROJECT, "--format", "json").stdout)
    return [(e["action"], e["target"], e["actor"]) for e in entries]


def test_a_write_token_runs_lists_and_deletes(wf):
    write = token(wf.server, "--name", "laptop")
    wf.smt("init", "--store", wf.server.url_with_credentials("alice", write),
           "-e", "python", "-m", "main.py", "-d", "Data", PROJECT)
    # Sumatra keeps the URL with the token in .smt/project: the token, not the password.
    kept = (wf.dir / ".smt" / "project").read_text()
    assert write in kept and "alicepw" not in kept
    label = parse_label(wf.smt("run", "default.param").stdout)
    second = parse_label(wf.smt("run", "default.param").stdout)
    assert sorted(wf.smt("list").stdout.split()) == sorted([label, second])
    wf.smt("delete", second)
    assert wf.smt("list").stdout.split() == [label]
    actors = history_actors(wf.server)
    assert ("record.create", label, 'alice (token 1 "laptop")') in [
        (a, t, who.split(" from ")[0]) for a, t, who in actors], actors
    assert any(a == "record.delete" and t == second and "token 1" in who for a, t, who in actors)
    wf.labels["L1"] = label


def test_a_read_token_lists_and_is_refused_on_writes(wf):
    (label,) = wf.need("L1")
    store(wf, token(wf.server, "--level", "read"))
    assert wf.smt("list").stdout.split() == [label]
    res = smt_may_fail(wf, "run", "default.param")
    assert "403" in res.stdout + res.stderr, res
    assert wf.smt("list").stdout.split() == [label], "nothing was written"


def test_tokens_of_another_project_revoked_or_without_access_are_refused(wf):
    (label,) = wf.need("L1")
    other = wf.server.admin("token", "create", "alice", "--project", "OtherProject").stdout.strip()
    store(wf, other)
    res = smt_may_fail(wf, "list")
    assert res.returncode != 0, res
    assert "403" in res.stdout + res.stderr and "needs read access to project" in res.stdout + res.stderr, res

    revoked = token(wf.server, "--name", "revoked", "--expires", "1h")
    store(wf, revoked)
    assert wf.smt("list").stdout.split() == [label]
    wf.server.admin("token", "revoke", "--value", revoked)
    res = smt_may_fail(wf, "list")
    assert res.returncode != 0 and "401" in res.stdout + res.stderr, res

    lost = token(wf.server, "--name", "lost")
    store(wf, lost)
    assert wf.smt("list").stdout.split() == [label]
    wf.server.admin("revoke", "alice", PROJECT)
    try:
        res = smt_may_fail(wf, "list")
        assert res.returncode != 0 and "401" in res.stdout + res.stderr, res
    finally:
        wf.server.grant("alice", PROJECT, "write")
    # SPEC 11.1: a revoked permission ends the token; access given back
    # does not bring it back, and a new token works.
    res = smt_may_fail(wf, "list")
    assert res.returncode != 0 and "401" in res.stdout + res.stderr, res
    store(wf, token(wf.server, "--name", "new"))
    assert wf.smt("list").stdout.split() == [label]
