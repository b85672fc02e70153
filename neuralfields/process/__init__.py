"""Captures to posed datasets: photos or a video -> structure from motion (pycolmap) -> dataset folder.

* :mod:`.frames`: the input images (photos copied upright, or the sharpest video frames);
* :mod:`.sfm`: SIFT features, matching and incremental mapping with pycolmap, with progress bars;
* :mod:`.write`: ``transforms.json`` (instant-ngp / nerfstudio), the sparse points, downscaled copies;
* :mod:`.pipeline`: the stages in order, written atomically into the dataset folder.
"""

from .pipeline import ProcessConfig, ProcessResult, process_capture
from .sfm import SfmOptions

__all__ = ["ProcessConfig", "ProcessResult", "SfmOptions", "process_capture"]
