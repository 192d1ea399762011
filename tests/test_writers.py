"""Output files are checked (``apps/writers.py``): a verb prints "wrote X" only when X exists
and holds what was written; otherwise it fails with a one-line ``OutputError`` naming the
file (exit 2), before the bundle loads where the path alone shows the problem. The video
writer must open, a frame of another size is letterboxed to the first one's (not dropped),
and the file is read back at the end."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from rapsam_edge.apps import writers
from rapsam_edge.apps.video import process_stream
from rapsam_edge.apps.writers import VideoOut, check_output, write_image
from rapsam_edge.assets import sample_clip
from rapsam_edge.cli import main
from rapsam_edge.errors import OutputError
from rapsam_edge.runtime.segmenter import Segmenter


@pytest.fixture(scope="module")
def seg(shipped_bundle):
    s = Segmenter(shipped_bundle, "ort-cpu", color_order="BGR")
    yield s
    s.close()


def _frames(sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def _video_frames(path) -> tuple[int, tuple[int, int]]:
    """(frames decoded, (H, W) of the first) of a video file."""
    cap = cv2.VideoCapture(str(path))
    n, hw = 0, (0, 0)
    while True:
        ok, f = cap.read()
        if not ok:
            break
        hw = hw if n else f.shape[:2]
        n += 1
    cap.release()
    return n, hw


def _fails_before_loading(argv, capsys, match: str) -> None:
    """The verb exits 2 with one line naming the file, before the bundle loads (nothing
    printed on stdout: no "bundle ..." line, no "wrote ...")."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err, (out, err)
    assert err.startswith("rapsam-edge: error: cannot write") and match in err, err
    assert "rapsam-edge: hint:" in err


# ---------------------------------------------------------------------------- the CLI
def test_run_refuses_a_video_path_that_is_a_directory(tmp_path, capsys):
    (tmp_path / "track.mp4").mkdir()
    argv = ["run", "--source", str(sample_clip()), "--backend", "ort-cpu"]
    _fails_before_loading([*argv, "--out", str(tmp_path)], capsys, "track.mp4': it is a dir")


def test_run_refuses_an_image_path_that_is_a_directory(tmp_path, capsys):
    src = tmp_path / "x.png"
    cv2.imwrite(str(src), _frames([(40, 50)])[0])
    (tmp_path / "out" / "x_panoptic.png").mkdir(parents=True)
    argv = ["run", "--source", str(src), "--backend", "ort-cpu", "--out", str(tmp_path / "out")]
    _fails_before_loading(argv, capsys, "x_panoptic.png': it is a directory")


def test_run_refuses_an_out_folder_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    argv = ["run", "--source", str(sample_clip()), "--out", str(tmp_path / "afile" / "sub")]
    _fails_before_loading(argv, capsys, "afile' is not a directory")


def test_demo_refuses_any_of_its_files_being_a_directory(tmp_path, capsys):
    for name in ("panoptic.png", "prompts.png", "tracking.mp4", "tracks.mp4", "timings.json"):
        out = tmp_path / name.split(".")[0]
        (out / name).mkdir(parents=True)
        argv = ["demo", "--backend", "ort-cpu", "--repeats", "1", "--out", str(out)]
        _fails_before_loading(argv, capsys, f"{name}': it is a directory")


def test_profile_benchmark_and_eval_check_their_files_before_running(tmp_path, capsys):
    (tmp_path / "dir.json").mkdir()
    profile = ["profile", "--iters", "1", "--warmup", "0", "--backend", "ort-cpu"]
    _fails_before_loading([*profile, "--json", str(tmp_path / "dir.json")], capsys, "dir.json")
    _fails_before_loading([*profile, "--markdown", str(tmp_path / "dir.json")], capsys, "dir")
    pytest.importorskip("matplotlib")
    plot = str(tmp_path / "plot.unknownformat")
    _fails_before_loading([*profile, "--plot", plot], capsys, "the suffix must be one of")
    (tmp_path / "table.md").mkdir()
    bench = ["benchmark", "--no-fresh", "--iters", "1", "--out", str(tmp_path / "table")]
    _fails_before_loading(bench, capsys, "table.md': it is a directory")
    data = tmp_path / "data"
    data.mkdir()
    evaluate = ["eval", "--data", str(data), "--json", str(tmp_path / "dir.json")]
    _fails_before_loading(evaluate, capsys, "dir.json': it is a directory")


def test_run_prints_wrote_only_for_a_checked_file(tmp_path, capsys):
    argv = ["run", "--source", str(sample_clip()), "--backend", "ort-cpu", "--max-frames", "4"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'track.mp4'} (4 frames, checked)" in out
    assert _video_frames(tmp_path / "track.mp4")[0] == 4


def test_run_fails_when_the_video_writer_does_not_open(tmp_path, capsys, monkeypatch):
    """A writer that does not open (a codec this OpenCV lacks) is an OutputError at the
    first frame, and nothing claims the file was written."""

    class NeverOpens:
        fourcc = staticmethod(cv2.VideoWriter.fourcc)

        def __init__(self, *args):
            pass

        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(writers.cv2, "VideoWriter", NeverOpens)
    argv = ["run", "--source", str(sample_clip()), "--backend", "ort-cpu", "--max-frames", "2"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert "wrote" not in out and "Traceback" not in err
    assert "video writer does not open it (FourCC mp4v, avc1" in err
    assert not (tmp_path / "track.mp4").exists()


# ---------------------------------------------------------------------------- the writers
@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_frame_size_change_is_letterboxed_not_dropped(seg, tmp_path, caplog, suffix):
    """Frames of another size go into the file letterboxed to the first frame's size, with
    one WARNING; the file holds every frame."""
    frames = _frames([(120, 160)] * 3 + [(100, 200)] * 3 + [(240, 120)] * 2)
    path = tmp_path / f"v{suffix}"
    with caplog.at_level(logging.WARNING, logger=writers.__name__):
        _, n, _ = process_stream(seg, frames, task="track", out_video=path)
    assert n == 8 and _video_frames(path) == (8, (120, 160))
    warnings = [r for r in caplog.records if "letterboxed" in r.getMessage()]
    assert len(warnings) == 1 and "frame 3 is 200 x 100" in warnings[0].getMessage()


def test_letterbox_keeps_the_aspect_on_black():
    frame = np.full((100, 200, 3), 255, np.uint8)
    out = writers._letterbox(frame, (120, 160))
    assert out.shape == (120, 160, 3)
    assert (out[:20] == 0).all() and (out[-20:] == 0).all() and (out[20:100] == 255).all()


def test_a_short_file_is_an_error_not_a_success(tmp_path, monkeypatch):
    """A writer that loses frames (a full disk, a broken codec) leaves a file with fewer
    frames than written: ``close`` reads it back and refuses it."""
    real = cv2.VideoWriter

    class Lossy:
        fourcc = staticmethod(real.fourcc)

        def __init__(self, *args):
            self.w, self.n = real(*args), 0

        def isOpened(self):
            return self.w.isOpened()

        def write(self, frame):
            self.n += 1
            if self.n % 2:
                self.w.write(frame)

        def release(self):
            self.w.release()

    monkeypatch.setattr(writers.cv2, "VideoWriter", Lossy)
    video = VideoOut(tmp_path / "v.mp4", what="the test video")
    for f in _frames([(64, 64)] * 6):
        video.write(f)
    with pytest.raises(OutputError, match=r"holds 3 frames, 6 were written"):
        video.close()


def test_video_out_refuses_bad_paths_and_an_empty_video(tmp_path):
    with pytest.raises(OutputError, match=r"suffix must be one of \['.avi', '.mp4'\]"):
        VideoOut(tmp_path / "v.mkv")
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(OutputError, match="it is a directory"):
        VideoOut(tmp_path / "d.mp4")
    with pytest.raises(OutputError, match="no frame to write"):
        VideoOut(tmp_path / "empty.mp4").close()
    assert not (tmp_path / "empty.mp4").exists()


def test_write_image_checks_what_it_wrote(tmp_path, monkeypatch):
    image = _frames([(30, 40)])[0]
    assert cv2.imread(str(write_image(tmp_path / "a" / "x.png", image))).shape == (30, 40, 3)
    with pytest.raises(OutputError, match="suffix must be one of"):
        write_image(tmp_path / "x.unknown", image)
    monkeypatch.setattr(writers.cv2, "imwrite", lambda *a: False)
    with pytest.raises(OutputError, match="imwrite failed"):
        write_image(tmp_path / "y.png", image)
    monkeypatch.setattr(writers.cv2, "imwrite", lambda p, img: open(p, "wb").close() or True)
    with pytest.raises(OutputError, match="is empty"):
        write_image(tmp_path / "z.png", image)


def test_check_output_makes_the_folder(tmp_path):
    path = check_output(tmp_path / "a" / "b" / "c.json", "the report")
    assert path.parent.is_dir() and not path.exists()


def test_check_written_refuses_a_missing_or_empty_file(tmp_path):
    from rapsam_edge.apps.writers import check_written

    with pytest.raises(OutputError, match="is missing after writing it"):
        check_written(tmp_path / "none.json", "the report")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(OutputError, match="is empty or not a file after writing it"):
        check_written(tmp_path / "empty.json", "the report")
    (tmp_path / "ok.json").write_text("{}")
    assert check_written(tmp_path / "ok.json", "the report") == tmp_path / "ok.json"
