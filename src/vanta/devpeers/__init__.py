"""Simulators and development peers: stand-ins for the outside world.

Nothing here is part of the platform's own path to production. These are the processes a
developer, a demo or a test runs *next to* Vanta so that it has someone to talk to:

* :mod:`vanta.devpeers.paper_venue`: a simulated exchange served over HTTP (``vanta paper
  venue``), reached by :class:`~vanta.adapters.brokers.paper_remote.RemotePaperBroker`;
* :mod:`vanta.devpeers.receiver`: a follower's webhook endpoint that verifies every signature
  (``vanta up``, ``vanta demo`` and the end-to-end tests).

Adapters (:mod:`vanta.adapters`) are the platform's side of a connection; a dev peer is the
other side.
"""
