"""``--resume`` reads only state this user's sweep wrote: an HMAC-signed manifest of the experiment folder.

What ``--resume`` would read from ``<storage>/<name>`` includes pickles: Ray Tune's ``tuner.pkl``,
``searcher-state-*.pkl`` and the cloudpickled trials inside ``experiment_state-*.json``; unpickling
runs code. The folder may be on shared storage, so anyone who can write there could make the next
``--resume`` run their code. Ray offers no non-executable format for its experiment state, so we
check integrity instead:

- **Signing.** While a sweep runs, ``StateSigner`` (a Tune callback on the driver) hashes what
  ``--resume`` reads (SHA-256): the folder's own files and the trials' checkpoints, but not their
  weights (``.safetensors``: data) nor the trial logs Tune never reads back. Whenever one changed it
  writes
  ``STATE_MANIFEST``: the hashes and an HMAC-SHA256 over them, keyed with a secret that never
  leaves the driver's machine (``~/.config/mfsearch/state.key``, mode 0600, made on first use;
  ``MFSEARCH_STATE_KEY_FILE`` points elsewhere, e.g. at a secret mounted on a cluster's head node).
  Each file may match its current or its previous signed hash: Ray syncs its state to storage in
  the background, so the folder can briefly hold the version before the one last signed.
- **Verifying.** ``--resume`` first checks the manifest's HMAC, then that every file in the folder
  is listed with one of its hashes. Anything unsigned, changed or a manifest that does not verify:
  one line naming the file, exit 2, nothing unpickled.

A checkpoint a trial saved after the driver's last signature (the driver died before registering
it, so no saved Tune state refers to it) is moved aside to ``.<name>.unsigned/`` with a warning line,
and its trial resumes from its last signed checkpoint. A driver killed in the instant between Ray
writing its own state and the signer's next call (the same Tune step) leaves that file unsigned;
``--resume`` then refuses and names it. ``--trust-state`` re-signs the folder as it is, for a user
who knows it is their own.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sys
from pathlib import Path

from ray.tune import Callback

from ..errors import MfsearchError
from ..files import sha256_file

STATE_MANIFEST = "mfsearch_state.sig.json"
KEY_ENV = "MFSEARCH_STATE_KEY_FILE"
DEFAULT_KEY = Path("~/.config/mfsearch/state.key")
# Weights are safetensors (data, never executed) and the bulk of the folder: not hashed every step.
UNSIGNED_SUFFIXES = (".safetensors",)


def state_key() -> bytes:
    """The driver's signing key, created (0600) on first use."""
    path = Path(os.environ.get(KEY_ENV) or DEFAULT_KEY).expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _files(folder: Path) -> list[Path]:
    """What ``--resume`` reads: the folder's own files (Tune's and mfsearch's state) and the trials'
    checkpoints (Tune hands them to the restarted trials, which unpickle ``training.ckpt``). Not
    the trials' logs (``result.json``, ``progress.csv``, ``params.*``, event files): Tune writes
    them and never reads them back."""
    top = [p for p in folder.iterdir() if p.is_file()]
    checkpoints = [p for p in folder.glob("*/checkpoint_*/**/*") if p.is_file()]
    return sorted(p for p in top + checkpoints if p.name != STATE_MANIFEST and not p.name.startswith(".")
                  and not p.name.endswith(UNSIGNED_SUFFIXES))


def _checkpoint_dir(folder: Path, path: Path) -> Path | None:
    parts = path.relative_to(folder).parts
    return folder / parts[0] / parts[1] if len(parts) > 2 and parts[1].startswith("checkpoint_") else None


def _mac(key: bytes, files: dict[str, str]) -> str:
    return hmac.new(key, json.dumps(files, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def sign_folder(folder: Path, key: bytes | None = None, cache: dict | None = None) -> bool:
    """Write the folder's manifest when a file changed; True when it did.

    ``cache`` (path -> ((size, mtime), [digests])) skips unchanged files and remembers each file's
    previous digest too: Ray syncs its state to storage in the background, so at any instant the
    folder may hold the version before the one just signed. Both were written by this driver."""
    key = key or state_key()
    cache = {} if cache is None else cache
    files, changed = {}, not (folder / STATE_MANIFEST).exists()
    for path in _files(folder):
        try:
            stat = path.stat()
        except FileNotFoundError:  # replaced under us by Ray's sync: the next step signs it
            continue
        stamp = (stat.st_size, stat.st_mtime_ns)
        rel = path.relative_to(folder).as_posix()
        if rel not in cache or cache[rel][0] != stamp:
            digest = sha256_file(path)
            previous = cache[rel][1][:1] if rel in cache else []
            cache[rel] = (stamp, [digest] + [d for d in previous if d != digest])
            changed = True
        files[rel] = cache[rel][1]
    if not changed:
        return False
    tmp = folder / (STATE_MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"files": files, "hmac": _mac(key, files)}, indent=1, sort_keys=True))
    tmp.replace(folder / STATE_MANIFEST)
    return True


def verify_folder(folder: Path, what: str) -> None:
    """Raise ``MfsearchError`` naming the first file that this user's sweep did not write."""
    manifest = folder / STATE_MANIFEST
    hint = f"if {folder} holds only your own interrupted {what}, resume with --trust-state"
    if not manifest.is_file():
        raise MfsearchError(f"--resume: {folder} has no {STATE_MANIFEST} (its state was not signed by mfsearch); "
                            f"{hint}")
    try:
        data = json.loads(manifest.read_text())
        files, mac = dict(data["files"]), str(data["hmac"])
    except (ValueError, KeyError, TypeError):
        raise MfsearchError(f"--resume: {manifest} is not a state manifest; {hint}") from None
    if not hmac.compare_digest(mac, _mac(state_key(), files)):
        raise MfsearchError(f"--resume: {manifest} was not signed with this machine's key ({_key_path()}); "
                            f"{hint}")
    signed_dirs = {Path(rel).parts[:2] for rel in files if len(Path(rel).parts) > 2}
    quarantined: set[Path] = set()
    for path in _files(folder):
        rel = path.relative_to(folder).as_posix()
        checkpoint = _checkpoint_dir(folder, path)
        if checkpoint in quarantined:
            continue
        if rel not in files and checkpoint is not None and checkpoint.relative_to(folder).parts not in signed_dirs:
            # A whole checkpoint the driver never signed: a trial saved it just before the driver
            # died, so no saved Tune state refers to it (the driver signs a checkpoint as it
            # registers it). Set it aside; the trial resumes from its last signed checkpoint.
            quarantined.add(_quarantine(folder, checkpoint))
            continue
        if rel not in files:
            raise MfsearchError(f"--resume: {path} was not written by this {what} (not in its signed manifest); "
                                f"{hint}")
        allowed = files[rel] if isinstance(files[rel], list) else [files[rel]]
        if sha256_file(path) not in allowed:
            raise MfsearchError(f"--resume: {path} changed after this {what} wrote it (hash differs from its "
                                f"signed manifest); {hint}")


def _quarantine(folder: Path, checkpoint: Path) -> Path:
    aside = folder.parent / f".{folder.name}.unsigned" / checkpoint.relative_to(folder)
    aside.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.rename(aside)
    print(f"mfsearch: moved {checkpoint.relative_to(folder)}, a checkpoint saved after the interrupted driver's "
          f"last signature, aside to {aside}", file=sys.stderr, flush=True)
    return checkpoint


def check_state(folder: Path, what: str, trust: bool) -> None:
    """Before ``--resume`` reads ``folder``: verify it, or (``trust``) re-sign it as it is."""
    if trust:
        sign_folder(folder)
    else:
        verify_folder(folder, what)


def _key_path() -> Path:
    return Path(os.environ.get(KEY_ENV) or DEFAULT_KEY).expanduser()


class StateSigner(Callback):
    """Re-signs the experiment folder on the driver whenever it changed: after each Tune step (Ray
    saves its state within the step) and when a trial reports or saves a checkpoint. Between two
    signatures only ``stat`` calls run, so signing every step costs little."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._cache: dict = {}
        self._key: bytes | None = None

    def __getstate__(self) -> dict:   # pickled with the Tuner: the key stays out of the folder
        return {"folder": self.folder, "_cache": {}, "_key": None}

    def sign(self) -> None:
        if self.folder.is_dir():
            self._key = self._key or state_key()
            sign_folder(self.folder, self._key, self._cache)

    def setup(self, **info) -> None:
        self.sign()

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        self.sign()

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        self.sign()

    def on_checkpoint(self, iteration: int, trials: list, trial, checkpoint, **info) -> None:
        self.sign()

    def on_experiment_end(self, trials: list, **info) -> None:
        self.sign()
