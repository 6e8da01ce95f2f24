"""The client library (keyturn) against in-memory fakes of a provider."""
