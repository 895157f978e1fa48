"""One conformance suite for every transport (streams.transport): memory and Redis."""
