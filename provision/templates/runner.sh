#!/bin/bash
# Seymour regional runner for {{region}} (deployment {{deployment}}), rendered by seymour-provision.
# This file holds no secret: broker credentials are read from SSM Parameter Store at boot with the
# instance role, and written only to root-only files on this machine.
set -euo pipefail
exec >>/var/log/seymour-bootstrap.log 2>&1

REGION='{{region}}'
PARAM_REGION='{{param_region}}'
HOME_URL_PARAM='{{home_url_param}}'
HOME_CA_PARAM='{{home_ca_param}}'
HOME_PASSWORD_PARAM='{{home_password_param}}'
LOCAL_PASSWORD_PARAM='{{local_password_param}}'
RELEASE='{{release}}'
RABBITMQ_IMAGE='{{rabbitmq_image}}'

param() {
  aws ssm get-parameter --region "$PARAM_REGION" --name "$1" --with-decryption \
    --query Parameter.Value --output text
}

# Install: RabbitMQ (regional broker, official image) and seymour pinned to the release.
dnf install -y docker python3.11 python3.11-pip
systemctl enable --now docker
python3.11 -m venv /opt/seymour
/opt/seymour/bin/pip install --no-cache-dir "seymour==$RELEASE"

# Credentials. The home broker URL may appear a little after this machine boots: wait, bounded.
HOME_URL=''
for _ in $(seq 1 60); do
  HOME_URL=$(param "$HOME_URL_PARAM") && break
  sleep 10
done
[ -n "$HOME_URL" ] || { echo "seymour: $HOME_URL_PARAM not readable, giving up"; exit 1; }
HOME_PASSWORD=$(param "$HOME_PASSWORD_PARAM")
LOCAL_PASSWORD=$(param "$LOCAL_PASSWORD_PARAM")
HOME_SCHEME=${HOME_URL%%://*}
HOME_REST=${HOME_URL#*://}

umask 077
install -d -m 700 /etc/seymour /etc/seymour/rabbitmq
# The deployment CA: the links to home accept only a certificate it issued for home's name.
param "$HOME_CA_PARAM" >/etc/seymour/rabbitmq/home-ca.pem
chmod 644 /etc/seymour/rabbitmq/home-ca.pem
cat >/etc/seymour/broker.env <<ENV
RABBITMQ_DEFAULT_USER=seymour
RABBITMQ_DEFAULT_PASS=$LOCAL_PASSWORD
ENV
echo '[rabbitmq_management,rabbitmq_federation,rabbitmq_shovel].' >/etc/seymour/rabbitmq/enabled_plugins
cat >/etc/seymour/runner.env <<ENV
SEYMOUR_REGION=$REGION
SEYMOUR_BLOCK_PRIVATE_NETWORKS=true
SEYMOUR_BROKER_URL=amqp://seymour:$LOCAL_PASSWORD@localhost:5672/
ENV
cat >/etc/seymour/connect.env <<ENV
SEYMOUR_CONNECT_HOME=$HOME_SCHEME://seymour-$REGION:$HOME_PASSWORD@$HOME_REST
SEYMOUR_CONNECT_LOCAL=amqp://seymour:$LOCAL_PASSWORD@localhost:5672/
ENV
umask 022

# Start: the broker (listening on loopback only), the federation link to home, then the runner.
cat >/etc/systemd/system/seymour-broker.service <<'UNIT'
[Unit]
Description=Seymour regional broker (RabbitMQ)
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker rm -f seymour-broker
ExecStart=/usr/bin/docker run --name seymour-broker --hostname seymour-broker \
  --env-file /etc/seymour/broker.env -p 127.0.0.1:5672:5672 -p 127.0.0.1:15672:15672 \
  -v /etc/seymour/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro \
  -v /etc/seymour/rabbitmq/home-ca.pem:/etc/rabbitmq/tls/home-ca.pem:ro \
  -v seymour-broker-data:/var/lib/rabbitmq {{rabbitmq_image}}
ExecStartPost=/usr/bin/timeout 120 /bin/sh -c 'until docker exec seymour-broker rabbitmq-diagnostics -q ping; do sleep 2; done'
ExecStop=/usr/bin/docker stop seymour-broker
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT

cat >/etc/systemd/system/seymour-region-connect.service <<'UNIT'
[Unit]
Description=Seymour: federate runs from home and shovel results to home
After=seymour-broker.service network-online.target
Requires=seymour-broker.service

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=/etc/seymour/connect.env
ExecStart=/opt/seymour/bin/seymour region connect {{region}} --home-ca /etc/rabbitmq/tls/home-ca.pem --home-name {{home_server_name}}
Restart=on-failure
RestartSec=15

[Install]
WantedBy=multi-user.target
UNIT

cat >/etc/systemd/system/seymour-runner.service <<'UNIT'
[Unit]
Description=Seymour runner for {{region}}
After=seymour-broker.service
Requires=seymour-broker.service

[Service]
EnvironmentFile=/etc/seymour/runner.env
ExecStart=/opt/seymour/bin/seymour serve runner --region {{region}}
Restart=always
RestartSec=5
DynamicUser=yes

[Install]
WantedBy=multi-user.target
UNIT

systemctl daemon-reload
systemctl enable --now seymour-broker.service
systemctl enable --now seymour-region-connect.service
systemctl enable --now seymour-runner.service
echo "seymour: runner for $REGION started (release $RELEASE)"
