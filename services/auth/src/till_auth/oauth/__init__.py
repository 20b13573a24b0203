"""OAuth 2.1 protocol logic, one module per RFC topic; no framework, no I/O."""
