"""brokkrctl: the command-line client, over gRPC."""
