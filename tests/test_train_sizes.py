"""Size settings of training (``--image-size``, ``--max-image-size``, ``--kd-teacher-size``):
a value the model cannot run or that would silently do nothing is a ConfigError naming the
flag, raised before the run directory, the data or the teacher is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rapsam_edge.cli import main  # noqa: E402
from rapsam_edge.errors import ConfigError  # noqa: E402
from rapsam_edge.train.batches import check_sizes, training_sides  # noqa: E402
from rapsam_edge.train.config import TrainConfig  # noqa: E402


@pytest.mark.parametrize(
    "image_size, max_image_size, match",
    [
        (320, -64, "max_image_size -64: network sides are multiples of 32"),
        (320, 500, "multiples of 32"),
        (200, 0, "image_size 200: network sides are multiples of 32"),
        (200, 200, "image_size 200"),
        (0, 0, "image_size 0"),
        (-320, 640, "image_size -320"),
        (16, 0, "image_size 16"),
        (320, "640", "max_image_size is '640', not an integer"),
        (320, 640.0, "not an integer"),
        (True, 0, "image_size is True, not an integer"),
        (640, 320, "below"),
        (320, 100_000, "max_image_size 100000 is above the runtime's largest network side"),
        (8192, 0, "image_size 8192 is above"),
    ],
)
def test_training_sides_refuse_what_the_model_cannot_run(image_size, max_image_size, match):
    with pytest.raises(ConfigError, match=match):
        training_sides(image_size, max_image_size)


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(variant="edge-xs", data=str(tmp_path / "data"), out=str(tmp_path / "run"))
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(kd_teacher_size=200, teacher="t", max_image_size=640), "kd_teacher_size 200"),
        (dict(kd_teacher_size=-320, teacher="t", max_image_size=640), "kd_teacher_size -320"),
        (dict(kd_teacher_size="320", teacher="t", max_image_size=640), "not an integer"),
        (dict(kd_teacher_size=320, max_image_size=640), "without a teacher"),
        (dict(kd_teacher_size=640, teacher="t", max_image_size=640), "never see a smaller"),
        (dict(kd_teacher_size=960, teacher="t", max_image_size=640), "not below the largest"),
        (dict(kd_teacher_size=320, teacher="t"), "not below the largest training side 320"),
    ],
)
def test_kd_teacher_size_refusals(tmp_path: Path, kw, match):
    with pytest.raises(ConfigError, match=match):
        check_sizes(_cfg(tmp_path, **kw))


def test_kd_teacher_size_meanings_that_stay(tmp_path: Path):
    """0 is off; a side below the smallest batch side scales every batch down."""
    cfg = _cfg(tmp_path, teacher="t", max_image_size=640)
    assert check_sizes(cfg) == tuple(range(320, 641, 32))
    cfg.kd_teacher_size = 320
    assert check_sizes(cfg)[-1] == 640
    cfg.kd_teacher_size = 256
    assert check_sizes(cfg)[0] == 320


def test_train_refuses_bad_sizes_before_any_work(tmp_path: Path):
    from rapsam_edge.train.trainer import train

    cfg = _cfg(tmp_path, image_size=200)
    with pytest.raises(ConfigError, match="image_size 200"):
        train(cfg)
    assert not (tmp_path / "run").exists()  # no run directory, no train_config.json


def test_train_step_refuses_a_teacher_size_the_model_cannot_run():
    from rapsam_edge.model import build_model
    from rapsam_edge.train.trainer import TrainStep

    model = build_model("edge-xs", num_classes=3)
    with pytest.raises(ConfigError, match="kd_teacher_size 100"):
        TrainStep(model, teacher=model, teacher_size=100)


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--kd-teacher-size", "200", "--max-image-size", "640"], "kd_teacher_size 200"),
        (["--kd-teacher-size", "640", "--max-image-size", "640"], "never see a smaller"),
        (["--max-image-size", "500"], "multiples of 32"),
        (["--image-size", "300"], "image_size 300"),
    ],
)
def test_distill_cli_names_the_bad_size_before_loading_anything(tmp_path, capsys, flags, said):
    (tmp_path / "data").mkdir()
    (tmp_path / "teacher").mkdir()  # an empty "run": loading it would fail differently
    argv = ["distill", "--data", str(tmp_path / "data"), "--teacher", str(tmp_path / "teacher")]
    rc = main([*argv, "--out", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert rc != 0 and said in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
