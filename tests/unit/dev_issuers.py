"""The issuer and audience the token tests' built-in issuers use (fixtures in conftest)."""

ISS = "http://127.0.0.1:8000"
AUD = "vanta-api"
