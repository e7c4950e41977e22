"""Helpers the tests share: real servers on free loopback ports."""
