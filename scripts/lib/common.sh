# Shared helpers for sluice's scripts: paths, installing what is missing.
# Sourced, not run.

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SLUICE_TOOLS_DIR="${SLUICE_TOOLS_DIR:-$HOME/.cache/sluice/tools}"
TANSU_VERSION="0.6.0"
TANSU_BIN="$SLUICE_TOOLS_DIR/bin/tansu"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs Debian packages that are not installed yet.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them; install them by hand"
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  # Package scripts must not start system-wide servers: ours run in a temp dir.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Everything the servers and the build need from Debian.
install_system_packages() {
  apt_install postgresql postgresql-contrib postgresql-15-postgis-3 mariadb-server mariadb-client kcat \
    build-essential pkg-config zlib1g-dev libssl-dev curl openssl stunnel4 python3 python3-venv
}

# Tansu takes ~11 minutes to build on 2 cores, so the binary is cached
# under $SLUICE_TOOLS_DIR and reused by every later run.
install_tansu() {
  if [ -x "$TANSU_BIN" ] && "$TANSU_BIN" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  say "building the Tansu broker $TANSU_VERSION (about 11 minutes once; cached in $SLUICE_TOOLS_DIR)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$SLUICE_TOOLS_DIR" --quiet
}

# Builds what a benchmark runs: the release build, or the debug build the
# suite's smoke run of scripts/bench uses (SLUICE_BENCH_PROFILE=debug).
# Sets SLUICE (SLUICE_BIN runs another build, e.g. an older commit's, to
# compare two versions against the same servers) and BENCH_TARGET.
bench_build() {
  local profile="${SLUICE_BENCH_PROFILE:-release}" flags=(--quiet)
  [ "$profile" = release ] && flags+=(--release)
  cargo build "${flags[@]}" --bin sluice "$@"
  BENCH_TARGET="$SLUICE_ROOT/target/$profile"
  SLUICE="${SLUICE_BIN:-$BENCH_TARGET/sluice}"
}

# Refuses to start a bench worker on a REST port something already
# answers on: a worker left running by an earlier, interrupted run (or one
# whose wrapper, SLUICE_BENCH_WRAP, was killed without it) would answer
# this run's readiness check and offset polls in place of the new worker,
# which exits unable to listen, and the bench would time the wrong one.
require_free_port() { # port
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"; then
    die "port $1 already answers HTTP: a worker left from an earlier run? ('ss -ltnp sport = :$1' names the process; stop it and run again)"
  fi
}

# Waits until the worker started as pid $1 answers on $REST, and fails
# naming its log's end if it exited instead (a port in use, a bad flag).
wait_for_worker() { # pid log
  for _ in $(seq 1 120); do
    curl -sf "$REST/health" >/dev/null && break
    kill -0 "$1" 2>/dev/null || break
    sleep 0.25
  done
  kill -0 "$1" 2>/dev/null || die "the bench's worker exited at start; the end of $2: $(tail -5 "$2")"
  curl -sf "$REST/health" >/dev/null || die "the bench's worker did not answer on $REST within 30 s; see $2"
}

# A phase's peak RSS, exactly: the kernel's high-water mark (VmHWM) of the
# worker, restarted when the phase starts (Linux's clear_refs 5). Sampling
# RSS every 100 ms, as the benches did, missed peaks shorter than that.
reset_peak_rss() { echo 5 >"/proc/$1/clear_refs"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# Where a phase's CPU went: the clock ticks used so far by the bench's
# worker ($WORKER_PID), the broker and the database server DB ("postgres",
# "mariadb" or "none"), each with its children (a PostgreSQL backend per
# connection). Two of these and the phase's event count make
# `cpu_us_per_event`'s "worker,broker,db" microseconds per event: with the
# rate, how many of the machine's cores the phase kept busy, and on what.
phase_cpu_ticks() {
  local db="-"
  case "$1" in
    postgres) db="$(head -1 "$SLUICE_ENV_DIR/postgres/data/postmaster.pid")" ;;
    mariadb) db="$(head -1 "$SLUICE_ENV_DIR/mariadb/mariadb.pid")" ;;
    none) ;;
    *) die "phase_cpu_ticks: unknown database $1" ;;
  esac
  python3 "$SLUICE_ROOT/scripts/lib/cpu_ticks.py" "$WORKER_PID" "$(head -1 "$SLUICE_ENV_DIR/kafka/tansu.pid")" "$db"
}
cpu_us_per_event() { # "TICKS AT START" "TICKS AT END" EVENTS
  python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import sys
start, end, events, hz = sys.argv[1].split(), sys.argv[2].split(), int(sys.argv[3]), int(sys.argv[4])
print(",".join(f"{(int(b) - int(a)) * 1e6 / hz / events:.3f}" for a, b in zip(start, end)))
PY
}

# Where a phase's connector spent its time, as words for the phase's note
# (scripts/lib/stage_shares.py): `stage_shares CONNECTOR SECONDS [AT_START]`
# once the phase is done, AT_START from `stage_shares CONNECTOR --now`
# for a connector that existed before the phase. Uses the bench's REST.
stage_shares() { python3 "$SLUICE_ROOT/scripts/lib/stage_shares.py" "$REST" "$@"; }

# Starts scripts/lib/watch_offset.py on CONNECTOR's stored offset until
# each CONDITION (a Python expression over the offset `o`) holds in turn,
# and returns once it polls, so a phase's clock starts after the watcher
# did; `offset_reached` then waits for it and sets REACHED_AT to when the
# last condition held, REACHED_TIMES to when each did (not in a `$(...)`:
# only this shell can wait for it). Uses the bench's REST and SLUICE_ENV_DIR.
watch_offset() {
  local connector="$1" ready="$SLUICE_ENV_DIR/watch-offset.ready"
  shift
  rm -f "$ready"
  python3 "$SLUICE_ROOT/scripts/lib/watch_offset.py" "$REST" "$connector" "$ready" "$@" >"$SLUICE_ENV_DIR/watch-offset.out" &
  WATCH_PID=$!
  until [ -e "$ready" ]; do
    kill -0 "$WATCH_PID" 2>/dev/null || die "the offset watcher for $connector ended before it polled"
    sleep 0.01
  done
}
offset_reached() {
  wait "$WATCH_PID" || die "waiting for the offset of a bench connector failed (see above)"
  mapfile -t REACHED_TIMES <"$SLUICE_ENV_DIR/watch-offset.out"
  REACHED_AT="${REACHED_TIMES[-1]}"
}

# Stops a benchmark's worker: SIGTERM first, so a profiler wrapping it
# (SLUICE_BENCH_WRAP, e.g. "valgrind --tool=callgrind") writes its output;
# kill -9 only if it has not ended within 20 s.
stop_worker() {
  local pid="$1"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

install_nextest() {
  command -v cargo-nextest >/dev/null && return 0
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked --quiet
}

# The Python client the interoperability tests use (confluent-kafka with
# its schema-registry and Avro extras), in a venv reused between runs.
SLUICE_VENV="${SLUICE_VENV:-$HOME/.cache/sluice/venv}"
install_python_clients() {
  local requirements="$SLUICE_ROOT/tests/python/requirements.txt"
  local stamp="$SLUICE_VENV/.requirements"
  if [ -x "$SLUICE_VENV/bin/python" ] && cmp -s "$requirements" "$stamp"; then
    return 0
  fi
  say "installing Python test clients into $SLUICE_VENV"
  python3 -m venv "$SLUICE_VENV"
  "$SLUICE_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
}
