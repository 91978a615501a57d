"""The HTTP contenders besides this service (naive, peer) and how every server is started and stopped."""
