"""Quantization of a bundle's graphs with an accuracy gate (training side).

* ``calibration``: frames from a dataset in a standard format (COCO-panoptic images,
  YouTube-VIS frames, or a folder of images) and the per-graph feeds they give through the
  FP32 bundle.
* ``ort_int8`` / ``ort_fp16``: ONNX Runtime static INT8 in QDQ form (exclusions from a
  per-tensor error report) and FP16 with fragile ops kept in FP32.
* ``ov_int8`` / ``ov_fp16``: OpenVINO INT8 through NNCF (plain and accuracy-controlled) and
  FP16-compressed IR; BF16 is a runtime hint (no new file).
* ``gate``: the accuracy gate against the FP32 source (PQ, prompt mIoU, per-mask IoU,
  label-map agreement).
* ``derived``: writes the quantized bundle (precision per graph, gate numbers in the
  manifest); ``cli``: ``rapsam-edge quantize``.
"""
