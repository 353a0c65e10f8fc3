"""Fixtures for the real-client test suite.

Every test here talks to the REAL `sumatra-server` binary (path in the env var
SUMATRA_SERVER_BIN), started on a free port with a throw-away database,
through the REAL Sumatra 0.8.1 client (Python API and `smt` command line).
The database is an SQLite file, or, when SUMATRA_TEST_PG_URL is set (the Rust
test that runs this suite sets it for its PostgreSQL run), a new database made
with SUMATRA_TEST_CREATEDB on that server.

Each database gets:
  * the built-in fixtures `haggling` and `permissions` (testuser/abc123,
    TestProject private to testuser with 4 records, TestProject2 public with 1
    record, also granted to testuser);
  * users alice/alicepw and bob/bobpw, with no project of their own.
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent  # the venv the suite runs in: holds `smt`

USERS = {"alice": "alicepw", "bob": "bobpw"}
TESTUSER = ("testuser", "abc123")

LISTEN_RE = re.compile(r"^sumatra-server: listening on (http://\S+)\s*$")

# servers currently running, so that a failing test report can show their log
_ACTIVE_SERVERS = []


def server_binary():
    path = os.environ.get("SUMATRA_SERVER_BIN")
    if not path:
        pytest.fail(
            "SUMATRA_SERVER_BIN is not set: point it at the sumatra-server binary, "
            "e.g. SUMATRA_SERVER_BIN=target/debug/sumatra-server",
            pytrace=False,
        )
    path = os.path.abspath(path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("SUMATRA_SERVER_BIN=%s is not an executable file" % path, pytrace=False)
    return path


_DB_COUNT = [0]


def _new_database(workdir):
    """An SQLite file in `workdir`, or a new PostgreSQL database's URL."""
    base = os.environ.get("SUMATRA_TEST_PG_URL")
    if not base:
        return str(Path(workdir) / "sumatra.db")
    _DB_COUNT[0] += 1
    name = "client_%d_%d" % (os.getpid(), _DB_COUNT[0])
    parsed = urllib.parse.urlsplit(base)
    subprocess.run([os.environ["SUMATRA_TEST_CREATEDB"], "-h", parsed.hostname,
                    "-p", str(parsed.port), "-U", parsed.username, name],
                   check=True, capture_output=True, timeout=60)
    return base.rstrip("/") + "/" + name


class SumatraServer:
    """One database plus (once started) one `sumatra-server serve` process."""

    def __init__(self, workdir):
        self.binary = server_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db = _new_database(self.workdir)
        self.proc = None
        self.url = None  # e.g. http://127.0.0.1:PORT/records/
        self.log = []  # stderr lines of `serve`
        self._reader = None
        self._first_line = threading.Event()

    # --- admin commands -------------------------------------------------
    def admin(self, *args, input=None, check=True):
        cmd = [self.binary, "--db", self.db, *args]
        res = subprocess.run(cmd, input=input, capture_output=True, text=True,
                             timeout=120, cwd=str(self.workdir),
                             stdin=None if input is not None else subprocess.DEVNULL)
        if check and res.returncode != 0:
            pytest.fail("command failed (exit %d): %s\nstdout:\n%s\nstderr:\n%s"
                        % (res.returncode, " ".join(cmd), res.stdout, res.stderr),
                        pytrace=False)
        return res

    def setup_db(self):
        self.admin("init")
        for user, password in USERS.items():
            self.admin("useradd", user, "--password-stdin", input=password + "\n")
        self.admin("loaddata", "haggling", "permissions")

    def grant(self, user, project, level):
        self.admin("grant", user, project, "--level", level)

    # --- serve ------------------------------------------------------------
    def start(self, prefix="/records/"):
        cmd = [self.binary, "--db", self.db, "serve", "--bind", "127.0.0.1:0",
               "--prefix", prefix]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=str(self.workdir))
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._first_line.wait(0.1):
                break
            if self.proc.poll() is not None:
                self._reader.join(2)
                pytest.fail("sumatra-server serve exited with %s before listening:\n%s"
                            % (self.proc.returncode, "\n".join(self.log)), pytrace=False)
        if not self.log or not LISTEN_RE.match(self.log[0]):
            self.proc.kill()
            self.proc.wait()
            pytest.fail("first stderr line of `serve` is not "
                        "'sumatra-server: listening on http://...'; got:\n%s"
                        % "\n".join(self.log[:5]), pytrace=False)
        self.url = LISTEN_RE.match(self.log[0]).group(1)
        assert self.url.endswith(prefix), self.url
        _ACTIVE_SERVERS.append(self)
        return self

    def _read_stderr(self):
        for raw in self.proc.stderr:
            self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._first_line.set()
        self._first_line.set()

    def stop(self):
        """SIGTERM; return the exit code (the caller asserts it is 0)."""
        if self in _ACTIVE_SERVERS:
            _ACTIVE_SERVERS.remove(self)
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "did not stop within 15 s of SIGTERM (killed)"
        self._reader.join(5)
        return rc

    # --- URLs -------------------------------------------------------------
    @property
    def hostport(self):
        return urllib.parse.urlsplit(self.url).netloc

    @property
    def prefix(self):
        return urllib.parse.urlsplit(self.url).path

    def url_with_credentials(self, user, password):
        return "http://%s:%s@%s%s" % (user, password, self.hostport, self.prefix)

    def project_url(self, project):
        return "%s%s/" % (self.url, project)

    def record_url(self, project, label):
        return "%s%s/%s/" % (self.url, project, label)


def _start_server(workdir):
    server = SumatraServer(workdir)
    server.setup_db()
    server.start()
    return server


def _stop_server(server):
    rc = server.stop()
    assert rc == 0, "sumatra-server serve: exit status after SIGTERM was %r, expected 0\n%s" % (
        rc, "\n".join(server.log[-20:]))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server shared by the tests of one module (use distinct project names)."""
    srv = _start_server(tmp_path_factory.mktemp("server"))
    yield srv
    _stop_server(srv)


@pytest.fixture
def fresh_server(tmp_path_factory):
    """A server of its own for one test (e.g. failed-login tests, which may be throttled)."""
    srv = _start_server(tmp_path_factory.mktemp("fresh-server"))
    yield srv
    _stop_server(srv)


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path, monkeypatch):
    """The client writes an httplib2 cache `.cache/` into its working directory:
    give every test a directory of its own. Also keep proxies out of the way."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return cwd


# --- plain HTTP access to the JSON API, independent of the client ------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as err:
            raise AssertionError("response (status %d, Content-Type %r) is not JSON: %s\n%r"
                                 % (self.status, self.headers.get("Content-Type"), err, self.body[:500]))

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers.get("Content-Type"), self.body[:300])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http(method, url, user=None, password=None, accept="application/json", body=None,
         content_type=None):
    """One HTTP request, credentials sent pre-emptively; never raises on 4xx/5xx."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        content_type = content_type or "application/json"
    elif isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(url, data=body, method=method)
    if accept:
        req.add_header("Accept", accept)
    if content_type:
        req.add_header("Content-Type", content_type)
    if user is not None:
        token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return Response(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, err.headers, err.read())


def get_json(url, user=None, password=None, expect=200):
    resp = http("GET", url, user, password)
    assert resp.status == expect, "GET %s as %s: expected %d, got %r" % (url, user, expect, resp)
    return resp.json()


# --- show the server log of failing tests ------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ACTIVE_SERVERS:
        for srv in _ACTIVE_SERVERS:
            report.sections.append(("sumatra-server log (last 40 lines) %s" % srv.url,
                                    "\n".join(srv.log[-40:])))
