#!/bin/sh
# Installs Asterisk 22 LTS and the test tools into a Debian sid root.
# Run inside the rootfs by `ivr testbed build` (chroot) and by asterisk-conf/Dockerfile:
# one recipe for both runners; its hash names the cached rootfs.
set -eu
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d   # never start daemons from packages
chmod +x /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
# The mirror may be a frozen snapshot whose Release file reads as expired.
APT="apt-get -q -o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0"
$APT update
$APT install -y --no-install-recommends \
    asterisk asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm sip-tester
apt-get clean
rm -rf /var/lib/apt/lists/*
/usr/sbin/asterisk -V
