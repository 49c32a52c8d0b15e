"""The gRPC service: authentication and roles, the mapping of messages, the servicer and the server
process. Its stubs are generated from protos/ into adapters/grpc/generated at install time."""
