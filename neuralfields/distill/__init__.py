"""Progressive Volume Distillation (PVD, PVD-AL): convert any trained field into any other.

``neuralfields distill TEACHER_RUN --student FIELD`` writes a normal run folder for the student;
see docs/distill.md. Modules: :mod:`.config` (settings), :mod:`.teacher` (loading the teacher,
the student's run config), :mod:`.poses` (distillation cameras), :mod:`.losses`,
:mod:`.active` (PVD-AL pools), :mod:`.inherit` (grid and colour head), :mod:`.pvd` (stages,
the batch source and objective the training loop runs).
"""

from .config import ActiveConfig, DistillConfig, PoseConfig, StageWeights, apply_distill_overrides
from .pvd import DistillObjective, StageSchedule, TeacherCameras, distill_trainer, load_val_scene, set_steps
from .teacher import check_student, load_teacher, student_config

__all__ = ["ActiveConfig", "DistillConfig", "DistillObjective", "PoseConfig", "StageSchedule", "StageWeights",
           "TeacherCameras", "apply_distill_overrides", "check_student", "distill_trainer", "load_teacher",
           "load_val_scene", "set_steps", "student_config"]
