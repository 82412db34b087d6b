"""The broker's vocabulary: plain data and pure rules, no I/O, no gRPC, no SQL."""
