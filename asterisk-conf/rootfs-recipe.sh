#!/bin/sh
# Installs Asterisk 22 LTS and the test tools into a Debian sid root, and builds the project's
# own Asterisk modules (modules/*.c beside this file) against that very Asterisk's headers.
# Run inside the rootfs by `ivr testbed build` (chroot) and by asterisk-conf/Dockerfile:
# one recipe for both runners; its hash and the modules' name the cached rootfs.
set -eu
HERE=$(dirname "$0")
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d   # never start daemons from packages
chmod +x /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
# The mirror may be a frozen snapshot whose Release file reads as expired.
APT="apt-get -q -o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0"
$APT update
$APT install -y --no-install-recommends \
    asterisk asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm sip-tester \
    asterisk-dev gcc libc6-dev
# Asterisk declines a module built with other options: same package, same buildopts.h
MODDIR=$(dirname "$(dpkg -L asterisk-modules | grep '/app_mixmonitor\.so$')")
test -f "$MODDIR/app_mixmonitor.so"
for src in "$HERE"/modules/*.c; do
    name=$(basename "$src" .c)
    gcc -O2 -g -Wall -Werror -Wno-unused-parameter -fPIC -shared -pthread -D_GNU_SOURCE \
        -DAST_MODULE="\"$name\"" -DAST_MODULE_SELF_SYM="__internal_${name}_self" \
        -o "$MODDIR/$name.so" "$src"
done
apt-get clean
rm -rf /var/lib/apt/lists/*
/usr/sbin/asterisk -V
