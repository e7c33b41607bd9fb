#!/bin/sh
# Installs procview's single executable on a containerd host. POSIX sh, run as root;
# running it again gives the same result (edited config files are kept).
#
#   deploy/install.sh [--binary FILE] [--mode prelaunched|external|none] [--prefix DIR]
#                     [--destdir DIR] [--plugin-dir DIR] [--plugin-conf-dir DIR]
#                     [--unit-dir DIR] [--log-dir DIR] [--logrotate-dir DIR]
#                     [--containerd-config FILE] [--no-start]
#
# What it puts in place:
#   PREFIX/bin/procview             the single executable `npm run build` makes (dist/procview,
#                                   the default --binary); it needs no Node on the host
#   PREFIX/bin/procview-runc        a symlink to it: invoked under that name it is the OCI runtime
#   PLUGIN_DIR/10-procview          pre-launched NRI plugin wrapper (mode prelaunched;
#                                   external: systemd runs the plugin; none: FUSE server only,
#                                   for Docker and nerdctl hosts, which have no NRI)
#   PLUGIN_CONF_DIR/10-procview.conf sample plugin configuration (kept if present)
#   UNIT_DIR/procview-{fuse,nri}.service
#   LOGROTATE_DIR/procview          rotation of the wrapper's log file (mode prelaunched)
#   DIR/conf.d/procview-nri.toml    with --containerd-config DIR/config.toml: the NRI drop-in
#                                   for that config's version (2: containerd 1.7, 3: 2.x), and
#                                   DIR/conf.d/*.toml added to its imports
# With --destdir, every path is written below that folder (for packaging and tests) and
# nothing is started. Otherwise, when systemd runs and --no-start is not given, the units
# are enabled and started.
# containerd itself is never restarted: see deploy/README.md for that step.
set -eu

mode=prelaunched
binary=
prefix=/usr/local
destdir=${DESTDIR:-}
plugin_dir=/opt/nri/plugins
plugin_conf_dir=/etc/nri/conf.d
unit_dir=/etc/systemd/system
log_dir=/var/log/procview
logrotate_dir=/etc/logrotate.d
containerd_config=
start=yes

die() {
	echo "install.sh: $*" >&2
	exit 1
}

# Paths end up unquoted in systemd ExecStart lines and in sed replacements: allow only
# characters that need no quoting anywhere.
plain_path() {
	case $2 in
	/*) ;;
	*) die "$1 must be an absolute path, not '$2'" ;;
	esac
	case $2 in
	*[!A-Za-z0-9._/+-]*) die "$1 may hold only letters, digits and . _ / + -, not '$2'" ;;
	esac
}

while [ $# -gt 0 ]; do
	case $1 in
	--mode | --binary | --prefix | --destdir | --plugin-dir | --plugin-conf-dir | --unit-dir | --log-dir | --logrotate-dir | \
		--containerd-config)
		[ $# -ge 2 ] || die "$1 needs a value"
		case $1 in
		--mode) mode=$2 ;;
		--binary) binary=$2 ;;
		--prefix) prefix=$2 ;;
		--destdir) destdir=$2 ;;
		--plugin-dir) plugin_dir=$2 ;;
		--plugin-conf-dir) plugin_conf_dir=$2 ;;
		--unit-dir) unit_dir=$2 ;;
		--log-dir) log_dir=$2 ;;
		--logrotate-dir) logrotate_dir=$2 ;;
		--containerd-config) containerd_config=$2 ;;
		esac
		shift 2
		;;
	--no-start)
		start=no
		shift
		;;
	-h | --help)
		sed -n '2,26s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
done

case $mode in
prelaunched | external | none) ;;
*) die "--mode must be prelaunched, external or none, not '$mode'" ;;
esac
[ -n "$destdir" ] || [ "$(id -u)" -eq 0 ] || die "run as root (or give --destdir to stage the files)"

source_dir=$(cd "$(dirname "$0")/.." && pwd)
[ -n "$binary" ] || binary=$source_dir/dist/procview
[ -f "$binary" ] || die "no procview executable at $binary: build it (npm run build) or give --binary FILE"
# The executable must run here, and be procview: it prints its version.
"$binary" --version 2>/dev/null | grep -q '^procview ' || die "'$binary' is not a procview executable for this machine (procview --version failed)"

for option in "--prefix:$prefix" "--plugin-dir:$plugin_dir" "--plugin-conf-dir:$plugin_conf_dir" \
	"--unit-dir:$unit_dir" "--log-dir:$log_dir" "--logrotate-dir:$logrotate_dir"; do
	plain_path "${option%%:*}" "${option#*:}"
done
[ -z "$destdir" ] || plain_path --destdir "$destdir"
if [ -n "$containerd_config" ]; then
	plain_path --containerd-config "$containerd_config"
	config=$destdir$containerd_config
	[ -f "$config" ] || die "no containerd config at $config (create one: containerd config default > $containerd_config)"
	config_version=$(sed -n 's/^version *= *\([0-9]\).*/\1/p' "$config" | head -n 1)
	case $config_version in
	2 | 3) ;;
	*) die "$containerd_config has no 'version = 2' or 'version = 3' line (containerd 1.7 or 2.x config)" ;;
	esac
fi

executable=$prefix/bin/procview

# The program: copied next to the old one, then renamed over it, so a failed copy leaves
# the installed version as it was (and a running process keeps its old file).
mkdir -p "$destdir$prefix/bin"
cp "$binary" "$destdir$executable.new"
chmod 0755 "$destdir$executable.new"
mv -f "$destdir$executable.new" "$destdir$executable"

# systemd units, pointed at this copy of the program.
mkdir -p "$destdir$unit_dir"
for unit in procview-fuse.service procview-nri.service; do
	sed -e "s|/usr/local/bin/procview |$executable |" \
		-e "s|!/opt/nri/plugins/10-procview|!$plugin_dir/10-procview|" \
		"$source_dir/deploy/systemd/$unit" >"$destdir$unit_dir/$unit.tmp"
	mv "$destdir$unit_dir/$unit.tmp" "$destdir$unit_dir/$unit"
done

# The OCI runtime, for `--runtime`, daemon.json's runtimes and runc's BinaryName: the same
# executable, which is procview-runc when invoked under that name (no Node needed either).
ln -sfn procview "$destdir$prefix/bin/procview-runc"

# The pre-launched plugin. containerd runs it with only NRI_PLUGIN_NAME, NRI_PLUGIN_IDX and
# NRI_PLUGIN_SOCKET=3 in the environment and stdio on /dev/null, hence absolute paths and a
# log file. If it exits before registering, containerd exits too: the wrapper does nothing
# that can fail before it hands over to procview.
wrapper=$destdir$plugin_dir/10-procview
if [ "$mode" = prelaunched ]; then
	mkdir -p "$destdir$plugin_dir" "$destdir$log_dir"
	cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# procview NRI plugin, pre-launched by containerd. Written by procview's deploy/install.sh.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# A missing or unwritable log folder must not stop the plugin: only redirect when writable.
if ( : >>$log_dir/nri.log ) 2>/dev/null; then exec >>$log_dir/nri.log 2>&1; fi
exec $executable nri --mountpoint /var/lib/procview --state-dir /run/procview --log-level info
EOF
	chmod 0755 "$wrapper.tmp"
	mv "$wrapper.tmp" "$wrapper"

	mkdir -p "$destdir$logrotate_dir"
	cat >"$destdir$logrotate_dir/procview.tmp" <<EOF
# The plugin keeps its log open for as long as containerd runs it: copy, then truncate.
$log_dir/nri.log {
	weekly
	rotate 4
	compress
	missingok
	notifempty
	copytruncate
}
EOF
	mv "$destdir$logrotate_dir/procview.tmp" "$destdir$logrotate_dir/procview"
else
	# A leftover wrapper would make containerd start a (second) plugin.
	rm -f "$wrapper"
fi

# containerd's NRI settings, as a drop-in its config imports. containerd must be restarted to
# read them: left to the operator.
if [ -n "$containerd_config" ]; then
	conf_d=$(dirname "$containerd_config")/conf.d
	mkdir -p "$destdir$conf_d"
	cp "$source_dir/deploy/containerd/procview-nri.v$config_version.toml" "$destdir$conf_d/procview-nri.toml"
	if ! grep -q "^imports[^#]*$conf_d/\*\.toml" "$config"; then
		[ -e "$config.before-procview" ] || cp -p "$config" "$config.before-procview"
		# Prepend the folder to an existing imports array, or add one before the first table.
		# A trailing comma, as in ["a", ], is valid TOML.
		awk -v entry="\"$conf_d/*.toml\"" '
			!done && /^imports[ \t]*=[ \t]*\[/ { sub(/\[/, "[" entry ", "); done = 1 }
			{ lines[NR] = $0 }
			END {
				if (!done) print "imports = [" entry "]"
				for (i = 1; i <= NR; i++) print lines[i]
			}' "$config" >"$config.tmp"
		# Rewrite in place, keeping the file's owner and mode.
		cat "$config.tmp" >"$config"
		rm -f "$config.tmp"
	fi
fi

# Sample plugin configuration: containerd hands its text to the plugin at Configure. Kept
# when present, so an operator's edits survive a reinstall.
conf=$destdir$plugin_conf_dir/10-procview.conf
if [ ! -e "$conf" ]; then
	mkdir -p "$destdir$plugin_conf_dir"
	cp "$source_dir/deploy/nri/10-procview.conf" "$conf"
fi

# A running FUSE server is reloaded, never restarted: the upgraded server takes its live
# /dev/fuse connection over (fuse --replace), so running containers keep their views; a
# restart would leave their binds pointing at a dead mount.
if [ -z "$destdir" ] && [ "$start" = yes ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	if systemctl is-active --quiet procview-fuse.service && ! systemctl reload procview-fuse.service; then
		echo "The running FUSE server could not be replaced (journalctl -u procview-fuse says why; a server older than --replace cannot be): it serves on, and the upgrade takes effect at its next restart." >&2
	fi
	systemctl enable --now procview-fuse.service
	if [ "$mode" = external ]; then
		systemctl enable --now procview-nri.service
	else
		systemctl disable --now procview-nri.service 2>/dev/null || true
	fi
fi

echo "procview installed as $destdir$executable (NRI plugin: $mode)."
if [ -n "$containerd_config" ]; then
	echo "Next: restart containerd, so that it reads the NRI settings (deploy/README.md)."
else
	echo "Next: enable NRI in containerd and restart it (deploy/README.md)."
fi
