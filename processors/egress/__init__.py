"""The one egress policy for every outbound HTTP request."""
