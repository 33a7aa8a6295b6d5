# The tutorial setup of BENCH-FACTS.md on one box, done the way the usual
# tutorial does it by hand: Debian's units, redis.conf edited, sentinel.conf
# written from scratch, down-after 5000 ms. ADDR is this box, MASTER the
# group's first master, PASSWORD the shared password. The bench runs it as
# `sh -eu` on every box, the master first.

# redis.conf: listen on the network, require a password and use it for
# replication; the replicas follow MASTER. Persistence stays Debian's default
# (RDB snapshots, no AOF), and so does the unit (Restart=always).
sed -i 's/^bind 127.0.0.1 -::1$/bind 0.0.0.0/' /etc/redis/redis.conf
grep -qx 'bind 0.0.0.0' /etc/redis/redis.conf
cat >>/etc/redis/redis.conf <<EOF
requirepass $PASSWORD
masterauth $PASSWORD
EOF
if [ "$ADDR" != "$MASTER" ]; then
	echo "replicaof $MASTER 6379" >>/etc/redis/redis.conf
fi

# sentinel.conf, by hand. Tutorials set no password on the sentinels.
cat >/etc/redis/sentinel.conf <<EOF
port 26379
daemonize yes
pidfile /run/sentinel/redis-sentinel.pid
logfile /var/log/redis/redis-sentinel.log
dir /var/lib/redis
protected-mode no
sentinel monitor main $MASTER 6379 2
sentinel auth-pass main $PASSWORD
sentinel down-after-milliseconds main 5000
sentinel failover-timeout main 60000
sentinel parallel-syncs main 1
EOF
chown redis:redis /etc/redis/sentinel.conf
chmod 0640 /etc/redis/sentinel.conf

# Debian's own units (the bench's image ships them disabled).
systemctl unmask --quiet redis-server.service redis-sentinel.service
systemctl enable --now --quiet redis-server.service redis-sentinel.service
