"""Ports: the Protocols and plain value types the application layer owns, one module per
area. Adapters implement them; the composition root (:mod:`vanta.bootstrap`) wires adapters to
them per profile. Nothing here imports an adapter or an I/O library."""
