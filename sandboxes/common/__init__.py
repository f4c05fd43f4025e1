"""What both sandboxes share: fault injection, request counters, rate limiting and the admin surface."""
