"""The local stack: ``millstream up``, its web face, samples, submitting tasks."""
