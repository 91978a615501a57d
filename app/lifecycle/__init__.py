"""The service's lifecycle: start-up and warm-up, the active model, swaps, the alias watcher, the server."""
