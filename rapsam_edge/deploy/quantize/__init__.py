"""Quantization of a bundle's graphs with an accuracy gate (training side), the parts every
backend shares; the backends' own conversion code is in ``deploy.backends.<backend>``.

* ``calibration``: frames from a dataset in a standard format (COCO-panoptic images,
  YouTube-VIS frames, or a folder of images) and the per-graph feeds they give through the
  FP32 bundle.
* ``gate``: the accuracy gate against the FP32 source (PQ, prompt mIoU, per-mask IoU,
  label-map agreement).
* ``policy``: what stays in FP32: nodes (from an INT8 error report) and whole graphs (the
  gate's ``--fallback``).
* ``report``: the worst-tensor table, the JSON report, the gate's summary line.
* ``derived``: writes the quantized bundle (precision per graph, gate numbers in the
  manifest).
* ``pipeline``: ``quantize_bundle``, the library behind ``rapsam-edge quantize`` and
  ``export/quantize_and_export.py``.
"""
