"""After a search: export chosen architectures (weights, ONNX, TorchScript, model card, registry) and retrain them."""
