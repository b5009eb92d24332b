#!/usr/bin/env bash
# Proof on ARM without a board: an emulated arm64 Debian root (debootstrap --arch=arm64, run
# through qemu-user-static registered with binfmt_misc) with the ordinary aarch64 wheels of
# numpy, onnxruntime and opencv-python-headless and the wheel built from this checkout; then
# tools/arm64_check.py runs every shipped model there on two CPU profiles and its outputs are
# compared with the same script's outputs on this x86 host.
#
#   sudo tools/arm64_check.sh            # build (or reuse) the root, run, compare  (= make arm64-check)
#   sudo tools/arm64_check.sh root       # only build (or refresh) the root and its venv
#
# Options (environment):
#   EDGE_AE_ARM64_ROOT  the cache folder holding the root (default ~/.cache/edge-ae-arm64); outside
#                       the repository, as it is a whole Debian system (~1 GiB with the wheels)
#   ARM64_CPUS          the QEMU_CPU profiles to run (default "cortex-a72 cortex-a76": the Pi 4's
#                       core, without 8-bit dot-product instructions, and the Pi 5's, with them)
#   ARM64_OUT           where outputs and the report go (default: the root's folder name + "-out";
#                       not build/, which `make clean` and wheel builds in this shared tree remove)
#   HOST_PY             the x86 Python that runs the reference (default .venv/bin/python); the
#                       root gets the same numpy / onnxruntime / OpenCV versions, so a difference
#                       is the CPU's, not a library upgrade's
#   DEBIAN_MIRROR       default http://deb.debian.org/debian
#   ARM64_FROM          a git revision (e.g. HEAD) to build from instead of the working tree's files
#   ARM64_RUN_ARGS      extra options for every "arm64_check.py run", e.g. "--models NAME ... --no-cli"
#                       to recheck only newly shipped models (emulation is ~300x slower than this host)
#
# Needs root (debootstrap, chroot, mounts) and takes minutes: it is not part of the test suite;
# tests/test_arm64_check.py runs the Python half on x86 so that it cannot rot.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="${EDGE_AE_ARM64_ROOT:-$HOME/.cache/edge-ae-arm64}"
CPUS="${ARM64_CPUS:-cortex-a72 cortex-a76}"
OUT="${ARM64_OUT:-$ROOT-out}"
SNAP="$OUT/snapshot"  # the checkout as built into the wheel; the x86 reference runs it too
HOST_PY="${HOST_PY:-$REPO/.venv/bin/python}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm            # Raspberry Pi OS 64-bit is Bookworm: same Python (3.11) and glibc
VENV=/opt/edge-ae-venv    # inside the root
WORK=/opt/edge-ae-check   # inside the root: the check script, the samples, the outputs
MODE="${1:-all}"
read -r -a RUN_ARGS <<< "${ARM64_RUN_ARGS:-}"

say() { printf 'arm64-check: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, binfmt_misc); run it with sudo"
case "$MODE" in all|root) ;; *) die "expected 'all' or 'root', got '$MODE'";; esac
[ -x "$HOST_PY" ] || die "HOST_PY=$HOST_PY is not an executable Python (make the dev venv: make test)"
case "$ROOT" in "$REPO"|"$REPO"/*) die "EDGE_AE_ARM64_ROOT=$ROOT is inside the repository; give a folder outside it";; esac

need_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ -x /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Lets the kernel run aarch64 ELF files through qemu. The "F" flag (Debian's default) makes the
# kernel open the interpreter at registration, so it also works inside the chroot.
register_binfmt() {
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
            || die "cannot mount binfmt_misc at /proc/sys/fs/binfmt_misc (a container without that right?)"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        update-binfmts --enable qemu-aarch64 || die "update-binfmts could not register qemu-aarch64"
    fi
    grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "binfmt entry qemu-aarch64 is disabled"
}

MOUNTED=()
mount_api() {
    local d
    for d in proc sys dev; do
        mountpoint -q "$ROOT/$d" && continue
        case $d in
            proc) mount -t proc proc "$ROOT/proc" ;;
            sys)  mount -t sysfs sys "$ROOT/sys" ;;
            dev)  mount --bind /dev "$ROOT/dev" ;;
        esac
        MOUNTED+=("$ROOT/$d")
    done
}
umount_api() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do  # newest first: cpuinfo sits on proc
        umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" || true
    done
    MOUNTED=()
}

# qemu-user 7.2 passes the host's (x86) /proc/cpuinfo through to the emulated process, and
# onnxruntime's CPU detection (the cpuinfo library) then crashes at import (SIGSEGV). A real Pi
# has an ARM /proc/cpuinfo, so the root gets one for the emulated core: the Pi's Features line
# and part number. onnxruntime reads the instruction-set features themselves (the 8-bit dot
# product among them) from getauxval(AT_HWCAP), which qemu sets from QEMU_CPU.
fake_cpuinfo() {
    local cpu=$1 features part variant revision n i file="$ROOT/tmp/edge-ae-cpuinfo"
    case $cpu in
        cortex-a76) features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
                    part=0xd0b variant=0x4 revision=1 ;;  # as a Pi 5 reports it
        *)          features="fp asimd evtstrm crc32 cpuid" part=0xd08 variant=0x0 revision=3 ;;  # Pi 4 (A72)
    esac
    n="$(nproc)"
    : > "$file"
    for ((i = 0; i < n; i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
            "$i" "$features" "$variant" "$part" "$revision" >> "$file"
    done
    while grep -q " $ROOT/proc/cpuinfo " /proc/mounts; do umount "$ROOT/proc/cpuinfo"; done
    mount --bind "$file" "$ROOT/proc/cpuinfo"
    case " ${MOUNTED[*]} " in *" $ROOT/proc/cpuinfo "*) ;; *) MOUNTED+=("$ROOT/proc/cpuinfo") ;; esac
}
trap umount_api EXIT

in_root() {  # run a command in the root; QEMU_CPU picks the emulated core
    chroot "$ROOT" /usr/bin/env -i HOME=/root PATH="$VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin" LANG=C.UTF-8 \
        PIP_CERT=/etc/ssl/certs/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
        OMP_NUM_THREADS=1 ${QEMU_CPU:+QEMU_CPU=$QEMU_CPU} "$@"
}

build_root() {
    if [ ! -f "$ROOT/.edge-ae-debootstrap-done" ]; then
        say "debootstrap $SUITE arm64 into $ROOT (first time: several minutes)"
        mkdir -p "$ROOT"
        debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
            "$SUITE" "$ROOT" "$MIRROR"
        touch "$ROOT/.edge-ae-debootstrap-done"
    fi
    # pip inside the root must trust the same certificates as this host (a proxy's CA included)
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/host-ca.crt"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    mount_api
    fake_cpuinfo cortex-a72

    local versions
    # distribution versions (cv2.__version__ lacks OpenCV's packaging suffix, e.g. 5.1.0 vs 5.1.0.95)
    versions="$("$HOST_PY" -c 'from importlib.metadata import version as v
print(" ".join(f"{d}=={v(d)}" for d in ("numpy", "onnxruntime", "opencv-python-headless")))')"
    if [ ! -x "$ROOT$VENV/bin/python" ]; then
        in_root python3 -m venv "$VENV"
    fi
    if [ "$(cat "$ROOT$VENV/.edge-ae-deps" 2>/dev/null)" != "$versions" ]; then
        say "pip install (aarch64 wheels): $versions"
        # shellcheck disable=SC2086  # the versions are three words on purpose
        in_root "$VENV/bin/pip" install --quiet --only-binary=:all: $versions
        echo "$versions" > "$ROOT$VENV/.edge-ae-deps"
    fi

    # The wheel is built from a snapshot of the checkout's files (tracked and new, not ignored),
    # so the build never writes into the working tree, and the x86 reference runs the same
    # snapshot (code and models) even while the tree changes. Pure Python + ONNX files.
    rm -rf "$SNAP" && mkdir -p "$SNAP"
    if [ -n "${ARM64_FROM:-}" ]; then
        (cd "$REPO" && git archive "$ARM64_FROM") | tar -xf - -C "$SNAP"
    else
        (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) \
            | tar -xf - -C "$SNAP"
    fi
    say "building the edge-ae wheel from the checkout (snapshot in $SNAP)"
    "$HOST_PY" -m pip wheel --quiet --no-deps --no-build-isolation "$SNAP" -w "$SNAP/dist" >/dev/null
    rm -rf "$ROOT/tmp/edge-ae-wheel" && mkdir -p "$ROOT/tmp/edge-ae-wheel"
    cp "$SNAP"/dist/edge_ae-*.whl "$ROOT/tmp/edge-ae-wheel/"
    rm -rf "$SNAP/build" "$SNAP"/*.egg-info
    local wheel
    wheel="$(basename "$ROOT"/tmp/edge-ae-wheel/edge_ae-*.whl)"
    in_root "$VENV/bin/pip" install --quiet --no-deps --force-reinstall "/tmp/edge-ae-wheel/$wheel"
    in_root "$VENV/bin/python" -c 'import edge_ae, platform; print("edge_ae", edge_ae.__version__, "on", platform.machine())'
}

run_checks() {
    mkdir -p "$OUT"
    rm -rf "$ROOT$WORK" && mkdir -p "$ROOT$WORK"
    cp "$SNAP/tools/arm64_check.py" "$ROOT$WORK/"
    # The one PSNR (numpy only): the check imports training.metrics, nothing else of training/.
    mkdir -p "$ROOT$WORK/training"
    cp "$SNAP/training/__init__.py" "$SNAP/training/metrics.py" "$ROOT$WORK/training/"
    cp -r "$SNAP/samples" "$ROOT$WORK/samples"

    # A run that reports failures does not stop the others: compare lists them all at the end.
    say "x86 reference: $HOST_PY tools/arm64_check.py run (the snapshot's code and models)"
    rm -rf "$OUT/x86_64"
    (cd "$SNAP" && PYTHONPATH="$SNAP" EDGE_AE_MODELS="$SNAP/exported" OMP_NUM_THREADS=1 \
        "$HOST_PY" tools/arm64_check.py run --samples samples --out "$OUT/x86_64" "${RUN_ARGS[@]}") \
        || say "the x86 run reported failures"

    local cpu
    for cpu in $CPUS; do
        say "aarch64 under qemu, QEMU_CPU=$cpu (installed wheel; minutes)"
        fake_cpuinfo "$cpu"
        QEMU_CPU=$cpu in_root "$VENV/bin/python" "$WORK/arm64_check.py" run \
            --samples "$WORK/samples" --out "$WORK/out-$cpu" "${RUN_ARGS[@]}" \
            || say "the $cpu run reported failures"
        rm -rf "${OUT:?}/$cpu" && mkdir -p "$OUT" && cp -r "$ROOT$WORK/out-$cpu" "$OUT/$cpu"
    done

    local args=()
    for cpu in $CPUS; do args+=("$OUT/$cpu"); done
    "$HOST_PY" "$SNAP/tools/arm64_check.py" compare "$OUT/x86_64" "${args[@]}" --report "$OUT/report.md"
}

need_tools
register_binfmt
build_root
if [ "$MODE" = all ]; then run_checks; fi
