"""The Python API of the real client: sumatra.recordstore.http_store.HttpRecordStore
(Sumatra 0.8.1) against the real sumatra-server binary (SPEC sections 2 and 6)."""

import contextlib
import hashlib
import re
import sys

import httplib2
from datetime import datetime, timedelta, timezone

import pytest

from sumatra.datastore import DataKey, FileSystemDataStore
from sumatra.datastore.filesystem import FileSystemDataStore as _FSDataStore
from sumatra.dependency_finder import python as python_deps
from sumatra.launch import PlatformInformation, SerialLaunchMode
from sumatra.parameters import SimpleParameterSet
from sumatra.programs import PythonExecutable
from sumatra.records import Record
from sumatra.recordstore.base import RecordStoreAccessError
from sumatra.recordstore.http_store import HttpRecordStore
from sumatra.recordstore.shelve_store import ShelveRecordStore
from sumatra.versioncontrol._git import GitRepository

from conftest import TESTUSER, SumatraServer, _stop_server, get_json, http

UTC = timezone.utc


@pytest.fixture(autouse=True)
def no_datastore_mkdir(monkeypatch):
    """FileSystemDataStore creates its root directory whenever it is constructed,
    including when the client decodes a record fetched from the server. The
    fixture records name /Users/andrew/...: do not create that on this machine
    (the suite may run as root). Only this filesystem side effect is removed."""
    def _set_root(self, value):
        self._root = value
    monkeypatch.setattr(_FSDataStore, "root", property(lambda self: self._root, _set_root))


# --- helpers ------------------------------------------------------------------

def access_error_status(error):
    """The HTTP status a RecordStoreAccessError of Sumatra 0.8.1's HttpRecordStore
    reports. Its messages are "STATUS\nBODY" (save, get, delete, delete_by_tag,
    create_project, update_project_info, has_project) or "Error in accessing URL\n
    STATUS: BODY" / "Could not access URL\nSTATUS: BODY" (list_projects,
    project_info, list). The client raises it for any unexpected status, a 500
    included: a test that expects a refusal says which."""
    text = str(error)
    m = re.match(r"(\d{3})\n", text) or re.match(r"[^\n]*\n(\d{3}): ", text)
    assert m, "no HTTP status in the client's error: %r" % text
    return int(m.group(1))


@contextlib.contextmanager
def refused_with(status):
    """Expects the client to raise RecordStoreAccessError for an answer `status`."""
    with pytest.raises(RecordStoreAccessError) as err:
        yield err
    assert access_error_status(err.value) == status, str(err.value)


def store_as(server, user=None, password=None):
    if user is None:
        return HttpRecordStore(server.url)
    return HttpRecordStore(server.url, user, password)


@pytest.fixture
def alice(server):
    return store_as(server, "alice", "alicepw")


@pytest.fixture
def bob(server):
    return store_as(server, "bob", "bobpw")


@pytest.fixture
def testuser(server):
    return store_as(server, *TESTUSER)


@pytest.fixture
def anonymous(server):
    return store_as(server)


def sha1(text):
    return hashlib.sha1(text.encode()).hexdigest()


T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
DURATION = 1.25


def make_record(label, tags=("first",), timestamp=None, reason="testing the HTTP store",
                outcome="it worked", complete=True, root="/data/sim"):
    """A Record built from the real classes, as `smt run` would build it."""
    executable = PythonExecutable(sys.executable, version="3.11.7", options="-O")
    repository = GitRepository("/nonexistent/src/myproject",
                               upstream="https://example.org/alice/myproject.git")
    launch_mode = SerialLaunchMode(working_directory="/nonexistent/src/myproject", options=None)
    datastore = FileSystemDataStore(root)
    input_datastore = FileSystemDataStore("/")
    parameters = SimpleParameterSet('a = 1\nb = "x"\nc = 2.5')
    input_data = [DataKey("inputs/in.dat", sha1("input"),
                          creation=datetime(2024, 2, 28, 9, 30, 0, tzinfo=UTC),
                          mimetype="application/octet-stream", size=5, encoding=None)]
    record = Record(executable, repository, "main.py",
                    "4659728da5bc46bbac431dbc4c8eebaffbcde543", launch_mode, datastore,
                    parameters, input_data, "<parameters> --verbose", label=label,
                    reason=reason, diff="", user="Alice Tester <alice@example.org>",
                    input_datastore=input_datastore,
                    timestamp=timestamp or T0)
    record.tags = set(tags)
    if complete:
        record.duration = DURATION
        record.outcome = outcome
        record.stdout_stderr = "a = 1\nwrote out.dat\n"
        record.output_data = [
            DataKey("out.dat", sha1(label + "out"),
                    creation=(timestamp or T0) + timedelta(seconds=2),
                    mimetype="application/octet-stream", size=2500, encoding=None),
            DataKey("sub/summary.txt", sha1(label + "summary"),
                    creation=(timestamp or T0) + timedelta(seconds=3),
                    mimetype="text/plain", size=42, encoding="utf-8"),
        ]
        record.dependencies = [
            python_deps.Dependency("numpy", "/usr/lib/python3/dist-packages/numpy", "1.26.4", "", None),
            python_deps.Dependency("helper", "/nonexistent/src/myproject/helper.py",
                                   "4659728da5bc", "diff --git a/helper.py b/helper.py\n+x = 1\n",
                                   "https://example.org/alice/myproject.git"),
        ]
        record.platforms = [PlatformInformation(
            system_name="Linux", ip_addr="127.0.0.1", architecture_bits="64bit",
            machine="x86_64", architecture_linkage="ELF", version="#1 SMP PREEMPT_DYNAMIC",
            release="6.1.0-18-amd64", network_name="testhost", processor="x86_64")]
    else:
        # what `smt run` sends in its first PUT (SPEC 2.5)
        record.stdout_stderr = "Not launched."
    return record


def datakeys(keys):
    return [(k.path, k.digest, k.creation, dict(k.metadata)) for k in keys]


def deps(record):
    return sorted((d.name, d.path, d.version, d.diff, d.source, d.module) for d in record.dependencies)


def platforms(record):
    return [dict(vars(p)) for p in record.platforms]


def assert_same_record(got, want):
    """Field-by-field comparison of two Record objects."""
    assert got.label == want.label
    assert got.timestamp == want.timestamp.replace(microsecond=0)
    assert got.timestamp.utcoffset() is not None
    assert got.reason == want.reason
    assert got.outcome == want.outcome
    assert got.duration == want.duration
    assert type(got.executable) is type(want.executable)
    assert (got.executable.path, got.executable.name, got.executable.version, got.executable.options) == \
        (want.executable.path, want.executable.name, want.executable.version, want.executable.options)
    assert type(got.repository) is type(want.repository)
    assert got.repository.url == want.repository.url
    assert got.repository.upstream == want.repository.upstream
    assert got.main_file == want.main_file
    assert got.version == want.version
    assert got.diff == want.diff
    assert type(got.parameters) is type(want.parameters)
    assert str(got.parameters) == str(want.parameters)
    assert got.parameters == want.parameters
    assert got.script_arguments == want.script_arguments
    assert type(got.launch_mode) is type(want.launch_mode)
    assert got.launch_mode.__getstate__() == want.launch_mode.__getstate__()
    assert type(got.datastore) is type(want.datastore)
    assert got.datastore.__getstate__() == want.datastore.__getstate__()
    assert type(got.input_datastore) is type(want.input_datastore)
    assert got.input_datastore.__getstate__() == want.input_datastore.__getstate__()
    assert datakeys(got.input_data) == datakeys(want.input_data)
    assert datakeys(got.output_data) == datakeys(want.output_data)
    assert got.stdout_stderr == want.stdout_stderr
    assert got.tags == want.tags
    assert got.user == want.user
    assert deps(got) == deps(want)
    assert platforms(got) == platforms(want)
    assert got.repeats == want.repeats
    # and Sumatra's own notion of equality (used by sync)
    assert not got.difference(want), repr(got.difference(want))


# --- projects -------------------------------------------------------------------

def test_list_projects_with_credentials(server, testuser, alice):
    projects = testuser.list_projects()
    assert "TestProject" in projects and "TestProject2" in projects
    # alice: only the public project (she has none of her own yet) ...
    alice_projects = alice.list_projects()
    assert "TestProject2" in alice_projects
    assert "TestProject" not in alice_projects
    # ... then her own one too, once she has created it
    alice.create_project("AliceListed")
    alice_projects = alice.list_projects()
    assert "AliceListed" in alice_projects and "TestProject2" in alice_projects
    assert "TestProject" not in alice_projects
    assert "AliceListed" not in store_as(server, "bob", "bobpw").list_projects()


def test_public_project_without_credentials(server, anonymous):
    # the plain JSON project list (no challenge for non-Sumatra callers) shows public projects
    ids = [p["id"] for p in get_json(server.url)]
    assert "TestProject2" in ids
    assert "TestProject" not in ids
    # the client without credentials reads a public project
    assert anonymous.has_project("TestProject2")
    assert anonymous.labels("TestProject2") == ["20141013-172504"]
    rec = anonymous.get("TestProject2", "20141013-172504")
    assert rec.timestamp == datetime(2014, 10, 13, 17, 25, 4, tzinfo=UTC)
    assert anonymous.most_recent("TestProject2") == "20141013-172504"
    # a private project is invisible: has_project sees 401 and says False
    assert anonymous.has_project("TestProject") is False
    with refused_with(401):
        anonymous.get("TestProject", "haggling")


def test_list_projects_anonymous_client_is_challenged(anonymous):
    # SPEC 2.1: a caller without credentials whose Accept prefers the Sumatra vendor
    # type is challenged (401); the client has no credentials to answer with.
    with refused_with(401):
        anonymous.list_projects()


def test_has_project(testuser, alice):
    assert testuser.has_project("TestProject") is True
    assert testuser.has_project("TestProject2") is True
    assert testuser.has_project("NoSuchProject") is False
    assert alice.has_project("NoSuchProject") is False
    assert alice.has_project("TestProject2") is True


def test_create_project_with_name_and_description(alice, server):
    long_name = "Alice's long project name: simulations of the gourd market"
    description = "A longer description,\nover two lines, with non-ASCII: ünïcödé ✓"
    assert not alice.has_project("AliceCreated")
    alice.create_project("AliceCreated", long_name, description)
    assert alice.has_project("AliceCreated")
    assert alice.project_info("AliceCreated") == {"name": long_name, "description": description}
    data = get_json(server.project_url("AliceCreated"), "alice", "alicepw")
    assert data["id"] == "AliceCreated"
    assert data["records"] == []
    assert data["user"] == "alice"
    assert "alice" in data["access"]
    # creating it again is not a creation (client needs exactly 201)
    with refused_with(200):
        alice.create_project("AliceCreated", long_name, description)


def test_project_info_of_fixture_projects(testuser):
    assert testuser.project_info("TestProject") == {"name": "Test Project #1",
                                                    "description": "Private project"}
    assert testuser.project_info("TestProject2") == {"name": "Test Project #2",
                                                     "description": "Public project"}
    with refused_with(404):
        testuser.project_info("NoSuchProject")


def test_project_without_name_falls_back_to_id(alice):
    alice.create_project("AliceNoName")
    info = alice.project_info("AliceNoName")
    assert info["name"] == "AliceNoName"
    assert info["description"] == ""


def test_update_project_info(alice, bob):
    alice.create_project("AliceUpdated", "Old name", "Old description")
    alice.update_project_info("AliceUpdated", "New name", "New description, longer than before.")
    assert alice.project_info("AliceUpdated") == {"name": "New name",
                                                  "description": "New description, longer than before."}
    # bob has no access at all: he may not rename alice's project (SPEC 2.1)
    with refused_with(403):
        bob.update_project_info("AliceUpdated", "Bob's name", "hijacked")
    assert alice.project_info("AliceUpdated")["name"] == "New name"


def test_update_project_info_needs_admin(server, alice, bob):
    alice.create_project("AliceAdminOnly", "Alice's", "")
    server.grant("bob", "AliceAdminOnly", "write")
    with refused_with(403):
        bob.update_project_info("AliceAdminOnly", "Bob's name", "renamed by a writer")
    assert alice.project_info("AliceAdminOnly") == {"name": "Alice's", "description": ""}
    # the admin level allows it
    server.grant("bob", "AliceAdminOnly", "admin")
    bob.update_project_info("AliceAdminOnly", "Bob's name", "renamed by an admin")
    assert alice.project_info("AliceAdminOnly") == {"name": "Bob's name",
                                                    "description": "renamed by an admin"}


# --- records --------------------------------------------------------------------

def test_save_and_get_round_trip(alice, server):
    record = make_record("20240301-120000", tags=("first", "second"))
    assert not alice.has_project("AliceRoundTrip")
    alice.save("AliceRoundTrip", record)  # creates the project, then PUTs
    assert alice.has_project("AliceRoundTrip")
    got = alice.get("AliceRoundTrip", record.label)
    assert_same_record(got, record)
    # the JSON the server serves (SPEC 2.3, 2.4)
    data = get_json(server.record_url("AliceRoundTrip", record.label), "alice", "alicepw")
    assert data["timestamp"] == "2024-03-01 12:00:00"
    assert data["tags"] == ["first", "second"]
    assert data["project_id"] == "AliceRoundTrip"
    assert data["output_data"][0]["creation"] == "2024-03-01 12:00:02"
    assert data["launch_mode"] == {"type": "SerialLaunchMode",
                                   "parameters": {"working_directory": "/nonexistent/src/myproject",
                                                  "options": None}}
    assert data["datastore"] == {"type": "FileSystemDataStore", "parameters": {"root": "/data/sim"}}
    assert data["output_data"][1]["metadata"] == {"mimetype": "text/plain", "size": 42, "encoding": "utf-8"}
    assert sorted(data["platforms"][0]) == sorted(
        ["system_name", "ip_addr", "architecture_bits", "machine", "architecture_linkage",
         "version", "release", "network_name", "processor"])


def test_save_of_an_oversized_record_reports_413_not_a_broken_pipe(alice, server):
    """A long simulation's 20 MiB of output is over the server's 16 MiB limit:
    the client must read the server's 413 and its sentence. The server used to
    close the connection while the client was still sending (BrokenPipeError)."""
    record = make_record("too-big")
    alice.save("AliceBig", record)  # the project exists; then the big PUT
    record.stdout_stderr = "x" * (20 * 1024 * 1024)
    with refused_with(413) as err:
        alice.save("AliceBig", record)
    assert "too large" in str(err.value)
    # the record as saved before is unchanged, and the store still works
    got = alice.get("AliceBig", "too-big")
    assert got.stdout_stderr == "a = 1\nwrote out.dat\n"


def test_timestamp_with_offset_is_stored_in_utc(alice, server):
    tz = timezone(timedelta(hours=2))
    ts = datetime(2024, 3, 1, 14, 30, 15, tzinfo=tz)  # 12:30:15 UTC
    record = make_record("offset-record", timestamp=ts)
    alice.save("AliceTimezones", record)
    got = alice.get("AliceTimezones", "offset-record")
    assert got.timestamp == ts
    assert got.timestamp.utcoffset() == timedelta(0)
    data = get_json(server.record_url("AliceTimezones", "offset-record"), "alice", "alicepw")
    assert data["timestamp"] == "2024-03-01 12:30:15"


def test_duration_round_trips_exactly(alice):
    """Durations come back bit for bit: 0.13963103294372559 is a value a JSON
    parser without correctly rounded float parsing gets one ULP wrong."""
    values = [0.13963103294372559, 0.30000000000000004, 1e-07, 12345.678901234567,
              0.14345502853393555, 2.5, 0.0]
    for i, value in enumerate(values):
        record = make_record("duration-%d" % i)
        record.duration = value
        alice.save("AliceDurations", record)
    wrong = []
    for i, value in enumerate(values):
        got = alice.get("AliceDurations", "duration-%d" % i).duration
        if got != value:
            wrong.append((value, got))
    assert wrong == [], "sent duration -> served duration"


def test_get_missing_label_raises_key_error(alice, testuser):
    alice.save("AliceMissing", make_record("present"))
    with pytest.raises(KeyError):
        alice.get("AliceMissing", "absent")
    with pytest.raises(KeyError):
        testuser.get("TestProject", "no_such_record")


def test_resave_updates_reason_outcome_tags(alice):
    record = make_record("resaved", tags=("a", "b"), reason="first reason", outcome="")
    alice.save("AliceResave", record)
    record.reason = "second reason"
    record.outcome = "an outcome, added later"
    record.tags = {"b", "c d", "e,f"}
    alice.save("AliceResave", record)
    got = alice.get("AliceResave", "resaved")
    assert got.reason == "second reason"
    assert got.outcome == "an outcome, added later"
    assert got.tags == {"b", "c d", "e,f"}  # kept exactly as given (SPEC 2.3)
    assert_same_record(got, record)


def test_write_once_fields_fill_in_like_smt_run(alice):
    """SPEC 2.5: the first PUT comes before the run with empty fields; later PUTs fill them."""
    label = "filled-later"
    first = make_record(label, tags=("_pre_run_",), complete=False, outcome="")
    alice.save("AliceWriteOnce", first)
    got = alice.get("AliceWriteOnce", label)
    assert got.duration is None and got.output_data == [] and got.dependencies == []
    assert got.stdout_stderr == "Not launched."
    running = make_record(label, tags=("_running_",), complete=False, outcome="")
    running.stdout_stderr = "Not yet captured."
    alice.save("AliceWriteOnce", running)
    final = make_record(label, tags=("_finished_",))
    alice.save("AliceWriteOnce", final)
    got = alice.get("AliceWriteOnce", label)
    assert_same_record(got, final)
    # a written field keeps its value
    changed = make_record(label, tags=("_finished_", "x"))
    changed.duration = 99.0
    changed.stdout_stderr = "something else"
    alice.save("AliceWriteOnce", changed)
    got = alice.get("AliceWriteOnce", label)
    assert got.duration == DURATION
    assert got.stdout_stderr == final.stdout_stderr
    assert got.tags == {"_finished_", "x"}


def test_list_and_labels_with_tags(alice):
    p = "AliceTags"
    specs = [("r1", ("a",)), ("r2", ("b",)), ("r3", ("a", "b")), ("r4", ("c",)), ("r5", ("ab",))]
    for i, (label, tags) in enumerate(specs):
        alice.save(p, make_record(label, tags=tags, timestamp=T0 + timedelta(minutes=i)))
    # newest first
    assert alice.labels(p) == ["r5", "r4", "r3", "r2", "r1"]
    records = alice.list(p)
    assert [r.label for r in records] == ["r5", "r4", "r3", "r2", "r1"]
    assert all(isinstance(r, Record) for r in records)
    assert alice.list(p)[2].tags == {"a", "b"}
    # one tag: exact match
    assert sorted(alice.labels(p, "a")) == ["r1", "r3"]
    assert sorted(alice.labels(p, ["c"])) == ["r4"]
    # two tags: any of them
    assert sorted(alice.labels(p, ["a", "c"])) == ["r1", "r3", "r4"]
    assert sorted(alice.labels(p, ["b", "ab"])) == ["r2", "r3", "r5"]
    assert alice.labels(p, "nosuchtag") == []


def test_most_recent_is_by_timestamp(alice):
    p = "AliceRecent"
    alice.save(p, make_record("newest", timestamp=T0 + timedelta(days=1)))
    alice.save(p, make_record("oldest", timestamp=T0 - timedelta(days=1)))
    alice.save(p, make_record("middle", timestamp=T0))
    assert alice.most_recent(p) == "newest"


def test_delete(alice):
    p = "AliceDelete"
    alice.save(p, make_record("keep", timestamp=T0))
    alice.save(p, make_record("drop", timestamp=T0 + timedelta(hours=1)))
    alice.delete(p, "drop")
    with pytest.raises(KeyError):
        alice.get(p, "drop")
    assert alice.labels(p) == ["keep"]
    assert alice.most_recent(p) == "keep"
    # deleting it again: not 204
    with refused_with(404):
        alice.delete(p, "drop")


def test_delete_by_tag(alice):
    p = "AliceDeleteByTag"
    for i, (label, tags) in enumerate([("d1", ("old",)), ("d2", ("old", "x")),
                                       ("d3", ("new",)), ("d4", ("older",))]):
        alice.save(p, make_record(label, tags=tags, timestamp=T0 + timedelta(minutes=i)))
    assert alice.delete_by_tag(p, "old") == 2
    assert sorted(alice.labels(p)) == ["d3", "d4"]
    assert alice.delete_by_tag(p, "old") == 0
    assert alice.delete_by_tag(p, "new") == 1
    assert alice.labels(p) == ["d4"]


def test_sync_with_shelve_store_both_directions(alice, tmp_path):
    p = "AliceSync"
    shelf = ShelveRecordStore(str(tmp_path / "records.shelf"))
    on_server = make_record("on-server", tags=("s",), timestamp=T0)
    on_shelf = make_record("on-shelf", tags=("l",), timestamp=T0 + timedelta(minutes=1))
    in_both = make_record("in-both", tags=("b",), timestamp=T0 + timedelta(minutes=2))
    alice.save(p, on_server)
    alice.save(p, in_both)
    shelf.save(p, on_shelf)
    shelf.save(p, in_both)

    # HTTP store -> shelve and shelve -> HTTP store, driven from the HTTP side
    # (HttpRecordStore.sync returns nothing in 0.8.1)
    alice.sync(shelf, p)
    assert sorted(alice.labels(p)) == ["in-both", "on-server", "on-shelf"]
    assert sorted(shelf.labels(p)) == ["in-both", "on-server", "on-shelf"]
    assert_same_record(alice.get(p, "on-shelf"), on_shelf)
    assert_same_record(shelf.get(p, "on-server"), on_server)

    # driven from the shelve side, into a project the server does not have yet
    p2 = "AliceSync2"
    late_local = make_record("late-local", timestamp=T0 + timedelta(minutes=3))
    shelf.save(p2, late_local)
    alice.save(p2, make_record("late-remote", timestamp=T0 + timedelta(minutes=4)))
    assert shelf.sync(alice, p2) == []
    assert sorted(alice.labels(p2)) == ["late-local", "late-remote"]
    assert sorted(shelf.labels(p2)) == ["late-local", "late-remote"]
    assert_same_record(alice.get(p2, "late-local"), late_local)
    # the records both stores hold compare equal (sync lists those that differ)
    assert shelf.sync(alice, p) == []
    alice.sync(shelf, p)
    assert sorted(shelf.labels(p)) == sorted(alice.labels(p)) == ["in-both", "on-server", "on-shelf"]


def test_client_cache_never_serves_stale_records(server, tmp_path):
    """SPEC 2.2: no ETag / Expires / max-age, so the client's httplib2 disk cache
    always asks the server again and sees the changes another client made."""
    p = "AliceCache"
    reader = store_as(server, "alice", "alicepw")
    reader.client.cache = httplib2.FileCache(str(tmp_path / "reader-cache"))
    writer = store_as(server, "alice", "alicepw")
    writer.client.cache = httplib2.FileCache(str(tmp_path / "writer-cache"))
    record = make_record("cached", tags=("v1",), reason="version 1")
    writer.save(p, record)
    assert reader.get(p, "cached").reason == "version 1"
    assert reader.labels(p) == ["cached"]
    record.reason = "version 2"
    record.tags = {"v2"}
    writer.save(p, record)
    writer.save(p, make_record("second", timestamp=T0 + timedelta(hours=1)))
    got = reader.get(p, "cached")
    assert got.reason == "version 2" and got.tags == {"v2"}
    assert reader.labels(p) == ["second", "cached"]
    assert reader.most_recent(p) == "second"
    writer.delete(p, "second")
    assert reader.most_recent(p) == "cached"
    with pytest.raises(KeyError):
        reader.get(p, "second")
    for url in (server.url, server.project_url(p), server.record_url(p, "cached"),
                server.project_url(p) + "last/"):
        resp = http("GET", url, "alice", "alicepw")
        assert resp.status == 200, (url, resp)
        assert "ETag" not in resp.headers and "Expires" not in resp.headers, (url, dict(resp.headers))
        assert "max-age" not in (resp.headers.get("Cache-Control") or ""), (url, dict(resp.headers))


def test_server_mounted_at_root(tmp_path_factory):
    """SPEC 2: the prefix `/` works too."""
    srv = SumatraServer(tmp_path_factory.mktemp("root-prefix"))
    srv.setup_db()
    srv.start(prefix="/")
    try:
        assert srv.prefix == "/"
        alice = store_as(srv, "alice", "alicepw")
        testuser = store_as(srv, *TESTUSER)
        record = make_record("at-root", tags=("r",))
        alice.save("AliceAtRoot", record)
        assert_same_record(alice.get("AliceAtRoot", "at-root"), record)
        assert "AliceAtRoot" in alice.list_projects()
        assert alice.labels("AliceAtRoot", "r") == ["at-root"]
        assert alice.delete_by_tag("AliceAtRoot", "r") == 1
        assert testuser.get("TestProject", "haggling").tags == {"foobar"}
    finally:
        rc = srv.stop()
    assert rc == 0


# --- the fixture records ----------------------------------------------------------

HAGGLING_PARAMS = {"n": 50, "seed": 34326, "distr": "normal"}
FIXTURE_RECORDS = {
    # label: (timestamp, reason, outcome, duration, parameters)
    "20111013-172503": ("2011-10-13 17:25:03", "", "", 0.1399848461151123,
                        {"n": 100, "seed": 65785, "distr": "uniform"}),
    "haggling": ("2011-10-13 17:25:07", "determine whether the gourd is worth 3 or 4 shekels",
                 "'apparently, it is worth NaN shekels.'", 0.14345502853393555, HAGGLING_PARAMS),
    "20111013-172514": ("2011-10-13 17:25:14", "test effect of a smaller time constant", "",
                        0.13963103294372559,
                        {"n": 100, "seed": 65785, "tau_m": 10.0, "distr": "uniform"}),
    "haggling_repeat": ("2011-10-13 17:25:17", "Repeat experiment haggling",
                        "The new record exactly matches the original.", 0.14166712760925293,
                        HAGGLING_PARAMS),
}


def test_fixture_records_readable_by_testuser(testuser):
    assert testuser.labels("TestProject") == ["haggling_repeat", "20111013-172514",
                                              "haggling", "20111013-172503"]
    for label, (ts, reason, outcome, duration, params) in FIXTURE_RECORDS.items():
        rec = testuser.get("TestProject", label)
        assert rec.label == label
        assert rec.timestamp == datetime.strptime(ts, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert rec.reason == reason
        assert rec.outcome == outcome
        assert rec.duration == duration
        assert rec.parameters.as_dict() == params
        assert type(rec.parameters).__name__ == "SimpleParameterSet"
        assert rec.executable.name == "Python"
        assert rec.executable.version == "2.7.2"
        assert rec.executable.path == "/usr/local/bin/python"
        assert rec.repository.url == "/Users/andrew/tmp/SumatraExample"
        assert rec.main_file == "main.py"
        assert rec.version == "9164b57cd8dd"
        assert rec.script_arguments == "<parameters>"
        assert rec.user == "testuser"
        assert type(rec.launch_mode) is SerialLaunchMode
        assert rec.datastore.root == "/Users/andrew/tmp/SumatraExample/Data"
        assert rec.input_datastore.root == "/"
        assert rec.input_data == []
        assert len(rec.dependencies) == 6
        assert {d.name for d in rec.dependencies} == {"Carbon", "Finder", "StdSuites",
                                                      "_builtinSuites", "numpy", "scipy"}
        numpy = [d for d in rec.dependencies if d.name == "numpy"][0]
        assert numpy.version == "1.6.1"
        assert numpy.path == "/Library/Frameworks/Python.framework/Versions/2.7/lib/python2.7/site-packages/numpy"
        assert [p.system_name for p in rec.platforms] == ["Darwin"]
        assert rec.platforms[0].network_name == "NeuroinformatiqueUNIC.local"
        assert rec.platforms[0].ip_addr == "192.168.56.1"


def test_fixture_haggling_details(testuser):
    rec = testuser.get("TestProject", "haggling")
    assert rec.tags == {"foobar"}
    assert datakeys(rec.output_data) == [
        ("example2.dat", "43a47cb379df2a7008fdeb38c6172278d000fdc4", None,
         {"mimetype": None, "size": 2500, "encoding": None}),
        ("example2.dat", "9b8efe4161e4f78aa41a3ab7195db3d5709ba8b8", None,
         {"mimetype": None, "size": 1276, "encoding": None}),
    ]
    assert testuser.labels("TestProject", "foobar") == ["haggling"]
    assert testuser.labels("TestProject", "barfoo") == []
    assert testuser.most_recent("TestProject") == "haggling_repeat"
    for label in ("20111013-172503", "20111013-172514", "haggling_repeat"):
        rec = testuser.get("TestProject", label)
        assert rec.output_data == []
        assert rec.tags == set()


def test_fixture_public_record(testuser):
    rec = testuser.get("TestProject2", "20141013-172504")
    assert rec.duration == 0.149763
    assert rec.parameters.as_dict() == HAGGLING_PARAMS
    assert {d.name for d in rec.dependencies} == {"Carbon", "Finder", "numpy", "scipy"}


# --- access control -----------------------------------------------------------------

def test_user_without_access_gets_an_error(server, alice, bob):
    p = "AlicePrivate"
    alice.save(p, make_record("secret"))
    # bob is authenticated but has no permission: 403 -> RecordStoreAccessError
    with refused_with(403):
        bob.get(p, "secret")
    with refused_with(403):
        bob.has_project(p)
    with refused_with(403):
        bob.list(p)
    with refused_with(403):
        bob.save(p, make_record("intruder"))
    with refused_with(403):
        bob.delete(p, "secret")
    with refused_with(403):
        bob.delete_by_tag(p, "first")
    # testuser's fixture project is no business of alice's either
    with refused_with(403):
        alice.get("TestProject", "haggling")
    assert alice.labels(p) == ["secret"]
    assert "TestProject" in store_as(server, *TESTUSER).list_projects()


def test_read_permission_is_read_only(server, alice, bob):
    p = "AliceShared"
    alice.save(p, make_record("shared", tags=("t",)))
    server.grant("bob", p, "read")
    got = bob.get(p, "shared")
    assert got.label == "shared"
    assert bob.labels(p) == ["shared"]
    with refused_with(403):
        bob.save(p, make_record("by-bob"))
    with refused_with(403):
        bob.delete(p, "shared")
    with refused_with(403):
        bob.delete_by_tag(p, "t")
    server.grant("bob", p, "write")
    bob.save(p, make_record("by-bob", timestamp=T0 + timedelta(hours=1)))
    assert alice.labels(p) == ["by-bob", "shared"]


def test_anonymous_cannot_write_public_project(anonymous, testuser):
    assert anonymous.has_project("TestProject2")
    with refused_with(401):
        anonymous.save("TestProject2", make_record("anonymous-write"))
    with refused_with(401):
        anonymous.delete("TestProject2", "20141013-172504")
    with refused_with(401):
        anonymous.delete_by_tag("TestProject2", "anything")
    assert testuser.labels("TestProject2") == ["20141013-172504"]


def test_wrong_password_fails(fresh_server):
    wrong = store_as(fresh_server, "alice", "not-alices-password")
    with refused_with(401):
        wrong.list_projects()
    with refused_with(401):
        wrong.save("AliceWrongPw", make_record("nope"))
    wrong_testuser = store_as(fresh_server, "testuser", "abc124")
    with refused_with(401):
        wrong_testuser.get("TestProject", "haggling")
    assert wrong_testuser.has_project("TestProject") is False  # 401 -> False
    # nothing was created
    assert http("GET", fresh_server.project_url("AliceWrongPw"), "alice", "alicepw").status == 404
    # and the right password still works
    right = store_as(fresh_server, *TESTUSER)
    assert right.get("TestProject", "haggling").label == "haggling"


# --- export and loaddata (issue 4) ----------------------------------------------

def test_export_loaddata_round_trip_with_the_client(server, alice, tmp_path_factory):
    """Records saved by the client, exported, loaded into a fresh database,
    served again, read back by the client: equal, users and access included."""
    saved = [make_record("rt-%d" % i, tags=("rt", "n%d" % i),
                         timestamp=T0 + timedelta(minutes=i)) for i in range(3)]
    for record in saved:
        alice.save("AliceExport", record)
    alice.update_project_info("AliceExport", "Export test", "round trip")
    dump = tmp_path_factory.mktemp("export") / "everything.json"
    server.admin("export", "--with-users", "-o", str(dump))

    fresh = SumatraServer(tmp_path_factory.mktemp("fresh"))
    fresh.admin("init")
    fresh.admin("loaddata", str(dump))
    again = tmp_path_factory.mktemp("export2") / "again.json"
    fresh.admin("export", "--with-users", "-o", str(again))
    assert again.read_bytes() == dump.read_bytes()
    fresh.start()
    try:
        # alice logs in with her old password; she is still admin of the project
        store = HttpRecordStore(fresh.url, "alice", "alicepw")
        assert store.project_info("AliceExport") == {"name": "Export test", "description": "round trip"}
        assert sorted(store.labels("AliceExport")) == ["rt-0", "rt-1", "rt-2"]
        for record in saved:
            assert_same_record(store.get("AliceExport", record.label), record)
        assert store.most_recent("AliceExport") == "rt-2"
        store.update_project_info("AliceExport", "renamed", "by its admin")
    finally:
        _stop_server(fresh)
