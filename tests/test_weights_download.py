"""Published weights are checked against a recorded SHA-256 before they load."""
from __future__ import annotations

import hashlib
import json

import pytest

from mfsearch import weights_download as wd
from mfsearch.errors import PretrainedUnavailable


@pytest.fixture
def lock(tmp_path, monkeypatch):
    path = tmp_path / "lock.json"
    monkeypatch.setenv(wd.LOCK_ENV, str(path))
    return path


def weights(tmp_path, content: bytes):
    path = tmp_path / "w.bin"
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def test_first_download_is_recorded_then_a_changed_file_is_refused(tmp_path, lock, capsys):
    path, digest = weights(tmp_path, b"published")
    assert wd.verify_weights("caformer_s18", path, "hub") == digest
    assert json.loads(lock.read_text()) == {"caformer_s18": digest}
    assert digest in capsys.readouterr().err
    assert wd.verify_weights("caformer_s18", path, "hub") == digest      # same file: fine
    changed, other = weights(tmp_path, b"swapped upstream")
    with pytest.raises(PretrainedUnavailable) as info:
        wd.verify_weights("caformer_s18", changed, "hub")
    assert f"have SHA-256 {other}, not {digest}" in str(info.value) and "refusing" in str(info.value)


def test_shipped_hash_wins_over_the_lock_and_a_pin_wins_over_both(tmp_path, lock, monkeypatch):
    path, digest = weights(tmp_path, b"published")
    lock.write_text(json.dumps({"convformer_s18": "0" * 64}))
    monkeypatch.setitem(wd.PUBLISHED_SHA256, "convformer_s18", digest)
    assert wd.verify_weights("convformer_s18", path, "hub") == digest
    with pytest.raises(PretrainedUnavailable, match="pretrained_sha256"):
        wd.verify_weights("convformer_s18", path, "hub", expected="f" * 64)
    monkeypatch.setitem(wd.PUBLISHED_SHA256, "convformer_s18", "1" * 64)
    with pytest.raises(PretrainedUnavailable, match="mfsearch's recorded hash"):
        wd.verify_weights("convformer_s18", path, "hub")


def test_a_corrupt_lock_file_is_one_clear_error(tmp_path, lock):
    path, _ = weights(tmp_path, b"x")
    lock.write_text("{not json")
    with pytest.raises(PretrainedUnavailable, match="is not a weights lock file"):
        wd.verify_weights("caformer_s18", path, "hub")
