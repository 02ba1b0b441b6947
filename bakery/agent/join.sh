#!/bin/sh
# bakery-join (POSIX sh): swarm init/join at boot, for nodes without Python (Flatcar
# Container Linux, Fedora CoreOS). The same protocol and rules as bakery's Python agent
# (docs/JOIN.md): fetch this node's join token over mutual TLS from a manager's join
# service, retrying every manager it knows with jittered backoff, then join through the
# local engine's API. Only a seed rendered with FORM=true may init a swarm, and only when
# no manager can be reached at all.
#
# `answer` is one request to the managers' join service: socat (bakery-join-tls.service)
# ends the mutual TLS and runs it per connection, the session on stdin/stdout and the client
# certificate's OU in SOCAT_OPENSSL_X509_ORGANIZATIONALUNITNAME; systemd
# (bakery-join-server.socket) bounds every connection (docs/IGNITION.md).
#
# Configuration: /etc/bakery/join.env (no secrets; $BAKERY_JOIN_ENV overrides). Needs curl,
# sed, od, date and ip. The token lives in shell variables only: it reaches the engine
# through a pipe (the builtin printf into curl --data-binary @-), never a command line,
# a file, the environment or a log. bakery embeds this file's text in the user-data.
set -u
LC_ALL=C  # bytes, not characters: patterns, sed and tr the same under every shell and locale
export LC_ALL

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

case ${1-}:$# in
  join:1 | answer:1) MODE=$1 ;;
  *)
    echo "usage: bakery-join.sh join|answer" >&2
    exit 2
    ;;
esac
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

node_id() {  # the Swarm.NodeID of an /info body: set once the engine holds a swarm node's certificate
  printf '%s' "$1" | tr '\n' ' ' |
    sed -n 's/.*"Swarm"[[:space:]]*:[[:space:]]*{[[:space:]]*"NodeID"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'
}

# A pending engine is one of two things. With a node ID it is a member of a swarm whose managers
# it cannot reach yet (a reboot beside managers still down): never left, it reconnects on its own,
# and this node neither joins nor forms. Without one it is a join that never completed (its
# manager died mid-join): after 60 s it is left, to start over.
settle_pending() {
  n=0
  while :; do
    out=$(api GET /info 2>/dev/null) && [ "$(status_of "$out")" = 200 ] || out=''
    STATE=$(swarm_state "$(body_of "$out")")
    [ -n "$out" ] || STATE=pending
    [ "$STATE" = pending ] || return 0
    if [ -n "$(node_id "$(body_of "$out")")" ]; then
      log "already part of a swarm (pending: its managers are not reachable yet); not joining, not leaving it"
      exit 0
    fi
    [ "$n" -ge 12 ] && break
    sleep 5
    n=$((n + 1))
  done
  log "a previous join is stuck pending; leaving it to start over"
  api POST '/swarm/leave?force=1' >/dev/null 2>&1
  STATE=$(info_state) || STATE=inactive
}

resolve() {  # an IPv4 address for a name (empty when it has none): the route to advertise on
  case $1 in
    *[!0-9.]*) getent ahostsv4 "$1" 2>/dev/null | sed -n '1s/[[:space:]].*//p' ;;
    *) printf '%s' "$1" ;;
  esac
}

addresses() {  # every address of a name (IPv4 and IPv6, in the resolver's order), comma-separated,
  # IPv6 in brackets: curl --resolve tries each until one connects, as the Python agent's
  # create_connection does (the first alone: one that refuses would count as "no manager")
  getent ahosts "$1" 2>/dev/null | awk '!seen[$1]++ { a = ($1 ~ /:/) ? "[" $1 "]" : $1; out = out (out == "" ? "" : ",") a }
                                        END { printf "%s", out }'
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

# fetch ENDPOINT: prints the join service's answer (on success) or why it failed. Its status says
# what the failure counts as for the formation rule (docs/JOIN.md): 1 something answered on the
# join port (a refusal, a reset, a TLS failure, a silence after the connect: a manager), 2
# nothing could be connected to (refused, unreachable, connect timeout: no manager), 3 the name
# does not resolve (unknown: asked again, never a reason to form).
fetch() {
  pin=''
  case $1 in
    *:*) url="https://[$1]:$JOIN_PORT" ;;
    *[!0-9.]*)  # a name: resolved first, so a lookup that fails or times out is "unknown", never "no manager"
      url="https://$1:$JOIN_PORT"
      a=$(addresses "$1")
      [ -n "$a" ] || { echo "cannot resolve the name"; return 3; }
      pin="$1:$JOIN_PORT:$a"
      ;;
    *) url="https://$1:$JOIN_PORT" ;;
  esac
  # --noproxy: a proxy in the environment (systemd's DefaultEnvironment) would stand between this node
  # and the manager, and its answer or silence would decide the formation rule in the manager's place.
  out=$(curl -sS --noproxy '*' --connect-timeout 5 --max-time 20 --proto =https --cacert "$TLS_CA" \
    --cert "$TLS_JOIN_CERT" --key "$TLS_JOIN_KEY" ${pin:+--resolve "$pin"} -w "${NL}%{http_code} %{num_connects}" \
    "$url/v1/token/$JOIN_CLASS" 2>/dev/null)
  rc=$?
  tail=${out##*"$NL"}
  if [ "$rc" -ne 0 ]; then
    curl_why "$rc"
    [ "$rc" -eq 6 ] && return 3
    # Connected (a refusal, a reset, a TLS failure, a silence): a manager. Nothing connected: no
    # manager only when the connect itself failed (refused, unreachable, its timeout); any other
    # failure (curl killed, an option it lacks) says nothing about the managers: unknown.
    case ${tail#* }:$rc in
      0:7 | 0:28) return 2 ;;
      [1-9]*:*) return 1 ;;
    esac
    return 3
  fi
  code=${tail%% *}
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
# Sets JOINED, ANSWERED (1 when something answered on a manager's join port: a swarm may
# exist), UNRESOLVED (1 when a manager's name did not resolve) and FAILURES.
try_managers() {
  JOINED=0 ANSWERED=0 UNRESOLVED=0 FAILURES=''
  todo=$KNOWN
  while [ -n "$todo" ]; do
    ep=${todo%% *}
    todo=${todo#"$ep"}
    todo=${todo# }
    answer=$(fetch "$ep")
    reach=$?
    if [ "$reach" -ne 0 ]; then
      case $reach in 1) ANSWERED=1 ;; 3) UNRESOLVED=1 ;; esac
      FAILURES="${FAILURES:+$FAILURES; }$ep: $answer"
      continue
    fi
    ANSWERED=1
    token=$(token_of "$answer")
    if [ -z "$token" ]; then
      FAILURES="${FAILURES:+$FAILURES; }$ep: join service on $ep sent no token"
      continue
    fi
    managers=$(managers_of "$answer")
    answer=''
    set -f  # the answer's words are addresses, never file patterns
    for m in $managers; do
      h=$(host_of "$m")
      safe "$h" || continue
      case " $KNOWN " in *" $h "*) ;; *) KNOWN="$KNOWN $h" todo="$todo $h" ;; esac
    done
    set +f
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

# --- the join service: one request ---------------------------------------------------------

CR=$(printf '\r')
HEAD_MAX=8192
S='[[:space:]]*'

# reply STATUS REASON JSON: the whole answer, then the log line (never the body: it may hold a token)
reply() {
  printf 'HTTP/1.0 %s %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "$2" "${#3}" "$3"
  log "$(escape "${SOCAT_OPENSSL_X509_COMMONNAME:--}") \"$(escape "${LINE-}")\" $1"
  exit 0
}
fail() { reply "$1" "$2" "{\"error\": \"$3\"}"; }

escape() {  # a request line (or a certificate's CN) for the log: control characters, non-ASCII and backslashes as \xNN, 200 bytes
  case $1 in  # printable ASCII and short, as nearly every line is: as it is, without the four processes below
    *[!\ -~]* | *\\*) ;;
    *) [ "${#1}" -le 200 ] && { printf '%s' "$1"; return 0; } ;;
  esac
  printf '%s' "$1" | head -c 200 | od -An -v -tu1 |
    awk '{ for (i = 1; i <= NF; i++) if ($i < 32 || $i > 126 || $i == 92) printf "\\x%02x", $i; else printf "%c", $i }'
}

engine() {  # engine PATH: a GET on the local engine (2.5 s at most): the body, a newline, the status
  curl -sS --unix-socket "$DOCKER_SOCKET" --max-time 2.5 -w "${NL}%{http_code}" "http://localhost$1" 2>/dev/null
}

answer() {
  # socat reads HEAD_MAX + 1 bytes at most: a longer head ends without its newline (read fails, the part
  # read is kept), so its size is counted either way
  IFS= read -r LINE || [ -n "$LINE" ] || exit 0
  size=$((${#LINE} + 1))  # bytes read so far, its newline counted
  LINE=${LINE%"$CR"}
  while :; do  # the rest of the head; at most HEAD_MAX bytes in all
    [ "$size" -gt "$HEAD_MAX" ] && fail 400 "Bad Request" "request head too large"
    if ! IFS= read -r h; then
      size=$((size + ${#h}))
      [ "$size" -gt "$HEAD_MAX" ] && fail 400 "Bad Request" "request head too large"
      break
    fi
    size=$((size + ${#h} + 1))
    h=${h%"$CR"}
    [ -z "$h" ] && break
  done
  set -f
  # shellcheck disable=SC2086  # the request line's words
  set -- $LINE
  set +f
  case $#:${3-} in 3:HTTP/*) ;; *) fail 400 "Bad Request" "bad request" ;; esac
  case $1:$2 in
    GET:/v1/token/worker | GET:/v1/token/manager) wanted=${2#/v1/token/} ;;
    *) fail 404 "Not Found" "unknown path" ;;
  esac
  [ "${SOCAT_OPENSSL_X509_ORGANIZATIONALUNITNAME-}" = "$wanted" ] ||
    fail 403 Forbidden "this certificate may not obtain the $wanted token"
  out=$(engine /swarm) || fail 503 "Service Unavailable" "local engine unavailable"
  [ "$(status_of "$out")" = 200 ] || fail 503 "Service Unavailable" "this node is not a swarm manager yet"
  swarm=$(body_of "$out")
  out=
  field=Worker
  [ "$wanted" = manager ] && field=Manager
  token=$(printf '%s' "$swarm" | tr '\n' ' ' |
    sed -n "s/.*\"JoinTokens\"$S:$S{[^}]*\"$field\"$S:$S\"\([^\"\\\\]*\)\".*/\\1/p")
  swarm=''
  case $token in
    SWMTKN-*[!A-Za-z0-9-]* | '') fail 503 "Service Unavailable" "local engine unavailable" ;;
  esac
  case $token in SWMTKN-?*) ;; *) fail 503 "Service Unavailable" "local engine unavailable" ;; esac
  out=$(engine /info) || fail 503 "Service Unavailable" "local engine unavailable"
  [ "$(status_of "$out")" = 200 ] || fail 503 "Service Unavailable" "local engine unavailable"
  info=$(body_of "$out" | tr '\n' ' ')
  case $info in *'"RemoteManagers"'*) ;; *) fail 503 "Service Unavailable" "local engine unavailable" ;; esac
  # Swarm.NodeID is the last NodeID before Swarm.RemoteManagers (/info has no other before it)
  me=$(printf '%s' "${info%%\"RemoteManagers\"*}" | sed -n "s/.*\"NodeID\"$S:$S\"\([^\"]*\)\".*/\\1/p")
  list=$(printf '%s' "${info#*\"RemoteManagers\"}" | sed -n "s/^$S:$S\[\([^]]*\)\].*/\\1/p")
  [ -n "$list" ] || fail 503 "Service Unavailable" "local engine unavailable"
  mine='' others=''
  set -f  # the engine's words are addresses, never file patterns
  for entry in $(printf '%s' "$list" | tr -d ' ' | tr '}' '\n'); do  # {"NodeID":"..","Addr":"10.0.0.5:2377"}
    id=$(printf '%s' "$entry" | sed -n 's/.*"NodeID":"\([^"]*\)".*/\1/p')
    addr=$(printf '%s' "$entry" | sed -n 's/.*"Addr":"\([^"]*\)".*/\1/p')
    safe "$addr" || fail 503 "Service Unavailable" "local engine unavailable"
    if [ -n "$me" ] && [ "$id" = "$me" ]; then mine="\"$addr\""; else others="$others$addr$NL"; fi
  done
  managers=$mine
  for a in $(printf '%s' "$others" | sort -u); do managers="${managers:+$managers, }\"$a\""; done
  set +f
  reply 200 OK "{\"token\": \"$token\", \"managers\": [$managers]}"
}

if [ "$MODE" = answer ]; then
  answer
fi

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

pause_before_next_pass() {  # sleeps with backoff; gives up at the deadline
  left=$((DEADLINE - $(now)))
  [ "$left" -le 0 ] && die "gave up joining after $TIMEOUT s ($FAILURES)"
  pause=$(backoff "$attempt")
  [ "$pause" -gt "$left" ] && pause=$left
  log "$1; retrying in $pause s"
  sleep "$pause"
  attempt=$((attempt + 1))
}

attempt=0
if [ "$ROLE" = seed ] && [ "${FORM:-false}" = true ]; then
  # The first pass in which every name resolved decides: nothing reachable at all, form; any answer
  # on a manager's join port (even a refusal), a swarm exists: join it, for good.
  while :; do
    try_managers
    [ "$JOINED" = 1 ] && exit 0
    [ "$ANSWERED" = 1 ] && break
    [ "$UNRESOLVED" = 0 ] && init_swarm "$FAILURES"  # the first formation: no manager runs a swarm
    pause_before_next_pass "not initialising a swarm yet although \"form\" is true: a manager's name does not resolve ($FAILURES)"
  done
  log "not initialising a swarm although \"form\" is true: a manager answered ($FAILURES)"
elif [ "$ROLE" = seed ] && [ -z "$KNOWN" ]; then
  die "$NOT_FORMING and knows no other manager to join (swarm.managers)"
fi

while :; do
  try_managers
  [ "$JOINED" = 1 ] && exit 0
  if [ "$ROLE" = seed ] && [ "${FORM:-false}" != true ]; then
    pause_before_next_pass "$NOT_FORMING: no token yet ($FAILURES)"
  else
    pause_before_next_pass "no token yet ($FAILURES)"
  fi
done
