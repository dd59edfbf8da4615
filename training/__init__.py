"""The model toolchain behind ``stopline models`` (train extra: ultralytics, PyTorch, easyocr, onnx).

Modules import their heavy dependencies inside functions, so ``stopline --help`` and the
services never load PyTorch; ``metrics``, ``dataset``, ``evaluate`` and ``quantize`` need only
numpy, OpenCV and onnxruntime (+ onnx for quantisation).
"""
