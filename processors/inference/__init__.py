"""Inference on Triton: the client, its configs and errors, the embedded server."""
