"""Every fixture, uploaded as the app would, gets the status its manifest entry expects."""

from __future__ import annotations

import httpx

from probes import wire
from probes.manifest import load_manifest


def test_simulator_answers_each_fixture_with_its_expected_status(sim, fixtures_dir):
    url = sim("fast", time_scale=0.1)
    manifest = load_manifest(fixtures_dir)
    seen = {}
    with httpx.Client(base_url=url, trust_env=False) as client:
        for name, entry in manifest["files"].items():
            files, data = wire.upload_form(entry, (fixtures_dir / name).read_bytes())
            response = client.post(wire.UPLOAD_PATH, files=files, data=data)
            seen[name] = response.status_code
            assert response.status_code == entry["expect"], (name, response.text)
    assert 400 in seen.values() and 200 in seen.values()
    assert {"neg-empty.m4a", "neg-tiny.m4a", "neg-long-601s.m4a", "neg-short-0.5s.m4a"} <= {
        n for n, s in seen.items() if s == 400}
