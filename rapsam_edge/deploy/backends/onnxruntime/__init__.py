"""ONNX Runtime conversion: INT8 in QDQ form and FP16.

* ``graph_prep``: ``quant_pre_process`` plus the input normalisation as one
  BatchNormalization; I/O signature; QDQ surgery for excluded nodes.
* ``feeds``: calibration feeds checked against the graph, ORT's data reader.
* ``int8``: ``quantize_ort_int8`` and the two-pass ``quantize_with_report``.
* ``sensitivity``: ``tensor_error_report`` (per-tensor SQNR against FP32).
* ``logs``: ORT's known harmless quantizer warnings, counted into one line.
* ``fp16``: ``convert_ort_fp16`` (fragile ops kept in FP32).
"""
