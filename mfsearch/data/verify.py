"""Check that every image file a run will use decodes, before the run exists.

Rule (the data docs in the README say the same):

- Every image file of the splits a run uses (after the subsets are drawn) is decoded once with
  PIL (JPEGs at 1/8 scale through ``draft``: libjpeg still reads every coefficient, so a truncated
  file fails, at a fraction of the cost), then converted to RGB as training does.
- Up to ``MAX_UNREADABLE_FRACTION`` (1%) of those images unreadable: they are skipped, with one
  warning line giving the count and naming the first ``NAMED`` of them. A few broken files are
  normal in a large crawled folder, and dropping them changes the data by at most 1%.
- More than that: refused (``MfsearchError``, exit code 2). That many bad files means a broken
  copy or the wrong folder, and training on what is left would quietly change the data set.

Cost: ~70 µs an image for CIFAR's 32-px JPEGs (3.4 s for its 50,000 train images on one core),
about a millisecond for ImageNet-sized JPEGs. The result (which files are bad) is cached like the
decoded images (``decode.py``): one small JSON file per exact file list, keyed by each file's
size and mtime, so the next run or trial on the same files pays only a ``stat`` per file.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..errors import MfsearchError, UnreadableImage  # noqa: F401 (re-export)
from ..files import write_atomically
from .decode import cache_dir, cache_key

log = logging.getLogger("mfsearch.data")

MAX_UNREADABLE_FRACTION = 0.01
NAMED = 3  # unreadable files named in a warning or an error; the rest are counted
# Below this many files checking takes well under a second: not worth a cache file.
CACHE_MIN_FILES = 4096

_seen: dict[str, list[tuple[str, str]]] = {}  # cache key -> unreadable files, once per process


def image_problem(path: str) -> str | None:
    """Why ``path`` is not a usable image (one short phrase), or None when it decodes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF/palette chatter: training will show it if it matters
            with Image.open(path) as im:
                im.draft("RGB", (1, 1))  # JPEG only: decode at the smallest DCT scale
                im.convert("RGB")
        return None
    except Image.UnidentifiedImageError:
        return "not an image PIL can read"
    except Exception as err:  # noqa: BLE001 — PIL's plugins raise OSError, SyntaxError, struct.error, ...
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        return text.replace(path, "").strip(" :'")[:80] or type(err).__name__


def unreadable(files: Sequence[str], tag: str) -> list[tuple[str, str]]:
    """(path, problem) of each file in ``files`` that does not decode; cached (see the module doc)."""
    return _unreadable(files, tag, cache_key(files, 0, f"verify:{tag}"))


def _unreadable(files: Sequence[str], tag: str, key: str) -> list[tuple[str, str]]:
    if key in _seen:
        return _seen[key]
    path = cache_dir() / "verified" / f"{key}.json" if len(files) >= CACHE_MIN_FILES else None
    bad = _load(path) if path is not None else None
    if bad is None:
        log.info("checking that the %d images of %s decode (once%s)", len(files), tag,
                 f"; cached at {path}" if path else "")
        bad = [(f, problem) for f in _progress(files, tag) if (problem := image_problem(f)) is not None]
        if path is not None:
            _save(path, bad)
    _seen[key] = bad
    return bad


def check_files(files: Sequence[str], tag: str) -> set[str]:
    """The unreadable files among ``files``, to be skipped: warns about them once per process, or
    raises ``MfsearchError`` when more than ``MAX_UNREADABLE_FRACTION`` of them are unreadable."""
    key = cache_key(files, 0, f"verify:{tag}")
    fresh = key not in _seen  # build_splits runs twice per run (check_data, then the data module)
    bad = _unreadable(files, tag, key)
    if not bad:
        return set()
    named = ", ".join(f"{f} ({problem})" for f, problem in bad[:NAMED])
    more = f" and {len(bad) - NAMED} more" if len(bad) > NAMED else ""
    count = f"{len(bad)} of the {len(files)} images of {tag}"
    if len(bad) > MAX_UNREADABLE_FRACTION * len(files):
        raise MfsearchError(f"{count} do not decode, more than the {MAX_UNREADABLE_FRACTION:.0%} that may be "
                            f"skipped: {named}{more}; fix or remove them")
    if fresh:
        log.warning("warning: skipping %s that do not decode: %s%s", count, named, more)
    return {f for f, _ in bad}


def _progress(files: Sequence[str], tag: str):
    if len(files) < 20000:
        return files
    # A bar for the long checks only; disabled when stderr is not a terminal.
    from tqdm import tqdm
    return tqdm(files, desc=f"checking {tag}", unit="img", disable=None, mininterval=1.0, leave=False)


def _load(path: Path) -> list[tuple[str, str]] | None:
    try:
        return [(str(f), str(p)) for f, p in json.loads(path.read_text())["unreadable"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(path: Path, bad: list[tuple[str, str]]) -> None:
    """Write atomically; a read-only or full cache dir only costs the next run a check."""
    try:
        write_atomically(path, lambda fh: json.dump({"unreadable": bad}, fh))
    except OSError as err:
        log.warning("could not cache the image check at %s: %s", path, err)
