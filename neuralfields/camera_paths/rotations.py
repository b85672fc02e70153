"""Quaternions and splines for camera paths: pure numpy math, no cameras or files.

Keyframe poses are interpolated with a centripetal Catmull-Rom spline on positions and slerp on
``(w, x, y, z)`` unit quaternions (:func:`interpolate_poses`); per-keyframe values (field of view,
time) follow linearly at the same ``(segment, fraction)`` (:func:`interpolate_values`).
"""

from __future__ import annotations

import math

import numpy as np


# ------------------------------------------------------------------------------------ rotations


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """``[N, 3, 3]`` rotations -> ``[N, 4]`` unit quaternions ``(w, x, y, z)``, w >= 0."""
    r = np.asarray(r, dtype=np.float64).reshape(-1, 3, 3)
    # Shepperd's method: take the largest of the four squared components for stability.
    tr = np.trace(r, axis1=1, axis2=2)
    cands = np.stack([1 + tr, 1 + 2 * r[:, 0, 0] - tr, 1 + 2 * r[:, 1, 1] - tr, 1 + 2 * r[:, 2, 2] - tr], -1)
    k = np.argmax(cands, -1)
    q = np.zeros((len(r), 4))
    for i in range(len(r)):
        m, s = r[i], math.sqrt(max(cands[i, k[i]], 1e-12)) * 2  # s = 4 * |largest component|
        if k[i] == 0:
            q[i] = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
        elif k[i] == 1:
            q[i] = [(m[2, 1] - m[1, 2]) / s, s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
        elif k[i] == 2:
            q[i] = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s]
        else:
            q[i] = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """``[N, 4]`` quaternions ``(w, x, y, z)`` -> ``[N, 3, 3]`` rotations."""
    q = np.asarray(q, dtype=np.float64).reshape(-1, 4)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


def slerp(q0: np.ndarray, q1: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Spherical interpolation of ``[N, 4]`` quaternion pairs at fractions ``u [N]`` (shortest arc)."""
    q0, q1, u = np.asarray(q0, float), np.asarray(q1, float).copy(), np.asarray(u, float)[:, None]
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # q and -q are the same rotation: take the short way
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    small = sin < 1e-6  # nearly equal: linear interpolation is exact to first order
    w0 = np.where(small, 1 - u, np.sin((1 - u) * theta) / np.where(small, 1, sin))
    w1 = np.where(small, u, np.sin(u * theta) / np.where(small, 1, sin))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------------ splines


def catmull_rom(points: np.ndarray, segment: np.ndarray, u: np.ndarray, closed: bool = False) -> np.ndarray:
    """Centripetal Catmull-Rom spline through ``points [K, D]``.

    Evaluated on ``segment [N]`` (index of the starting keyframe) at fractions ``u [N]``; the
    centripetal parametrisation (alpha = 1/2) never overshoots into cusps or self-loops. Open
    paths reflect the end points to make the missing neighbours.
    """
    p = np.asarray(points, dtype=np.float64)
    k = len(p)
    if k == 1:
        return np.repeat(p, len(segment), 0)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    i = np.asarray(segment) + 1  # index of the segment start in ext
    p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]

    def knot(a, b):
        return np.sqrt(np.linalg.norm(b - a, axis=-1)).clip(min=1e-6)[:, None]

    t0 = np.zeros((len(i), 1))
    t1 = t0 + knot(p0, p1)
    t2 = t1 + knot(p1, p2)
    t3 = t2 + knot(p2, p3)
    t = t1 + np.asarray(u, float)[:, None] * (t2 - t1)
    # Barry-Goldman pyramid.
    a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
    a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
    a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
    b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
    b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
    return (t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2


def keyframe_parameters(n_frames: int, n_keys: int, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Segment index and fraction ``[n_frames]`` for frames spread evenly over the keyframes.

    Open paths put the first and last frames exactly on the first and last keyframes; closed
    ones stop one frame short of returning to the start, so the video loops seamlessly.
    """
    if n_keys == 1:
        return np.zeros(n_frames, dtype=np.int64), np.zeros(n_frames)
    n_segments = n_keys if closed else n_keys - 1
    if closed:
        s = np.arange(n_frames) / n_frames * n_segments
    else:
        s = np.linspace(0.0, n_segments, n_frames) if n_frames > 1 else np.zeros(1)
    seg = np.minimum(np.floor(s).astype(np.int64), n_segments - 1)
    return seg, s - seg


def interpolate_poses(c2w: np.ndarray, n_frames: int, closed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames through keyframe poses ``[K, 3, 4]``: spline on positions, slerp on rotations.

    Returns ``c2w [n_frames, 3, 4]`` and the ``(segment, fraction)`` of each frame, so that
    per-keyframe values (field of view, time) can be interpolated alongside.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    k = len(c2w)
    seg, u = keyframe_parameters(n_frames, k, closed)
    positions = catmull_rom(c2w[:, :, 3], seg, u, closed)
    quats = matrix_to_quaternion(c2w[:, :, :3])
    nxt = (seg + 1) % k if closed else np.minimum(seg + 1, k - 1)
    rot = quaternion_to_matrix(slerp(quats[seg], quats[nxt], u))
    return np.concatenate([rot, positions[:, :, None]], -1), seg, u


def interpolate_values(values: np.ndarray, seg: np.ndarray, u: np.ndarray, closed: bool = False) -> np.ndarray:
    """Linear interpolation of per-keyframe scalars ``[K]`` at ``(segment, fraction)``."""
    values = np.asarray(values, dtype=np.float64)
    k = len(values)
    nxt = (seg + 1) % k if closed else np.minimum(seg + 1, k - 1)
    return values[seg] * (1 - u) + values[nxt] * u
