"""Ports: the Protocols and plain value types the application layer owns, one module per
area. Adapters implement them; the composition root wires adapters to them."""
