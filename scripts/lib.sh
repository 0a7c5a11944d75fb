#!/usr/bin/env bash
# Helpers shared by the scripts of this folder; sourced, not run.

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port NAME PORT LOGFILE: until something accepts connections on 127.0.0.1:PORT (at most 60 s).
wait_port() {
    local name=$1 port=$2 logfile=$3
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    printf '%s did not answer on 127.0.0.1:%s within 60 s; its log (%s) ends:\n' "$name" "$port" "$logfile" >&2
    tail -n 20 "$logfile" >&2 || true
    return 1
}

# recorded_alive PIDFILE PATTERN: the process recorded in PIDFILE runs and is still that program (its
# command line holds PATTERN: after a crash the PID may belong to another program).
recorded_alive() {
    local pid
    [ -f "$1" ] && pid=$(head -n 1 "$1") && kill -0 "$pid" 2>/dev/null && grep -qa -- "$2" "/proc/$pid/cmdline" 2>/dev/null
}

# stop_pid NAME PIDFILE PATTERN [quiet]: TERM the PID recorded in PIDFILE (and only it, and only while its
# command line holds PATTERN: after a crash the PID may belong to another program), KILL it after 15 s,
# then remove PIDFILE.
stop_pid() {
    local name=$1 file=$2 pattern=$3 pid
    [ -f "$file" ] || return 0
    pid=$(head -n 1 "$file")
    if recorded_alive "$file" "$pattern"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
        [ "${4:-}" = quiet ] || printf 'stopped %s (pid %s)\n' "$name" "$pid" >&2
    fi
    rm -f "$file"
}

# admin_token SYSTEM BIN EMAIL: signs EMAIL up with BIN/user-cli (at SHIPPY_USER_PORT), makes it an admin with
# the operator's command (SYSTEM grant-admin, SYSTEM being a scripts/system.sh), and prints its token.
admin_token() {
    local system=$1 bin=$2 email=$3 password="admin password $RANDOM$RANDOM"
    local address=127.0.0.1:${SHIPPY_USER_PORT:-50053}
    USER_SERVICE_ADDRESS=$address SHIPPY_PASSWORD=$password "$bin/user-cli" create --no-save --name Admin \
        --email "$email" >/dev/null
    "$system" grant-admin "$email" >/dev/null
    USER_SERVICE_ADDRESS=$address SHIPPY_PASSWORD=$password "$bin/user-cli" login --no-save --email "$email"
}
