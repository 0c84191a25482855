"""COSEM interface classes, the object model and a server session."""
