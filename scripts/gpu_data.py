"""Copy the data of the GPU check into the checkout, so that it travels to the GPU machine.

The lent GPU machine gets the working tree (and ignored paths named as ``carry``), not
``../shared``: this copies NeRF-synthetic lego's 100 train views at 800x800 and 10 of its val
views (spread over the orbit), each split with its transforms JSON, into ``gpu_data/lego``
(ignored by git; about 46 MB) and prints the ``carry`` path for ``scripts/gpu_check.sh``.

    python scripts/gpu_data.py                          # ../shared/data/nerf_synthetic/lego -> gpu_data/lego
    python scripts/gpu_data.py --source DIR --dest DIR --val 10
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"
DEST = ROOT / "gpu_data" / "lego"


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``k >= n``)."""
    if k >= n:
        return list(range(n))
    return [round(i * (n - 1) / max(k - 1, 1)) for i in range(k)] if k > 1 else [0]


def image_file(root: Path, file_path: str) -> Path:
    """The image a frame's ``file_path`` names (the extension is optional in the Blender layout)."""
    path = root / file_path
    if path.suffix:
        return path
    return path.with_suffix(".png")


def copy_split(source: Path, dest: Path, split: str, keep: int | None) -> tuple[int, int]:
    """Copy ``transforms_{split}.json`` (its frames cut to ``keep`` spread ones) and the images it
    names; returns (frames, bytes copied). Files already there with the same size are kept."""
    meta = json.loads((source / f"transforms_{split}.json").read_text())
    frames = meta["frames"]
    if keep is not None:
        frames = [frames[i] for i in spread(len(frames), keep)]
    total = 0
    for frame in frames:
        src = image_file(source, frame["file_path"])
        if not src.is_file():
            raise SystemExit(f"{src}: image named by transforms_{split}.json not found")
        dst = dest / src.relative_to(source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not (dst.is_file() and dst.stat().st_size == src.stat().st_size):
            shutil.copyfile(src, dst)
        total += src.stat().st_size
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"transforms_{split}.json").write_text(json.dumps({**meta, "frames": frames}, indent=2))
    return len(frames), total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, default=SOURCE, help="NeRF-synthetic lego folder (800x800)")
    p.add_argument("--dest", type=Path, default=DEST, help="where the copy goes (default gpu_data/lego)")
    p.add_argument("--val", type=int, default=10, help="val views to keep")
    args = p.parse_args(argv)
    if not (args.source / "transforms_train.json").is_file():
        print(f"{args.source}: no NeRF-synthetic lego there (transforms_train.json missing)", file=sys.stderr)
        return 1
    n_train, train_bytes = copy_split(args.source, args.dest, "train", None)
    n_val, val_bytes = copy_split(args.source, args.dest, "val", args.val)
    dest = args.dest.resolve()
    carry = dest.relative_to(ROOT).parts[0] if dest.is_relative_to(ROOT) else str(dest)
    print(f"{dest}: {n_train} train + {n_val} val views, {(train_bytes + val_bytes) / 1e6:.0f} MB")
    print(f"carry: {carry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
