"""Scrapes corral's /metrics as Prometheus would and parses the page with
prometheus_client's own parser, so a page it would reject fails the test.
Usage: prometheus_scrape.py PORT. Prints one JSON object:
{"types": {family: type}, "samples": [[name, {label: value}, value], ...]}."""

import json
import sys

import requests
from prometheus_client.parser import text_string_to_metric_families

r = requests.get(
    f"http://127.0.0.1:{sys.argv[1]}/metrics",
    headers={"Accept": "text/plain;version=0.0.4"},
    timeout=20,
)
r.raise_for_status()
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
types = {}
samples = []
for family in text_string_to_metric_families(r.text):
    types[family.name] = family.type
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"types": types, "samples": samples}))
