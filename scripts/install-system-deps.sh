#!/usr/bin/env bash
# Installs the Debian packages the engine and its tests use, when missing (python3-venv too: `make` runs
# this before it makes the virtualenv).
# gcc and python3-dev: mypyc compiles the SIP layer with them (setup.py; without them it stays pure Python).
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
set -euo pipefail
packages=(python3-venv gcc python3-dev espeak-ng sip-tester baresip redis-server chromium chromium-driver festival festvox-kallpc16k
          graphviz sox postgresql kamailio linphone-cli fonts-wqy-microhei openssl
          sphinxtrain sphinxbase-utils pocketsphinx festvox-us-slt-hts)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "run as root:  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
sh -c "$cmd" >&2
