"""Text that leaves the process: redaction, plain text, ids read leniently."""
