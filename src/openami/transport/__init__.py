"""Transports: the only place with sockets. ``memory`` is the in-process twin used by the
demo and the tests; UDP/TCP on port 4059 come with the DLMS stack work."""
