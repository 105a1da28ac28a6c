"""The `loraplane` command line: the entry point above the api and service layers."""
