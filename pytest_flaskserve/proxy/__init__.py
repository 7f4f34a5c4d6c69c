"""A real reverse proxy in front of a server, started and stopped like a server.

``nginx`` renders nginx's configuration (generated, or the user's own site file with its
``listen`` and upstream address rewritten); ``front`` runs nginx as a managed process
with its own prefix directory and waits until it serves through to the upstream;
``proxied`` starts an upstream server and its proxy together and hands out one handle.
A launcher says whether and how it is deployed behind a proxy
(:attr:`~pytest_flaskserve.servers.base.Launcher.proxy_protocol`); nothing here names a
server.
"""
