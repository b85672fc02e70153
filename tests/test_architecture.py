"""The shape of the package: who owns what, and which way imports point (read from the source)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neuralfields"
VIEWER = PACKAGE.parent / "viewer"
ROOT = PACKAGE.parent


def sources(*roots: Path) -> dict[Path, str]:
    return {p: p.read_text() for root in roots for p in sorted(root.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """Absolute dotted names of the package modules ``path`` imports (relative imports resolved)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_nobody_reaches_through_the_model_to_hand_it_its_field():
    found = [f"{p.name}:{i + 1}" for p, text in sources(PACKAGE, VIEWER).items()
             for i, line in enumerate(text.splitlines()) if "renderer.render_" in line]
    assert not found, found


def test_the_loop_and_the_trainers_probe_nothing():
    """Samplers, batch sources, objectives and models answer one interface: no hasattr, no getattr
    with a default, in the loop, the scene model or any trainer."""
    probing = re.compile(r"\bhasattr\(|\bgetattr\([^()]*,[^()]*,")
    files = [*(PACKAGE / "loop").glob("*.py"), PACKAGE / "scene_model.py", PACKAGE / "train" / "scene.py",
             PACKAGE / "distill" / "pvd.py", PACKAGE / "fit" / "fitting.py"]
    found = [f"{p.name}:{i + 1}" for p in files for i, line in enumerate(p.read_text().splitlines())
             if probing.search(line)]
    assert not found, found


def test_samplers_know_no_field_and_no_config():
    for path in (PACKAGE / "render" / "samplers").glob("*.py"):
        bad = {m for m in imported_modules(path)
               if m.startswith(("neuralfields.fields", "neuralfields.config", "neuralfields.distributed"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_one_factory_builds_every_run():
    """Scene training, distillation and fitting get their loop from ``make_loop``; nothing else
    constructs a ``TrainLoop``."""
    builders = [p.relative_to(PACKAGE).as_posix() for p, text in sources(PACKAGE).items() if "TrainLoop(" in text]
    assert builders == ["loop/build.py"], builders
    for trainer in ("train/scene.py", "distill/pvd.py", "fit/fitting.py"):
        assert "make_loop(" in (PACKAGE / trainer).read_text(), trainer


def test_one_atomic_json_writer_one_weights_helper():
    writers = [p.relative_to(PACKAGE).as_posix() for p, text in sources(PACKAGE, VIEWER).items()
               if "os.replace(" in text or ".replace(out)" in text]
    assert len(writers) <= 2, writers  # the atomic module (and checkpoint backups)
    weights = [p.name for p, text in sources(PACKAGE).items() if re.search(r"1(\.0)? - torch\.exp\(-tau\)", text)]
    assert weights == ["compositing.py"], weights


def test_consumers_of_a_run_never_import_the_trainer():
    code = ("import sys; import neuralfields.scene_model, neuralfields.fit, neuralfields.distill, neuralfields.export.mesh, "
            "neuralfields.export.tsdf, neuralfields.export.video, neuralfields.export.pointcloud, viewer; "
            "bad = sorted(m for m in sys.modules if m == 'neuralfields.train' or m.startswith('neuralfields.train.')); "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"imported the trainer: {result.stdout} {result.stderr[-500:]}"


def test_tsdf_fusion_does_not_import_the_mesher():
    """Mesh export uses TSDF fusion as one of its meshers; both share the volume module, so the
    import goes one way."""
    assert "from .mesh" not in (ROOT / "neuralfields" / "export" / "tsdf.py").read_text()
