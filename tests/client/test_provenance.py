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
