"""``neuralfields export mesh|pointcloud|splats``: geometry of a trained run."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..errors import NeuralFieldsError
from .common import add_device_argument, device_from, require_run, run_dir
from .render import number_flag


def bbox_flag(text: str | None, flag: str = "--bbox") -> list[float] | None:
    """``xmin,ymin,zmin,xmax,ymax,zmax`` -> six floats (``--bbox`` and ``--crop``)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise NeuralFieldsError(f"{flag}: expected xmin,ymin,zmin,xmax,ymax,zmax, got '{text}'") from None
    if len(values) != 6:
        raise NeuralFieldsError(f"{flag}: expected 6 comma-separated numbers, got {len(values)}")
    return values


def crop_flag(text: str | None) -> list[float] | None:
    """``--crop``: six numbers, finite, each max above its min (checked before the model loads)."""
    from ..export.crop import check_box

    values = bbox_flag(text, "--crop")
    if values is not None:
        check_box(values, "--crop")
    return values


POINT_FORMATS = (".ply", ".splat")


def unit_flag(text: str | None, flag: str) -> float | None:
    return number_flag(text, flag, float, 0.0, 1.0, inclusive=True)


def register(sub) -> None:
    p = sub.add_parser("export", help="export a mesh, point cloud or Gaussian splats of a trained run")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")

    m = kinds.add_parser("mesh", help="triangle mesh by marching cubes on density or TSDF fusion of rendered depth",
                         description="Extract a coloured mesh. Formats: ply, obj, glb (what the viewer shows).")
    m.add_argument("run", type=run_dir, help="run folder")
    m.add_argument("--method", default="marching-cubes", help="marching-cubes (density level set) or tsdf (depth fusion)")
    m.add_argument("--resolution", default="256", help="samples along the longest box side (8..2048)")
    m.add_argument("--threshold", help="density level for marching cubes (default: estimated from rendered depth, see docs)")
    m.add_argument("--bbox", help="xmin,ymin,zmin,xmax,ymax,zmax (default: the occupied region)")
    m.add_argument("--crop", metavar="XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX",
                   help="world-unit box the mesh is cut to (it lies inside it); default: no crop")
    m.add_argument("--format", help="ply, obj or glb (default: from --out, else ply)")
    m.add_argument("--simplify", metavar="FACES", help="reduce to about this many faces")
    m.add_argument("--keep-fraction", default="0.05",
                   help="drop pieces with fewer faces than this fraction of the largest (0 keeps all)")
    m.add_argument("--time", help="time to mesh in a dynamic run (default 0)")
    m.add_argument("--views", default="50", help="tsdf: training views fused")
    m.add_argument("--view-downscale", help="tsdf: render views at 1/N of training size (default: about one pixel per voxel)")
    m.add_argument("--no-color", action="store_true", help="skip vertex colours")
    m.add_argument("--out", help="output file (default RUN/export/mesh.<format>)")
    add_device_argument(m)
    m.set_defaults(handler=run_mesh)

    c = kinds.add_parser("pointcloud", help="coloured point cloud (PLY) or splats (.splat) from rendered depth",
                         description="Points at the rendered depth of training views. --out NAME.ply writes a "
                                     "coloured PLY; NAME.splat writes round Gaussian splats that web splat viewers "
                                     "(and the viewer's 3D tab) render in real time.")
    c.add_argument("run", type=run_dir, help="run folder")
    c.add_argument("--views", help="training views used (default all)")
    c.add_argument("--downscale", default="4", help="render views at 1/N of training size")
    c.add_argument("--opacity", default="0.9", help="keep pixels with at least this opacity")
    c.add_argument("--max-points", help="random subset of at most this many points")
    c.add_argument("--time", help="time in a dynamic run (default 0)")
    c.add_argument("--crop", metavar="XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX",
                   help="world-unit box: only points inside it are kept; default: no crop")
    c.add_argument("--out", help="output .ply or .splat (default RUN/export/pointcloud.ply)")
    add_device_argument(c)
    c.set_defaults(handler=run_pointcloud)
    g = kinds.add_parser("splats", help="the run's Gaussian splats (distill RUN --student gaussians) as .ply or .splat",
                         description="Write the splats of a run in the INRIA 3DGS .ply layout (every splat viewer "
                                     "reads it) or antimatter15's .splat, in a splat viewer's frame (scene centre "
                                     "at the origin, up = -y, cameras 5 units away) unless --world.")
    g.add_argument("run", type=run_dir, help="run folder with splats/ (or a splat run folder)")
    g.add_argument("--out", help="output .ply or .splat (default RUN/splats/scene.ply)")
    g.add_argument("--world", action="store_true", help="keep the run's world frame (no viewer transform)")
    g.set_defaults(handler=run_splats)
    p.set_defaults(handler=lambda args: _missing_kind(p))


def _missing_kind(parser) -> int:
    parser.print_help()
    return 2


def run_mesh(args: argparse.Namespace) -> int:
    from ..export.mesh import MESHERS, MeshConfig, export_mesh, mesh_format, save_mesh
    from ..export.tsdf import TSDFConfig
    from ..scene_model import load_model

    if args.method not in MESHERS:
        raise NeuralFieldsError(f"--method: unknown method '{args.method}'; choose from {', '.join(MESHERS)}")
    out = Path(args.out) if args.out else args.run / "export" / f"mesh.{args.format or 'ply'}"
    fmt = mesh_format(out, args.format)
    cfg = MeshConfig(method=args.method, resolution=number_flag(args.resolution, "--resolution", int),
                     threshold=number_flag(args.threshold, "--threshold"), bbox=bbox_flag(args.bbox),
                     crop=crop_flag(args.crop),
                     time=unit_flag(args.time, "--time"), keep_fraction=unit_flag(args.keep_fraction, "--keep-fraction"),
                     simplify=number_flag(args.simplify, "--simplify", int), colors=not args.no_color,
                     tsdf=TSDFConfig(views=number_flag(args.views, "--views", int),
                                     downscale=number_flag(args.view_downscale, "--view-downscale")))
    require_run(args.run)
    model, state = load_model(args.run, device=device_from(args))
    start = time.perf_counter()
    mesh = export_mesh(model, cfg)
    path = save_mesh(mesh, out, fmt)
    summary = {"run": str(args.run), "step": state.get("step"), "file": str(path), "method": cfg.method,
               "resolution": cfg.resolution, "vertices": len(mesh.vertices), "faces": len(mesh.faces),
               "voxel_size": mesh.metadata.get("voxel_size"), "level": mesh.metadata.get("level"),
               "seconds": round(time.perf_counter() - start, 2)}
    path.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{summary['faces']:,} faces, {summary['vertices']:,} vertices ({cfg.method}, "
          f"{summary['seconds']:.1f} s) -> {path}")
    return 0


def run_pointcloud(args: argparse.Namespace) -> int:
    from ..export.pointcloud import PointCloudConfig, export_pointcloud, save_pointcloud
    from ..export.splat import save_splat, scene_transform
    from ..scene_model import load_model

    out = Path(args.out) if args.out else args.run / "export" / "pointcloud.ply"
    if out.suffix.lower() not in POINT_FORMATS:
        raise NeuralFieldsError(f"--out {out}: point clouds are written as {' or '.join(POINT_FORMATS)}")
    cfg = PointCloudConfig(crop=crop_flag(args.crop), views=number_flag(args.views, "--views", int),
                           downscale=number_flag(args.downscale, "--downscale"),
                           opacity_threshold=unit_flag(args.opacity, "--opacity"),
                           max_points=number_flag(args.max_points, "--max-points", int), time=unit_flag(args.time, "--time"))
    require_run(args.run)
    model, _ = load_model(args.run, device=device_from(args))
    points, colors = export_pointcloud(model, cfg)
    if out.suffix.lower() == ".splat":
        path = save_splat(points, colors, out, transform=scene_transform(model.info))
    else:
        path = save_pointcloud(points, colors, out)
    print(f"{len(points):,} points -> {path}")
    return 0


def run_splats(args: argparse.Namespace) -> int:
    from ..export.splat import scene_transform
    from ..splats.io import save_splats
    from ..splats.model import load_splats, splat_run_dir

    require_run(args.run)
    out = Path(args.out) if args.out else splat_run_dir(args.run) / "scene.ply"
    model, state = load_splats(args.run)
    transform = None if args.world else scene_transform(model.info)
    path = save_splats(model.scene, out, transform)
    print(f"{len(model.scene):,} Gaussians (SH degree {int(model.scene.active_degree)}, step {state.get('step')}) "
          f"-> {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0
