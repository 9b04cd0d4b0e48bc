"""Stylization: the request every stylizer answers, and the stylizers that need no training data."""
