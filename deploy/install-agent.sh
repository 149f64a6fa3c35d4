#!/usr/bin/env bash
# Installs the schoolnet agent on Raspberry Pi OS or Debian 12+ (docs/raspberry-pi.md):
# a venv in /opt/schoolnet-agent, the config in /etc/schoolnet/agent.toml, the credential
# and outbox in /var/lib/schoolnet-agent, the systemd unit schoolnet-agent.service.
# Idempotent: run it again with the same arguments and nothing changes; run it with a new
# --version to update. Every failure is one line on stderr and a non-zero exit.
set -euo pipefail
# The venv must be readable by the service's user (not root): a strict umask in the
# administrator's shell (sudo keeps it) would make it root's alone. Secrets get their modes
# explicitly below (config 0640, state 0700, the agent writes its credential 0600).
umask 022

# The release this script belongs to (tests/test_install_agent.py keeps it equal to
# pyproject.toml's version).
SCHOOLNET_VERSION="0.1.0"
PROG="install-agent.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat <<EOF
Usage: sudo $PROG --collector URL --code CODE [options]
       sudo $PROG [options]                 (again, or to update: enrolment is kept)
       sudo $PROG --uninstall [--purge]

Installs the schoolnet agent into /opt/schoolnet-agent, writes /etc/schoolnet/agent.toml
(never overwriting an existing one), enrols with the collector once, and enables and
starts schoolnet-agent.service.

  --collector URL   the collector's base URL, e.g. https://collector.example.org
  --code CODE       an enrolment code from 'schoolnet-collector enroll-code' (used once)
  --name NAME       this agent's name at the collector (default: the host name)
  --version V       install that schoolnet release from PyPI
  --from PATH       install from a source checkout or a wheel (default: the checkout this
                    script is in; without one, release $SCHOOLNET_VERSION from PyPI)
  --reinstall       reinstall the package even when that version is installed
  --python PATH     the Python for the venv (default /usr/bin/python3; 3.11 or newer)
  --no-start        enable the service for the next boot, but do not start it now
  --prefix DIR      put every path (/opt, /etc, /var/lib, the unit) under DIR; with a
                    DIR other than /, no user is created and systemctl is not run
                    (default: \$SCHOOLNET_INSTALL_ROOT, else /)
  --uninstall       stop and disable the service, remove it and the venv; keep the
                    config and the state (credential, outbox)
  --purge           with --uninstall: also remove the config, the state and the user
  -h, --help        this text
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }
say() { echo "$PROG: $*"; }

# --- arguments --------------------------------------------------------------------------------

original_args=("$@")
collector="" code="" name="" version="$SCHOOLNET_VERSION" from="" pypi=0 reinstall=0 python=""
start=1 uninstall=0 purge=0 prefix="${SCHOOLNET_INSTALL_ROOT:-/}"
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --collector) need_value "$@"; collector="$2"; shift 2 ;;
        --code) need_value "$@"; code="$2"; shift 2 ;;
        --name) need_value "$@"; name="$2"; shift 2 ;;
        --version) need_value "$@"; version="$2"; pypi=1; shift 2 ;;
        --from) need_value "$@"; from="$2"; shift 2 ;;
        --reinstall) reinstall=1; shift ;;
        --python) need_value "$@"; python="$2"; shift 2 ;;
        --no-start) start=0; shift ;;
        --prefix) need_value "$@"; prefix="$2"; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ "$purge" -eq 0 ] || [ "$uninstall" -eq 1 ] || die "--purge goes with --uninstall"
if [ -n "$collector" ]; then
    case "$collector" in
        http://*|https://*) collector="${collector%/}" ;;
        *) die "--collector '$collector' must start with https:// (or http://)" ;;
    esac
fi
[ -z "$code" ] || [ -n "$collector" ] || die "--code needs --collector URL"

# Every path, relocated under the prefix. "system" means the real root: only then is the
# user created and systemd told.
[ "${prefix:0:1}" = / ] || prefix="$(pwd)/$prefix"
root="${prefix%/}"
system=0
[ -n "$root" ] || system=1
venv="$root/opt/schoolnet-agent"
etc_dir="$root/etc/schoolnet"
config="$etc_dir/agent.toml"
state_dir="$root/var/lib/schoolnet-agent"
unit_dir="$root/etc/systemd/system"
unit="schoolnet-agent.service"
sysusers_file="$root/etc/sysusers.d/schoolnet-agent.conf"
user="schoolnet"

if [ "$system" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
    die "run it as root: sudo $0 ${original_args[*]}"
fi
systemd_running() { [ "$system" -eq 1 ] && [ -d /run/systemd/system ]; }

# One run at a time: two would race on the venv (one's pip against the other's half-made
# venv) and could both enrol, leaving a second agent at the collector without a credential.
lock_file="$root/run/lock/schoolnet-agent-install.lock"
mkdir -p "$(dirname "$lock_file")" || die "cannot make $(dirname "$lock_file")"
exec 9>"$lock_file" || die "cannot open the lock $lock_file"
flock -n 9 || die "another $PROG is running on this machine (lock $lock_file): let it finish, then run this again"

# The agent's commands see exactly what the service will: this config file and none of
# the caller's SCHOOLNET_* settings (a stray SCHOOLNET_STATE_DIR would enrol elsewhere).
agent() {
    local unset_args=() variable
    for variable in $(compgen -e); do
        case "$variable" in SCHOOLNET_*) unset_args+=(-u "$variable") ;; esac
    done
    local command=(env "${unset_args[@]}" SCHOOLNET_AGENT_CONFIG="$config" "$venv/bin/schoolnet-agent" "$@")
    if [ "$system" -eq 1 ]; then
        # As the service's user, so what it writes (the credential) is the service's own.
        runuser -u "$user" -- "${command[@]}"
    else
        "${command[@]}"
    fi
}

# --- uninstall ------------------------------------------------------------------------------

if [ "$uninstall" -eq 1 ]; then
    if [ -e "$unit_dir/$unit" ]; then
        if systemd_running; then
            systemctl disable --now "$unit" >/dev/null 2>&1 || die "systemctl disable --now $unit failed"
        elif [ "$system" -eq 1 ]; then
            systemctl disable "$unit" >/dev/null 2>&1 || true
        fi
        rm -f "$unit_dir/$unit"
        ! systemd_running || systemctl daemon-reload
        say "removed the service $unit_dir/$unit"
    fi
    # What `systemctl disable` could not undo (a prefix, or a chroot whose systemctl failed):
    # no *.wants/ link may stay behind, or the service still counts as enabled.
    if [ -d "$unit_dir" ]; then
        find "$unit_dir" -mindepth 2 -maxdepth 2 -path "$unit_dir/*.wants/$unit" -type l -delete
    fi
    if [ -d "$venv" ]; then
        rm -rf "$venv"
        say "removed $venv"
    fi
    if [ "$purge" -eq 1 ]; then
        # Local changes to the unit (systemctl edit) go with the rest of the configuration.
        for path in "$config" "$state_dir" "$sysusers_file" "$unit_dir/$unit.d"; do
            if [ -e "$path" ]; then rm -rf "$path"; say "removed $path"; fi
        done
        # /etc/schoolnet may hold the collector's settings too: removed only when empty.
        rmdir "$etc_dir" 2>/dev/null || true
        if [ "$system" -eq 1 ] && id "$user" >/dev/null 2>&1; then
            userdel "$user" || die "userdel $user failed"
            say "removed the user $user"
        fi
    else
        say "kept $config and $state_dir (the credential and unsent records); --purge removes them"
    fi
    say "uninstalled. On the collector, revoke the agent: schoolnet-collector agent revoke BOARD/SCHOOL/AGENT"
    exit 0
fi

# --- what is needed: Python 3.11+ with venv, the unit beside this script ----------------------

[ -f "$HERE/systemd/$unit" ] || die "$HERE/systemd/$unit is missing: run this script from a schoolnet checkout or release"
if [ -z "$python" ]; then
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python="$(command -v python3 || echo python3)"; fi
fi
python_ok() { "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; }
if ! python_ok; then
    if [ "$system" -eq 1 ] && [ "$python" = /usr/bin/python3 ] && command -v apt-get >/dev/null; then
        say "installing python3 and python3-venv with apt-get"
        # apt-get update exits 0 when it reaches no mirror at all (measured on Debian 12: only
        # "W: Failed to fetch"), so the network shows only in its output; both commands'
        # output goes to a log, and the failure is its first error line.
        apt_log="$(mktemp -t schoolnet-apt.XXXXXX)"
        offline() { grep -q -e 'Temporary failure resolving' -e 'Failed to fetch' -e 'Could not connect' "$apt_log"; }
        apt-get update -q >"$apt_log" 2>&1 \
            || die "apt-get update failed: $(grep -m1 '^E:' "$apt_log" || tail -n1 "$apt_log") (full log: $apt_log)"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv >>"$apt_log" 2>&1; then
            hint=""
            ! offline || hint=" (apt reached no mirror: is the network up?)"
            die "apt-get install python3 python3-venv failed: $(grep -m1 '^E:' "$apt_log" || tail -n1 "$apt_log")$hint (full log: $apt_log)"
        fi
        rm -f "$apt_log"
        python_ok || die "$python still cannot make a venv after installing python3-venv"
    else
        die "$python cannot make a venv: install python3 and python3-venv (Debian: apt-get install python3-venv)"
    fi
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11 or newer is needed, $python is $("$python" -c 'import platform; print(platform.python_version())'); use Raspberry Pi OS or Debian 12 (bookworm) or newer"

# What to install, and which version that is: run from a checkout (as docs/raspberry-pi.md
# says), the agent comes from that checkout, unless --version asks for a release from PyPI.
if [ -z "$from" ] && [ "$pypi" -eq 0 ] && [ -f "$HERE/../pyproject.toml" ]; then
    from="$HERE/.."
fi
if [ -n "$from" ]; then
    [ -e "$from" ] || die "--from $from does not exist"
    from="$(cd "$(dirname "$from")" && pwd)/$(basename "$from")"
    if [ -d "$from" ]; then
        [ -f "$from/pyproject.toml" ] || die "--from $from has no pyproject.toml: not a schoolnet checkout"
        version="$("$python" -c 'import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(p["version"] if p["name"] == "schoolnet" else "")' "$from/pyproject.toml" 2>/dev/null)" \
            || die "cannot read the version from $from/pyproject.toml"
        [ -n "$version" ] || die "--from $from is not the schoolnet project"
    else
        case "$(basename "$from")" in
            schoolnet-*.whl) version="$(basename "$from" | cut -d- -f2)" ;;
            *) die "--from $from is neither a checkout nor a schoolnet-*.whl wheel" ;;
        esac
    fi
    spec="$from"
    if [ -d "$from" ]; then
        # pip builds a directory in place (setuptools writes build/ and *.egg-info into it):
        # build from a copy, so the checkout stays as it was (it may be read-only, or shared).
        source_copy="$(mktemp -d -t schoolnet-source.XXXXXX)"
        trap 'rm -rf "$source_copy"' EXIT
        tar -C "$from" --exclude='./.*' --exclude=./build --exclude='*.egg-info' \
            --exclude=__pycache__ --exclude=./tests --exclude=./bench-results -cf - . \
            | tar -C "$source_copy" -xf - || die "cannot copy $from to build it"
        spec="$source_copy"
    fi
else
    spec="schoolnet==$version"
fi

# --- the user ------------------------------------------------------------------------------

changed=0
install_if_different() {  # SOURCE DEST MODE: copy only when the content differs
    if ! cmp -s "$1" "$2"; then
        install -D -m "$3" "$1" "$2"
        changed=1
        say "installed $2"
    fi
}
install_if_different "$HERE/systemd/schoolnet-agent.sysusers" "$sysusers_file" 0644
if [ "$system" -eq 1 ] && ! id "$user" >/dev/null 2>&1; then
    systemd-sysusers "$sysusers_file" || die "systemd-sysusers could not create the user $user"
    say "created the system user $user"
fi

# --- the venv and the package ----------------------------------------------------------------

# A venv whose Python is gone (an OS upgrade replaced it) is made again.
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    say "the venv's Python no longer runs: making $venv again"
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" || die "$python -m venv $venv failed"
    changed=1
    say "made the venv $venv"
fi
installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schoolnet"))' 2>/dev/null || true)"
if [ "$installed" != "$version" ] || [ "$reinstall" -eq 1 ] || [ ! -x "$venv/bin/schoolnet-agent" ]; then
    log="$(mktemp -t schoolnet-pip.XXXXXX)"
    say "installing ${from:-$spec} into $venv (pip: $log)"
    pip_args=(install --disable-pip-version-check --no-input)
    [ "$reinstall" -eq 0 ] || pip_args+=(--force-reinstall)
    if ! "$venv/bin/pip" "${pip_args[@]}" "$spec" >"$log" 2>&1; then
        die "pip could not install ${from:-$spec}: $(grep -m1 -i 'error' "$log" || tail -n1 "$log") (full log: $log)"
    fi
    rm -f "$log"
    changed=1
    say "installed schoolnet $version"
else
    say "schoolnet $version is already installed in $venv"
fi

# --- the config and the state directory -------------------------------------------------------

if [ "$system" -eq 1 ]; then owner=(-o root -g "$user"); state_owner=(-o "$user" -g "$user"); else owner=(); state_owner=(); fi
install -d -m 0755 "$etc_dir"
if [ ! -e "$config" ]; then
    # The commented example with every option; only state_dir moves with a prefix.
    example="$HERE/agent/agent.example.toml"
    [ -f "$example" ] || die "$example is missing: run this script from a schoolnet checkout or release"
    tmp="$(mktemp)"
    # The path as a TOML basic string (\ and " escaped), then escaped again for sed's
    # replacement (\, & and the # delimiter): a prefix such as "/srv/pi & co" stays itself.
    toml_state_dir="$(printf '%s' "$state_dir" | sed -e 's/[\\"]/\\&/g')"
    sed_state_dir="$(printf '%s' "$toml_state_dir" | sed -e 's/[\\&#]/\\&/g')"
    sed "s#^state_dir = .*#state_dir = \"$sed_state_dir\"#" "$example" > "$tmp"
    # 0640: the file may come to hold a UniFi password; the agent's group reads it.
    install -m 0640 "${owner[@]}" "$tmp" "$config"
    rm -f "$tmp"
    changed=1
    say "wrote $config (yours to edit: never overwritten)"
else
    say "kept the existing $config"
fi
if [ ! -d "$state_dir" ]; then
    install -d -m 0700 "${state_owner[@]}" "$state_dir"
    changed=1
fi

# --- enrolment (once) -------------------------------------------------------------------------

status="$(agent status --json 2>&1)" || die "schoolnet-agent status failed: $(echo "$status" | tail -n1)"
read -r enrolled enrolled_url identity < <("$venv/bin/python" -c 'import json, sys
d = json.loads(sys.argv[1])
print(int(d["enrolled"]), d["collector_url"] or "-", d["agent"] or "-")' "$status") \
    || die "schoolnet-agent status printed no JSON: $(echo "$status" | tail -n1)"
if [ "$enrolled" -eq 1 ]; then
    if [ -n "$collector" ] && [ "${enrolled_url%/}" != "$collector" ]; then
        die "already enrolled as $identity with $enrolled_url, not $collector: to move this agent, remove $state_dir/credential.json and run again"
    fi
    say "already enrolled as $identity with $enrolled_url"
else
    [ -n "$collector" ] && [ -n "$code" ] \
        || die "not enrolled yet: give --collector URL --code CODE (from 'schoolnet-collector enroll-code' on the collector)"
    enroll_args=(enroll --collector "$collector" --code "$code")
    [ -z "$name" ] || enroll_args+=(--name "$name")
    # The agent says why in one line; a traceback (a bug) is cut to its last line too.
    if ! output="$(agent "${enroll_args[@]}" 2>&1)"; then
        die "enrolment failed: $(echo "$output" | tail -n1 | sed 's/^schoolnet-agent: error: //')"
    fi
    changed=1
    say "$(echo "$output" | tail -n1)"
fi

# --- the service ------------------------------------------------------------------------------

unit_changed_before=$changed
changed=0
install_if_different "$HERE/systemd/$unit" "$unit_dir/$unit" 0644
unit_changed=$changed
changed=$((unit_changed_before | unit_changed))
if [ "$system" -eq 1 ]; then
    if systemd_running; then
        [ "$unit_changed" -eq 0 ] || systemctl daemon-reload || die "systemctl daemon-reload failed"
        if [ "$start" -eq 1 ]; then
            if systemctl is-active --quiet "$unit"; then
                if [ "$changed" -eq 1 ]; then
                    systemctl restart "$unit" || die "systemctl restart $unit failed: journalctl -u $unit"
                    say "restarted $unit"
                fi
                systemctl enable --quiet "$unit"
            else
                systemctl enable --now --quiet "$unit" || die "systemctl enable --now $unit failed: journalctl -u $unit"
                say "enabled and started $unit"
            fi
            sleep 2
            systemctl is-active --quiet "$unit" || die "$unit does not stay up: journalctl -u $unit"
        else
            systemctl enable --quiet "$unit" || die "systemctl enable $unit failed"
            say "enabled $unit for the next boot (--no-start: not started)"
        fi
    else
        # A chroot or an image being built: enabling only makes symlinks.
        systemctl enable --quiet "$unit" || die "systemctl enable $unit failed"
        say "systemd is not running here: enabled $unit for the next boot"
    fi
else
    say "prefix $root: no user created, systemctl not run"
fi

cat <<EOF
$PROG: done. Where to look:
  config      $config (every option: deploy/agent/agent.example.toml)
  state       $state_dir (credential, outbox)
  program     $venv/bin/schoolnet-agent
  service     systemctl status $unit; logs: journalctl -u $unit -f
  status      sudo -u $user SCHOOLNET_AGENT_CONFIG=$config $venv/bin/schoolnet-agent status
EOF
