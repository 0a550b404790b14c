"""fixtures/manifest.json as the probe reads it: which fixtures exist, and their bytes, verified.

Apart from probes.fixtures (which writes the manifest) so that `probes run`
does not import numpy, pydub and eSpeak to read a JSON file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from probes.errors import UsageError

SCHEMA = 1
MANIFEST_NAME = "manifest.json"


def load_manifest(fixtures_dir: Path) -> dict[str, Any]:
    """Read fixtures/manifest.json, with a one-line reason when it is missing or wrong."""
    path = Path(fixtures_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path} not found: run `make fixtures`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read manifest ({exc})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: manifest is not valid JSON ({exc.msg}, line {exc.lineno}); run `make fixtures`") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise UsageError(f"{path}: manifest has no 'files' table; run `make fixtures`")
    if manifest.get("schema") != SCHEMA:
        raise UsageError(f"{path}: manifest schema {manifest.get('schema')!r}, expected {SCHEMA}; run `make fixtures`")
    return manifest


def fixture_entry(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    """The manifest entry of fixture `name`; a UsageError names the known ones."""
    files = manifest.get("files", {})
    if name not in files:
        known = ", ".join(sorted(files)) or "none"
        raise UsageError(f"unknown fixture {name!r}; known: {known}")
    return files[name]


def read_fixture(fixtures_dir: Path, name: str) -> tuple[dict[str, Any], bytes]:
    """The manifest entry and the file's bytes, refusing a file that no longer matches its sha256."""
    entry = fixture_entry(load_manifest(fixtures_dir), name)
    path = Path(fixtures_dir) / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"fixture {path}: {exc.strerror or exc}; run `make fixtures`") from None
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise UsageError(f"fixture {path} does not match manifest.json (sha256); run `make fixtures`")
    return entry, data
