"""Sans-I/O core shared by client and server: wire schema, codecs, key recipes.

Nothing in this package opens a socket, touches a database or reads the clock:
callers pass bytes and times in and get bytes and values out.
"""
