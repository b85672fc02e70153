"""Fields: registered coordinate networks behind one small protocol (see :mod:`.base`)."""

from .base import FIELDS, Field, build_field, field_config, register_field, resolved_options, trunc_exp

# Each module registers its fields on import.
from . import ngp, mlp_field, nerf, siren, wire, cam  # noqa: E402,F401
from . import triplane, kplanes, deform  # noqa: E402,F401

__all__ = ["FIELDS", "Field", "build_field", "field_config", "register_field", "resolved_options", "trunc_exp"]
