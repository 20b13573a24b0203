"""The HTTP edge: thin litestar controllers, pages and the one OAuth error renderer."""
