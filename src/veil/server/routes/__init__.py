"""HTTP and WebSocket routes: authenticate, parse, call a service, shape the answer."""
