"""OpenVINO conversion.

* ``convert``: ONNX -> IR (with the deformable-convolution extension).
* ``graph``: reading, checking and saving IRs; counting quantized operations.
* ``int8``: NNCF post-training INT8 (``quantize_ov_int8``).
* ``accuracy``: NNCF INT8 with accuracy control.
* ``fp16``: FP16-compressed IR; the BF16 inference hint and the CPU's capabilities.
"""
