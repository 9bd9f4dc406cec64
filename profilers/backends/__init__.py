"""The built-in profiler backends; importing this package registers them all by name."""

from profilers.backends import (  # noqa: F401  (imported for their @register_backend side effect)
    litert_backend,
    mcu_backend,
    onnxruntime_backend,
    tensorrt_backend,
    torch_backend,
)
