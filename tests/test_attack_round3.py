"""Cases of issue 26's fault kinds that the first fixes missed (the round-3 attacker's table).

* Hangs: an OUTPUT path that is a named pipe (``profile --json``, ``benchmark --out``,
  ``eval --json``: ``open(fifo, "w")`` waits for a reader forever) and a dataset annotation
  JSON that is a named pipe (``eval`` / ``train`` / ``quantize --val`` read it with
  ``read_text``). Each case runs in a child under a timeout, so a regression fails, not hangs.
* Memory: an RLE (a 40-byte dict inside a dataset or results JSON) declaring a
  100,000 x 100,000 frame made ``rle_decode`` allocate 10 GB (19 GB with the numpy twin);
  an mmdet-layout polygon on such a frame allocated 2 x H x W bytes while the file was read;
  a 4 MB YouTube-VIS file listing one image 100,000 times made `eval` grow past 2.7 GB.
* Tracebacks: an error raised in a DataLoader worker (``train --workers N``) printed the
  worker's whole traceback as its "one line".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rapsam_edge
from rapsam_edge.errors import DatasetError, InputError, OutputError

#: where the rapsam_edge this test imports lives (children import the same one)
PKG_ROOT = Path(rapsam_edge.__file__).resolve().parents[1]
TIMEOUT = 120  # generous on a busy machine; the cases end in well under 10 s alone


def _child(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a child Python that imports the rapsam_edge this test imports (the source
    tree in a dev checkout, the installed package in CI, whose source tree has no core)."""
    env = {**os.environ, "PYTHONPATH": str(PKG_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=PKG_ROOT,
        env=env,
    )


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


@needs_fifo
@pytest.mark.parametrize("suffix", [".json", ".md", ".png", ".mp4"])
def test_an_output_path_that_is_a_named_pipe_is_refused_before_opening(tmp_path, suffix):
    fifo = tmp_path / f"out{suffix}"
    os.mkfifo(fifo)
    code = (
        "from rapsam_edge.apps.writers import check_output\n"
        "from rapsam_edge.errors import OutputError\n"
        f"try:\n    check_output({str(fifo)!r}, 'the report')\n"
        "except OutputError as e:\n    print('refused:', e)\n"
    )
    out = _child(code)
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "named pipe" in out.stdout


def test_an_output_path_that_is_a_device_is_refused():
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    from rapsam_edge.apps.writers import check_output

    with pytest.raises(OutputError, match="not a regular file"):
        check_output(Path("/dev/null"), "the report")


def test_a_new_or_regular_output_path_is_still_accepted(tmp_path):
    from rapsam_edge.apps.writers import check_output

    assert check_output(tmp_path / "sub" / "new.json", "the report").parent.is_dir()
    existing = tmp_path / "old.json"
    existing.write_text("{}")
    assert check_output(existing, "the report") == existing


@needs_fifo
def test_profile_json_on_a_named_pipe_fails_before_the_run(tmp_path):
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    code = (
        "import sys\nfrom rapsam_edge.cli import main\n"
        f"sys.exit(main(['profile', 'edge-xs-synthetic', '--iters', '1', '--warmup', '0', "
        f"'--no-progress', '--json', {str(fifo)!r}]))\n"
    )
    out = _child(code)
    assert out.returncode == 2, out.stderr
    assert "named pipe" in out.stderr and "Traceback" not in out.stderr


@needs_fifo
def test_a_dataset_json_that_is_a_named_pipe_is_refused(tmp_path):
    fifo = tmp_path / "panoptic_val.json"
    os.mkfifo(fifo)
    code = (
        "from rapsam_edge.data.jsonfile import read_json\n"
        "from rapsam_edge.errors import DatasetError\n"
        f"try:\n    read_json({str(fifo)!r}, 'COCO panoptic annotations')\n"
        "except DatasetError as e:\n    print('refused:', e)\n"
    )
    out = _child(code)
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "named pipe" in out.stdout


@needs_fifo
def test_eval_on_a_dataset_whose_annotations_are_a_named_pipe(tmp_path):
    ann = tmp_path / "data" / "coco" / "annotations"
    ann.mkdir(parents=True)
    os.mkfifo(ann / "panoptic_val.json")
    code = (
        "import sys\nfrom rapsam_edge.cli import main\n"
        f"sys.exit(main(['eval', '--bundle', 'edge-xs-synthetic', '--data', "
        f"{str(tmp_path / 'data')!r}, '--max-videos', '0', '--quiet']))\n"
    )
    out = _child(code)
    assert out.returncode == 2, out.stderr
    assert "named pipe" in out.stderr and "Traceback" not in out.stderr


def test_dataset_json_nested_too_deeply_is_a_dataset_error(tmp_path):
    from rapsam_edge.data.jsonfile import read_json

    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DatasetError, match="nested too deeply"):
        read_json(path, "annotations")


def test_dataset_json_reads_as_before(tmp_path):
    from rapsam_edge.data.jsonfile import read_json

    path = tmp_path / "a.json"
    path.write_text(json.dumps({"images": [1, 2], "categories": []}))
    assert read_json(path) == {"images": [1, 2], "categories": []}
    bad = tmp_path / "b.json"
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(DatasetError, match="cannot read"):
        read_json(bad)


@pytest.mark.parametrize("impl", ["cpp", "numpy"])
@pytest.mark.parametrize(
    "rle",
    [
        {"size": [100_000, 100_000], "counts": [10**10]},
        {"size": [30_000, 30_000], "counts": [9 * 10**8]},
        {"size": [1, 2**40], "counts": [2**40]},
    ],
)
def test_rle_decode_refuses_a_size_over_the_frame_limit_before_allocating(impl, rle):
    code = (
        "from rapsam_edge.ops import rle_decode\n"
        "from rapsam_edge.errors import InputError\n"
        f"try:\n    rle_decode({rle!r})\n"
        "except InputError as e:\n    print('refused:', e)\n"
        # VmHWM: this process's own peak (ru_maxrss carries the forked parent's over exec)
        "print('peak_kb', [l.split()[1] for l in open('/proc/self/status')"
        " if l.startswith('VmHWM:')][0])\n"
    )
    env_impl = {**os.environ, "RAPSAM_EDGE_OPS": impl, "PYTHONPATH": str(PKG_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=PKG_ROOT,
        env=env_impl,
    )
    if impl == "cpp" and "CoreUnavailable" in out.stderr:
        pytest.skip("the compiled core is not built here")
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "frame limit" in out.stdout
    peak_kb = int(out.stdout.split("peak_kb")[1])
    assert peak_kb < 1_000_000  # 1 GB: the target for any input under 10 MB


def test_rle_decode_still_decodes_up_to_the_frame_limit_and_lists():
    from rapsam_edge.contract.shared import MAX_FRAME_PIXELS
    from rapsam_edge.ops import rle_decode, rle_encode

    mask = np.zeros((3, 4), bool)
    mask[1, 2] = True
    rle = rle_encode(mask)
    assert (rle_decode(rle) == mask).all()
    assert rle_decode([rle, rle]).shape == (2, 3, 4)
    side = int(MAX_FRAME_PIXELS**0.5)
    big = {"size": [side, MAX_FRAME_PIXELS // side], "counts": [MAX_FRAME_PIXELS]}
    assert rle_decode(big).shape == (side, MAX_FRAME_PIXELS // side)
    with pytest.raises(InputError, match="rle list of 5 masks"):
        rle_decode([big] * 5)


def test_a_polygon_on_an_oversized_frame_is_refused_while_reading(tmp_path):
    from rapsam_edge.data.ytvis import YtvisDataset

    ann = tmp_path / "annotations"
    ann.mkdir()
    frame = {"id": 1, "video_id": 1, "frame_id": 0, "file_name": "v/0.png"}
    data = {
        "videos": [{"id": 1}],
        "images": [{**frame, "height": 100_000, "width": 100_000}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "instance_id": 1,
                "category_id": 1,
                "segmentation": [[0, 0, 10, 0, 10, 10]],
            }
        ],
        "categories": [{"id": 1, "name": "a"}],
    }
    (ann / "instances_val.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="at most"):
        YtvisDataset(tmp_path, "val")


def test_a_dataloader_worker_error_prints_its_own_line_only():
    from rapsam_edge.cli import _classify

    text = (
        "Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        'call last):\n  File "x.py", line 1, in f\n    g()\n'
        "rapsam_edge.errors.DatasetError: image 'a.png' is a named pipe, not a regular file\n"
    )
    message, hint, status = _classify(DatasetError(text), "train")
    assert message == "image 'a.png' is a named pipe, not a regular file"
    assert status == 2 and hint
    plain, _, _ = _classify(DatasetError("a plain message"), "train")
    assert plain == "a plain message"


def _ytvis(root: Path, frames: int, tracks: int) -> None:
    import cv2

    (root / "val" / "JPEGImages" / "v").mkdir(parents=True)
    cv2.imwrite(str(root / "val" / "JPEGImages" / "v" / "0.png"), np.zeros((64, 64, 3), np.uint8))
    (root / "annotations").mkdir()
    names = ["v/0.png"] * frames
    anns = [
        {"id": i + 1, "video_id": 1, "category_id": 1, "segmentations": [None] * frames}
        for i in range(tracks)
    ]
    data = {
        "videos": [{"id": 1, "file_names": names, "height": 64, "width": 64}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "a"}],
    }
    (root / "annotations" / "instances_val.json").write_text(json.dumps(data))


def test_a_video_declaring_more_frames_than_the_limit_is_refused_before_decoding(tmp_path):
    """A 4 MB YouTube-VIS file listing one image 100,000 times: `eval` grew past 2.7 GB."""
    from rapsam_edge.data.ytvis import YtvisDataset

    _ytvis(tmp_path, frames=100_000, tracks=1)
    ds = YtvisDataset(tmp_path, "val")
    with pytest.raises(DatasetError, match="over the limit of 1024 MiB per video"):
        ds[0]


def test_a_video_declaring_many_instances_is_refused_before_its_masks(tmp_path):
    from rapsam_edge.data.ytvis import YtvisDataset

    _ytvis(tmp_path, frames=40, tracks=70_000)  # 40 x 64 x 64 x 70,000 bytes of masks
    with pytest.raises(DatasetError, match="70000 instances"):
        YtvisDataset(tmp_path, "val")[0]


def test_a_small_video_still_reads(tmp_path):
    from rapsam_edge.data.ytvis import YtvisDataset

    _ytvis(tmp_path, frames=3, tracks=2)
    sample = YtvisDataset(tmp_path, "val")[0]
    assert sample.images.shape == (3, 64, 64, 3) and len(sample.instances) == 2
