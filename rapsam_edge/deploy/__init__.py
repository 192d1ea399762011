"""Training-side deployment (imports torch): export wrappers (``graphs``), ONNX export
(``onnx_export``), OpenVINO IR conversion (``openvino_convert``), the bundle writer
(``bundle_writer.export_bundle``) and the ``rapsam-edge export`` command (``cli``).

The runtime half reads bundles with ``rapsam_edge.bundle`` and runs them with
``rapsam_edge.runtime``; neither imports anything from here.
"""
