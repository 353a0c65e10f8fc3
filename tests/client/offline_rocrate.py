"""roc-validator without the network (SPEC 9.3).

The validator fetches the RO-Crate 1.1 JSON-LD context from
https://w3id.org/ro/crate/1.1/context, which these machines cannot reach.
While it validates, every HTTP request it makes through `requests` is
answered here: the context from the copy inside the `rocrate` package
(`rocrate/data/ro-crate.jsonld`), anything else refused and remembered, so
that a test can say that nothing else needed the network.
"""

import contextlib
from pathlib import Path

import requests
import rocrate
from requests.adapters import HTTPAdapter

CONTEXT_FILE = Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"
CONTEXT_URLS = {"https://w3id.org/ro/crate/1.1/context", "http://w3id.org/ro/crate/1.1/context"}


@contextlib.contextmanager
def offline():
    """Yields (served, refused): the URLs answered and those refused."""
    served, refused = [], []
    original = HTTPAdapter.send

    def send(self, request, **kwargs):
        url = request.url.split("#")[0].rstrip("/")
        if url in CONTEXT_URLS:
            served.append(url)
            r = requests.Response()
            r.status_code = 200
            r.headers["Content-Type"] = "application/ld+json"
            r._content = CONTEXT_FILE.read_bytes()
            r.url = request.url
            r.request = request
            return r
        refused.append(url)
        raise requests.ConnectionError("no network in the tests: " + url)

    HTTPAdapter.send = send
    try:
        yield served, refused
    finally:
        HTTPAdapter.send = original


def validate(doc, crate_dir, severity="REQUIRED"):
    """Validates RO-Crate metadata (a dict) for the Process Run Crate
    profile, metadata only; returns the issues as (check, message) pairs,
    and the URLs served and refused."""
    from rocrate_validator import services

    with offline() as (served, refused):
        result = services.validate_metadata_as_dict(doc, {
            "profile_identifier": "process-run-crate",
            "requirement_severity": severity,
            "metadata_only": True,
            "no_cache": True,
            "rocrate_uri": str(crate_dir),
        })
    issues = [(str(getattr(i.check, "identifier", i.check)), i.message) for i in result.get_issues()]
    assert result.passed() == (not issues), (result.passed(), issues)
    return issues, served, refused
