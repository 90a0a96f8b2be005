"""Provider tests: the shared contract (contract.py) and one test module per provider."""
