"""What a student takes over from its teacher: the occupancy grid, and the colour head if it fits.

- Occupancy grid: always. The teacher's grid decides where both fields are sampled during
  distillation, and the student's run keeps it, so the student renders through exactly the
  space it was trained on (its density outside that space was never supervised, so a grid
  rebuilt from the student alone could light up cells the teacher knows are empty). Grids of
  another resolution are resampled by looking up the teacher's grid at the cell centres.
- Colour head: when the student has a colour module at the same place as the teacher's
  (``color_net`` in ngp and triplane, ``color_head`` in the MLP fields; nested ones such as
  ``canonical.color_net`` in ``deform`` too) with the same parameter names and shapes, it is
  copied, and kept only if the two fields then give the same colours for the same geometry
  features and directions (activations outside the module, direction encodings and time
  modulation differ between fields, so matching shapes alone prove nothing). The student then
  only has to reproduce the teacher's features, which stage 1 trains directly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..device import module_device
from ..fields.base import Field
from ..render.occupancy import OccupancyGrid

COLOR_HEAD_NAMES = ("color_net", "color_head")  # module names of colour heads in the registered fields


@torch.no_grad()
def transfer_grid(source: OccupancyGrid, target: OccupancyGrid) -> str:
    """Give ``target`` the occupancy of ``source``; returns ``"copied"`` or ``"resampled"``."""
    same = (source.resolution == target.resolution and source.levels == target.levels
            and torch.allclose(source.aabb.cpu(), target.aabb.cpu()))
    if same:
        target.load_state_dict(source.state_dict())
        return "copied"
    n = target.resolution**3
    for level in range(target.levels):
        centres = target.to_world(level, target.cell_points(level, torch.arange(n, device=target.density.device),
                                                            jitter=False))
        occupied = source.lookup(centres.to(source.density.device)).to(centres.device) & ~target.hidden[level]
        target.binary[level] = occupied
        target.density[level] = occupied.float()
    target.updates.fill_(int(source.updates))
    return "resampled"


def _color_modules(field: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in field.named_modules() if name.split(".")[-1] in COLOR_HEAD_NAMES}


def _same_shapes(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


@torch.no_grad()
def _same_colors(teacher: Field, student: Field, n: int = 256) -> bool:
    gen = torch.Generator().manual_seed(0)  # the same probe on every device: drawn on the CPU, then moved
    x = torch.rand(n, teacher.in_dim, generator=gen) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)
    geo = torch.randn(n, teacher.geo_dim, generator=gen)
    t = torch.rand(n, 1, generator=gen) if teacher.time_dependent else None
    modes = teacher.training, student.training
    teacher.eval(), student.eval()

    def on(field: Field):
        device = module_device(field)
        return [None if v is None else v.to(device) for v in (x, d, geo, t)]

    try:
        a, b = teacher.color(*on(teacher)), student.color(*on(student))
        b = b.to(a.device)
    except (RuntimeError, ValueError, IndexError):
        return False
    finally:
        teacher.train(modes[0]), student.train(modes[1])
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-5)


def inherit_color_head(teacher: Field, student: Field) -> list[str]:
    """Copy the teacher's colour head(s) into the student where they fit; returns the module names copied."""
    if teacher.geo_dim != student.geo_dim:
        return []
    student_heads = _color_modules(student)
    pairs = [(name, t_mod, student_heads[name]) for name, t_mod in _color_modules(teacher).items()
             if name in student_heads and _same_shapes(t_mod, student_heads[name])]
    if not pairs:
        return []
    backup = [copy.deepcopy(s_mod.state_dict()) for _, _, s_mod in pairs]
    for _, t_mod, s_mod in pairs:
        s_mod.load_state_dict(t_mod.state_dict())
    if _same_colors(teacher, student):
        return [name for name, _, _ in pairs]
    for (_, _, s_mod), state in zip(pairs, backup):
        s_mod.load_state_dict(state)
    return []


def inherited_parameters(student: Field, names: list[str]) -> list[nn.Parameter]:
    """Parameters of the student modules named ``names``."""
    modules = dict(student.named_modules())
    return [p for name in names for p in modules[name].parameters()]
