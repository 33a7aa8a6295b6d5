# PRODUCT.md's user story on one box, word for word but for the addresses
# (PEERS, BOOTSTRAP) and apt's -y. The bench runs it as `sh -eu` on every
# box, the bootstrap primary first.
cd /dist/new
apt install -y ./redis-ha-agent_*.deb
printf '%s\n' 's3cret-pass' > /etc/redis-ha/password  # mode 0640, group of the agent's service user
cat > /etc/redis-ha/conf.d/10-cluster.conf <<EOF
[cluster]
peers = [$PEERS]
bootstrap_primary = "$BOOTSTRAP"
EOF
systemctl enable --now redis-ha-agent
