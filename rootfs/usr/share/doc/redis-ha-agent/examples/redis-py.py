"""A redis-py client of a redis-ha-agent group: it asks the sentinels for the
master and follows it through failovers.

    REDIS_PASSWORD="$(cat /etc/redis-ha/password)" python3 redis-py.py

Every box's sentinel is listed, the master name is cluster.name ("main"), and
the one password of /etc/redis-ha/password serves redis and the sentinels
alike (sentinel_kwargs: redis-py does not pass it to the sentinels by itself).
"""

import os

from redis.sentinel import Sentinel

password = os.environ.get("REDIS_PASSWORD")

sentinel = Sentinel(
    [("10.0.0.11", 26379), ("10.0.0.12", 26379), ("10.0.0.13", 26379)],
    # Short timeouts: a sentinel (or master) that went silent is given up on
    # after a second, and the next one asked, instead of hanging the client.
    socket_timeout=1.0,
    socket_connect_timeout=1.0,
    sentinel_kwargs={"password": password, "socket_timeout": 1.0, "socket_connect_timeout": 1.0},
)

# master_for reconnects to whichever master the sentinels name after a failover;
# replica_for reads from a replica (the master when none is up).
master = sentinel.master_for("main", password=password, socket_timeout=1.0, socket_connect_timeout=1.0)
replica = sentinel.slave_for("main", password=password, socket_timeout=1.0, socket_connect_timeout=1.0)

master.set("hello", "world")
print("hello =", replica.get("hello"))
