"""Wire types shared between the services: the internal contracts, as code."""
