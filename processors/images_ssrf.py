"""Which addresses an image fetch may connect to: the shared egress policy (processors.egress).

Image fetches, webhooks and translation providers pass one policy; it lives in
processors.egress (rules) and processors.egress_registry (the IANA tables).
This module keeps the names image code imports. Standard library only.
"""

from __future__ import annotations

from processors.egress import (
    AddressPolicy,
    EgressRefused,
    classify,
    embedded_ipv4,
    normalize_host,
    parse_literal,
)
from processors.egress_registry import METADATA

__all__ = ["METADATA", "AddressPolicy", "EgressRefused", "classify", "embedded_ipv4", "normalize_host",
           "parse_literal"]
