"""The gRPC edge: servicers (validate -> service -> convert), authentication, authorisation and
error mapping. The only broker package besides `server` that knows gRPC."""
