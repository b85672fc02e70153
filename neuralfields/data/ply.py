"""Read the vertex positions of a PLY point cloud (ASCII or binary), without optional dependencies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import file_error

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}


def read_ply_vertices(path: Path) -> np.ndarray:
    """The ``vertex`` element of a PLY file as a structured array (one field per property, in the
    file's order and types). The ``vertex`` element must come first, without list properties."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise file_error(path, f"cannot read ({exc})") from None
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise file_error(path, "not a PLY file (no 'ply' magic or 'end_header')")
    header = data[:end].decode("ascii", "replace").splitlines()
    body = data[data.index(b"\n", end) + 1:]
    fmt, count, props, in_vertex, seen_element = "", 0, [], False, False
    for line in header:
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            if words[1] == "vertex" and seen_element:
                raise file_error(path, "the 'vertex' element must be the first element")
            in_vertex, seen_element = words[1] == "vertex", True
            count = int(words[2]) if in_vertex else count
        elif words[0] == "property" and in_vertex:
            if words[1] == "list" or words[1] not in _TYPES:
                raise file_error(path, f"unsupported vertex property '{' '.join(words[1:])}'")
            props.append((words[2], _TYPES[words[1]]))
    if not props:
        raise file_error(path, "no vertex element")
    try:
        if fmt == "ascii":
            rows = np.loadtxt(body.decode("ascii").splitlines()[:count], ndmin=2)
            return np.rec.fromarrays([rows[:, i].astype(t) for i, (_, t) in enumerate(props)],
                                     names=[n for n, _ in props]).view(np.ndarray)
        if fmt not in ("binary_little_endian", "binary_big_endian"):
            raise file_error(path, f"unknown PLY format '{fmt}'")
        order = "<" if fmt == "binary_little_endian" else ">"
        return np.frombuffer(body, dtype=np.dtype([(n, order + t) for n, t in props]), count=count)
    except (ValueError, IndexError) as exc:
        raise file_error(path, f"malformed PLY vertex data ({exc})") from None


def read_ply_points(path: Path) -> np.ndarray:
    """Vertex positions ``[P, 3]`` float64 of a PLY file (the ``vertex`` element must come first)."""
    vertices = read_ply_vertices(path)
    if not all(axis in vertices.dtype.names for axis in "xyz"):
        raise file_error(path, "vertices have no x, y, z properties")
    return np.stack([vertices[a].astype(np.float64) for a in "xyz"], axis=1)
