"""`--resume` unpickles nothing its own sweep did not write: the signed manifest of the state folder."""
from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mfsearch.errors import MfsearchError
from mfsearch.search.state_integrity import STATE_MANIFEST, check_state, sign_folder, verify_folder


class Pwn:
    """Unpickling this writes a file: what a planted pickle could do."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "owned"))


@pytest.fixture
def key(tmp_path, monkeypatch):
    path = tmp_path / "keys" / "state.key"
    monkeypatch.setenv("MFSEARCH_STATE_KEY_FILE", str(path))
    return path


def state_folder(root: Path) -> Path:
    folder = root / "runs" / "demo"
    (folder / "trial_1" / "checkpoint_000000").mkdir(parents=True)
    (folder / "mfsearch_state.json").write_text(json.dumps({"name": "demo", "tracking_uri": "sqlite:///x.db",
                                                             "parent_run_id": "0" * 32, "overrides": {}}))
    (folder / "tuner.pkl").write_bytes(pickle.dumps({"fine": 1}))
    (folder / "trial_1" / "result.json").write_text("{}")
    (folder / "trial_1" / "checkpoint_000000" / "weights.safetensors").write_bytes(b"\0" * 64)
    (folder / "trial_1" / "checkpoint_000000" / "training.ckpt").write_bytes(pickle.dumps({"epoch": 1}))
    return folder


def test_signed_folder_verifies_and_the_key_is_private(tmp_path, key):
    folder = state_folder(tmp_path)
    sign_folder(folder)
    verify_folder(folder, "sweep")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() not in (folder / STATE_MANIFEST).read_text()


@pytest.mark.parametrize("tamper, message", [
    (lambda f: (f / "tuner.pkl").write_bytes(pickle.dumps({"fine": 2})), "tuner.pkl changed after"),
    (lambda f: (f / "searcher-state-x.pkl").write_bytes(b"planted"), "searcher-state-x.pkl was not written by"),
    (lambda f: (f / "trial_1" / "checkpoint_000000" / "training.ckpt").write_bytes(b"planted"),
     "training.ckpt changed after"),
    (lambda f: (f / "trial_1" / "checkpoint_000000" / "extra.pkl").write_bytes(b"planted"),
     "extra.pkl was not written by"),
    (lambda f: (f / STATE_MANIFEST).unlink(), "has no mfsearch_state.sig.json"),
    (lambda f: (f / STATE_MANIFEST).write_text(json.dumps({"files": {}, "hmac": "0" * 64})), "was not signed with"),
    (lambda f: (f / STATE_MANIFEST).write_text("not json"), "is not a state manifest"),
], ids=["changed-pickle", "planted-file", "changed-checkpoint", "planted-in-checkpoint", "no-manifest",
                       "forged-manifest", "garbage-manifest"])
def test_any_change_is_refused_naming_the_file(tmp_path, key, tamper, message):
    folder = state_folder(tmp_path)
    sign_folder(folder)
    tamper(folder)
    with pytest.raises(MfsearchError, match=message) as info:
        verify_folder(folder, "sweep")
    assert "--trust-state" in str(info.value) and "\n" not in str(info.value)


def test_weights_are_not_hashed_they_are_data(tmp_path, key):
    folder = state_folder(tmp_path)
    sign_folder(folder)
    (folder / "trial_1" / "checkpoint_000000" / "weights.safetensors").write_bytes(b"\1" * 64)
    verify_folder(folder, "sweep")


def test_another_machines_key_does_not_verify(tmp_path, key, monkeypatch):
    folder = state_folder(tmp_path)
    sign_folder(folder)
    monkeypatch.setenv("MFSEARCH_STATE_KEY_FILE", str(tmp_path / "other.key"))
    with pytest.raises(MfsearchError, match="was not signed with this machine's key"):
        verify_folder(folder, "sweep")


def test_trust_state_resigns(tmp_path, key):
    folder = state_folder(tmp_path)
    sign_folder(folder)
    (folder / "tuner.pkl").write_bytes(pickle.dumps({"fine": 3}))
    check_state(folder, "sweep", trust=True)
    verify_folder(folder, "sweep")


def test_resume_of_a_planted_pickle_exits_2_and_runs_nothing(tmp_path, key):
    """Through the CLI: one line, exit 2, and the planted pickle never ran."""
    folder = state_folder(tmp_path)
    sign_folder(folder)
    target = tmp_path / "owned.txt"
    (folder / "tuner.pkl").write_bytes(pickle.dumps(Pwn(str(target))))
    out = subprocess.run([sys.executable, "-m", "mfsearch.cli.main", "run", "--resume", "demo", "--storage-path",
                          str(tmp_path / "runs")], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MFSEARCH_STATE_KEY_FILE": str(key)})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "tuner.pkl changed after this sweep wrote it" in lines[0], out.stderr
    assert not target.exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_the_version_before_the_last_signed_one_still_verifies(tmp_path, key):
    """Ray syncs its state to storage in the background: the folder may briefly hold the previous
    version of a file the driver already signed anew. Both are its own; a third is not."""
    folder = state_folder(tmp_path)
    cache: dict = {}
    sign_folder(folder, cache=cache)
    old = (folder / "tuner.pkl").read_bytes()
    (folder / "tuner.pkl").write_bytes(pickle.dumps({"fine": 2}))
    assert sign_folder(folder, cache=cache)
    assert not sign_folder(folder, cache=cache)            # nothing changed: nothing rewritten
    (folder / "tuner.pkl").write_bytes(old)                 # the sync had not landed yet
    verify_folder(folder, "sweep")
    (folder / "tuner.pkl").write_bytes(pickle.dumps({"planted": 3}))
    with pytest.raises(MfsearchError, match="tuner.pkl changed after"):
        verify_folder(folder, "sweep")


def test_trial_logs_are_not_state_and_an_unsigned_checkpoint_is_set_aside(tmp_path, key, capsys):
    """Tune never reads a trial's logs back; a checkpoint saved after the driver's last signature
    (the driver died before registering it) is moved aside, and the trial resumes from its last
    signed one."""
    folder = state_folder(tmp_path)
    sign_folder(folder)
    (folder / "trial_1" / "result.json").write_text('{"epoch": 2}')
    late = folder / "trial_1" / "checkpoint_000001"
    late.mkdir()
    (late / "training.ckpt").write_bytes(pickle.dumps({"epoch": 2}))
    verify_folder(folder, "sweep")
    assert not late.exists()
    assert (folder.parent / ".demo.unsigned" / "trial_1" / "checkpoint_000001" / "training.ckpt").is_file()
    assert "checkpoint_000001" in capsys.readouterr().err
    assert (folder / "trial_1" / "checkpoint_000000" / "training.ckpt").is_file()   # the signed one stays
