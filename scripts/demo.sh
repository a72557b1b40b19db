#!/usr/bin/env bash
# Runs a whole Jiesu district on this machine on its embedded defaults (the demo district,
# SQLite files under data/): installs nats-server into .local/ if missing, builds, starts NATS
# and the six services in the background, submits demo cases through four channels and shows
# their progress. The system keeps running afterwards; `scripts/demo.sh stop` stops it.
#
#   scripts/demo.sh         start everything and run the demo
#   scripts/demo.sh stop    stop what it started
#   scripts/demo.sh status  show what is running
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
config="deploy/districts/demo/jiesu.toml"
run_dir="$root/data/run"
log_dir="$root/data/logs"
services=(intake classification dispatch sla-timer notification revisit)
nats_port=4333

stop() {
  for pidfile in "$run_dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
  done
  echo "demo: stopped"
}

status() {
  for pidfile in "$run_dir"/*.pid; do
    [ -e "$pidfile" ] || { echo "demo: nothing running"; return; }
    name="$(basename "$pidfile" .pid)"
    if kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "  $name running (pid $(cat "$pidfile"))"; else echo "  $name stopped"; fi
  done
}

case "${1:-start}" in
  stop) stop; exit 0 ;;
  status) status; exit 0 ;;
  start) ;;
  *) echo "usage: scripts/demo.sh [start|stop|status]" >&2; exit 2 ;;
esac

command -v cargo >/dev/null || { echo "demo: cargo is missing (install Rust: https://rustup.rs)" >&2; exit 1; }
if ! command -v curl >/dev/null; then
  echo "demo: installing curl" >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq curl >/dev/null
fi
scripts/install-nats.sh >/dev/null
echo "demo: building (the first build takes a few minutes)…"
cargo build --locked --bins -q

mkdir -p "$run_dir" "$log_dir" data/nats
stop >/dev/null 2>&1 || true

# Trust: the district's signing key, the key that seals citizens' contacts, and tokens for a few
# demo users — made once, kept in data/ (never commit them).
keys="$root/data/keys"; tokens="$root/data/tokens"
mkdir -p "$keys" "$tokens"; chmod 700 "$keys" "$tokens"
[ -f "$keys/demo-1.key.pem" ] || target/debug/jiesuctl --config "$config" keys generate --kid demo-1 --dir "$keys" >/dev/null
[ -f "$keys/contact.key" ] || (umask 077; head -c 32 /dev/urandom | base64 >"$keys/contact.key")
[ -f "$keys/contact-hash.key" ] || (umask 077; head -c 32 /dev/urandom | base64 >"$keys/contact-hash.key")
export JIESU__AUTH__REQUIRED=true JIESU__AUTH__KEYS="$keys/jwks.json" JIESU__AUTH__SIGNING_KEY="$keys/demo-1.key.pem"
export JIESU__INTAKE__CONTACT_KEYS="{demo = \"$(cat "$keys/contact.key")\"}" JIESU__INTAKE__CONTACT_KEY=demo
export JIESU__INTAKE__CONTACT_HASH_KEY="$(cat "$keys/contact-hash.key")"
ctl_admin=(target/debug/jiesuctl --config "$config")
mint() { (umask 077; target/debug/jiesuctl --config "$config" token issue --ttl 12h "$@"); }
mint --user agent-1 --name 受理员小李 --role centre_agent >"$tokens/centre-agent.token"
mint --user rv-1 --name 回访员小陈 --role revisit_agent >"$tokens/revisit-agent.token"
mint --user audit-1 --name 审计员老周 --role auditor >"$tokens/auditor.token"
mint --user admin-1 --name 管理员 --role administrator >"$tokens/administrator.token"
mint --user sv-1 --name 督办员老刘 --role centre_supervisor >"$tokens/supervisor.token"
org_file="$(dirname "$config")/organisation.toml"
# One handler per unit, one token per leader (its subject is the leader's id).
for unit in $(awk -F'"' '/^\[\[/ {section=$0} section=="[[units]]" && /^id = "/ {print $2}' "$org_file"); do
  mint --user "handler-$unit" --name 王五 --role unit_handler --unit "$unit" >"$tokens/$unit.token"
done
for leader in $(awk -F'"' '/^\[\[/ {section=$0} section=="[[leaders]]" && /^id = "/ {print $2}' "$org_file"); do
  mint --user "$leader" --name "$leader" --role leader >"$tokens/$leader.token"
done

# Encrypted on the wire: the district's own small CA and a certificate for each service, NATS
# and jiesuctl (data/tls); mutual TLS between everyone. data/demo.env tells jiesuctl (and you).
"${ctl_admin[@]}" tls district --dir data/tls >/dev/null
cat >data/demo.env <<ENV
export JIESU__TLS__DIR=$root/data/tls JIESU__TLS__CLIENT_AUTH=true JIESU__NATS__TLS_CA=$root/data/tls/ca.pem
export JIESU__NATS__TLS_CERT=$root/data/tls/jiesuctl.pem JIESU__NATS__TLS_KEY=$root/data/tls/jiesuctl.key.pem
ENV
# shellcheck source=/dev/null
. data/demo.env

# NATS with least privilege: a key per service and per channel, the server's configuration
# generated from the district file, streams and consumers made by the operator.
"${ctl_admin[@]}" nats keys --dir data/nats-keys >/dev/null
"${ctl_admin[@]}" nats config --dir data/nats-keys --listen "127.0.0.1:$nats_port" --store-dir "$root/data/nats" \
  --tls-cert data/tls/nats.pem --tls-key data/tls/nats.key.pem --tls-ca data/tls/ca.pem --verify-clients --out data/nats.conf >/dev/null
echo "demo: starting nats-server on 127.0.0.1:$nats_port (users and permissions in data/nats.conf, JetStream store data/nats)"
.local/bin/nats-server -c data/nats.conf >"$log_dir/nats.log" 2>&1 &
echo $! >"$run_dir/nats.pid"
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
for attempt in $(seq 20); do # JetStream may need a moment after the port opens
  if "${ctl_admin[@]}" nats provision >"$log_dir/provision.log" 2>&1; then break; fi
  [ "$attempt" = 20 ] && { echo "demo: cannot provision the streams:" >&2; cat "$log_dir/provision.log" >&2; exit 1; }
  sleep 0.5
done

admin_port() { # the admin port of a service, from the district file
  awk -v sec="[$1]" '$0==sec{f=1;next} /^\[/{f=0} f && /^admin_addr/ {gsub(/"/,"",$3); split($3,a,":"); print a[2]; exit}' "$config"
}

for s in "${services[@]}"; do
  echo "demo: starting jiesu-$s"
  # Each service shows its own certificate to NATS too.
  JIESU__NATS__TLS_CERT="$root/data/tls/${s/-/_}.pem" JIESU__NATS__TLS_KEY="$root/data/tls/${s/-/_}.key.pem" \
    JIESU__TELEMETRY__LOG_FORMAT=pretty target/debug/jiesu-"$s" --config "$config" >"$log_dir/$s.log" 2>&1 &
  echo $! >"$run_dir/$s.pid"
done
tls_curl=(--cacert data/tls/ca.pem --cert data/tls/jiesuctl.pem --key data/tls/jiesuctl.key.pem)
for s in "${services[@]}"; do
  port="$(admin_port "${s/-/_}")"
  ok=""
  for _ in $(seq 150); do
    if curl -fsS "${tls_curl[@]}" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ok=1; break; fi
    if ! kill -0 "$(cat "$run_dir/$s.pid")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  if [ -z "$ok" ]; then
    echo "demo: jiesu-$s did not become ready; its log (data/logs/$s.log) ends with:" >&2
    tail -n 20 "$log_dir/$s.log" >&2
    exit 1
  fi
done
echo "demo: all six services are ready"
echo "demo: starting jiesu-web (the citizens' mailboxes and status page) on http://127.0.0.1:8080"
target/debug/jiesu-web --config "$config" >"$log_dir/web.log" 2>&1 &
echo $! >"$run_dir/web.pid"
for _ in $(seq 100); do curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS http://127.0.0.1:8080/healthz >/dev/null || { echo "demo: jiesu-web did not start; data/logs/web.log ends with:" >&2; tail -n 20 "$log_dir/web.log" >&2; exit 1; }

# The staff's desk: demo accounts (kept in data/console.db), all with the same demo password.
console_password="jiesu-demo-2026"
add_account() { JIESU_CONSOLE_PASSWORD="$console_password" target/debug/jiesu-console account add --config "$config" "$@" >/dev/null 2>&1 || true; }
add_account --username admin --name 系统管理员 --role administrator
add_account --username agent --name 受理员小李 --role centre_agent
add_account --username supervisor --name 督办员老刘 --role centre_supervisor
add_account --username revisit --name 回访员小陈 --role revisit_agent
add_account --username dongmen --name 王五 --role unit_handler --unit st-dongmen
add_account --username xinan --name 赵六 --role unit_handler --unit st-xinan
add_account --username urban --name 孙七 --role unit_handler --unit dept-urban-management
add_account --username li --name 李副区长 --role leader --leader leader-li
echo "demo: starting jiesu-console (the staff's desk) on http://127.0.0.1:8090"
JIESU__NATS__TLS_CERT="$root/data/tls/console.pem" JIESU__NATS__TLS_KEY="$root/data/tls/console.key.pem" \
  target/debug/jiesu-console --config "$config" >"$log_dir/console.log" 2>&1 &
echo $! >"$run_dir/console.pid"
for _ in $(seq 100); do curl -fsS http://127.0.0.1:8090/healthz >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS http://127.0.0.1:8090/healthz >/dev/null || { echo "demo: jiesu-console did not start; data/logs/console.log ends with:" >&2; tail -n 20 "$log_dir/console.log" >&2; exit 1; }
echo

ctl=(env JIESU_TOKEN_FILE="$tokens/centre-agent.token" target/debug/jiesuctl --config "$config")
stamp="$(date +%s)"
# Another caller on every run: the same words from the same caller within a day are one call
# logged twice, and classification merges them (重复提交).
"${ctl[@]}" submit --channel hotline --ref "demo-call-$stamp" --name 张女士 --phone "1380013${stamp: -4}" \
  --title "小区门口私装地锁" --description "小区门口有人私装地锁，占用公共车位，希望尽快拆除。" \
  --street st-dongmen --community cm-lizhi | tee "$run_dir/case1.txt"
"${ctl[@]}" submit --via nats --channel secretary_mailbox --ref "demo-letter-$stamp" --name 李先生 --phone "1390013${stamp: -4}" \
  --title "拖欠工资" --description "我所在的装修公司已经拖欠三个月工资不发，多次讨薪无果。" --street st-xinan
"${ctl[@]}" submit --channel director_mailbox --ref "demo-mail-$stamp" --name 王女士 --phone "0755-8123${stamp: -4}" \
  --title "夜间施工噪音" --description "工地夜间施工噪音太大，晚上十一点还在打桩，影响休息。" --street st-xinan
"${ctl[@]}" submit --via nats --channel grid_patrol --ref "demo-patrol-$stamp" \
  --title "井盖缺失" --description "网格员巡查发现荔枝社区路口井盖丢失，存在安全隐患。" --street st-dongmen --community cm-lizhi --grid gd-lizhi-03
echo
echo "demo: waiting for the cases to be classified and dispatched…"
case_no="$(awk '/受理编号/ {print $3; exit}' "$run_dir/case1.txt")"
for _ in $(seq 100); do
  "${ctl[@]}" case show "$case_no" 2>/dev/null | grep -q "已派单" && break
  sleep 0.1
done
sleep 1
"${ctl[@]}" case list
echo
"${ctl[@]}" case show "$case_no" | tee "$run_dir/show1.txt"
unit="$(awk '$1 == "承办单位" {sub(/（.*/, "", $3); print $3; exit}' "$run_dir/show1.txt")"
unit="${unit:-<unit id>}"
cat <<MSG

demo: the district is running over mutual TLS (its own CA in data/tls), and every call needs a
token (data/tokens/: a centre agent and a supervisor, a revisit agent, an auditor, an
administrator, a handler of every unit and each leader). Walk the case through the loop
(签收 → 联系 → 办结 → 回访) as the people who do it — or through a return, a joint handling and an
extension, as the README's "Walking a case through the workflow" shows:
  source data/demo.env                                    # the district's CA and jiesuctl's certificate
  export JIESU_TOKEN_FILE=data/tokens/$unit.token        # 承办人 of $unit
  target/debug/jiesuctl accept  $case_no
  target/debug/jiesuctl contact $case_no --note "已电话联系，约定上门核实"
  target/debug/jiesuctl case show $case_no               # its assisting units answer their parts first:
  #   JIESU_TOKEN_FILE=data/tokens/<assisting unit>.token target/debug/jiesuctl assist answer $case_no --answer "已配合处理"
  target/debug/jiesuctl resolve $case_no --reply "地锁已拆除，车位恢复公共使用。"
  JIESU_TOKEN_FILE=data/tokens/revisit-agent.token target/debug/jiesuctl revisit $case_no --satisfaction satisfied --solved true --by 回访员
  JIESU_TOKEN_FILE=data/tokens/centre-agent.token target/debug/jiesuctl case show $case_no
  JIESU_TOKEN_FILE=data/tokens/centre-agent.token target/debug/jiesuctl case list
Mint others with: target/debug/jiesuctl token issue --user <id> --name <name> --role <role> [--unit <unit>]
Each service's admin port has /healthz, /readyz, /metrics and, for administrators, /dead-letters:
  curl -s ${tls_curl[*]} https://127.0.0.1:9653/metrics | grep jiesu_messages_consumed
  curl -s ${tls_curl[*]} -H "Authorization: Bearer \$(cat data/tokens/administrator.token)" https://127.0.0.1:9653/dead-letters
Citizens write through the mailboxes' forms and follow their case on the status page:
  http://127.0.0.1:8080/                                 # the mailboxes (书记信箱, 主任信箱)
  http://127.0.0.1:8080/mailbox/secretary_mailbox/qr.png # the QR code for the poster (also qr.svg)
  http://127.0.0.1:8080/status                           # 受理编号 + 查询码
The staff work at the desk (工作台), http://127.0.0.1:8090/ — sign in with password $console_password as
  agent (受理派单员), supervisor (督办员), dongmen / xinan / urban (承办人 of 东门街道, 新安街道, 城管局),
  li (李副区长, 领导), revisit (回访员) or admin (系统管理员: accounts and the sign-in log)
Logs are in data/logs/, databases in data/. Stop everything with: scripts/demo.sh stop
MSG
