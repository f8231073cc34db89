#!/usr/bin/env bash
# Builds fieldstream's container images from static binaries: `make images` runs it after
# building them into BIN_DIR. Every image is FROM scratch (the engine has only the legacy
# builder and no registry to pull a base from, and a static Go binary needs none), runs as
# the non-root user fieldstream (65532), writes only /data (its volume) and /tmp, carries
# OCI labels, and checks its health by running its own binary with -probe URL (scratch has
# no shell or curl; nats-server's image carries the probe command for that).
#
#   deploy/images/build.sh TAG BIN_DIR [NAME…]   # default: every binary in BIN_DIR
#
# Images are named fieldstream/<binary>:TAG and fieldstream/<binary>:latest (not with
# IMAGE_LATEST=false: the container tests build images of their own under a tag of theirs).
set -euo pipefail
tag=$1 bindir=$2
shift 2
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(cd "$bindir" && ls | grep -vx probe))
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The root file system every image shares: the user, a world-writable /tmp, and /data owned
# by the user (a volume mounted there starts with that owner).
mkdir -p "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/data"
chmod 1777 "$work/rootfs/tmp"
printf 'root:x:0:0:root:/:/sbin/nologin\nfieldstream:x:65532:65532:fieldstream:/data:/sbin/nologin\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\nfieldstream:x:65532:\n' >"$work/rootfs/etc/group"

# settings NAME: what differs between images — the listen addresses a container needs (every
# interface, not loopback), the ports, the default command and the health endpoint.
settings() {
	env=() ports=() cmd=() health="" extra=() description=""
	case $1 in
	gateway)
		description="fieldstream edge gateway: webhooks into JetStream"
		env=(FS_HTTP_ADDR=0.0.0.0:8080) ports=(8080) health=http://127.0.0.1:8080/readyz ;;
	assets | workorders | payroll)
		local port
		case $1 in assets) port=9202 ;; workorders) port=9203 ;; payroll) port=9204 ;; esac
		description="fieldstream $1 consumer service"
		env=(FS_METRICS_ADDR=0.0.0.0:$port) ports=($port) health=http://127.0.0.1:$port/readyz ;;
	poller)
		description="fieldstream polling backstop"
		env=(FS_METRICS_ADDR=0.0.0.0:9205) ports=(9205) health=http://127.0.0.1:9205/readyz ;;
	simulator)
		description="fieldstream's simulated outside world: ServiceTrade, asset registry, work-order system, payroll"
		env=(FS_SIM_SERVICETRADE_ADDR=0.0.0.0:9101 FS_SIM_ASSETS_ADDR=0.0.0.0:9102 FS_SIM_WORKORDERS_ADDR=0.0.0.0:9103 FS_SIM_PAYCOM_ADDR=0.0.0.0:9104)
		ports=(9101 9102 9103 9104) health=http://127.0.0.1:9101/admin/faults ;;
	fieldstream)
		description="fieldstream in one process (make run): embedded JetStream, gateway, consumers, simulators"
		env=(FS_HTTP_ADDR=0.0.0.0:8080 FS_DATA_DIR=/data/jetstream) ports=(8080 4222) health=http://127.0.0.1:8080/readyz ;;
	fsctl)
		description="fieldstream operator tool" ;;
	nats-server)
		description="NATS server with JetStream, built from the module fieldstream pins"
		cmd=(--jetstream --store_dir /data/jetstream --http_port 8222)
		ports=(4222 6222 8222) health=http://127.0.0.1:8222/healthz extra=(probe) ;;
	*)
		echo "build.sh: no image settings for $1" >&2
		return 1 ;;
	esac
}

json() { # json WORD… → ["WORD",…]
	local out="" w
	for w in "$@"; do out+="${out:+,}\"$w\""; done
	printf '[%s]' "$out"
}

for name in "${names[@]}"; do
	settings "$name"
	ctx="$work/$name"
	mkdir -p "$ctx/bin"
	cp -a "$work/rootfs" "$ctx/rootfs"
	for b in "$name" "${extra[@]}"; do cp "$bindir/$b" "$ctx/bin/$b"; done
	{
		echo "FROM scratch"
		echo "COPY rootfs/etc /etc"
		echo "COPY rootfs/tmp /tmp"
		echo "COPY --chown=65532:65532 rootfs/data /data"
		echo "COPY bin/ /"
		for e in "${env[@]}"; do echo "ENV $e"; done
		[ ${#ports[@]} -eq 0 ] || echo "EXPOSE ${ports[*]}"
		echo "WORKDIR /data"
		echo "USER 65532:65532"
		echo "LABEL org.opencontainers.image.title=\"$name\" \\"
		echo "  org.opencontainers.image.description=\"$description\" \\"
		echo "  org.opencontainers.image.version=\"$tag\" \\"
		echo "  org.opencontainers.image.revision=\"$revision\" \\"
		echo "  org.opencontainers.image.created=\"$created\" \\"
		echo "  org.opencontainers.image.vendor=\"fieldstream\""
		if [ -n "$health" ]; then
			if [ "$name" = nats-server ]; then probe=(/probe "$health"); else probe=("/$name" -probe "$health"); fi
			echo "HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 CMD $(json "${probe[@]}")"
		fi
		echo "ENTRYPOINT $(json "/$name")"
		[ ${#cmd[@]} -eq 0 ] || echo "CMD $(json "${cmd[@]}")"
	} >"$ctx/Dockerfile"
	tags=(-t "fieldstream/$name:$tag")
	[ "${IMAGE_LATEST:-true}" = false ] || tags+=(-t "fieldstream/$name:latest")
	# The legacy builder warns that it is deprecated on every build: only failures are news.
	if ! out=$(DOCKER_BUILDKIT=0 docker build --quiet "${tags[@]}" "$ctx" 2>&1); then
		echo "$out" >&2
		exit 1
	fi
	echo "fieldstream/$name:$tag"
done
