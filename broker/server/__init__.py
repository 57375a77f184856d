"""The HTTP/1.1 side of the gunicorn worker that serves the broker (``broker.server.worker``).

gunicorn stays the process manager (arbiter, signals, timeouts, reloads, logging); this
package replaces only its per-request work for the sync worker: one connection per request,
an HTTP parser and WSGI environ written in Python. Here the parsing is llhttp's (Node.js's
parser, through ``httptools``), connections are kept alive, and the WSGI environ and the
response head are built with little Python. See docs/performance.md for why.
"""
