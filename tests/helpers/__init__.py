"""Helpers the tests of several topics share."""
