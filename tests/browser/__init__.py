"""Helpers and the fixture notebook of the real-browser test (JupyterLab in Chromium)."""
