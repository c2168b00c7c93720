"""The raw archive keeps exact bytes under their hash, survives leftovers of a killed writer, refuses
tampered files and path tricks in references."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from storage.archive import ArchiveError, RawArchive

RAW = b"From: a@b.example\r\nSubject: prova\r\n\r\ncorpo \xe8\r\n"


def test_store_and_load_give_back_the_exact_bytes(tmp_path: Path) -> None:
    archive = RawArchive(tmp_path, fsync=True)
    ref = archive.store(RAW)
    assert ref == "sha256:" + hashlib.sha256(RAW).hexdigest()
    assert archive.load(ref) == RAW
    assert archive.store(RAW) == ref  # the same bytes, the same file
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_a_leftover_temporary_file_of_a_killed_writer_does_not_block_storing(tmp_path: Path) -> None:
    archive = RawArchive(tmp_path, fsync=False)
    digest = hashlib.sha256(RAW).hexdigest()
    folder = tmp_path / digest[:2] / digest[2:4]
    folder.mkdir(parents=True)
    # What a process killed mid-write leaves, under the name this process and thread would choose.
    stale = folder / f".tmp-{digest[:16]}-{os.getpid()}-{threading.get_ident()}"
    stale.write_bytes(b"half a mess")
    ref = archive.store(RAW, defer_sync=True)
    archive.sync_pending()
    assert archive.load(ref) == RAW
    assert stale.read_bytes() == b"half a mess"  # not ours to delete: another file name was used


def test_tampered_file_and_bad_references_are_refused(tmp_path: Path) -> None:
    archive = RawArchive(tmp_path, fsync=False)
    ref = archive.store(RAW)
    digest = ref.removeprefix("sha256:")
    (tmp_path / digest[:2] / digest[2:4] / f"{digest}.eml").write_bytes(RAW + b"x")
    with pytest.raises(ArchiveError, match="archivio corrotto"):
        archive.load(ref)
    for bad in ("sha256:../../etc/passwd", "md5:" + digest, "sha256:" + "g" * 64):
        with pytest.raises(ArchiveError, match="riferimento d'archivio non valido"):
            archive.load(bad)
