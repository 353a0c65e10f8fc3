"""Provenance with the real client (SPEC 9): a simulation run writes a file,
an analysis run reads it; the server links the two records through the
file's SHA-1 digest, and shows the link in the lineage API, the record page,
the file lookup and the shell's `whence`.

The tests of this module are steps of one workflow and run in file order.
"""

import hashlib
import json
import re
import subprocess
import textwrap
import urllib.parse
from pathlib import Path

import pytest

from conftest import get_json, http
from test_smt_cli import ALICE, Workflow, parse_label

PROJECT = "ChainProject"

SIMULATE_PY = textwrap.dedent('''\
    import os
    import time
    os.makedirs("Data", exist_ok=True)
    name = os.path.join("Data", "result-%d.txt" % time.time_ns())
    with open(name, "w") as f:
        f.write("simulated %d\\n" % time.time_ns())
    print("wrote", name)
''')

ANALYSE_PY = textwrap.dedent('''\
    import sys
    with open(sys.argv[1]) as f:
        print("analysed", len(f.read()), "bytes of", sys.argv[1])
''')


@pytest.fixture(scope="module")
def chain(server, tmp_path_factory):
    w = Workflow(server, tmp_path_factory.mktemp("chain"))
    w.dir.mkdir()
    w.home.mkdir()
    (w.dir / "simulate.py").write_text(SIMULATE_PY)
    (w.dir / "analyse.py").write_text(ANALYSE_PY)
    (w.dir / ".gitignore").write_text(".smt/\n.cache/\nData/\n")
    w.git("init", "-q")
    w.git("config", "user.name", "Alice Tester")
    w.git("config", "user.email", "alice@example.org")
    w.git("add", "-A")
    w.git("commit", "-q", "-m", "simulation and analysis")
    url = w.server.url_with_credentials(*ALICE)
    # The input store is the working copy: a file given on the command line
    # is an input of the run, with its digest.
    w.smt("init", "--store", url, "-e", "python", "-d", "Data", "-i", ".", PROJECT)
    return w


def lineage(chain, label, **params):
    q = "&".join("%s=%s" % kv for kv in params.items())
    url = chain.server.record_url(PROJECT, label) + "lineage/?format=json" + ("&" + q if q else "")
    return get_json(url, *ALICE)


def test_a_simulation_then_an_analysis_of_its_output(chain):
    res = chain.smt("run", "-r", "simulation", "-m", "simulate.py")
    sim = parse_label(res.stdout)
    chain.labels["sim"] = sim
    produced = get_json(chain.server.record_url(PROJECT, sim), *ALICE)["output_data"]
    assert len(produced) == 1, produced
    out = produced[0]
    path = chain.dir / "Data" / out["path"]
    digest = hashlib.sha1(path.read_bytes()).hexdigest()
    assert out["digest"] == digest
    chain.labels["file"] = (str(path.relative_to(chain.dir)), digest)
    # Labels are timestamps of one-second resolution.
    import time
    time.sleep(1.2)
    res = chain.smt("run", "-r", "analysis", "-m", "analyse.py", str(path.relative_to(chain.dir)))
    ana = parse_label(res.stdout)
    assert ana != sim
    chain.labels["ana"] = ana
    inputs = get_json(chain.server.record_url(PROJECT, ana), *ALICE)["input_data"]
    assert [k["digest"] for k in inputs] == [digest], inputs


def test_the_lineage_links_the_analysis_to_the_simulation(chain):
    sim, ana = chain.need("sim", "ana")
    path, digest = chain.need("file")[0]
    up = lineage(chain, ana, direction="up")
    assert [(r["label"], r["depth"]) for r in up["records"]] == [(ana, 0), (sim, -1)]
    (link,) = up["links"]
    assert link["from"]["label"] == sim and link["to"]["label"] == ana
    assert link["digest"] == digest
    assert link["out_of_order"] is False
    assert link["from_path"] == Path(path).name
    assert up["cut"] is False
    down = lineage(chain, sim, direction="down")
    assert [r["label"] for r in down["records"]] == [sim, ana]


def test_the_record_page_says_made_from_and_used_by(chain):
    sim, ana = chain.need("sim", "ana")
    page = http("GET", chain.server.record_url(PROJECT, ana), *ALICE, accept="text/html")
    assert page.status == 200
    made_from = page.text.split("<h3>Made from", 1)[1].split("<h3>Used by", 1)[0]
    assert ">%s</a>" % sim in made_from, made_from
    page = http("GET", chain.server.record_url(PROJECT, sim), *ALICE, accept="text/html")
    used_by = page.text.split("<h3>Used by", 1)[1].split("</section>", 1)[0]
    assert ">%s</a>" % ana in used_by, used_by
    graph = http("GET", chain.server.record_url(PROJECT, ana) + "lineage/", *ALICE, accept="text/html")
    assert graph.status == 200
    assert "<svg" in graph.text and ">%s</text>" % sim in graph.text


def test_which_run_made_this_file(chain):
    sim, ana = chain.need("sim", "ana")
    path, digest = chain.need("file")[0]
    doc = get_json(chain.server.url + "?digest=" + digest, *ALICE)
    assert [r["label"] for r in doc["produced_by"]] == [sim]
    assert [r["label"] for r in doc["used_by"]] == [ana]
    # Anonymous callers see nothing of a private project.
    doc = get_json(chain.server.url + "?digest=" + digest)
    assert doc["produced_by"] == [] and doc["used_by"] == []
    # The shell hashes the file as Sumatra does.
    res = chain.server.admin("whence", "--format", "json", str(chain.dir / path))
    (entry,) = json.loads(res.stdout)
    assert entry["digest"] == digest
    assert sorted((r["role"], r["label"]) for r in entry["records"]) == [("input", ana), ("output", sim)]


def test_the_lineage_as_prov_json_passes_the_w3c_schema_and_reads_back(chain, tmp_path):
    import jsonschema
    import prov
    import prov.model

    sim, ana = chain.need("sim", "ana")
    path, digest = chain.need("file")[0]
    url = chain.server.record_url(PROJECT, ana) + "lineage/?format=prov"
    res = http("GET", url, *ALICE)
    assert res.status == 200
    assert res.headers.get("Content-Type") == "application/json; charset=utf-8"
    doc = res.json()
    schema_path = Path(prov.__file__).parent / "tests" / "schemas" / "prov-json.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.Draft4Validator(schema).validate(doc)
    # Each run an activity, the producer informing the consumer.
    acts = {a["prov:label"]: a for a in doc["activity"].values()}
    assert sorted(acts) == sorted([sim, ana])
    for a in acts.values():
        assert a["prov:startTime"] < a["prov:endTime"], a
    (inform,) = doc["wasInformedBy"].values()
    assert inform["sumatra:sha1"] == digest
    by_label = {a["prov:label"]: name for name, a in doc["activity"].items()}
    assert inform["prov:informed"] == by_label[ana]
    assert inform["prov:informant"] == by_label[sim]
    files = [e for e in doc["entity"].values() if e.get("sumatra:sha1") == digest]
    assert len(files) == 2, files  # written by one run, read by the other
    assert all(a["prov:plan"] for a in doc["wasAssociatedWith"].values())
    # The prov package reads it back.
    f = tmp_path / "lineage.json"
    f.write_text(json.dumps(doc))
    bundle = prov.read(str(f), format="json")
    assert len(list(bundle.get_records(prov.model.ProvActivity))) == 2
    assert len(list(bundle.get_records(prov.model.ProvCommunication))) == 1


def check_crate(doc, tmp_path):
    """The crate passes roc-validator (Process Run Crate, REQUIRED),
    offline; returns its entities by id."""
    from offline_rocrate import validate

    issues, served, refused = validate(doc, tmp_path)
    assert issues == [], issues
    assert served, "the validator read the RO-Crate context (from the local copy)"
    assert refused == [], refused
    return {e["@id"]: e for e in doc["@graph"]}


def as_list(v):
    return v if isinstance(v, list) else [v]


def test_the_lineage_as_ro_crate_passes_the_validator(chain, tmp_path):
    sim, ana = chain.need("sim", "ana")
    path, digest = chain.need("file")[0]
    url = chain.server.record_url(PROJECT, ana) + "lineage/?format=ro-crate"
    res = http("GET", url, *ALICE)
    assert res.status == 200
    assert res.headers.get("Content-Type") == "application/ld+json; charset=utf-8"
    assert 'filename="ro-crate-metadata.json"' in res.headers.get("Content-Disposition", "")
    doc = res.json()
    entities = check_crate(doc, tmp_path)
    root = entities["./"]
    assert "https://w3id.org/ro/wfrun/process/0.5" in [c["@id"] for c in as_list(root["conformsTo"])]
    actions = {e["@id"]: e for e in entities.values() if e["@type"] == "CreateAction"}
    sim_url = chain.server.record_url(PROJECT, sim)
    ana_url = chain.server.record_url(PROJECT, ana)
    assert sorted(actions) == sorted([sim_url, ana_url])
    assert sorted(m["@id"] for m in as_list(root["mentions"])) == sorted(actions)
    # The file the simulation made is the one the analysis read: one entity.
    made = [r["@id"] for r in as_list(actions[sim_url]["result"])]
    read = [o["@id"] for o in as_list(actions[ana_url]["object"])]
    shared = set(made) & set(read)
    assert len(shared) == 1, (made, read)
    f = entities[shared.pop()]
    assert f["@type"] == "File" and f["sha1"] == digest
    # Named by the path under which the export first meets it: the
    # analysis (the lineage's start, first) read it as `path`.
    assert f["name"] == path
    assert int(f["contentSize"]) == (chain.dir / path).stat().st_size
    for a in actions.values():
        assert entities[a["instrument"]["@id"]]["@type"] == "SoftwareSourceCode"
        assert entities[a["agent"]["@id"]]["@type"] == "Person"
        assert a["startTime"] < a["endTime"]


def test_a_record_exports_alone_in_both_formats(chain, tmp_path):
    import jsonschema
    import prov

    sim, ana = chain.need("sim", "ana")
    url = chain.server.record_url(PROJECT, ana)
    doc = http("GET", url + "?format=ro-crate", *ALICE).json()
    entities = check_crate(doc, tmp_path)
    (action,) = [e for e in entities.values() if e["@type"] == "CreateAction"]
    assert action["@id"] == url and action["description"] == "analysis"
    doc = http("GET", url + "?format=prov", *ALICE).json()
    schema_path = Path(prov.__file__).parent / "tests" / "schemas" / "prov-json.schema.json"
    jsonschema.Draft4Validator(json.loads(schema_path.read_text())).validate(doc)
    assert [a["prov:label"] for a in doc["activity"].values()] == [ana]
    assert "wasInformedBy" not in doc, "a record alone: its producer is not in the export"


def test_the_runs_behind_a_paper_are_one_url(chain, tmp_path):
    import jsonschema
    import prov

    sim, ana = chain.need("sim", "ana")
    path, digest = chain.need("file")[0]
    chain.smt("tag", "paper-2026", sim, ana)
    query = urllib.parse.quote("tag = paper-2026")
    base = chain.server.url + PROJECT + "/?q=" + query
    doc = http("GET", base + "&format=ro-crate", *ALICE).json()
    entities = check_crate(doc, tmp_path)
    actions = [e for e in entities.values() if e["@type"] == "CreateAction"]
    assert sorted(a["name"] for a in actions) == sorted(PROJECT + " " + l for l in (sim, ana))
    assert "paper-2026" in entities["./"]["name"]
    doc = http("GET", base + "&format=prov", *ALICE).json()
    schema_path = Path(prov.__file__).parent / "tests" / "schemas" / "prov-json.schema.json"
    jsonschema.Draft4Validator(json.loads(schema_path.read_text())).validate(doc)
    (inform,) = doc["wasInformedBy"].values()
    assert inform["sumatra:sha1"] == digest
    f = tmp_path / "paper.json"
    f.write_text(json.dumps(doc))
    assert len(list(prov.read(str(f), format="json").get_records(prov.model.ProvActivity))) == 2
    # The shell writes the lineage in both formats too.
    res = chain.server.admin("lineage", PROJECT, ana, "--format", "ro-crate", "--url", chain.server.url)
    entities = check_crate(json.loads(res.stdout), tmp_path)
    assert chain.server.record_url(PROJECT, sim) in entities
    res = chain.server.admin("lineage", PROJECT, ana, "--format", "prov")
    jsonschema.Draft4Validator(json.loads(schema_path.read_text())).validate(json.loads(res.stdout))
