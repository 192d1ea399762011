"""The on-device FPS profiler (runtime side, torch-free): ``run_profile(ProfileConfig(...))``
times a bundle through ``Segmenter`` per stage and end to end, with memory, Jetson telemetry,
the environment and, optionally, the backends' own per-operator times. ``rapsam-edge
profile`` is its command line."""

from .runner import MODES, ProfileConfig, Target, run_profile

__all__ = ["MODES", "ProfileConfig", "Target", "run_profile"]
