#!/usr/bin/env bash
# test-deb.sh DEB [CAPTURE]: the package's test, run by `cargo xtask test-deb` inside
# `../shared/tools/fresh-machine --boot` (a throw-away copy of a new machine's root,
# booted under its own systemd; this runs there as root). It installs the package,
# checks what it installed, runs the service on a veth pair in a network namespace of
# its own fed with the reference iodine capture, reloads, upgrades, removes and purges
# it, and checks that the purge leaves the system as it was before the install.
#
# Clean-up: the EXIT trap stops the service, removes the unit drop-in and deletes the
# namespace (its veth pair lives only inside it, so nothing is made in the host's
# network namespace). Whatever else is left goes with the copy, which fresh-machine
# discards, with every process and mount of the run, even when this script fails.
set -uo pipefail

DEB=${1:?usage: test-deb.sh DEB [CAPTURE]}
CAPTURE=${2:-/build/shared/captures/elastic-iodine-tunnel.pcap}
NS=dnss-deb      # the test's network namespace
IF_SENSOR=dnsd0  # the sensor's end of the veth pair (its "mirror port")
IF_PEER=dnsd1    # the end tcpreplay writes the capture to
UNIT=dns-sensor.service
DROPIN=/run/systemd/system/$UNIT.d
FLEET_UNIT=dns-sensor-fleet.service
FLEET_DROPIN=/run/systemd/system/$FLEET_UNIT.d
FLEET_CONFIG=/run/dnss-fleet-test.toml
# The capabilities the unit grants (CAP_NET_ADMIN 12, NET_RAW 13, IPC_LOCK 14,
# PERFMON 38, BPF 39), as /proc/PID/status shows them.
CAPS_HEX=000000c000007000
export DEBIAN_FRONTEND=noninteractive

PASS=0 FAIL=0
say() { printf 'test-deb: %s\n' "$*"; }
ok() {
  PASS=$((PASS + 1))
  say "ok: $*"
}
bad() {
  FAIL=$((FAIL + 1))
  say "FAILED: $*"
}
check() { # check WHAT CMD...: ok if CMD succeeds
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
same() { # same WHAT GOT WANT
  if [[ $2 == "$3" ]]; then ok "$1 ($2)"; else bad "$1: got '$2', want '$3'"; fi
}
stdout_enabled() { # the test's change to the settings is there
  sed -n '/^\[output\.stdout\]/,/^\[output\.journald\]/p' /etc/dns-sensor/dns-sensor.toml | grep -qx 'enabled = true'
}
absent() { [[ ! -e $1 && ! -L $1 ]]; }
prop() { systemctl show -P "$1" "$UNIT"; }
usecs() { printf '%s\n' "${EPOCHREALTIME/[.,]/}"; }
secs() { awk -v d="$1" 'BEGIN { printf "%.2f", d / 1e6 }'; }

cleanup() {
  trap '' INT TERM
  systemctl stop "$UNIT" "$FLEET_UNIT" >/dev/null 2>&1 || true
  for p in ${SMTP_PIDS:-}; do kill "$p" 2>/dev/null || true; done
  rm -rf "$DROPIN" "$FLEET_DROPIN" "$FLEET_CONFIG"
  systemctl daemon-reload >/dev/null 2>&1 || true
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# What the package may touch, as type, mode and owner of every path (and the contents
# of /etc but for the shadow tools' backups, *-). Skipped: what dpkg, apt, systemd's
# runtime state, the logs and the base's PostgreSQL change by themselves; /var/log/dns-sensor and the
# systemd helper's state are checked by name after the purge.
snapshot() {
  {
    find /etc /usr /opt /srv /var -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt \
      -o -path /var/cache -o -path /var/log -o -path /var/tmp -o -path /var/lib/systemd \
      -o -path /var/backups -o -path /var/lib/postgresql \) -prune -o -printf '%p %y %m %u %g\n'
    find /etc -xdev -type f ! -name '*-' -exec sha256sum {} +
  } | sort
}

# The alert for pirate.sea in this boot's journal of the unit: the JSON line of the
# stdout output (MESSAGE), and the structured entry of the journald output.
alert_check() {
  journalctl -u "$UNIT" -b -o json --no-pager | python3 -c '
import json, sys
want = {"total_requests": 222, "unique_hostnames": 222, "total_bytes_in": 16812, "total_bytes_out": 35212}
line = structured = None
for raw in sys.stdin:
    e = json.loads(raw)
    msg = e.get("MESSAGE")
    if isinstance(msg, str) and msg.startswith("{"):
        try:
            doc = json.loads(msg)
        except ValueError:
            continue
        if doc.get("domain") == "pirate.sea":
            line = doc
    if e.get("MESSAGE_ID") == "c02f30fa7d4846fa8846c606a7ea6dc5" and e.get("DNS_DOMAIN") == "pirate.sea":
        structured = e
mode = sys.argv[1]
if mode == "line":
    if line is None:
        sys.exit("no JSON alert line for pirate.sea")
    got = {k: line.get(k) for k in want}
    print("test-deb: alert line:", json.dumps(got))
    sys.exit(0 if got == want else "figures differ: %r" % got)
else:
    if structured is None:
        sys.exit("no journal entry with MESSAGE_ID c02f30fa7d4846fa8846c606a7ea6dc5 for pirate.sea")
    fields = {k: v for k, v in structured.items() if k.isupper() and not k.startswith("_") and k not in ("MESSAGE", "SYSLOG_IDENTIFIER")}
    print("test-deb: journal entry:", json.dumps(fields, sort_keys=True))
    if structured.get("UNIQUE_HOSTNAMES") != "222":
        sys.exit("UNIQUE_HOSTNAMES is not 222")
    # The tunnel looks like one: a warning, not a notice.
    got = (structured.get("SEVERITY"), structured.get("PRIORITY"))
    sys.exit(0 if got == ("high", "4") else "SEVERITY and PRIORITY are %r, not high and 4" % (got,))
' "$1"
}

say "package $DEB; capture $CAPTURE"
[[ -r $DEB && -r $CAPTURE ]] || {
  bad "cannot read $DEB or $CAPTURE"
  exit 1
}

# tcpreplay (Debian's) before the first snapshot: it is the test's, not the package's.
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends tcpreplay; } >/tmp/test-deb-apt.log 2>&1; then
  tail -n 20 /tmp/test-deb-apt.log
  bad "installing tcpreplay"
  exit 1
fi
# This base root comes from a Docker image whose /usr/sbin/policy-rc.d forbids every
# service action (exit 101): deb-systemd-invoke would then neither restart the sensor
# on upgrade nor stop it on remove. An appliance has no such file: set it aside.
if [[ -e /usr/sbin/policy-rc.d ]]; then
  mv /usr/sbin/policy-rc.d /tmp/test-deb-policy-rc.d
  say "set aside /usr/sbin/policy-rc.d (it forbids service actions: $(grep -v '^#' /tmp/test-deb-policy-rc.d | tr -s '\n' ' '))"
fi
snapshot >/tmp/test-deb-before.txt

# ---------------------------------------------------------------- install
if apt-get install -y -q "$DEB" >/tmp/test-deb-install.log 2>&1; then
  ok "apt-get install $DEB"
else
  tail -n 20 /tmp/test-deb-install.log
  bad "apt-get install $DEB"
  exit 1
fi

IFS=: read -r _ _ uid gid _ home shell < <(getent passwd dns-sensor) || true
if [[ -n ${uid:-} ]]; then
  ok "user dns-sensor exists (uid $uid)"
  check "dns-sensor is a system user (uid < 1000)" test "$uid" -lt 1000
  same "its home" "$home" /var/lib/dns-sensor
  same "its shell" "$shell" /usr/sbin/nologin
  same "its group" "$(getent group "$gid" | cut -d: -f1)" dns-sensor
  same "its password state" "$(passwd -S dns-sensor | awk '{ print $2 }')" L
else
  bad "user dns-sensor exists"
fi
check "group dns-sensor exists" getent group dns-sensor
for d in /var/lib/dns-sensor /var/log/dns-sensor; do
  same "$d owner and mode" "$(stat -c '%U:%G %a' "$d" 2>&1)" "dns-sensor:dns-sensor 750"
done
conffiles=$(dpkg-query -W -f '${Conffiles}\n' dns-sensor | awk 'NF { print $1 }' | sort | tr '\n' ' ')
same "conffiles" "$conffiles" "/etc/default/dns-sensor /etc/dns-sensor/dns-sensor.toml "
check "/etc/default/dns-sensor has an empty DNS_SENSOR_INTERFACE=" grep -qx 'DNS_SENSOR_INTERFACE=' /etc/default/dns-sensor
check "/etc/default/dns-sensor has an empty DNS_SENSOR_OPTIONS=" grep -qx 'DNS_SENSOR_OPTIONS=' /etc/default/dns-sensor
for f in README.md appliance.md live-capture.md performance.md copyright changelog.Debian.gz; do
  check "doc /usr/share/doc/dns-sensor/$f" test -s "/usr/share/doc/dns-sensor/$f"
done
check "binary /usr/bin/dns-sensor runs" /usr/bin/dns-sensor --version
# `check-config` as the service's user: the shipped settings pass, a typo is refused
# with exit 2 naming its line.
check "check-config accepts the installed settings (as dns-sensor)" \
  runuser -u dns-sensor -- /usr/bin/dns-sensor check-config /etc/dns-sensor/dns-sensor.toml
typo=/tmp/test-deb-typo.toml
{ cat /etc/dns-sensor/dns-sensor.toml; echo 'threshhold = 5'; } >"$typo"
chmod 644 "$typo"
typo_line=$(wc -l <"$typo")
typo_out=$(runuser -u dns-sensor -- /usr/bin/dns-sensor check-config "$typo" 2>&1)
same "check-config refuses a typo with exit 2" "$?" 2
check "  naming the file and line ($typo:$typo_line)" grep -q "$typo:$typo_line: unknown field \`threshhold\`" <<<"$typo_out"
rm -f "$typo"
# The installed settings work as shipped: replaying the capture with them gives the
# reference alert (replay prints alerts on stdout).
replayed=$(/usr/bin/dns-sensor replay --config /etc/dns-sensor/dns-sensor.toml "$CAPTURE" 2>/dev/null |
  python3 -c 'import json, sys
for l in sys.stdin:
    d = json.loads(l)
    print(d["domain"], d["total_requests"], d["unique_hostnames"], d["total_bytes_in"], d["total_bytes_out"])')
same "replay with the installed settings" "$replayed" "pirate.sea 222 222 16812 35212"

# systemd names it by its search path (/lib is /usr/lib on a merged-/usr system).
unit_file=$(readlink -f "$(prop FragmentPath)")
same "unit file" "$unit_file" /usr/lib/systemd/system/dns-sensor.service
verify=$(systemd-analyze verify "$UNIT" 2>&1)
rc=$?
if ((rc == 0)) && [[ -z $verify ]]; then ok "systemd-analyze verify $UNIT: clean"; else
  bad "systemd-analyze verify $UNIT (status $rc): $verify"
fi
score_line=$(systemd-analyze security --no-pager "$UNIT" 2>&1 | grep 'Overall exposure level')
score=$(sed -nE 's/.*: ([0-9]+\.[0-9]+) .*/\1/p' <<<"$score_line")
say "figure: systemd-analyze security $UNIT: $score_line"
say "figure: what it still counts against the unit:"
systemd-analyze security --no-pager "$UNIT" 2>&1 | grep '✗' | sed 's/^/  | /'
check "exposure ${score:-?} is at most 2.0" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.0) }'
same "systemctl is-enabled" "$(systemctl is-enabled "$UNIT")" enabled
same "not started at install: systemctl is-active" "$(systemctl is-active "$UNIT")" inactive

# ---------------------------------------------------------------- the fleet's unit
# Installed beside the sensor's, neither enabled nor started. Started against a
# ClickHouse that is not there, it must come up in its sandbox (READY=1), evaluate,
# and say in the journal that ClickHouse does not answer, without dying.
same "fleet unit file" "$(readlink -f "$(systemctl show -P FragmentPath "$FLEET_UNIT")")" \
  /usr/lib/systemd/system/dns-sensor-fleet.service
verify=$(systemd-analyze verify "$FLEET_UNIT" 2>&1)
rc=$?
if ((rc == 0)) && [[ -z $verify ]]; then ok "systemd-analyze verify $FLEET_UNIT: clean"; else
  bad "systemd-analyze verify $FLEET_UNIT (status $rc): $verify"
fi
score_line=$(systemd-analyze security --no-pager "$FLEET_UNIT" 2>&1 | grep 'Overall exposure level')
score=$(sed -nE 's/.*: ([0-9]+\.[0-9]+) .*/\1/p' <<<"$score_line")
say "figure: systemd-analyze security $FLEET_UNIT: $score_line"
check "  exposure ${score:-?} is at most 2.0" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.0) }'
same "  systemctl is-enabled" "$(systemctl is-enabled "$FLEET_UNIT")" disabled
same "  not started at install" "$(systemctl is-active "$FLEET_UNIT")" inactive
printf 'interval = "1s"\nwindow = "1m"\n[fleet]\nclickhouse = "http://127.0.0.1:9"\ndelay = "0s"\n' \
  >"$FLEET_CONFIG"
mkdir -p "$FLEET_DROPIN"
printf '[Service]\nExecStart=\nExecStart=/usr/bin/dns-sensor fleet run --config %s\n' "$FLEET_CONFIG" \
  >"$FLEET_DROPIN/test.conf"
systemctl daemon-reload
if systemctl start "$FLEET_UNIT"; then ok "  starts (READY=1) with a ClickHouse that is not there"; else
  bad "  starts (READY=1) with a ClickHouse that is not there"
fi
sleep 3
said=$(journalctl -u "$FLEET_UNIT" -b -o cat --no-pager -p err | grep -c 'fleet: evaluation at')
check "  logs each evaluation ClickHouse did not answer (${said:-0} in 3 s)" test "${said:-0}" -ge 2
same "  and goes on: systemctl is-active" "$(systemctl is-active "$FLEET_UNIT")" active
systemctl stop "$FLEET_UNIT"
same "  stops on SIGTERM: status" "$(systemctl show -P ExecMainStatus "$FLEET_UNIT")" 0
rm -rf "$FLEET_DROPIN" "$FLEET_CONFIG"
systemctl daemon-reload

# ---------------------------------------------------------------- no interface set
# It must fail at once with status 2 and a line saying what to set, and not restart.
systemctl start --no-block "$UNIT"
for _ in $(seq 50); do
  [[ $(systemctl is-active "$UNIT") == activating ]] || break
  sleep 0.2
done
state=$(systemctl is-active "$UNIT")
same "empty DNS_SENSOR_INTERFACE: the start fails" "$state" failed
same "  with exit status" "$(prop ExecMainStatus)" 2
sleep 6 # RestartSec=5: a restart would have happened by now
same "  and no restart (RestartPreventExitStatus=2)" "$(prop NRestarts)" 0
msg=$(journalctl -u "$UNIT" -b -o cat --no-pager -p err | tail -n 3)
say "figure: empty interface, the journal says: ${msg//$'\n'/ | }"
if grep -q /etc/default/dns-sensor <<<"$msg"; then ok "  the message names /etc/default/dns-sensor"; else
  bad "  the message names /etc/default/dns-sensor"
fi
systemctl stop "$UNIT" 2>/dev/null
systemctl reset-failed "$UNIT" 2>/dev/null

# The same package again while the service is stopped: an upgrade leaves it stopped.
if dpkg -i "$DEB" </dev/null >/tmp/test-deb-upgrade0.log 2>&1; then ok "dpkg -i again, service stopped"; else
  tail -n 20 /tmp/test-deb-upgrade0.log
  bad "dpkg -i again, service stopped"
fi
same "  still stopped" "$(systemctl is-active "$UNIT")" inactive
same "  still enabled" "$(systemctl is-enabled "$UNIT")" enabled

# ---------------------------------------------------------------- a real run
# A veth pair inside a namespace of the test's own; a drop-in runs the service there.
# Two queues at each end, as a NIC has several: the sensor opens one socket and one
# pinned worker per queue, and the peer's transmit queue picks the receive queue (a
# veth made without them has one rx queue but as many tx queues as CPUs, and what the
# peer sends from a second one reaches no socket).
ip netns add "$NS" && ip -n "$NS" link set lo up && ip -n "$NS" addr add 10.77.0.1/32 dev lo || {
  bad "making the namespace $NS"
  exit 1
}
# Two SMTP servers (Python's smtpd, which prints what it receives) in the namespace:
# on localhost, which the unit allows, and on 10.77.0.1, a local address that is not
# localhost, which IPAddressDeny=any keeps the sensor from.
SMTP_PIDS=
for at in 127.0.0.1:2525 10.77.0.1:2525; do
  ip netns exec "$NS" python3 -u -W ignore -m smtpd -n -c DebuggingServer "$at" \
    >"/tmp/test-deb-smtp-${at%:*}.log" 2>&1 &
  SMTP_PIDS+=" $!"
done
mkdir -p "$DROPIN"
printf '[Service]\nNetworkNamespacePath=/run/netns/%s\n' "$NS" >"$DROPIN/test-netns.conf"
systemctl daemon-reload
sed -i "s/^DNS_SENSOR_INTERFACE=.*/DNS_SENSOR_INTERFACE=$IF_SENSOR/" /etc/default/dns-sensor

# The interface is not there yet (a NIC late at boot): the start waits for it, still
# activating and saying so, past nothing (EXTEND_TIMEOUT_USEC), and becomes active
# once the interface is up.
systemctl start --no-block "$UNIT"
sleep 3
same "interface missing: the start waits (activating)" "$(systemctl is-active "$UNIT")" activating
status=$(prop StatusText)
say "figure: status while waiting: $status"
check "  its status says it waits for $IF_SENSOR" grep -q "waiting for interface $IF_SENSOR" <<<"$status"
ip -n "$NS" link add "$IF_SENSOR" numtxqueues 2 numrxqueues 2 type veth \
  peer name "$IF_PEER" numtxqueues 2 numrxqueues 2 &&
  ip -n "$NS" link set "$IF_SENSOR" up &&
  ip -n "$NS" link set "$IF_PEER" up || {
  bad "making the veth pair in $NS"
  exit 1
}
for _ in $(seq 75); do
  [[ $(systemctl is-active "$UNIT") == activating ]] || break
  sleep 0.2
done
same "  active once the interface is up" "$(systemctl is-active "$UNIT")" active
systemctl stop "$UNIT"
# The stdout output on beside journald: the alert is then both a JSON line and a
# structured entry in the journal. And the file output, at the path the settings
# suggest: under LogsDirectory=, the one place the unit lets it write.
ALERTS=/var/log/dns-sensor/alerts.json
sed -i '/^\[output\.stdout\]/,/^\[/ s/^# enabled = true$/enabled = true/' /etc/dns-sensor/dns-sensor.toml
sed -i "s|^# path = \"$ALERTS\"\$|path = \"$ALERTS\"|" /etc/dns-sensor/dns-sensor.toml
check "file output enabled in the test's settings" grep -qx "path = \"$ALERTS\"" /etc/dns-sensor/dns-sensor.toml
# And the email output, plain SMTP to the server on localhost (port 2525).
email_to() { # email_to HOST: point the email output at HOST:2525
  sed -i -e '/^\[output\.email\]/,/^\[output\.file\]/ {' -e 's/^enabled = false$/enabled = true/' \
    -e "s/^server = .*/server = \"$1\"/" -e 's/^# port = 25$/port = 2525/' -e 's/^tls = "starttls"$/tls = "none"/' \
    -e 's/^# from = /from = /' -e 's/^# to = /to = /' -e 's/^give_up_after = .*/give_up_after = "0"/' \
    -e 's/^timeout = .*/timeout = "3s"/' -e '}' \
    /etc/dns-sensor/dns-sensor.toml
}
email_to 127.0.0.1
check "email output enabled in the test's settings" bash -c \
  "sed -n '/^\[output\.email\]/,/^\[output\.file\]/p' /etc/dns-sensor/dns-sensor.toml | grep -qx 'enabled = true'"
check "stdout output enabled in the test's settings" stdout_enabled
check "check-config accepts the test's settings (as dns-sensor)" \
  runuser -u dns-sensor -- /usr/bin/dns-sensor check-config /etc/dns-sensor/dns-sensor.toml

start_timed() { # systemctl start, timed; sets START_S (wall) and READY_S (exec to READY)
  local t0 t1
  t0=$(usecs)
  timeout 120 systemctl start "$UNIT"
  local rc=$?
  t1=$(usecs)
  START_S=$(secs $((t1 - t0)))
  READY_S=$(secs $(($(prop ActiveEnterTimestampMonotonic) - $(prop ExecMainStartTimestampMonotonic))))
  return $rc
}
cursor=$(journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p')
if start_timed; then ok "systemctl start (READY=1 received)"; else bad "systemctl start"; fi
say "figure: start to READY: systemctl start returned after $START_S s; exec to READY $READY_S s"
same "systemctl is-active" "$(systemctl is-active "$UNIT")" active
pid=$(prop MainPID)
if [[ $pid != 0 && -r /proc/$pid/status ]]; then
  st=/proc/$pid/status
  same "the sensor's user" "$(ps -o user= -p "$pid")" dns-sensor
  same "its effective capabilities" "$(awk '/^CapEff:/ { print $2 }' "$st")" "$CAPS_HEX"
  same "its bounding set" "$(awk '/^CapBnd:/ { print $2 }' "$st")" "$CAPS_HEX"
  same "no new privileges" "$(awk '/^NoNewPrivs:/ { print $2 }' "$st")" 1
  same "seccomp filter mode" "$(awk '/^Seccomp:/ { print $2 }' "$st")" 2
  same "its network namespace is the test's" "$(readlink "/proc/$pid/ns/net")" "$(ip netns exec "$NS" readlink /proc/self/ns/net)"
else
  bad "the sensor's main process (MainPID $pid)"
fi
check "the journal says it watches $IF_SENSOR" bash -c "journalctl -u $UNIT -b -o cat --no-pager | grep -q 'watching $IF_SENSOR'"

out=$(ip netns exec "$NS" tcpreplay -i "$IF_PEER" --pps 1000 "$CAPTURE" 2>&1)
sent=$(sed -nE 's/.*Successful packets: *([0-9]+).*/\1/p' <<<"$out")
say "figure: tcpreplay sent ${sent:-?} packets"
check "tcpreplay sent the capture" test "${sent:-0}" -gt 0
sleep 2
# SIGTERM: the sensor evaluates its last slot (the alert), detaches and exits 0.
check "systemctl stop" systemctl stop "$UNIT"
same "  result" "$(prop Result)" success
check "the alert is a JSON line in the journal (stdout output), figures 222/222/16812/35212" alert_check line
same "the window kept at the stop" "$(stat -c '%U %a' /var/lib/dns-sensor/window.snapshot 2>&1)" "dns-sensor 640"
check "the alert is a structured journal entry (MESSAGE_ID c02f30fa...)" alert_check entry
same "the alert file's owner and mode (UMask=0027 keeps 0640)" "$(stat -c '%U:%G %a' "$ALERTS" 2>&1)" "dns-sensor:dns-sensor 640"
check "the alert file has the pirate.sea alert (ECS)" grep -q '"pirate.sea"' "$ALERTS"
check "the alert mail reached the SMTP server on localhost" grep -q 'pirate.sea' /tmp/test-deb-smtp-127.0.0.1.log
say "figure: the mail's subject: $(grep -m1 -o 'Subject: [^'"'"']*' /tmp/test-deb-smtp-127.0.0.1.log)"
# Nothing the sensor said during that run was a warning or worse but the alert itself:
# a call the filter denies, a worker it could not pin, a lost frame would show here.
if [[ -n $cursor ]] && warnings=$(journalctl _SYSTEMD_UNIT="$UNIT" --after-cursor "$cursor" -p warning \
  -o json --no-pager | python3 -c 'import json, sys
for raw in sys.stdin:
    e = json.loads(raw)
    if e.get("MESSAGE_ID") != "c02f30fa7d4846fa8846c606a7ea6dc5":
        print(e.get("MESSAGE"))'); then
  same "no warning from the sensor under the unit's restrictions" "$warnings" ""
else
  bad "reading the sensor's warnings from the journal (cursor '$cursor')"
fi

# ---------------------------------------------------------------- reload, upgrade
if start_timed; then ok "second start"; else bad "second start"; fi
say "figure: start to READY (second start): $START_S s; exec to READY $READY_S s"
check "  it goes on from the window the first run kept" bash -c \
  "journalctl -u $UNIT -b -o cat --no-pager | grep -q 'state: window restored from /var/lib/dns-sensor/window.snapshot'"
pid=$(prop MainPID)
# As logrotate does: move the alert file away, then reload; the sensor reopens the
# path (a new, empty file) and goes on.
mv "$ALERTS" "$ALERTS.1"
check "systemctl reload" systemctl reload "$UNIT"
sleep 2
same "  still active after the reload" "$(systemctl is-active "$UNIT")" active
same "  same main process (SIGHUP reloads, does not restart)" "$(prop MainPID)" "$pid"
same "  a new alert file at the same path" "$(stat -c '%U:%G %a %s' "$ALERTS" 2>&1)" "dns-sensor:dns-sensor 640 0"
# A settings file that does not load: `systemctl reload` fails with check-config's
# message and the sensor goes on with the settings it has. A good one is applied in
# place: same process, the journal names what changed.
cp /etc/dns-sensor/dns-sensor.toml /tmp/test-deb-settings.toml
sed -i 's/^threshold = 200$/threshold = "lots"/' /etc/dns-sensor/dns-sensor.toml
if systemctl reload "$UNIT" >/tmp/test-deb-reload.log 2>&1; then
  bad "systemctl reload with a bad settings file fails"
else
  ok "systemctl reload with a bad settings file fails"
fi
said=$(journalctl -u "$UNIT" -b -o cat --no-pager | grep -m1 'dns-sensor.toml:11:')
check "  check-config named the line: ${said:0:120}" test -n "$said"
same "  still active, same process" "$(systemctl is-active "$UNIT") $(prop MainPID)" "active $pid"
sed -i 's/^threshold = "lots"$/threshold = 150/' /etc/dns-sensor/dns-sensor.toml
check "systemctl reload with threshold 150" systemctl reload "$UNIT"
reloaded() { journalctl -u "$UNIT" -b -o cat --no-pager | grep -q 'settings reloaded: threshold 200 -> 150'; }
for _ in $(seq 20); do reloaded && break; sleep 0.5; done
check "  the journal says: settings reloaded: threshold 200 -> 150" reloaded
same "  still active, same process" "$(systemctl is-active "$UNIT") $(prop MainPID)" "active $pid"
cp /tmp/test-deb-settings.toml /etc/dns-sensor/dns-sensor.toml
# The same package again, as an upgrade: the changed conffiles stay, the running
# service restarts (try-restart from postinst).
inv=$(prop InvocationID)
if dpkg -i "$DEB" </dev/null >/tmp/test-deb-upgrade.log 2>&1; then ok "dpkg -i again (upgrade)"; else
  tail -n 20 /tmp/test-deb-upgrade.log
  bad "dpkg -i again (upgrade)"
fi
check "  /etc/default/dns-sensor kept" grep -qx "DNS_SENSOR_INTERFACE=$IF_SENSOR" /etc/default/dns-sensor
check "  /etc/dns-sensor/dns-sensor.toml kept" stdout_enabled
same "  active after the upgrade" "$(systemctl is-active "$UNIT")" active
check "  restarted (new invocation)" test "$(prop InvocationID)" != "$inv"
same "  still enabled" "$(systemctl is-enabled "$UNIT")" enabled

# ---------------------------------------------------------------- IP allow list
# A relay that is not localhost is out of reach (IPAddressDeny=any drops the packets):
# the one attempt times out and is logged, and that server receives nothing. With the
# drop-in docs/appliance.md gives (IPAddressAllow=RELAY), the mail goes through.
relay_run() { # one run with an alert at its end; what the sensor said about mail
  local c
  c=$(journalctl -n 0 --show-cursor -q | sed -n 's/^-- cursor: //p')
  # A window of its own: the kept one reported pirate.sea less than realert ago, and
  # would hold this run's alert back.
  rm -f /var/lib/dns-sensor/window.snapshot
  systemctl start "$UNIT" || return 1
  ip netns exec "$NS" tcpreplay -q -i "$IF_PEER" --pps 1000 "$CAPTURE" >/dev/null 2>&1
  sleep 2
  systemctl stop "$UNIT" || return 1
  MAIL_SAID=$(journalctl _SYSTEMD_UNIT="$UNIT" --after-cursor "$c" -o cat --no-pager | grep -i 'email' | tail -n 3)
  say "figure: the sensor said: ${MAIL_SAID//$'\n'/ | }"
}
systemctl stop "$UNIT"
email_to 10.77.0.1
check "a run with the relay at 10.77.0.1 (not localhost)" relay_run
check "  the attempt failed, as logged" grep -qi 'fail\|gave up\|given up\|not sent' <<<"$MAIL_SAID"
check "  the server at 10.77.0.1 received nothing" test ! -s /tmp/test-deb-smtp-10.77.0.1.log
printf '[Service]\nIPAddressAllow=10.77.0.1\n' >"$DROPIN/test-relay.conf"
systemctl daemon-reload
check "a run with IPAddressAllow=10.77.0.1 in a drop-in" relay_run
check "  the mail reached the server at 10.77.0.1" grep -q 'pirate.sea' /tmp/test-deb-smtp-10.77.0.1.log

# ---------------------------------------------------------------- remove, purge
if apt-get remove -y -q dns-sensor >/tmp/test-deb-remove.log 2>&1; then ok "apt-get remove"; else
  tail -n 20 /tmp/test-deb-remove.log
  bad "apt-get remove"
fi
check "  stopped the service (no dns-sensor process)" bash -c '! pgrep -u dns-sensor >/dev/null'
check "  took the binary" absent /usr/bin/dns-sensor
check "  kept the conffiles" test -e /etc/dns-sensor/dns-sensor.toml -a -e /etc/default/dns-sensor
rm -rf "$DROPIN"
systemctl daemon-reload
if apt-get purge -y -q dns-sensor >/tmp/test-deb-purge.log 2>&1; then ok "apt-get purge"; else
  tail -n 20 /tmp/test-deb-purge.log
  bad "apt-get purge"
fi
check "  user dns-sensor gone" bash -c '! getent passwd dns-sensor'
check "  group dns-sensor gone" bash -c '! getent group dns-sensor'
for p in /etc/dns-sensor /etc/default/dns-sensor /var/lib/dns-sensor /var/log/dns-sensor \
  /usr/lib/systemd/system/dns-sensor.service /etc/systemd/system/multi-user.target.wants/dns-sensor.service \
  /usr/lib/systemd/system/dns-sensor-fleet.service \
  /usr/bin/dns-sensor /usr/share/doc/dns-sensor; do
  check "  $p gone" absent "$p"
done
same "  dpkg knows no dns-sensor" "$(dpkg-query -W -f '${db:Status-Abbrev}' dns-sensor 2>/dev/null)" ""
same "  systemd knows no unit file" "$(systemctl list-unit-files --no-legend "$UNIT" | wc -l)" 0
left=$(find / -xdev \( -path /proc -o -path /sys -o -path /build \) -prune -o -name '*dns-sensor*' -print)
same "  no path named *dns-sensor* on the root file system" "$left" ""
snapshot >/tmp/test-deb-after.txt
changed=$(diff /tmp/test-deb-before.txt /tmp/test-deb-after.txt)
same "  nothing else changed (files, modes, owners; /etc contents)" "$changed" ""

if ((FAIL > 0)); then
  say "the unit's journal of this boot, for the failures above:"
  journalctl -u "$UNIT" -b -o short-monotonic --no-pager | tail -n 60 | sed 's/^/  | /'
fi
say "$PASS passed, $FAIL failed"
((FAIL == 0))
