"""Training-side deployment (imports torch): export wrappers (``graphs``), ONNX export
(``onnx_export``), the bundle writer (``bundle_writer.export_bundle``), per-target recipes
(``recipes``, ``recipe_export``), what a training run says about its export
(``training_run``), and quantization (``quantize``).

Layout, as MMDeploy does it: each backend's conversion code sits in one folder per backend,
``backends/onnxruntime/`` (INT8 graph preparation, feeds, quantization, sensitivity report;
FP16) and ``backends/openvino/`` (ONNX -> IR conversion; NNCF INT8 plain and with accuracy
control; FP16 IR, BF16 hint), while what is the same for every backend sits in ``quantize/``
(calibration data, the accuracy gate, the FP32-fallback policy, reporting, the derived
bundle and the ``quantize_bundle`` pipeline). The folders live here, not beside the runtime
wrappers in ``rapsam_edge.runtime``, because conversion needs the training side (onnx,
nncf, torch for the FP32 export) and the runtime side must never import it: the runtime
half reads bundles with ``rapsam_edge.bundle`` and runs them with ``rapsam_edge.runtime``;
neither imports anything from here. The command lines over these functions are in
``rapsam_edge.commands``.
"""
