"""Tools around the models: complexity (parameters), export (symbol JSON, ONNX)."""
from .complexity import count_params
from .export import export_model, export_onnx, load_exported

__all__ = ['count_params', 'export_model', 'export_onnx', 'load_exported']
