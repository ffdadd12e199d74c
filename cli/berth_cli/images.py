"""Which Berth runtime image user images are built on.

In order: `--base-image`, `$BERTH_RUNTIME_IMAGE`, then the `berth-runtime` entry of the
`.berth/images.json` that `make images` writes (looked up from the project folder upwards,
then in the Berth checkout this command runs from).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

INDEX = Path(".berth") / "images.json"
RUNTIME = "berth-runtime"
ENV = "BERTH_RUNTIME_IMAGE"


class ImageNotFound(LookupError):
    """No runtime image is known; the message says how to get one."""


def index_files(start: Path) -> list[Path]:
    """Candidate `.berth/images.json` files, nearest first."""
    here = start.resolve()
    out = [p / INDEX for p in [here, *here.parents]]
    checkout = Path(__file__).resolve().parents[2]
    out.append(checkout / INDEX)
    return out


def from_index(text: str) -> str | None:
    """The runtime image's ref in an images.json text (None when it has none)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    entry = data.get(RUNTIME) if isinstance(data, dict) else None
    ref = entry.get("ref") if isinstance(entry, dict) else None
    return ref if isinstance(ref, str) and ref else None


def runtime_base_image(explicit: str | None, start: Path) -> str:
    if explicit:
        return explicit
    if os.environ.get(ENV):
        return os.environ[ENV]
    for index in index_files(start):
        if index.is_file():
            ref = from_index(index.read_text())
            if ref is not None:
                return ref
    raise ImageNotFound(
        f"no Berth runtime image: pass --base-image REF, set {ENV}, or build Berth's "
        "images with `make images` in the Berth checkout (writes .berth/images.json)"
    )


def runtime_image_hint(start: Path | None = None) -> str:
    try:
        return runtime_base_image(None, start or Path.cwd())
    except ImageNotFound:
        return "not built yet (make images, or --base-image)"
