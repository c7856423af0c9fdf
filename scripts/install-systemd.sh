#!/usr/bin/env bash
# Makes rack a systemd service on this machine: /etc/systemd/system/rack.service running this
# install's bin/rackd (the launcher, which starts whichever rack version rack:update made current),
# and /etc/rack/rack.env with the settings to edit (written only when absent: never overwritten).
#
# Usage: scripts/install-systemd.sh [--root DIR] [--no-enable]
#   --root DIR    write under DIR instead of / (to look at the files first)
#   --no-enable   do not run systemctl (also implied by --root)
set -euo pipefail
cd "$(dirname "$0")/.."
INSTALL="$(pwd -P)"

ROOT=""
ENABLE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; ENABLE=0; shift 2 ;;
    --no-enable) ENABLE=0; shift ;;
    *) echo " !     unknown option $1 (usage: scripts/install-systemd.sh [--root DIR] [--no-enable])" >&2; exit 2 ;;
  esac
done

NODE="$(command -v node || true)"
[ -n "$NODE" ] || { echo " !     node is not on PATH" >&2; exit 1; }
[ -f "$INSTALL/dist/daemon/launcher/launch.js" ] || { echo " !     rack is not built here: run scripts/setup.sh first" >&2; exit 1; }

UNIT="$ROOT/etc/systemd/system/rack.service"
ENV_FILE="$ROOT/etc/rack/rack.env"
mkdir -p "$(dirname "$UNIT")" "$(dirname "$ENV_FILE")"

cat >"$UNIT" <<UNIT
[Unit]
Description=rack, a self-hosted Heroku-style PaaS
Documentation=file://$INSTALL/README.md
After=network-online.target docker.service
Wants=network-online.target docker.service

[Service]
Type=simple
EnvironmentFile=/etc/rack/rack.env
ExecStart=$NODE $INSTALL/bin/rackd
# Only the launcher is signalled: it stops rackd, which lets pushes and rollouts under way finish.
# The router and the apps' containers are left serving; the next start adopts them.
KillMode=process
TimeoutStopSec=120
Restart=always
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
UNIT
echo "-----> Wrote $UNIT"

if [ -e "$ENV_FILE" ]; then
  echo "-----> $ENV_FILE is there already: left as it is"
else
  umask 077
  cat >"$ENV_FILE" <<ENV
# rack's settings (README.md lists them all). Apps answer at APP.\$RACK_DOMAIN: point a wildcard
# DNS record *.\$RACK_DOMAIN (and \$RACK_DOMAIN's rack. host, which it covers) at this machine.
RACK_HOME=/var/lib/rack
RACK_DOMAIN=apps.example.com
RACK_HTTP_PORT=80
RACK_HTTPS_PORT=443
# ssh for git push and commands; 22 only if the host's own sshd listens elsewhere.
RACK_SSH_PORT=2222
# Your public key(s): they become admin keys at start.
RACK_ADMIN_KEYS=/etc/rack/admin_keys
# Let's Encrypt's contact address, for certs:auto.
RACK_ACME_EMAIL=
HOME=/root
ENV
  echo "-----> Wrote $ENV_FILE (edit RACK_DOMAIN and RACK_ADMIN_KEYS)"
fi

if [ "$ENABLE" = 1 ]; then
  systemctl daemon-reload
  systemctl enable rack.service
  echo "-----> Enabled rack.service; start it with: systemctl start rack"
fi
