"""Where the shipped default bundle and sample clip live: inside the installed package
(``rapsam_edge/models``, copied there at install time) or in a source checkout (``models/``)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_BUNDLE = "edge-xs-synthetic"
SAMPLE_CLIP = "samples/synthetic_clip.mp4"


def models_dir() -> Path:
    """The installed copy if present, else the repository's ``models/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "models", here.parent / "models"):
        if (candidate / DEFAULT_BUNDLE / "manifest.json").exists():
            return candidate
    raise FileNotFoundError(
        f"the shipped bundle {DEFAULT_BUNDLE!r} was found neither in {here / 'models'} nor in "
        f"{here.parent / 'models'}; reinstall rapsam-edge or pass a bundle path"
    )


def default_bundle() -> Path:
    return models_dir() / DEFAULT_BUNDLE


def sample_clip() -> Path:
    return models_dir() / SAMPLE_CLIP
