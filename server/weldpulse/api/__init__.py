"""The gRPC surface: servicers, interceptors, request parsing and rate limits."""
