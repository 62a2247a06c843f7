"""Probe images: synthetic faces with region masks, and the probe-set folder format."""

from xaigate.probes.faces import (
    TASK_CLASSES,
    VARIANTS,
    Face,
    faces_to_arrays,
    generate_faces,
    relit,
    with_glasses,
    with_mouth_mask,
)
from xaigate.probes.probe_set import Probe, ProbeSet, load_probe_set, write_probe_set

__all__ = [
    "TASK_CLASSES",
    "VARIANTS",
    "Face",
    "Probe",
    "ProbeSet",
    "faces_to_arrays",
    "generate_faces",
    "load_probe_set",
    "relit",
    "with_glasses",
    "with_mouth_mask",
    "write_probe_set",
]
