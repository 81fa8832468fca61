set -eu
pip install --no-cache-dir "seymour=={{release}}"
scheme=${SEYMOUR_HOME_URL%%://*}
rest=${SEYMOUR_HOME_URL#*://}
connected=0
for _ in $(seq 1 40); do
  if SEYMOUR_CONNECT_HOME="$scheme://seymour-{{region}}:$SEYMOUR_HOME_PASSWORD@$rest" SEYMOUR_CONNECT_LOCAL="amqp://seymour:$SEYMOUR_LOCAL_PASSWORD@localhost:5672/" seymour region connect {{region}} --home-ca /etc/rabbitmq/home-ca.pem --home-name {{home_server_name}}; then connected=1; break; fi
  sleep 15
done
[ "$connected" = 1 ] || { echo "seymour: could not connect {{region}} to home"; exit 1; }
export SEYMOUR_BROKER_URL="amqp://seymour:$SEYMOUR_LOCAL_PASSWORD@localhost:5672/"
unset SEYMOUR_HOME_PASSWORD SEYMOUR_HOME_URL
export SEYMOUR_BLOCK_PRIVATE_NETWORKS=true
exec seymour serve runner --region {{region}}
