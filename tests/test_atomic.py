"""``neuralfields.atomic``: files are written whole or not at all, and no temporary file is left behind."""

from __future__ import annotations

import json

import pytest

from neuralfields.atomic import atomic_path, write_json_atomic
from neuralfields.run.folder import write_json_atomic as folder_write_json_atomic


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_json_written_whole_in_its_format(tmp_path):
    data = {"b": [1, 2.5, None], "a": {"nested": "text"}}
    path = write_json_atomic(tmp_path / "out.json", data)
    assert path == tmp_path / "out.json"
    assert path.read_text() == json.dumps(data, indent=2)
    write_json_atomic(path, data, indent=1, newline=True)
    assert path.read_text() == json.dumps(data, indent=1) + "\n"
    assert json.loads(path.read_text()) == data
    assert leftovers(tmp_path) == []
    assert folder_write_json_atomic is write_json_atomic  # the old import keeps working


def test_parent_folders_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "c.json"
    write_json_atomic(str(path), [1, 2, 3])
    assert json.loads(path.read_text()) == [1, 2, 3]
    with atomic_path(tmp_path / "x" / "y.bin") as tmp:
        tmp.write_bytes(b"\x00\x01")
    assert (tmp_path / "x" / "y.bin").read_bytes() == b"\x00\x01"


def test_unencodable_data_keeps_previous_file(tmp_path):
    path = tmp_path / "keep.json"
    write_json_atomic(path, {"version": 1})
    before = path.read_text()
    with pytest.raises(TypeError):
        write_json_atomic(path, {"version": 2, "bad": object()})
    assert path.read_text() == before
    assert leftovers(tmp_path) == []


def test_failure_inside_block_keeps_previous_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp.parent == path.parent and tmp.name.startswith(".data.bin.tmp-")
            tmp.write_bytes(b"half a fi")
            raise RuntimeError("writer crashed")
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_durable_write_replaces_existing_file(tmp_path):
    path = tmp_path / "state.bin"
    path.write_bytes(b"old")
    with atomic_path(path, durable=True) as tmp:
        tmp.write_bytes(b"new content")
    assert path.read_bytes() == b"new content"
    assert leftovers(tmp_path) == []
