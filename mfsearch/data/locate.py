"""Where a dataset lives, which layout it has, and getting it there (CIFAR download).

Roots: ``DataConfig.root`` when given, else ``$MFSEARCH_DATA_DIR/<dataset>``, else the per-user
cache ``$XDG_CACHE_HOME/mfsearch/data/<dataset>`` (``~/.cache/...``). Roots are made absolute at
once, because Ray Tune runs trials in their own working directories: resolve in the driver
(``resolve_data``) and hand the result to the trials.

Layouts:
- ``folders``: ``train/`` plus a held-out split, one sub-folder per class (ImageNet style). CIFAR
  needs ``train/`` and ``test/``; ``imagefolder`` takes ``test/``, else ``val/`` (ImageNet's val
  set is its de facto test set; our validation split is always carved from ``train/``).
- ``torchvision``: CIFAR's python pickles as torchvision downloads them (``cifar-10-batches-py/``).
- ``synthetic``: generated in memory, no root.

Nothing here hangs offline: local data is looked for first, and a download runs with a socket
timeout, its failure turned into one ``MfsearchError`` line saying where we looked and how to
provide the data.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator, Literal

from ..errors import MfsearchError
from .config import DataConfig
from .decode import cache_dir

DATA_DIR_ENV = "MFSEARCH_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 30.0  # per socket operation: a stalled connection fails instead of hanging


@dataclasses.dataclass(frozen=True)
class CifarInfo:
    num_classes: int
    torchvision_dir: str  # what torchvision's download creates inside the root
    torchvision_class: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CIFAR = {
    "cifar10": CifarInfo(10, "cifar-10-batches-py", "CIFAR10",
                         (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": CifarInfo(100, "cifar-100-python", "CIFAR100",
                          (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


@dataclasses.dataclass(frozen=True)
class Layout:
    kind: Literal["folders", "torchvision", "synthetic"]
    root: Path | None = None
    train_dir: Path | None = None  # folders only
    test_dir: Path | None = None   # folders only: test/ or val/


def data_home() -> Path:
    """The folder that holds one sub-folder per dataset by default."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return cache_dir() / "data"


def default_root(dataset: str) -> Path:
    return data_home() / dataset


def resolve_root(data: DataConfig) -> Path | None:
    """Absolute root of ``data`` (None for synthetic data)."""
    if data.dataset == "synthetic":
        return None
    if data.root:
        return Path(data.root).expanduser().resolve()
    return default_root(data.dataset)


def resolve_img_size(data: DataConfig) -> int:
    """``data.img_size``, else 32 for CIFAR and synthetic data, 224 for image folders."""
    if data.img_size is not None:
        return data.img_size
    return 224 if data.dataset == "imagefolder" else 32


def resolve_data(data: DataConfig) -> DataConfig:
    """``data`` with an absolute ``root`` and the ``img_size`` filled in: safe to ship to other
    processes or working directories."""
    root = resolve_root(data)
    return dataclasses.replace(data, root=str(root) if root else None, img_size=resolve_img_size(data))


def _listing(root: Path, limit: int = 8) -> str:
    try:
        names = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(root))
    except OSError:
        return "nothing readable"
    if not names:
        return "an empty folder"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} entries)" if len(names) > limit else "")


def _how_to_provide(dataset: str) -> str:
    return (f"pass --data-root DIR (or data.root), or set {DATA_DIR_ENV} to a folder holding {dataset}/"
            + (", or run once online to download it" if dataset in CIFAR else ""))


def find_layout(data: DataConfig) -> Layout | None:
    """The layout of ``data``'s root; None when a CIFAR root holds no data yet (downloadable).

    Raises ``MfsearchError`` for a root that exists with the wrong layout.
    """
    if data.dataset == "synthetic":
        return Layout("synthetic")
    root = resolve_root(data)
    assert root is not None
    if root.exists() and not root.is_dir():
        raise MfsearchError(f"{data.dataset} root {root} is a file, not a folder; "
                            f"{_how_to_provide(data.dataset)}")
    if data.dataset in CIFAR:
        info = CIFAR[data.dataset]
        train, test = root / "train", root / "test"
        if train.is_dir() and test.is_dir():
            return Layout("folders", root, train, test)
        if (root / info.torchvision_dir).is_dir():
            return Layout("torchvision", root)
        if train.is_dir() or test.is_dir():  # half a folder tree: a mistake, not a download target
            raise MfsearchError(
                f"{data.dataset} root {root}: expected train/ and test/ class folders "
                f"(or torchvision's {info.torchvision_dir}/), found {_listing(root)}")
        return None
    if not root.is_dir():
        raise MfsearchError(f"imagefolder root {root} does not exist; {_how_to_provide('imagefolder')}")
    train = root / "train"
    test = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if not train.is_dir() or test is None:
        raise MfsearchError(
            f"imagefolder root {root}: expected train/ and val/ or test/, each with one sub-folder per "
            f"class, found {_listing(root)}")
    return Layout("folders", root, train, test)


def ensure_available(data: DataConfig, download: bool = True) -> Layout:
    """The layout of ``data``, downloading CIFAR first when it is missing and ``download`` is on."""
    layout = find_layout(data)
    if layout is not None:
        return layout
    root = resolve_root(data)
    info = CIFAR[data.dataset]
    looked = f"{root} (train/ and test/ class folders, or {info.torchvision_dir}/)"
    if not download:
        raise MfsearchError(f"{data.dataset} not found in {looked}; {_how_to_provide(data.dataset)}")
    try:
        download_cifar(data.dataset, root)
    except Exception as err:  # any failure (offline, DNS, timeout, disk full, read-only) -> one line
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:200]
        raise MfsearchError(f"{data.dataset} not found in {looked} and the download failed ({reason}); "
                            f"{_how_to_provide(data.dataset)}") from err
    layout = find_layout(data)
    if layout is None:
        raise MfsearchError(f"{data.dataset}: downloaded to {root} but found no {info.torchvision_dir}/ there")
    return layout


def download_cifar(dataset: str, root: Path) -> None:
    """Download (and check) CIFAR into ``root`` with torchvision; one process at a time per root.

    A root this call had to create is removed again when the download fails, so a failed attempt
    leaves nothing behind.
    """
    import torchvision

    info = CIFAR[dataset]
    cls = getattr(torchvision.datasets, info.torchvision_class)
    _resolve_host(cls.url, DOWNLOAD_TIMEOUT_S)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with _lock(root / ".download.lock"), _socket_timeout(DOWNLOAD_TIMEOUT_S):
            if not (root / info.torchvision_dir).is_dir():  # another trial may have finished it meanwhile
                cls(str(root), train=True, download=True)
    except BaseException:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise


def _resolve_host(url: str, timeout: float) -> None:
    """Look the download host up in a thread: a DNS lookup ignores socket timeouts and can stall.
    Skipped behind a proxy, which resolves the host itself."""
    parsed = urllib.parse.urlparse(url)
    if urllib.request.getproxies().get(parsed.scheme):
        return
    host = parsed.hostname or url
    result: list = []
    thread = threading.Thread(target=lambda: result.append(_getaddrinfo(host)), daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        raise TimeoutError(f"looking up {host} took more than {timeout:.0f} s")
    if isinstance(result[0], OSError):
        raise result[0]


def _getaddrinfo(host: str):
    try:
        return socket.getaddrinfo(host, 443)
    except OSError as err:
        return err


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torchvision's downloader calls urlopen without a timeout: a stalled socket would wait forever.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Exclusive file lock, so parallel trials do not download into the same root at once."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, torchvision's integrity check still catches a bad file
        yield
        return
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
