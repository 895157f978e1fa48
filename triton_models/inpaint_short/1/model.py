"""Triton python-backend entry point; the model itself lives in ../../inpaint_backend.py."""

import sys
from pathlib import Path

# A __pycache__/ written beside the shared modules would sit in the repository
# root, where Triton reads every directory as a model and refuses to start.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inpaint_backend import TritonPythonModel  # noqa: E402

__all__ = ["TritonPythonModel"]
