"""Stylization: the request every stylizer answers, the stylizers that need no training data, and
the model configs (``loading.load_stylizer``) that choose which stylizer the server runs."""
