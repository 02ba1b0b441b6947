#!/bin/sh
# bakery-join (POSIX sh): swarm init/join at boot, for nodes without Python (Flatcar
# Container Linux, Fedora CoreOS). The same protocol and rules as bakery's Python agent
# (docs/JOIN.md): fetch this node's join token over mutual TLS from a manager's join
# service, retrying every manager it knows with jittered backoff, then join through the
# local engine's API. Only a seed rendered with FORM=true may init a swarm, and only when
# no manager hands it a token.
#
# Configuration: /etc/bakery/join.env (no secrets; $BAKERY_JOIN_ENV overrides). Needs curl,
# sed, od, date and ip. The token lives in shell variables only: it reaches the engine
# through a pipe (the builtin printf into curl --data-binary @-), never a command line,
# a file, the environment or a log. bakery embeds this file's text in the user-data.
set -u

CONFIG=${BAKERY_JOIN_ENV:-/etc/bakery/join.env}
NL='
'
NOT_FORMING='not initialising a swarm: this seed was rendered to join a running one ("form" is false in join.env)'

log() { printf 'bakery-join: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
clean() { printf '%s' "$1" | tr -d '\000-\037\177' | cut -c1-200; }  # engine text: one line, short

# A printf that is not a builtin would put the token on a command line (and in ps): refuse.
case $(command -V printf 2>/dev/null) in
  *builtin*) ;;
  *) die "this shell's printf is not a builtin: refusing to handle a join token with it" ;;
esac

if [ "$#" -ne 1 ] || [ "$1" != join ]; then
  echo "usage: bakery-join.sh join" >&2
  exit 2
fi
# shellcheck source=/dev/null
. "$CONFIG" || die "cannot read $CONFIG"

now() { date +%s; }

# api METHOD PATH [curl args]: prints the answer's body, a newline and the HTTP status.
api() {
  method=$1 path=$2
  shift 2
  curl -sS --unix-socket "$DOCKER_SOCKET" --max-time 60 -X "$method" -H 'Content-Type: application/json' \
    "$@" -w "${NL}%{http_code}" "http://localhost$path"
}
status_of() { printf '%s' "${1##*"$NL"}"; }
body_of() { printf '%s' "${1%"$NL"*}"; }

swarm_state() {  # the LocalNodeState of an /info body, inactive when absent
  s=$(printf '%s' "$1" | sed -n 's/.*"LocalNodeState"[[:space:]]*:[[:space:]]*"\([a-z]*\)".*/\1/p')
  printf '%s' "${s:-inactive}"
}

info_state() {  # the engine's swarm state, or "" when it does not answer
  out=$(api GET /info 2>/dev/null) || return 1
  [ "$(status_of "$out")" = 200 ] || return 1
  swarm_state "$(body_of "$out")"
}

wait_for_docker() {
  until STATE=$(info_state); do
    [ "$(now)" -gt "$DEADLINE" ] && die "the local Docker engine never answered"
    sleep 2
  done
}

settle_pending() {  # a join left pending (its manager died mid-join) never completes: leave it
  n=0
  while [ "$n" -lt 12 ]; do
    STATE=$(info_state) || STATE=pending
    [ "$STATE" = pending ] || return 0
    sleep 5
    n=$((n + 1))
  done
  log "a previous join is stuck pending; leaving it to start over"
  api POST '/swarm/leave?force=1' >/dev/null 2>&1
  STATE=$(info_state) || STATE=inactive
}

resolve() {  # an IPv4 address for a name (empty when it has none)
  case $1 in
    *[!0-9.]*) getent ahostsv4 "$1" 2>/dev/null | sed -n '1s/[[:space:]].*//p' ;;
    *) printf '%s' "$1" ;;
  esac
}

advertise_address() {  # the address that reaches $1 (or the default route), or the interface's
  if [ -n "$ADVERTISE_INTERFACE" ]; then
    a=$(ip -4 -o addr show dev "$ADVERTISE_INTERFACE" 2>/dev/null | sed -n '1s/.* inet \([0-9.]*\).*/\1/p')
    [ -n "$a" ] || die "interface $ADVERTISE_INTERFACE has no IPv4 address"
    printf '%s' "$a"
    return 0
  fi
  for target in ${1:+"$1"} 192.0.2.1; do  # TEST-NET: a route lookup, nothing is sent
    a=$(ip -4 route get "$target" 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)
    case $a in '' | 127.*) ;; *) printf '%s' "$a"; return 0 ;; esac
  done
  die "cannot find an address to advertise; set swarm.advertise_interface"
}

host_of() {  # '10.0.0.5:2377' or '[fd00::5]:2377' -> the host part
  case $1 in
    \[*) h=${1%:*}; h=${h#\[}; printf '%s' "${h%\]}" ;;
    *:*:*) printf '%s' "$1" ;;
    *:*) printf '%s' "${1%:*}" ;;
    *) printf '%s' "$1" ;;
  esac
}

curl_why() {
  case $1 in
    6) echo "cannot resolve the name" ;;
    7) echo "connection refused or unreachable" ;;
    28) echo "timed out" ;;
    35) echo "TLS handshake failed" ;;
    51 | 60) echo "its certificate is not the cluster CA's for that name" ;;
    52 | 55 | 56) echo "the connection was closed (its certificate refused, or the service went away)" ;;
    58) echo "this node's join certificate was refused" ;;
    *) echo "curl exit $1" ;;
  esac
}

# fetch ENDPOINT: prints the join service's answer (on success) or why it failed.
fetch() {
  case $1 in *:*) url="https://[$1]:$JOIN_PORT" ;; *) url="https://$1:$JOIN_PORT" ;; esac
  out=$(curl -sS --connect-timeout 5 --max-time 20 --proto =https --cacert "$TLS_CA" \
    --cert "$TLS_JOIN_CERT" --key "$TLS_JOIN_KEY" -w "${NL}%{http_code}" "$url/v1/token/$JOIN_CLASS" 2>/dev/null)
  rc=$?
  [ "$rc" -eq 0 ] || { curl_why "$rc"; return 1; }
  code=$(status_of "$out")
  [ "$code" = 200 ] || { echo "join service on $1 answered $code"; return 1; }
  body_of "$out"
}

token_of() {  # the token of an answer, only if it looks like one (it goes into JSON unescaped)
  t=$(printf '%s' "$1" | sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"\\]*\)".*/\1/p')
  case $t in
    SWMTKN-*[!A-Za-z0-9-]*) ;;
    SWMTKN-?*) printf '%s' "$t" ;;
  esac
}

managers_of() {  # the answer's manager addresses, space-separated, the answering one first
  printf '%s' "$1" | sed -n 's/.*"managers"[[:space:]]*:[[:space:]]*\[\([^]]*\)\].*/\1/p' | tr -d '" ' | tr ',' ' '
}

safe() {  # an address that may go into JSON as it is
  case $1 in '' | *[!A-Za-z0-9.:\[\]_-]*) return 1 ;; esac
}

# do_join TOKEN FIRST_MANAGER ENDPOINT: join through the manager that handed out the token only
# (it is known to be alive; a dead manager in RemoteAddrs can leave the engine pending for good).
do_join() {
  remote=$2
  case $remote in *:*) ;; *) remote="$remote:$SWARM_PORT" ;; esac
  addr=$(advertise_address "$(resolve "$3")") || exit 1
  if ! safe "$remote" || ! safe "$addr"; then
    log "refusing to join through $remote advertising ${addr}: not an address"
    return 1
  fi
  out=$(printf '{"ListenAddr":"0.0.0.0:%s","AdvertiseAddr":"%s","RemoteAddrs":["%s"],"JoinToken":"%s"}' \
    "$SWARM_PORT" "$addr" "$remote" "$1" | api POST /swarm/join --data-binary @- 2>&1)
  code=$(status_of "$out")
  if [ "$code" = 200 ]; then
    log "joined the swarm as $JOIN_CLASS through $3, advertising $addr"
    return 0
  fi
  msg=$(body_of "$out" | sed -n 's/.*"message"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
  log "join through $3 failed ($code): $(clean "${msg:-$(body_of "$out")}")"  # engine text, never the token
  [ "$(info_state)" = pending ] && api POST '/swarm/leave?force=1' >/dev/null 2>&1
  return 1
}

# try_managers: one pass over every manager known, learning more from each answer.
# Sets JOINED and ANSWERED (1 when some manager handed out a token) and FAILURES.
try_managers() {
  JOINED=0 ANSWERED=0 FAILURES=''
  todo=$KNOWN
  while [ -n "$todo" ]; do
    ep=${todo%% *}
    todo=${todo#"$ep"}
    todo=${todo# }
    if ! answer=$(fetch "$ep"); then
      FAILURES="${FAILURES:+$FAILURES; }$ep: $answer"
      continue
    fi
    token=$(token_of "$answer")
    if [ -z "$token" ]; then
      FAILURES="${FAILURES:+$FAILURES; }$ep: join service on $ep sent no token"
      continue
    fi
    ANSWERED=1
    managers=$(managers_of "$answer")
    answer=''
    for m in $managers; do
      h=$(host_of "$m")
      case " $KNOWN " in *" $h "*) ;; *) KNOWN="$KNOWN $h" todo="$todo $h" ;; esac
    done
    first=${managers%% *}
    if do_join "$token" "${first:-$ep}" "$ep"; then
      token=''
      JOINED=1
      return 0
    fi
    token=''
    FAILURES="${FAILURES:+$FAILURES; }$ep: the join failed"
  done
}

backoff() {  # seconds: uniform in [c/2, c], c = min(30, 2^attempt), at least 1
  n=$1
  [ "$n" -gt 5 ] && n=5
  c=$((1 << n))
  [ "$c" -gt 30 ] && c=30
  r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' \n')
  p=$((c / 2 + r % (c - c / 2 + 1)))
  [ "$p" -lt 1 ] && p=1
  echo "$p"
}

init_swarm() {
  addr=$(advertise_address "") || exit 1
  safe "$addr" || die "cannot advertise $addr: not an address"
  out=$(printf '{"ListenAddr":"0.0.0.0:%s","AdvertiseAddr":"%s"}' "$SWARM_PORT" "$addr" |
    api POST /swarm/init --data-binary @- 2>&1)
  [ "$(status_of "$out")" = 200 ] || die "swarm init failed: $(clean "$(body_of "$out")")"
  log "forming a new swarm (\"form\" is true in join.env; no manager handed out a token: ${1:-no other manager configured})"
  log "initialised the swarm, advertising $addr"
  exit 0
}

DEADLINE=$(($(now) + TIMEOUT))
wait_for_docker
[ "$STATE" = pending ] && settle_pending
if [ "$STATE" = active ]; then
  log "already part of a swarm (active); nothing to do"
  exit 0
fi

KNOWN=''
for e in $ENDPOINTS; do
  [ "$ROLE" = seed ] && [ "$e" = "$SEED" ] && continue
  KNOWN="${KNOWN:+$KNOWN }$e"
done

if [ "$ROLE" = seed ] && [ "${FORM:-false}" = true ]; then
  try_managers
  [ "$JOINED" = 1 ] && exit 0
  [ "$ANSWERED" = 0 ] && init_swarm "$FAILURES"  # the first formation: no manager runs a swarm
elif [ "$ROLE" = seed ] && [ -z "$KNOWN" ]; then
  die "$NOT_FORMING and knows no other manager to join (swarm.managers)"
fi

attempt=0
while :; do
  try_managers
  [ "$JOINED" = 1 ] && exit 0
  left=$((DEADLINE - $(now)))
  [ "$left" -le 0 ] && die "gave up joining after $TIMEOUT s ($FAILURES)"
  pause=$(backoff "$attempt")
  [ "$pause" -gt "$left" ] && pause=$left
  if [ "$ROLE" = seed ]; then
    log "$NOT_FORMING: no token yet ($FAILURES); retrying in $pause s"
  else
    log "no token yet ($FAILURES); retrying in $pause s"
  fi
  sleep "$pause"
  attempt=$((attempt + 1))
done
