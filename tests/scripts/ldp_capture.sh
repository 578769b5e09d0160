#!/usr/bin/env bash
# Records a full LDP exchange between two FRR ldpd nodes (A and B) in network namespaces, for the
# LDP codec's known-answer tests and the engine's conformance tests:
#   link Hellos (UDP 646 to 224.0.0.2), the TCP 646 session setup, Initialization, KeepAlive,
#   Address, Label Mappings; then B removes one of its prefixes (10.77.254.2/32 from its
#   loopback): Address Withdraw, Label Withdraw from B and Label Release from A; then B's ldpd
#   is stopped (SIGTERM): its Notification (Shutdown) and the TCP close.
# A second scenario, hold-expiry: the same start, then B's ldpd hangs (SIGSTOP: no Hellos, no
#   KeepAlives, its TCP socket stays open) until A's Hello adjacency times out (hold time 15 s)
#   and A ends the session: its Notification and the TCP close.
#
# Usage (as root, frr and tshark installed):
#   tests/scripts/ldp_capture.sh [OUT_DIR] [session|hold-expiry|all]
# OUT_DIR defaults to slowpath/tests/data/ldp, the scenario to all. Writes
# OUT_DIR/frr_session.pcap and OUT_DIR/frr_hold_expiry.pcap (libpcap format, Ethernet, only
# `port 646` frames, seen on A's veth) and prints each one's LDP messages.
#
# Topology (addresses from the benchmarking range 198.18.0.0/15 are for data; LDP here uses
# 10.77.0.0/16 like FRR's own examples, nothing routes it outside the namespaces):
#   frr-capa [lo 10.77.255.1/32] frr-capa0 10.77.0.1/24 ==veth== 10.77.0.2/24 frr-capb0 [lo
#   10.77.255.2/32, 10.77.254.2/32] frr-capb; static routes to the other's /32s over the link.
# Router ids and transport addresses are the loopback /32s, so B (higher) is the active side.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-slowpath/tests/data/ldp}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SCENARIO=${2:-all}
case "$SCENARIO" in
  all) "$0" "$OUT" session && exec "$0" "$OUT" hold-expiry ;;
  session) FILE=frr_session.pcap ;;
  hold-expiry) FILE=frr_hold_expiry.pcap ;;
  *) echo "ldp_capture: unknown scenario $SCENARIO" >&2; exit 2 ;;
esac

NA=frr-capa
NB=frr-capb
WORK=$(mktemp -d /tmp/frr-capture.XXXXXX)
TSHARK_PID=
cleanup() {
  set +e
  [ -n "$TSHARK_PID" ] && kill "$TSHARK_PID" 2>/dev/null && wait "$TSHARK_PID" 2>/dev/null
  for n in a b; do
    for d in ldpd zebra; do
      f="$WORK/$n/$d.pid"
      if [ -s "$f" ]; then
        p=$(cat "$f")
        kids=$(cat /proc/"$p"/task/*/children 2>/dev/null)
        kill -CONT "$p" $kids 2>/dev/null
        kill "$p" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null
        for k in $p $kids; do rm -rf "/var/tmp/frr/$d.$k"; done
      fi
    done
  done
  ip netns del "$NA" 2>/dev/null
  ip netns del "$NB" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NA"
ip netns add "$NB"
ip link add frr-capa0 type veth peer name frr-capb0
ip link set frr-capa0 netns "$NA"
ip link set frr-capb0 netns "$NB"
ip -n "$NA" link set frr-capa0 address 02:00:00:77:00:01
ip -n "$NB" link set frr-capb0 address 02:00:00:77:00:02
for ns in "$NA" "$NB"; do ip -n "$ns" link set lo up; done
ip -n "$NA" link set frr-capa0 up
ip -n "$NB" link set frr-capb0 up
ip -n "$NA" addr add 10.77.0.1/24 dev frr-capa0
ip -n "$NB" addr add 10.77.0.2/24 dev frr-capb0
ip -n "$NA" addr add 10.77.255.1/32 dev lo
ip -n "$NB" addr add 10.77.255.2/32 dev lo
ip -n "$NB" addr add 10.77.254.2/32 dev lo
ip -n "$NA" route add 10.77.255.2/32 via 10.77.0.2
ip -n "$NA" route add 10.77.254.2/32 via 10.77.0.2
ip -n "$NB" route add 10.77.255.1/32 via 10.77.0.1

# FRR's daemons drop to the user frr (root is not in the frrvty group they check): the state
# directory must be theirs.
chmod 755 "$WORK"
for n in a b; do
  i=$([ "$n" = a ] && echo 1 || echo 2)
  mkdir -p "$WORK/$n"
  printf 'hostname frr-cap%s\nlog stdout informational\n' "$n" > "$WORK/$n/zebra.conf"
  cat > "$WORK/$n/ldpd.conf" <<EOF
hostname frr-cap$n
log stdout informational
mpls ldp
 router-id 10.77.255.$i
 address-family ipv4
  discovery transport-address 10.77.255.$i
  interface frr-cap${n}0
  exit
 exit-address-family
exit
EOF
  chown -R frr:frr "$WORK/$n"
done

ip netns exec "$NA" tshark -q -i frr-capa0 -f 'port 646' -F pcap -w "$WORK/raw.pcap" 2> "$WORK/tshark.err" &
TSHARK_PID=$!
for _ in $(seq 50); do grep -q 'Capturing on' "$WORK/tshark.err" && break; sleep 0.1; done

start() { # namespace letter
  local n=$1 ns=frr-cap$1
  ip netns exec "$ns" /usr/lib/frr/zebra -f "$WORK/$n/zebra.conf" -i "$WORK/$n/zebra.pid" \
    -z "$WORK/$n/zserv.api" --vty_socket "$WORK/$n" -A 127.0.0.1 -P 0 > "$WORK/$n/zebra.log" 2>&1 &
  for _ in $(seq 50); do [ -S "$WORK/$n/zserv.api" ] && break; sleep 0.1; done
  ip netns exec "$ns" /usr/lib/frr/ldpd -f "$WORK/$n/ldpd.conf" -i "$WORK/$n/ldpd.pid" \
    -z "$WORK/$n/zserv.api" --vty_socket "$WORK/$n" --ctl_socket "$WORK/$n" -A 127.0.0.1 -P 0 \
    > "$WORK/$n/ldpd.log" 2>&1 &
}
vty() { vtysh --vty_socket "$WORK/$1" -c "$2"; }
wait_for() { # seconds, command...
  local t=$1; shift
  for _ in $(seq $((t * 5))); do "$@" && return 0; sleep 0.2; done
  echo "ldp_capture: timed out waiting for: $*" >&2
  return 1
}
# A's binding for B's prefix P, learned from B (the remote label is not empty).
has_remote() { vty a 'show mpls ldp binding json' 2>/dev/null | python3 -c "
import json, sys
b = json.load(sys.stdin).get('bindings', [])
sys.exit(0 if any(x['prefix'] == '$1' and x.get('remoteLabel') not in (None, '-') for x in b) else 1)"; }
lacks_remote() { ! has_remote "$1"; }
operational() { vty a 'show mpls ldp neighbor' 2>/dev/null | grep -q OPERATIONAL; }
not_operational() { ! operational; }

start a
start b
wait_for 30 operational
wait_for 10 has_remote 10.77.254.2/32
sleep 1
if [ "$SCENARIO" = session ]; then
  # B no longer owns 10.77.254.2/32: Address Withdraw and Label Withdraw from B, Label Release
  # from A.
  ip -n "$NB" addr del 10.77.254.2/32 dev lo
  wait_for 10 lacks_remote 10.77.254.2/32
  sleep 1
  # B stops: Notification (Shutdown) and the TCP close.
  kill "$(cat "$WORK/b/ldpd.pid")"
  sleep 2
else
  # B hangs: its ldpd and both children stopped (the LDP engine child sends the Hellos).
  p=$(cat "$WORK/b/ldpd.pid")
  kill -STOP "$p" $(cat /proc/"$p"/task/*/children)
  wait_for 25 not_operational
  sleep 2
fi
kill "$TSHARK_PID"
wait "$TSHARK_PID" 2>/dev/null || true
TSHARK_PID=

cp "$WORK/raw.pcap" "$OUT/$FILE"
chmod 644 "$OUT/$FILE"
echo "ldp_capture: $SCENARIO, $(/usr/lib/frr/ldpd --version | head -1)"
tshark -r "$OUT/$FILE" -Y ldp -T fields -e frame.number -e frame.time_relative -e ip.src \
  -e ldp.msg.type 2>/dev/null | head -100
ls -l "$OUT/$FILE"
