"""Images: fetch, check, decode, bound their memory, store results."""
