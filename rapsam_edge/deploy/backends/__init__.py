"""One folder per backend with its conversion code (``onnxruntime``, ``openvino``); TensorRT
builds its engines on the device from the ONNX Runtime QDQ / FP32 graphs."""
