"""Mesh geometry for fitting shapes: which grid points lie inside, distances to the surface, the
Chamfer distance of two surfaces, and a shaded picture of a mesh (numpy and scipy only).

Inside tests cast rays along a grid axis and count the surface crossings below each grid point
(odd: inside). A mesh with holes makes a ray through a hole miss one crossing and flips its whole
column, so :func:`inside_grid` takes the majority of the rays along x, y and z: a point is
misjudged only where two of its three rays pass through holes.
"""

from __future__ import annotations

import numpy as np

# Rays run through grid centres shifted by these (irrational, tiny) offsets so that none passes
# exactly through a triangle edge or vertex, where both neighbouring triangles would count it.
RAY_OFFSET = (1e-7 * np.sqrt(2.0), 1e-7 * np.sqrt(3.0))


def crossings_along(verts: np.ndarray, faces: np.ndarray, centres: np.ndarray, axis: int) -> np.ndarray:
    """Parity of surface crossings below each grid point along ``axis``: bool ``[n, n, n]``
    indexed ``[x, y, z]``, for grid ``centres [n]`` (the same on every axis)."""
    n, h = len(centres), centres[1] - centres[0]
    u, v = [a for a in range(3) if a != axis]
    tri = verts[faces]  # [F, 3 corners, 3]
    pu, pv, pa = tri[..., u], tri[..., v], tri[..., axis]
    lo_u = np.clip(np.ceil((pu.min(1) - RAY_OFFSET[0] - centres[0]) / h), 0, n).astype(np.int64)
    hi_u = np.clip(np.floor((pu.max(1) - RAY_OFFSET[0] - centres[0]) / h), -1, n - 1).astype(np.int64)
    lo_v = np.clip(np.ceil((pv.min(1) - RAY_OFFSET[1] - centres[0]) / h), 0, n).astype(np.int64)
    hi_v = np.clip(np.floor((pv.max(1) - RAY_OFFSET[1] - centres[0]) / h), -1, n - 1).astype(np.int64)
    wu, wv = np.maximum(hi_u - lo_u + 1, 0), np.maximum(hi_v - lo_v + 1, 0)
    counts = wu * wv
    # Every (triangle, ray) pair whose ray meets the triangle's bounding box.
    t = np.repeat(np.arange(len(faces)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    iu = lo_u[t] + local // np.maximum(wv[t], 1)
    iv = lo_v[t] + local % np.maximum(wv[t], 1)
    x, y = centres[iu] + RAY_OFFSET[0], centres[iv] + RAY_OFFSET[1]
    ax, ay, bx, by, cx, cy = pu[t, 0], pv[t, 0], pu[t, 1], pv[t, 1], pu[t, 2], pv[t, 2]
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    wa = ((bx - x) * (cy - y) - (by - y) * (cx - x)) / np.where(area == 0, 1, area)
    wb = ((cx - x) * (ay - y) - (cy - y) * (ax - x)) / np.where(area == 0, 1, area)
    wc = 1 - wa - wb
    hit = (area != 0) & (wa > 0) & (wb > 0) & (wc > 0)
    depth = wa[hit] * pa[t[hit], 0] + wb[hit] * pa[t[hit], 1] + wc[hit] * pa[t[hit], 2]
    # A crossing at depth d flips every point above it: count flips at the first centre past d.
    first = np.searchsorted(centres, depth)
    flips = np.zeros((n, n, n + 1), dtype=np.int32)
    np.add.at(flips, (iu[hit], iv[hit], first), 1)
    parity = (np.cumsum(flips[..., :n], axis=-1) % 2).astype(bool)  # indexed [u, v, axis]
    order = np.argsort([u, v, axis])
    return parity.transpose(order)


def inside_grid(verts: np.ndarray, faces: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Bool ``[n, n, n]`` (indexed ``[x, y, z]``): grid points inside the mesh, by the majority
    of the crossing parities along the three axes."""
    votes = sum(crossings_along(verts, faces, centres, axis).astype(np.int8) for axis in range(3))
    return votes >= 2


def open_edges(faces: np.ndarray) -> int:
    """Edges used by exactly one face (0 for a closed, watertight surface)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return int((counts == 1).sum())


def surface_points(verts: np.ndarray, faces: np.ndarray, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points drawn uniformly by area on the surface ``[count, 3]`` and their unit face normals."""
    rng = np.random.default_rng(seed)
    tri = verts[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    face = rng.choice(len(faces), size=count, p=area / area.sum())
    r1, r2 = rng.random((2, count, 1))
    flip = r1 + r2 > 1  # fold the unit square onto the triangle
    r1, r2 = np.where(flip, 1 - r1, r1), np.where(flip, 1 - r2, r2)
    t = tri[face]
    points = t[:, 0] + r1 * (t[:, 1] - t[:, 0]) + r2 * (t[:, 2] - t[:, 0])
    return points, cross[face] / np.maximum(area[face, None], 1e-30)


def distance_to(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Distance ``[Q]`` from each query point to the nearest of ``points [P, 3]``."""
    from scipy.spatial import cKDTree

    return cKDTree(points).query(queries, workers=-1)[0]


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer-L1 distance of two point samples: the mean of the two mean nearest distances."""
    return 0.5 * float(distance_to(b, a).mean() + distance_to(a, b).mean())


def view_rotation(azimuth: float = 35.0, elevation: float = 25.0) -> np.ndarray:
    """``[3, 3]``: turn by ``azimuth`` degrees about y, then tilt by ``elevation`` about x (view along -z, y up)."""
    a, e = np.radians(azimuth), np.radians(elevation)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return tilt @ turn


def shaded_view(verts: np.ndarray, faces: np.ndarray, extent: float, size: int = 256,
                rotation: np.ndarray | None = None) -> np.ndarray:
    """A shaded orthographic picture ``[size, size, 3]`` in ``[0, 1]`` of a mesh on white.

    The surface is drawn as dense points (a depth test keeps the nearest per pixel) shaded by
    their face normals (two-sided Lambert under a light from the upper left). ``extent`` is the
    half-width of the view in mesh units, so two meshes drawn with one extent line up.
    """
    rotation = view_rotation() if rotation is None else rotation
    points, normals = surface_points(verts, faces, size * size * 8)
    p, nrm = points @ rotation.T, normals @ rotation.T
    px = np.clip(((p[:, 0] / extent + 1) / 2 * size).astype(np.int64), 0, size - 1)
    py = np.clip(((1 - p[:, 1] / extent) / 2 * size).astype(np.int64), 0, size - 1)
    pixel = py * size + px
    order = np.lexsort((-p[:, 2], pixel))  # per pixel, nearest (largest z) first
    pixel, first = np.unique(pixel[order], return_index=True)
    light = np.array([-0.4, 0.5, 1.0]) / np.linalg.norm([-0.4, 0.5, 1.0])
    shade = 0.2 + 0.8 * np.abs(nrm[order[first]] @ light)
    image = np.ones((size * size, 3), dtype=np.float32)
    image[pixel] = shade[:, None] * np.array([0.85, 0.78, 0.65])
    covered = np.zeros(size * size, dtype=bool)
    covered[pixel] = True
    return fill_pinholes(image.reshape(size, size, 3), covered.reshape(size, size))


def fill_pinholes(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Uncovered pixels with at least three covered 4-neighbours take their neighbours' mean
    (points drawn at random leave a few such holes on a surface)."""
    pad_img = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    pad_cov = np.pad(covered, 1).astype(np.float32)
    shifts = [(0, 1), (2, 1), (1, 0), (1, 2)]
    count = sum(pad_cov[a:a + covered.shape[0], b:b + covered.shape[1]] for a, b in shifts)
    total = sum(pad_img[a:a + covered.shape[0], b:b + covered.shape[1]] * pad_cov[a:a + covered.shape[0], b:b + covered.shape[1], None]
                for a, b in shifts)
    hole = ~covered & (count >= 3)
    out = image.copy()
    out[hole] = total[hole] / count[hole, None]
    return out
