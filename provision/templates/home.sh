#!/bin/bash
# Seymour home for deployment {{deployment}} in {{region}}, rendered by seymour-provision.
# This file holds no secret: passwords are read from SSM Parameter Store at boot with the instance
# role, and written only to root-only files on this machine.
set -euo pipefail
exec >>/var/log/seymour-bootstrap.log 2>&1

REGION='{{region}}'
PARAM_PREFIX='{{param_prefix}}'
RELEASE='{{release}}'
HOME_DB='{{home_db}}'
DB_INSTANCE_ID='{{db_instance_id}}'

param() {
  aws ssm get-parameter --region "$REGION" --name "$1" --with-decryption \
    --query Parameter.Value --output text
}

# Install: RabbitMQ (home broker, official image), PostgreSQL when it lives here, seymour pinned.
dnf install -y docker python3.11 python3.11-pip
if [ "$HOME_DB" = instance ]; then dnf install -y postgresql15-server; fi
systemctl enable --now docker
python3.11 -m venv /opt/seymour
/opt/seymour/bin/pip install --no-cache-dir "seymour==$RELEASE"

BROKER_PASSWORD=$(param "$PARAM_PREFIX/home/broker-password")
DB_PASSWORD=$(param "$PARAM_PREFIX/home/db-password")
ADMIN_PASSWORD=$(param "$PARAM_PREFIX/home/admin-password")
SECRET_KEY=$(param "$PARAM_PREFIX/home/secret-key")

if [ "$HOME_DB" = instance ]; then
  postgresql-setup --initdb
  systemctl enable --now postgresql
  printf "CREATE ROLE seymour LOGIN PASSWORD '%s'; CREATE DATABASE seymour OWNER seymour;\n" "$DB_PASSWORD" \
    | runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q
  DB_HOST=127.0.0.1
else
  DB_HOST=''
  for _ in $(seq 1 90); do
    DB_HOST=$(aws rds describe-db-instances --region "$REGION" --db-instance-identifier "$DB_INSTANCE_ID" \
      --query 'DBInstances[0].Endpoint.Address' --output text) && [ "$DB_HOST" != None ] && break
    DB_HOST=''
    sleep 20
  done
  [ -n "$DB_HOST" ] || { echo "seymour: database $DB_INSTANCE_ID never became reachable"; exit 1; }
fi

umask 077
install -d -m 700 /etc/seymour /etc/seymour/rabbitmq
# The regions connect over TLS (5671) and verify this certificate: issued by the deployment's CA
# (whose certificate the regions read from SSM) for the name they check.
param "$PARAM_PREFIX/home/tls-cert" >/etc/seymour/rabbitmq/cert.pem
param "$PARAM_PREFIX/home/tls-key" >/etc/seymour/rabbitmq/key.pem
chmod 644 /etc/seymour/rabbitmq/cert.pem /etc/seymour/rabbitmq/key.pem
cat >/etc/seymour/rabbitmq/rabbitmq.conf <<'CONF'
listeners.tcp.default = 5672
listeners.ssl.default = 5671
ssl_options.certfile = /etc/rabbitmq/tls/cert.pem
ssl_options.keyfile = /etc/rabbitmq/tls/key.pem
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
max_message_size = 1048576
CONF
echo '[rabbitmq_management,rabbitmq_federation,rabbitmq_shovel].' >/etc/seymour/rabbitmq/enabled_plugins
cat >/etc/seymour/broker.env <<ENV
RABBITMQ_DEFAULT_USER=seymour
RABBITMQ_DEFAULT_PASS=$BROKER_PASSWORD
ENV
cat >/etc/seymour/home.env <<ENV
SEYMOUR_BROKER_URL=amqp://seymour:$BROKER_PASSWORD@localhost:5672/
SEYMOUR_DATABASE_URL=postgresql+asyncpg://seymour:$DB_PASSWORD@$DB_HOST:5432/seymour
SEYMOUR_ADMIN_PASSWORD=$ADMIN_PASSWORD
SEYMOUR_SECRET_KEY=$SECRET_KEY
SEYMOUR_HOST=0.0.0.0
SEYMOUR_PORT=8000
SEYMOUR_REGION=$REGION
SEYMOUR_BLOCK_PRIVATE_NETWORKS=true
ENV
umask 022

# Every region's account on the home broker, kept in step with SSM (a region added later appears
# within a minute). Each account may read only its own runs and write only results and dead runs
# ('seymour region grant'); passwords go on stdin, never on a command line.
cat >/usr/local/sbin/seymour-sync-regions <<'SYNC'
#!/bin/bash
set -euo pipefail
set -a; . /etc/seymour/home.env; set +a
aws ssm get-parameters-by-path --region '{{region}}' --path '{{param_prefix}}/broker/' --recursive \
  --with-decryption --query 'Parameters[?ends_with(Name, `/password`)].[Name,Value]' --output text |
while read -r name value; do
  region=$(basename "$(dirname "$name")")
  printf '%s\n' "$value" | /opt/seymour/bin/seymour region grant "$region" --home-api http://127.0.0.1:15672
done
SYNC
chmod 700 /usr/local/sbin/seymour-sync-regions

cat >/etc/systemd/system/seymour-broker.service <<'UNIT'
[Unit]
Description=Seymour home broker (RabbitMQ)
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker rm -f seymour-broker
ExecStart=/usr/bin/docker run --name seymour-broker --hostname seymour-broker \
  --env-file /etc/seymour/broker.env -p 127.0.0.1:5672:5672 -p 127.0.0.1:15672:15672 -p 5671:5671 \
  -v /etc/seymour/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro \
  -v /etc/seymour/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-seymour.conf:ro \
  -v /etc/seymour/rabbitmq/cert.pem:/etc/rabbitmq/tls/cert.pem:ro \
  -v /etc/seymour/rabbitmq/key.pem:/etc/rabbitmq/tls/key.pem:ro \
  -v seymour-broker-data:/var/lib/rabbitmq {{rabbitmq_image}}
ExecStartPost=/usr/bin/timeout 120 /bin/sh -c 'until docker exec seymour-broker rabbitmq-diagnostics -q ping; do sleep 2; done'
ExecStop=/usr/bin/docker stop seymour-broker
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT

cat >/etc/systemd/system/seymour-sync-regions.service <<'UNIT'
[Unit]
Description=Seymour: region accounts on the home broker from SSM
After=seymour-broker.service
Requires=seymour-broker.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/seymour-sync-regions
UNIT

cat >/etc/systemd/system/seymour-sync-regions.timer <<'UNIT'
[Unit]
Description=Seymour: sync region accounts every minute

[Timer]
OnBootSec=30
OnUnitActiveSec=60

[Install]
WantedBy=timers.target
UNIT

cat >/etc/systemd/system/seymour@.service <<'UNIT'
[Unit]
Description=Seymour %i
After=seymour-broker.service network-online.target
Requires=seymour-broker.service

[Service]
EnvironmentFile=/etc/seymour/home.env
ExecStart=/opt/seymour/bin/seymour serve %i
Restart=always
RestartSec=5
DynamicUser=yes

[Install]
WantedBy=multi-user.target
UNIT

systemctl daemon-reload
systemctl enable --now seymour-broker.service
# Schema first (idempotent), then the services.
(set -a; . /etc/seymour/home.env; set +a
 /opt/seymour/bin/seymour migrate)
systemctl enable --now seymour-sync-regions.timer
for service in {{services}}; do systemctl enable --now "seymour@$service.service"; done
echo "seymour: home started (release $RELEASE, database $HOME_DB)"
