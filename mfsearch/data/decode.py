"""Decode small image files once into one uint8 array, cached on disk between runs.

Why: a 32-px CIFAR JPEG costs ~40 µs to decode but ~200 µs to read from a cold disk, and a sweep
starts many trials on the same files. Decoding the used images once per process makes the training
loop independent of the file system; the on-disk cache (one ``.npy`` per root, split and exact file
list) lets the next trial load 150 MB in a fraction of a second instead of re-reading 50,000 files.

The cache lives under the per-user cache dir (``$XDG_CACHE_HOME/mfsearch`` or
``~/.cache/mfsearch``) and is written atomically (temp file, then rename), so concurrent trials
never see a partial file. Its key includes each file's size and mtime: replaced images miss it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import UnreadableImage
from ..files import write_atomically

log = logging.getLogger("mfsearch.data")

CACHE_VERSION = 1
# Below this many images decoding takes well under a second: not worth a cache file.
CACHE_MIN_IMAGES = 4096


def cache_dir() -> Path:
    """Per-user cache dir of mfsearch (respects ``XDG_CACHE_HOME``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base).resolve() / "mfsearch"


def cache_key(files: Sequence[str], size: int, tag: str) -> str:
    """Hash of the exact file list (with sizes and mtimes), the stored size and a tag (root+split)."""
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, tag, size]).encode())
    for path in files:
        st = os.stat(path)
        digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _torchvision_decoder():
    """torchvision's decoder, or None where it is gone (deprecated since torchvision 0.29)."""
    try:
        from torchvision.io import ImageReadMode, decode_image
    except ImportError:
        return None

    def decode(raw: bytes) -> np.ndarray:
        tensor = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        return decode_image(tensor, mode=ImageReadMode.RGB).permute(1, 2, 0).numpy()
    return decode


def _decode_one(path: str, size: int, decoder) -> tuple[np.ndarray, bool]:
    """(HWC uint8 RGB image of side ``size``, whether it had to be resized)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        # torchvision's libjpeg-turbo call is ~4x faster than PIL on 32-px JPEGs (40 vs 160 µs),
        # with the same pixels.
        if decoder is None:
            raise ValueError("no torchvision decoder")
        arr = decoder(raw)
    except (RuntimeError, ValueError):  # formats torchvision does not read (BMP, TIFF, ...)
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    if arr.shape[:2] != (size, size):
        resized = Image.fromarray(arr).resize((size, size), Image.BICUBIC)
        return np.asarray(resized), True
    return arr, False


def decode_files(files: Sequence[str], size: int, tag: str) -> np.ndarray:
    """Decode ``files`` into an N×size×size×3 uint8 array, through the on-disk cache.

    ``tag`` names the source (root and split) in the cache key and in log lines. Images of another
    size are resized (bicubic) to ``size`` and counted in a warning.
    """
    use_cache = len(files) >= CACHE_MIN_IMAGES
    path = None
    if use_cache:
        path = cache_dir() / "decoded" / f"{cache_key(files, size, tag)}.npy"
        cached = _load(path, (len(files), size, size, 3))
        if cached is not None:
            log.info("loaded %d decoded images of %s from %s", len(files), tag, path)
            return cached
    log.info("decoding %d images of %s into memory (once%s)", len(files), tag,
             f"; cached at {path}" if path else "")
    start = time.perf_counter()
    images = np.empty((len(files), size, size, 3), dtype=np.uint8)
    resized = 0
    decoder = _torchvision_decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision.io warns on every call
        for i, file in enumerate(_progress(files, tag)):
            try:
                images[i], was_resized = _decode_one(file, size, decoder)
            except Exception as err:  # noqa: BLE001 — checked before the run (verify.py): it changed since
                raise UnreadableImage(f"{file}: does not decode ({str(err).splitlines()[0][:80]}), met while "
                                      f"loading {tag}; fix or remove it and start again") from None
            resized += was_resized
    if resized:
        log.warning("%s: resized %d of %d images to %dx%d (the first image's size)",
                    tag, resized, len(files), size, size)
    log.info("decoded %d images of %s in %.1f s", len(files), tag, time.perf_counter() - start)
    if path is not None:
        _save(path, images)
    return images


def _progress(files: Sequence[str], tag: str):
    if len(files) < 20000:
        return files
    from tqdm import tqdm  # a bar for the long decodes only; disabled when stderr is not a terminal
    return tqdm(files, desc=f"decoding {tag}", unit="img", disable=None, mininterval=1.0, leave=False)


def _load(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        arr = np.load(path)
    except (OSError, ValueError, EOFError):
        return None
    if arr.shape != shape or arr.dtype != np.uint8:
        return None
    return arr


def _save(path: Path, images: np.ndarray) -> None:
    """Write atomically; a read-only or full cache dir only costs the next run a decode."""
    try:
        write_atomically(path, lambda fh: np.save(fh, images), binary=True)
    except OSError as err:
        log.warning("could not cache decoded images at %s: %s", path, err)
