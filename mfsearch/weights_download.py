"""Published weights downloaded as files and checked against a recorded SHA-256 before they load.

The sources are mutable: a Hugging Face repo (``timm/<preset>.sail_in1k``, its ``main`` branch) and
GitHub release URLs. A file whose hash differs from the recorded one is refused, naming the
preset and both hashes. Hashes are recorded in two places, checked in this order:

1. ``PUBLISHED_SHA256`` below: hashes shipped with mfsearch (add one with the hash printed on first
   download, after checking the weights reproduce the paper's accuracy).
2. The user's lock file ``~/.cache/mfsearch/weights.sha256.json`` (``MFSEARCH_WEIGHTS_LOCK``): a
   preset with no shipped hash is recorded there on its first download (trust on first use, with
   a warning line printing the hash), and every later download, e.g. after the cache was
   cleared or on another of the user's machines sharing the file, must match it.

``create_model(..., pretrained=True, pretrained_sha256="...")`` pins a hash explicitly instead.
Files are loaded with ``weights_only``/safetensors, never unpickled as code.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .errors import PretrainedUnavailable
from .files import sha256_file, write_atomically

# preset -> SHA-256 of the file downloaded (model.safetensors on the HF hub, or the release .pth).
# Empty in this release: the machines mfsearch is developed on have no internet access, so no hash
# could be measured; see the module docstring for how one gets recorded.
PUBLISHED_SHA256: dict[str, str] = {}
LOCK_ENV = "MFSEARCH_WEIGHTS_LOCK"


def lock_path() -> Path:
    return Path(os.environ.get(LOCK_ENV) or Path("~/.cache/mfsearch/weights.sha256.json")).expanduser()


def _read_lock() -> dict[str, str]:
    path = lock_path()
    try:
        return dict(json.loads(path.read_text())) if path.is_file() else {}
    except ValueError:
        raise PretrainedUnavailable(f"{path} is not a weights lock file (JSON preset -> sha256); fix or remove it") \
            from None


def _record(preset: str, digest: str) -> None:
    lock = _read_lock()
    lock[preset] = digest
    write_atomically(lock_path(), lambda handle: json.dump(lock, handle, indent=1, sort_keys=True))


def verify_weights(preset: str, path: Path, source: str, expected: str | None = None) -> str:
    """Check ``path`` (downloaded from ``source``) against the recorded hash; returns its SHA-256.

    ``expected`` (a pinned hash) wins; else the shipped table; else the user's lock file; else the
    hash is recorded there now."""
    digest = sha256_file(path)
    recorded, where = None, None
    if expected:
        recorded, where = expected.lower(), "pretrained_sha256"
    elif preset in PUBLISHED_SHA256:
        recorded, where = PUBLISHED_SHA256[preset], "mfsearch's recorded hash"
    elif preset in (lock := _read_lock()):
        recorded, where = lock[preset], f"the hash recorded in {lock_path()} on its first download"
    if recorded is None:
        _record(preset, digest)
        print(f"mfsearch: weights of {preset} from {source} have SHA-256 {digest}; recorded in {lock_path()} "
              f"(later downloads must match)", file=sys.stderr, flush=True)
    elif digest != recorded:
        raise PretrainedUnavailable(f"the published weights of {preset} downloaded from {source} have SHA-256 "
                                    f"{digest}, not {recorded} ({where}): refusing to load them")
    return digest


def download_published(preset: str, in_timm: bool, url: str, expected: str | None = None) -> Path:
    """The verified local file of ``preset``'s published weights (downloaded once, then cached)."""
    if in_timm:
        from huggingface_hub import hf_hub_download
        repo = f"timm/{preset}.sail_in1k"
        path, source = Path(hf_hub_download(repo, "model.safetensors")), f"huggingface.co/{repo}"
    else:
        import torch.hub
        folder = Path(torch.hub.get_dir()) / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        path, source = folder / url.rsplit("/", 1)[-1], url
        if not path.is_file():
            torch.hub.download_url_to_file(url, str(path), progress=True)
    verify_weights(preset, path, source, expected)
    return path
